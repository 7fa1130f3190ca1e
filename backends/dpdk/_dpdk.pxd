from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from rxfeed_abi cimport rxf_backend_ops, rxf_packet

cdef extern from "dpdk_igmp.h" nogil:
    enum: RXF_IGMP_MAX_GROUPS
    enum: RXF_IGMP_MAX_SOURCES
    ctypedef struct rxf_igmp_group:
        uint32_t group
        uint32_t nsrc
        uint32_t src[RXF_IGMP_MAX_SOURCES]
    ctypedef struct rxf_igmp_stats:
        uint64_t reports_sent, queries_seen, queries_answered, leaves_sent, tx_failed, bad_queries
    ctypedef struct rxf_igmp_state:
        uint8_t version
        uint32_t querier_qi_s
        uint32_t ngroups
        rxf_igmp_stats stats
    ctypedef struct rxf_dpdk_igmp_cfg:
        uint8_t version
        uint32_t robustness
        double interval_s
        uint32_t src_ip
        uint32_t ngroups
        rxf_igmp_group groups[RXF_IGMP_MAX_GROUPS]
    ctypedef struct rxf_dpdk_igmp:
        rxf_igmp_state st
    uint32_t rxf_igmp_robustness(const rxf_igmp_state *st)
    rxf_dpdk_igmp *rxf_dpdk_igmp_open(uint16_t port, const rxf_dpdk_igmp_cfg *cfg, char *err, size_t errlen)
    void rxf_dpdk_igmp_leave(rxf_dpdk_igmp *g)
    void rxf_dpdk_igmp_free(rxf_dpdk_igmp *g)
    unsigned rxf_dpdk_igmp_pools()
    uint64_t rxf_dpdk_igmp_handover(const rxf_dpdk_igmp *g, int dropped)

cdef extern from "dpdk_rx.h" nogil:
    enum: RXF_FILTER_MAX
    ctypedef struct rxf_dst_filter:
        uint32_t n
        uint32_t ip[16]
        uint16_t port[16]
    # dpdk_flow.h
    enum: RXF_FLOW_OFF, RXF_FLOW_AUTO, RXF_FLOW_ON
    ctypedef struct rxf_flow_cfg:
        int rules
        int isolate
        int rss
        rxf_dst_filter dst
        uint16_t queue[16]
    ctypedef struct rxf_flow_state:
        int steering
        int isolated
        uint32_t rules
        char reason[320]
    int rxf_flow_set_isolating_drivers(const char *names)
    int rxf_flow_describe(const rxf_flow_cfg *c, uint32_t i, uint16_t nq, char *out, size_t outlen)
    enum: RXF_DPDK_TS_OFF, RXF_DPDK_TS_AUTO, RXF_DPDK_TS_ON
    enum: RXF_DPDK_TSFMT_AUTO, RXF_DPDK_TSFMT_TICKS, RXF_DPDK_TSFMT_NS
    enum: RXF_DPDK_NICTS_CLOCK, RXF_DPDK_NICTS_NS, RXF_DPDK_NICTS_UNDECIDED
    const char *RXF_DPDK_TSC_SOURCE
    ctypedef struct rxf_dpdk_cfg:
        const char *port_name
        uint16_t port_id
        uint16_t rx_queues
        uint16_t rx_desc
        uint16_t tx_desc
        uint32_t pool_size
        uint32_t pool_cache
        int promiscuous
        int all_multicast
        uint64_t expected_frames
        double idle_timeout_s
        double nic_ts_unit_ns
        rxf_flow_cfg flow
        int nic_timestamps
        uint64_t nic_clock_hz
        int register_lcore
        int nic_ts_format
    ctypedef struct rxf_dpdk_clock:
        uint64_t hz
        uint64_t ticks0
        uint64_t epoch_ns0
    ctypedef int (*rxf_dpdk_tick_reader)(void *arg, uint64_t *ticks) noexcept nogil
    ctypedef struct rxf_dpdk_stats:
        uint64_t bursts, frames, packets, bytes, filtered, nic_stamped
        uint64_t drops[7]
    ctypedef struct rxf_dpdk_dev:
        uint16_t port
        uint16_t nq
        int ts_offset
        int numa_mismatch
        int port_socket
        int lcore_socket
        int ts_offload
        char driver[32]
        unsigned if_index
        char clock_source[256]
        rxf_dpdk_igmp *igmp
        rxf_flow_state flow
        char error[256]
    ctypedef struct rxf_dpdk_poller_lcore:
        int registered
        int socket
        uint32_t lcore_id
        uint64_t register_failures
        int register_errno
        uint32_t cache_len_at_end
    ctypedef struct rxf_dpdk_queue:
        rxf_dpdk_cfg cfg
        uint16_t port
        uint16_t queue
        int ts_offset
        int nic_ts_mode
        rxf_dpdk_clock nic_clock
        char driver[32]
        char clock_source[256]
        rxf_dpdk_poller_lcore lcore
        rxf_dst_filter filter
        rxf_dpdk_stats stats
        char error[256]
    int rxf_dpdk_eal_init(int argc, char **argv, char *errbuf, size_t errlen)
    int rxf_dpdk_eal_ready()
    int rxf_dpdk_dev_open(rxf_dpdk_dev *d, const rxf_dpdk_cfg *cfg)
    void rxf_dpdk_dev_close(rxf_dpdk_dev *d)
    void rxf_dpdk_queue_init(rxf_dpdk_queue *p, const rxf_dpdk_dev *d, uint16_t q)
    void rxf_dpdk_queue_drain(rxf_dpdk_queue *p)
    int rxf_dpdk_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max)
    void rxf_dpdk_release(void *ctx, rxf_packet *pkts, uint32_t n)
    const char *rxf_dpdk_last_error(void *ctx)
    int rxf_dpdk_nic_stats(const rxf_dpdk_dev *d, uint64_t out[6])
    const char *rxf_dpdk_version()
    const char *rxf_dpdk_runtime_dir()
    int rxf_dpdk_clock_calibrate_ticks(rxf_dpdk_clock *c, rxf_dpdk_tick_reader read, void *arg,
                                       uint64_t interval_ns, uint64_t known_hz)
    uint64_t rxf_dpdk_clock_ns(const rxf_dpdk_clock *c, uint64_t ticks)
    int rxf_dpdk_nic_ts_is_ns(uint64_t raw, uint64_t now_ns)
    uint64_t rxf_dpdk_nic_ts_ns(rxf_dpdk_queue *p, uint64_t raw)
    void rxf_dpdk_describe_nic_ts(char *out, size_t outlen, int mode, const rxf_dpdk_cfg *cfg, const char *driver,
                                  uint64_t hz)
    int rxf_dpdk_pool_info(const rxf_dpdk_dev *d, int64_t out[5], uint32_t *cached, uint32_t n, char *name,
                           size_t name_len)
    uint32_t rxf_dpdk_max_lcore()
    int rxf_dpdk_lcore_socket(uint32_t lcore)
    int rxf_dpdk_register_thread(uint32_t *lcore_id)
    void rxf_dpdk_unregister_thread()
    int rxf_dpdk_thread_tokens(uint64_t *out, uint32_t n)


cdef class DpdkDevice:
    cdef rxf_dpdk_dev *d
    cdef bytes _name
    cdef bint is_open
    cdef list _queues
    cdef public object membership
    cdef dict _igmp_final  # the IGMP counters once close() freed the responder
    cdef _free_igmp(self)


cdef class DpdkQueue:
    cdef rxf_dpdk_queue *p
    cdef rxf_backend_ops ops
    cdef DpdkDevice device
