/*
 * DPDK receive path as an rxfeed backend (rxf_backend_ops).
 *
 * A device (rxf_dpdk_dev) is one started DPDK port; each of its RX queues has
 * a poller (rxf_dpdk_queue), the backend a run loop polls. Set-up follows
 * DPDK's skeleton order, one step per function: EAL (once per process), one
 * mbuf pool on the port's NUMA socket (shared by the port's queues),
 * configure, RX/TX queue set-up, start. The burst loop hands pointers into
 * the mbufs (no copy) and frees the whole burst in bulk on release.
 *
 * Pollers are the rxfeed run loop in ordinary threads. A thread that is not
 * an EAL lcore registers itself with rte_thread_register() on its queue's
 * first burst (so the mempool's per-lcore cache serves it) and unregisters
 * when its last queue ends (RXF_EOF in that thread), or, if the loop ended
 * otherwise, when the thread exits (a thread-specific-data destructor).
 *
 * rx_ts_ns is ns since the Unix epoch (abi.h). Its source, named in
 * rxf_dpdk_dev.clock_source: the PMD's RX timestamp when a frame carries one,
 * either already in ns (times nic_ts_unit_ns; net_pcap: the capture's own)
 * or, on a port with a clock rte_eth_read_clock reads, in device-clock ticks
 * converted with a calibration of that clock against CLOCK_REALTIME taken at
 * start, or ns as is (nic_ts_format; auto decides on the first stamped
 * frame); else the TSC at rx_burst converted with a calibration taken at
 * start (rxf_dpdk_clock).
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
    int nic_timestamps;         /* RXF_DPDK_TS_OFF, _AUTO or _ON */
    uint64_t nic_clock_hz;      /* the NIC clock's frequency; 0: measure it at start */
    int register_lcore;         /* a non-EAL polling thread registers itself (rte_thread_register) */
    int nic_ts_format;          /* RXF_DPDK_TSFMT_*: a PMD timestamp of a port with a clock to read */
} rxf_dpdk_cfg;

/* nic_timestamps: off: never use the PMD's timestamps (TSC only); auto:
   request RTE_ETH_RX_OFFLOAD_TIMESTAMP when offered, use a PMD timestamp when
   a frame carries one; on: as auto, but a port that does not offer the
   offload is an error. */
enum { RXF_DPDK_TS_OFF = 0, RXF_DPDK_TS_AUTO = 1, RXF_DPDK_TS_ON = 2 };

/* nic_ts_format, for a port whose clock rte_eth_read_clock reads: its PMD
   timestamps are device ticks (ticks), already ns since the epoch (ns: mlx5
   in real-time timestamp mode, while rte_eth_read_clock still reads the
   free-running counter), or decided on the first stamped frame (auto). */
enum { RXF_DPDK_TSFMT_AUTO = 0, RXF_DPDK_TSFMT_TICKS = 1, RXF_DPDK_TSFMT_NS = 2 };

/* How a PMD timestamp becomes epoch ns: not used, times nic_ts_unit_ns,
   device-clock ticks through a calibrated rxf_dpdk_clock, as is (ns), or
   not decided yet (nic_ts_format auto before the first stamped frame). */
enum { RXF_DPDK_NICTS_NONE = 0, RXF_DPDK_NICTS_SCALE = 1, RXF_DPDK_NICTS_CLOCK = 2, RXF_DPDK_NICTS_NS = 3,
       RXF_DPDK_NICTS_UNDECIDED = 4 };

#define RXF_DPDK_DAY_NS (86400ull * 1000000000ull)
#define RXF_DPDK_TAI_SLACK_NS (60ull * 1000000000ull) /* TAI - UTC: 37 s since 2017, room for more */

/* nic_ts_format auto: a raw PMD timestamp within a day of CLOCK_REALTIME
   (now_ns; a clock in TAI runs ahead by up to RXF_DPDK_TAI_SLACK_NS) is ns
   since the epoch; anything else is device ticks (a counter from the NIC's
   reset reaches epoch-ns magnitudes only after decades). */
static inline int rxf_dpdk_nic_ts_is_ns(uint64_t raw, uint64_t now_ns) {
    return raw >= now_ns ? raw - now_ns <= RXF_DPDK_DAY_NS + RXF_DPDK_TAI_SLACK_NS : now_ns - raw <= RXF_DPDK_DAY_NS;
}

#define RXF_DPDK_TSC_SOURCE "TSC calibrated to CLOCK_REALTIME at start"
#define RXF_DPDK_CLOCK_INTERVAL_NS 100000000ull /* two NIC clock readings this far apart */

/* A tick counter (the TSC, or a NIC clock) -> Unix-epoch ns: one
   CLOCK_REALTIME reading paired with one reading of the counter. */
typedef struct rxf_dpdk_clock {
    uint64_t hz;        /* ticks per second */
    uint64_t ticks0;    /* the counter at calibration */
    uint64_t epoch_ns0; /* CLOCK_REALTIME at the same moment, ns since the epoch */
} rxf_dpdk_clock;

/* Reads a tick counter: 0 ok, else -1. */
typedef int (*rxf_dpdk_tick_reader)(void *arg, uint64_t *ticks);

/* Calibrate the TSC now (needs EAL: rte_get_tsc_hz). */
void rxf_dpdk_clock_calibrate(rxf_dpdk_clock *c);

/* Calibrate a counter against CLOCK_REALTIME: hz given (known_hz > 0, the
   documented frequency) or measured from two readings interval_ns apart.
   Each reading is bracketed by two CLOCK_REALTIME reads (the narrowest of a
   few tries). 0 ok; -1 if the counter cannot be read or does not advance. */
int rxf_dpdk_clock_calibrate_ticks(rxf_dpdk_clock *c, rxf_dpdk_tick_reader read, void *arg,
                                   uint64_t interval_ns, uint64_t known_hz);

/* Epoch ns of a counter reading (exact integer arithmetic for hz < 18 GHz). */
static inline uint64_t rxf_dpdk_clock_ns(const rxf_dpdk_clock *c, uint64_t ticks) {
    const uint64_t G = 1000000000ull;
    if (ticks >= c->ticks0) {
        uint64_t d = ticks - c->ticks0;
        return c->epoch_ns0 + d / c->hz * G + d % c->hz * G / c->hz;
    }
    uint64_t d = c->ticks0 - ticks; /* a core whose TSC lags the calibrating one; a frame stamped before */
    return c->epoch_ns0 - (d / c->hz * G + d % c->hz * G / c->hz);
}

typedef struct rxf_dpdk_stats {
    uint64_t bursts, frames, packets, bytes, filtered;
    uint64_t nic_stamped; /* packets whose rx_ts_ns is the PMD's timestamp */
    uint64_t drops[RXF_NET_NVERDICTS];
} rxf_dpdk_stats;

/* A started port and its mbuf pool (one, on the port's NUMA socket, shared by its queues). */
typedef struct rxf_dpdk_dev {
    rxf_dpdk_cfg cfg;
    uint16_t port;
    uint16_t nq;
    int started;
    void *pool;                 /* struct rte_mempool * */
    int numa_mismatch;
    int port_socket, lcore_socket;
    int ts_offload;             /* RTE_ETH_RX_OFFLOAD_TIMESTAMP was requested */
    int ts_offset;              /* mbuf timestamp dynfield offset, -1 if none (or not used) */
    uint64_t ts_flag;
    int nic_ts_mode;            /* RXF_DPDK_NICTS_* */
    rxf_dpdk_clock clock;       /* the TSC, calibrated when the port started */
    rxf_dpdk_clock nic_clock;   /* the NIC clock (nic_ts_mode CLOCK), calibrated at start */
    char driver[32];            /* the PMD's name (rte_eth_dev_info's driver_name) */
    unsigned if_index;          /* its kernel netdev's index, 0 if none */
    char clock_source[256];     /* where rx_ts_ns of a stamped frame comes from */
    rxf_dpdk_igmp *igmp;        /* IGMP from TX queue 0 (nic mode), else NULL */
    rxf_flow_state flow;        /* what dpdk_flow.c installed, or why not */
    char error[256];
} rxf_dpdk_dev;

/* The polling thread's lcore, looked at on the queue's first burst in a thread
   (again if a later run polls the queue from another thread). */
typedef struct rxf_dpdk_poller_lcore {
    uint64_t thread;            /* the polling thread's token (dpdk_rx.c); 0 before the first burst */
    int detached;               /* polling ended in this thread (RXF_EOF) */
    int registered;             /* the thread is one rxfeed registered (rte_thread_register) */
    int socket;                 /* the thread's NUMA socket; -1 if unknown */
    uint32_t lcore_id;          /* rte_lcore_id(); UINT32_MAX (LCORE_ID_ANY): none */
    uint64_t register_failures; /* rte_thread_register failed (no lcore id free) */
    int register_errno;
    uint32_t cache_len_at_end;  /* objects in this lcore's pool cache when polling ended */
} rxf_dpdk_poller_lcore;

/* One RX queue of a started port: the backend a run loop polls. */
typedef struct rxf_dpdk_queue {
    rxf_dpdk_cfg cfg;
    uint16_t port;
    uint16_t queue;
    void *held[RXF_DPDK_MAX_BURST]; /* mbufs of the current burst */
    uint32_t n_held;
    void *pool;                 /* the device's pool (struct rte_mempool *) */
    int ts_offset;
    uint64_t ts_flag;
    int nic_ts_mode;
    uint64_t ts_unit_int;       /* nic_ts_unit_ns when a whole number, else 0 */
    rxf_dpdk_clock clock;
    rxf_dpdk_clock nic_clock;
    char driver[32];
    char clock_source[256];     /* the device's, with nic_ts_format auto's decision once made */
    rxf_dpdk_poller_lcore lcore;
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
/* A raw PMD timestamp of queue p -> epoch ns, as rx_burst converts it
   (making nic_ts_format auto's one-time decision if not made yet). */
uint64_t rxf_dpdk_nic_ts_ns(rxf_dpdk_queue *p, uint64_t raw);
/* The clock_source text of a NIC-stamp mode (RXF_DPDK_NICTS_CLOCK, _NS or _UNDECIDED). */
void rxf_dpdk_describe_nic_ts(char *out, size_t outlen, int mode, const rxf_dpdk_cfg *cfg, const char *driver,
                              uint64_t hz);
const char *rxf_dpdk_last_error(void *ctx);
/* NIC counters (rte_eth_stats). */
int rxf_dpdk_nic_stats(const rxf_dpdk_dev *d, uint64_t out[6]);

/* The device's pool: out = {size, cache_size, avail, in_use, socket}; cached[i]
   = objects in lcore i's cache for i < n (n up to rxf_dpdk_max_lcore()); its
   name (cut to name_len). -1 if no pool. */
int rxf_dpdk_pool_info(const rxf_dpdk_dev *d, int64_t out[5], uint32_t *cached, uint32_t n, char *name,
                       size_t name_len);
uint32_t rxf_dpdk_max_lcore(void);
/* The NUMA socket of an EAL lcore id, -1 if unknown. */
int rxf_dpdk_lcore_socket(uint32_t lcore);
/* Register the calling thread as a non-EAL lcore / undo it (0 ok, else -1 and rte_errno).
   For applications' own threads and tests; pollers do it themselves. */
int rxf_dpdk_register_thread(uint32_t *lcore_id);
void rxf_dpdk_unregister_thread(void);
/* For tests: the pollers' thread tokens of n threads run one after another
   (each joined before the next starts). 0 ok, -1 if a thread cannot start. */
int rxf_dpdk_thread_tokens(uint64_t *out, uint32_t n);
const char *rxf_dpdk_version(void);

#endif
