/*
 * DPDK receive path as an rxfeed backend (rxf_backend_ops).
 *
 * A device (rxf_dpdk_dev) is one started DPDK port; each of its RX queues has
 * a poller (rxf_dpdk_queue), the backend a run loop polls. Set-up follows
 * DPDK's skeleton order, one step per function: EAL (once per process), mbuf
 * pools on the port's NUMA socket, configure, RX/TX queue set-up, start. The
 * burst loop hands pointers into the mbufs (no copy) and frees the whole
 * burst in bulk on release.
 *
 * rx_ts_ns is ns since the Unix epoch (abi.h): the PMD's RX timestamp when it
 * gives one (net_pcap: the capture's), else the TSC at rx_burst converted
 * with one calibration taken when the device starts (rxf_dpdk_clock).
 */
#ifndef RXF_DPDK_RX_H
#define RXF_DPDK_RX_H

#include <stdint.h>
#include "rxfeed/abi.h"
#include "rxfeed/net.h"
#include "dpdk_igmp.h"
#include "dpdk_flow.h"

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
    rxf_flow_cfg flow;          /* rte_flow rules and isolation (dpdk_flow.h) */
} rxf_dpdk_cfg;

/* TSC -> Unix-epoch ns: one CLOCK_REALTIME reading paired with one TSC reading. */
typedef struct rxf_dpdk_clock {
    uint64_t tsc_hz;    /* rte_get_tsc_hz() */
    uint64_t tsc0;      /* rte_rdtsc() at calibration */
    uint64_t epoch_ns0; /* CLOCK_REALTIME at the same moment, ns since the epoch */
} rxf_dpdk_clock;

/* Calibrate now (needs EAL: rte_get_tsc_hz). */
void rxf_dpdk_clock_calibrate(rxf_dpdk_clock *c);

/* Epoch ns of a TSC reading (exact integer arithmetic for tsc_hz < 18 GHz). */
static inline uint64_t rxf_dpdk_clock_ns(const rxf_dpdk_clock *c, uint64_t tsc) {
    const uint64_t G = 1000000000ull;
    if (tsc >= c->tsc0) {
        uint64_t d = tsc - c->tsc0;
        return c->epoch_ns0 + d / c->tsc_hz * G + d % c->tsc_hz * G / c->tsc_hz;
    }
    uint64_t d = c->tsc0 - tsc; /* a core whose TSC lags the calibrating one */
    return c->epoch_ns0 - (d / c->tsc_hz * G + d % c->tsc_hz * G / c->tsc_hz);
}

typedef struct rxf_dpdk_stats {
    uint64_t bursts, frames, packets, bytes, filtered;
    uint64_t nic_stamped; /* packets whose rx_ts_ns is the PMD's timestamp */
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
    rxf_dpdk_clock clock;       /* calibrated when the port started */
    rxf_dpdk_igmp *igmp;        /* IGMP from TX queue 0 (nic mode), else NULL */
    rxf_flow_state flow;        /* what dpdk_flow.c installed, or why not */
    char error[256];
} rxf_dpdk_dev;

/* One RX queue of a started port: the backend a run loop polls. */
typedef struct rxf_dpdk_queue {
    rxf_dpdk_cfg cfg;
    uint16_t port;
    uint16_t queue;
    void *held[RXF_DPDK_MAX_BURST]; /* mbufs of the current burst */
    uint32_t n_held;
    int ts_offset;
    uint64_t ts_flag;
    uint64_t ts_unit_int;       /* nic_ts_unit_ns when a whole number, else 0 */
    rxf_dpdk_clock clock;
    uint64_t last_rx_tsc;
    rxf_dst_filter filter;
    rxf_dpdk_stats stats;
    rxf_dpdk_igmp *igmp;        /* the device's (queue 0 sends, others hand queries over) */
    char error[256];
} rxf_dpdk_queue;

/* EAL: once per process. 0 ok; -1 with errbuf set. */
int rxf_dpdk_eal_init(int argc, char **argv, char *errbuf, size_t errlen);
int rxf_dpdk_eal_ready(void);
/* Open and start a port (pools, configure, queues, start). 0 ok; -1 with d->error set
   (call rxf_dpdk_dev_close either way). */
int rxf_dpdk_dev_open(rxf_dpdk_dev *d, const rxf_dpdk_cfg *cfg);
void rxf_dpdk_dev_close(rxf_dpdk_dev *d);
/* Attach a poller to queue q of a started device. */
void rxf_dpdk_queue_init(rxf_dpdk_queue *p, const rxf_dpdk_dev *d, uint16_t q);
/* Give back mbufs still held (before the device closes). */
void rxf_dpdk_queue_drain(rxf_dpdk_queue *p);
int rxf_dpdk_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max);
void rxf_dpdk_release(void *ctx, rxf_packet *pkts, uint32_t n);
const char *rxf_dpdk_last_error(void *ctx);
/* NIC counters (rte_eth_stats). */
int rxf_dpdk_nic_stats(const rxf_dpdk_dev *d, uint64_t out[6]);
const char *rxf_dpdk_version(void);

#endif
