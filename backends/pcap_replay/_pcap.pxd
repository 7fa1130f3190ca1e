from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from rxfeed_abi cimport rxf_backend_ops, rxf_packet
from rxfeed_src cimport rxf_src

cdef extern from "pcap_source.h" nogil:
    enum: RXF_NET_NVERDICTS
    enum: RXF_FILTER_MAX
    ctypedef struct rxf_dst_filter:
        uint32_t n
        uint32_t ip[16]
        uint16_t port[16]
    ctypedef struct rxf_pcap_stats:
        uint64_t records, packets, bytes, filtered, loops_done
        uint64_t drops[7]
        uint64_t truncated_records, skipped_blocks, ts_out_of_range
    ctypedef struct rxf_pcap:
        rxf_src src
        int format
        uint32_t n_if
        rxf_dst_filter filter
        double speed
        uint64_t loops
        rxf_pcap_stats stats
        char error[320]
    int rxf_pcap_open(rxf_pcap *pc, const char *path, int fd, const uint8_t *prefix, size_t prefix_len, int map)
    void rxf_pcap_close(rxf_pcap *pc)
    int rxf_pcap_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max)
    const char *rxf_pcap_last_error(void *ctx)


cdef class PcapReader:
    cdef rxf_pcap *pc
    cdef rxf_backend_ops ops
    cdef bint is_open
