from libc.stdint cimport uint16_t, uint32_t, uint64_t
from rxfeed_abi cimport rxf_backend_ops, rxf_packet

cdef extern from "efvi_rx.h" nogil:
    ctypedef struct rxf_efvi_cfg:
        const char *interface
        int rx_ring
        int ev_ring
        int refill_batch
        int timestamps
        uint32_t n_filters
        uint32_t filter_ip[16]
        uint16_t filter_port[16]
        uint64_t expected_frames
        double idle_timeout_s
        int datapath
        int future_peek
    ctypedef struct rxf_efvi_stats:
        uint64_t polls, events, frames, rx, packets, bytes
        uint64_t discards[9]
        uint64_t ring_empty, no_buffer, jumbo, unsupported_events, resets
        uint64_t drops[7]
        uint64_t rx_ref, bad_len, bad_pkt_id, released, released_on_close, held_max
        uint64_t future_peeks, future_early_rejects, future_undone, future_timeouts, future_mismatch
        uint64_t ts_in_sync, ts_set_not_in_sync, ts_clock_unset, ts_missing
    ctypedef struct rxf_efvi:
        int prefix
        int arch
        int efct
        int n_held
        int n_bufs
        int n_free
        rxf_efvi_stats stats
        char error[256]
    int rxf_efvi_open(rxf_efvi *e, const rxf_efvi_cfg *cfg)
    void rxf_efvi_close(rxf_efvi *e)
    int rxf_efvi_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max)
    void rxf_efvi_release(void *ctx, rxf_packet *pkts, uint32_t n)
    const char *rxf_efvi_last_error(void *ctx)


cdef class EfviReceiver:
    cdef rxf_efvi *e
    cdef rxf_backend_ops ops
    cdef bytes _ifname
    cdef bint is_open
    cdef bint _timestamps
