/*
 * DPDK receive port as an rxfeed backend (rxf_backend_ops).
 *
 * Set-up follows DPDK's skeleton order: EAL (once per process), mbuf pool on
 * the port's NUMA socket, configure, adjust descriptors, RX queue set-up,
 * start. The burst loop hands pointers into the mbufs (no copy) and frees the
 * whole burst in bulk on release.
 */
#ifndef RXF_DPDK_PORT_H
#define RXF_DPDK_PORT_H

#include <stdint.h>
#include "rxfeed/abi.h"
#include "rxfeed/net.h"

#define RXF_DPDK_MAX_BURST 512
#define RXF_DPDK_MAX_QUEUES 16

typedef struct rxf_dpdk_cfg {
    const char *port_name;  /* e.g. "net_pcap0" or a PCI address; NULL: use port_id */
    uint16_t port_id;
    uint16_t rx_queues;     /* > 1: RSS spreads flows over the queues */
    uint16_t rx_desc;
    uint16_t tx_desc;
    uint32_t pool_size;
    uint32_t pool_cache;
    int promiscuous;
    int all_multicast;
    uint64_t expected_frames;   /* 0: unlimited; else EOF after this many frames */
    double idle_timeout_s;      /* 0: never; else EOF after this long without a frame */
    double nic_ts_unit_ns;      /* multiplier of the NIC/PMD timestamp to ns */
} rxf_dpdk_cfg;

typedef struct rxf_dpdk_stats {
    uint64_t bursts, frames, packets, bytes, filtered;
    uint64_t drops[RXF_NET_NVERDICTS];
} rxf_dpdk_stats;

/* A started port: its pools (one per queue, on the port's socket). */
typedef struct rxf_dpdk_dev {
    rxf_dpdk_cfg cfg;
    uint16_t port;
    uint16_t nq;
    int started;
    void *pools[RXF_DPDK_MAX_QUEUES];
    int numa_mismatch;
    int port_socket, lcore_socket;
    int ts_offset;              /* mbuf timestamp dynfield offset, -1 if none */
    uint64_t ts_flag;
    char error[256];
} rxf_dpdk_dev;

/* One RX queue of a started port: the backend a run loop polls. */
typedef struct rxf_dpdk_port {
    rxf_dpdk_cfg cfg;
    uint16_t port;
    uint16_t queue;
    void *held[RXF_DPDK_MAX_BURST]; /* mbufs of the current burst */
    uint32_t n_held;
    int ts_offset;
    uint64_t ts_flag;
    uint64_t tsc_hz;
    uint64_t last_rx_tsc;
    rxf_dst_filter filter;
    rxf_dpdk_stats stats;
    char error[256];
} rxf_dpdk_port;

/* EAL: once per process. 0 ok; -1 with errbuf set. */
int rxf_dpdk_eal_init(int argc, char **argv, char *errbuf, size_t errlen);
int rxf_dpdk_eal_ready(void);
int rxf_dpdk_dev_open(rxf_dpdk_dev *d, const rxf_dpdk_cfg *cfg);
void rxf_dpdk_dev_close(rxf_dpdk_dev *d);
/* Attach a poller to queue q of a started device. */
void rxf_dpdk_queue_init(rxf_dpdk_port *p, const rxf_dpdk_dev *d, uint16_t q);
/* Give back mbufs still held (before the device closes). */
void rxf_dpdk_queue_drain(rxf_dpdk_port *p);
int rxf_dpdk_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max);
void rxf_dpdk_release(void *ctx, rxf_packet *pkts, uint32_t n);
const char *rxf_dpdk_last_error(void *ctx);
/* NIC counters (rte_eth_stats). */
int rxf_dpdk_nic_stats(const rxf_dpdk_dev *d, uint64_t out[6]);
const char *rxf_dpdk_version(void);
uint16_t rxf_dpdk_port_count(void);

#endif
