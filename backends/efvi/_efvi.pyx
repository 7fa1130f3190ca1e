# cython: language_level=3, boundscheck=False, wraparound=False
"""ef_vi receiver exported through the rxfeed C ABI (see efvi_rx.c)."""
from libc.stdlib cimport calloc, free
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport fill_backend_ops, RXF_BACKEND_CAPSULE

cdef extern from *:
    """
    #ifndef RXF_EFVI_BUILT_AGAINST
    #define RXF_EFVI_BUILT_AGAINST "unknown"
    #endif
    """
    const char *RXF_EFVI_BUILT_AGAINST

#: What this extension was compiled and linked against (real Onload or rxfeed's test stand-in).
BUILT_AGAINST = RXF_EFVI_BUILT_AGAINST.decode()

from rxfeed.backend_base import check_filter_count, net_drops
#: ef_vi RX_DISCARD subtypes, in the API's order.
DISCARD_KINDS = ("csum_bad", "mcast_mismatch", "crc_bad", "trunc", "rights", "ev_error", "other",
                 "inner_csum_bad", "unknown")
#: The ``datapath`` setting's values, in rxf_efvi_datapath's order.
DATAPATHS = ("auto", "ef10", "efct")


def clock_source(bint timestamps, unsigned long long in_sync, unsigned long long set_not_in_sync,
                 unsigned long long clock_unset, unsigned long long missing) -> str:
    """Where ``rx_ts_ns`` came from, in words, from the timestamp counters."""
    if not timestamps:
        return "CLOCK_REALTIME at hand-out"
    hw = in_sync + set_not_in_sync
    parts = []
    if hw and not set_not_in_sync:
        parts.append("nic (adapter clock, in sync)")
    elif hw and not in_sync:
        parts.append("nic (adapter clock set, not in sync with its reference)")
    elif hw:
        parts.append(f"nic (adapter clock, {in_sync} of {hw} stamps in sync)")
    if clock_unset or missing:
        parts.append(f"CLOCK_REALTIME at hand-out for {clock_unset + missing} frames "
                     f"({missing} without a NIC timestamp, {clock_unset} before the adapter clock was set)")
    return "; ".join(parts) or "nic (no frame yet)"


cdef int _rx(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil:
    return rxf_efvi_rx_burst(ctx, pkts, max)


cdef void _rel(void *ctx, rxf_packet *pkts, uint32_t n) noexcept nogil:
    rxf_efvi_release(ctx, pkts, n)


cdef const char *_err(void *ctx) noexcept nogil:
    return rxf_efvi_last_error(ctx)


cdef class EfviReceiver:
    """Driver handle, protection domain, VI, registered buffers and filters of one interface."""

    def __cinit__(self, str interface, int rx_ring=512, int ev_ring=-1, int refill_batch=16, bint timestamps=False,
                  filters=(), unsigned long long expected_frames=0, double idle_timeout_s=0.0,
                  str datapath="auto", bint future_peek=False):
        cdef rxf_efvi_cfg cfg
        self._ifname = interface.encode()
        cfg.interface = self._ifname
        cfg.rx_ring = rx_ring
        cfg.ev_ring = ev_ring
        cfg.refill_batch = refill_batch
        cfg.timestamps = timestamps
        filters = list(filters)
        check_filter_count(filters)  # the C arrays' bound (config validation says so first)
        for i, (ip, port) in enumerate(filters):
            cfg.filter_ip[i] = ip
            cfg.filter_port[i] = port
        cfg.n_filters = len(filters)
        cfg.expected_frames = expected_frames
        cfg.idle_timeout_s = idle_timeout_s
        cfg.datapath = DATAPATHS.index(datapath)
        cfg.future_peek = future_peek
        self._timestamps = timestamps
        self.e = <rxf_efvi *>calloc(1, sizeof(rxf_efvi))
        if self.e == NULL:
            raise MemoryError()
        if rxf_efvi_open(self.e, &cfg) != 0:
            msg = self.e.error.decode(errors="replace")
            rxf_efvi_close(self.e)
            free(self.e)
            self.e = NULL
            raise RuntimeError(msg)
        self.is_open = True
        fill_backend_ops(&self.ops, self.e, _rx, _rel, _err)

    def __dealloc__(self):
        if self.e != NULL:
            if self.is_open:
                rxf_efvi_close(self.e)
            free(self.e)

    def capsule(self):
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    @property
    def rx_prefix_len(self) -> int:
        return self.e.prefix

    @property
    def datapath(self) -> str:
        """The receive loop running: ``ef10`` (posted buffers) or ``efct`` (X3, RX_REF)."""
        return "efct" if self.e.efct else "ef10"

    def stats(self) -> dict:
        s = self.e.stats
        discards = {DISCARD_KINDS[i]: s.discards[i] for i in range(9) if s.discards[i]}
        drops = net_drops(s.drops, **{"discard_" + k: v for k, v in discards.items()}, jumbo=s.jumbo,
                          bad_length=s.bad_len, held_burst_full=s.no_buffer)
        out = {"datapath": self.datapath, "nic_arch": self.e.arch,
               "clock_source": clock_source(self._timestamps, s.ts_in_sync, s.ts_set_not_in_sync,
                                            s.ts_clock_unset, s.ts_missing),
               "polls": s.polls, "events": s.events, "frames": s.frames, "packets": s.packets,
               "bytes": s.bytes, "discards": discards, "resets": s.resets,
               "unsupported_events": s.unsupported_events, "drops": drops,
               "timestamps": {"in_sync": s.ts_in_sync, "set_not_in_sync": s.ts_set_not_in_sync,
                              "clock_unset": s.ts_clock_unset, "missing": s.ts_missing}}
        if self.e.efct:
            out.update({"rx_ref": s.rx_ref, "bad_length": s.bad_len, "bad_pkt_id": s.bad_pkt_id,
                        "released": s.released, "released_on_close": s.released_on_close,
                        "held": self.e.n_held, "held_max": s.held_max,
                        "future": {"peeks": s.future_peeks, "early_rejects": s.future_early_rejects,
                                   "undone": s.future_undone, "timeouts": s.future_timeouts,
                                   "mismatch": s.future_mismatch}})
        else:
            out.update({"rx": s.rx, "ring_empty": s.ring_empty, "rx_prefix_len": self.e.prefix,
                        "buffers": self.e.n_bufs})
        return out

    def close(self):
        if self.is_open:
            rxf_efvi_close(self.e)
            self.is_open = False
