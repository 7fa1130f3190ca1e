from libc.stdint cimport uint32_t, uint64_t
from rxfeed_abi cimport rxf_backend_ops, rxf_packet

cdef extern from "rxfeed/lines.h" nogil:
    enum: RXF_LINES_MAX
    ctypedef struct rxf_line:
        const rxf_backend_ops *ops
        uint64_t packets, bursts, last_ns, downs, ups
        int state, down
        char error[200]
    ctypedef struct rxf_lines:
        rxf_line line[8]
        uint32_t n, next, current
        uint64_t silence_ns, started_ns
        char error[256]
    int rxf_lines_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) noexcept
    void rxf_lines_release(void *ctx, rxf_packet *pkts, uint32_t n) noexcept
    const char *rxf_lines_last_error(void *ctx) noexcept
    uint64_t rxf_lines_now() noexcept


cdef class LinesReader:
    cdef rxf_lines *ls
    cdef rxf_backend_ops ops
    cdef list capsules
