from libc.stdint cimport uint16_t, uint32_t, uint64_t
from rxfeed_abi cimport rxf_backend_ops, rxf_packet

cdef extern from "udp_rx.h" nogil:
    ctypedef struct rxf_udp_cfg:
        uint16_t port
        uint32_t n_groups
        uint32_t group[16]
        uint32_t source[16]
        uint32_t iface_addr
        int iface_index
        int rcvbuf
        int busy_poll_us
        int blocking
        double idle_timeout_s
    ctypedef struct rxf_udp_stats:
        uint64_t calls, packets, bytes, truncated, kernel_drops
    ctypedef struct rxf_udp:
        int fd
        rxf_udp_stats stats
        char error[256]
    int rxf_udp_open(rxf_udp *u, const rxf_udp_cfg *cfg)
    void rxf_udp_close(rxf_udp *u)
    int rxf_udp_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max)
    const char *rxf_udp_last_error(void *ctx)


cdef class UdpReceiver:
    cdef rxf_udp *u
    cdef rxf_backend_ops ops
    cdef bint is_open
