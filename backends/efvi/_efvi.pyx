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


cdef int _rx(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil:
    return rxf_efvi_rx_burst(ctx, pkts, max)


cdef void _rel(void *ctx, rxf_packet *pkts, uint32_t n) noexcept nogil:
    rxf_efvi_release(ctx, pkts, n)


cdef const char *_err(void *ctx) noexcept nogil:
    return rxf_efvi_last_error(ctx)


cdef class EfviReceiver:
    """Driver handle, protection domain, VI, registered buffers and filters of one interface."""

    def __cinit__(self, str interface, int rx_ring=512, int ev_ring=-1, int refill_batch=16, bint timestamps=False,
                  filters=(), unsigned long long expected_frames=0, double idle_timeout_s=0.0):
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

    def stats(self) -> dict:
        s = self.e.stats
        discards = {DISCARD_KINDS[i]: s.discards[i] for i in range(9) if s.discards[i]}
        drops = net_drops(s.drops, **{"discard_" + k: v for k, v in discards.items()}, jumbo=s.jumbo)
        return {"polls": s.polls, "events": s.events, "frames": s.frames, "rx": s.rx, "packets": s.packets,
                "bytes": s.bytes, "discards": discards, "ring_empty": s.ring_empty, "resets": s.resets,
                "unsupported_events": s.unsupported_events, "rx_prefix_len": self.e.prefix,
                "buffers": self.e.n_bufs, "drops": drops}

    def close(self):
        if self.is_open:
            rxf_efvi_close(self.e)
            self.is_open = False
