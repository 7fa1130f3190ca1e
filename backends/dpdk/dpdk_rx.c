/* See dpdk_rx.h. */
#define ALLOW_EXPERIMENTAL_API /* rte_eth_read_clock is experimental in DPDK 22.11 */
#include "dpdk_rx.h"
#include "rxfeed/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_version.h>

static int eal_ready = 0;

const char *rxf_dpdk_version(void) { return rte_version(); }
const char *rxf_dpdk_runtime_dir(void) { return eal_ready ? rte_eal_get_runtime_dir() : ""; }
int rxf_dpdk_eal_ready(void) { return eal_ready; }

int rxf_dpdk_eal_init(int argc, char **argv, char *errbuf, size_t errlen) {
    if (eal_ready) {
        snprintf(errbuf, errlen, "DPDK's EAL is already initialised in this process (it can start only once)");
        return -1;
    }
    int rc = rte_eal_init(argc, argv);
    if (rc < 0) {
        snprintf(errbuf, errlen, "rte_eal_init failed: %s", rte_strerror(rte_errno));
        return -1;
    }
    eal_ready = 1;
    return 0;
}

static int fail(rxf_dpdk_dev *d, const char *what, int rc) {
    snprintf(d->error, sizeof(d->error), "%s: %s", what, rte_strerror(rc < 0 ? -rc : rc));
    return -1;
}

static uint64_t realtime_ns(void) {
    return rxf_clock_ns(CLOCK_REALTIME);
}

/* One (ticks, CLOCK_REALTIME ns) pair: the reading bracketed by two clock
   reads, the narrowest of a few tries (a try the thread was preempted in is wide). */
static int tick_pair(rxf_dpdk_tick_reader read, void *arg, uint64_t *ticks, uint64_t *ns) {
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t t, a = realtime_ns();
        if (read(arg, &t) != 0) return -1;
        uint64_t b = realtime_ns();
        if (b >= a && b - a < best) { /* b < a: the clock was stepped back meanwhile */
            best = b - a;
            *ticks = t;
            *ns = a + (b - a) / 2;
        }
    }
    return best == UINT64_MAX ? -1 : 0;
}

int rxf_dpdk_clock_calibrate_ticks(rxf_dpdk_clock *c, rxf_dpdk_tick_reader read, void *arg,
                                   uint64_t interval_ns, uint64_t known_hz) {
    const uint64_t G = 1000000000ull;
    uint64_t t1 = 0, n1 = 0, t2 = 0, n2 = 0;
    if (tick_pair(read, arg, &t1, &n1) != 0) return -1;
    if (known_hz == 0) {
        struct timespec gap = {(time_t)(interval_ns / G), (long)(interval_ns % G)};
        nanosleep(&gap, NULL);
        if (tick_pair(read, arg, &t2, &n2) != 0) return -1;
        if (t2 <= t1 || n2 <= n1 || t2 - t1 > UINT64_MAX / G) return -1;
        known_hz = ((t2 - t1) * G + (n2 - n1) / 2) / (n2 - n1);
        t1 = t2;
        n1 = n2;
    }
    if (known_hz == 0) return -1;
    c->hz = known_hz;
    c->ticks0 = t1;
    c->epoch_ns0 = n1;
    return 0;
}

static int tsc_reader(void *arg, uint64_t *ticks) {
    (void)arg;
    *ticks = rte_rdtsc();
    return 0;
}

void rxf_dpdk_clock_calibrate(rxf_dpdk_clock *c) {
    uint64_t hz = rte_get_tsc_hz();
    rxf_dpdk_clock_calibrate_ticks(c, tsc_reader, NULL, 0, hz ? hz : 1); /* hz 0: never after EAL */
}

/* Step 0: the port named (or numbered) in the config exists and has the queues asked for. */
static int find_port(rxf_dpdk_dev *d, struct rte_eth_dev_info *info) {
    const rxf_dpdk_cfg *cfg = &d->cfg;
    if (cfg->port_name && cfg->port_name[0]) {
        if (rte_eth_dev_get_port_by_name(cfg->port_name, &d->port) != 0) {
            snprintf(d->error, sizeof(d->error), "no DPDK port named '%s' (%u ports available)", cfg->port_name,
                     rte_eth_dev_count_avail());
            return -1;
        }
    } else {
        d->port = cfg->port_id;
    }
    if (!rte_eth_dev_is_valid_port(d->port)) {
        snprintf(d->error, sizeof(d->error), "DPDK port %u does not exist (%u ports available)", d->port,
                 rte_eth_dev_count_avail());
        return -1;
    }
    int rc = rte_eth_dev_info_get(d->port, info);
    if (rc != 0) return fail(d, "rte_eth_dev_info_get", rc);
    snprintf(d->driver, sizeof(d->driver), "%s", info->driver_name ? info->driver_name : "?");
    d->if_index = info->if_index;
    if (d->nq > info->max_rx_queues) {
        snprintf(d->error, sizeof(d->error), "rx_queues %u: port %u has at most %u RX queues", d->nq, d->port,
                 info->max_rx_queues);
        return -1;
    }
    return 0;
}

/* The NUMA socket for pools and rings: the port's, else the calling lcore's. */
static int port_socket(rxf_dpdk_dev *d) {
    d->port_socket = rte_eth_dev_socket_id(d->port);
    d->lcore_socket = (int)rte_socket_id();
    d->numa_mismatch = d->port_socket >= 0 && d->port_socket != d->lcore_socket;
    return d->port_socket >= 0 ? d->port_socket : d->lcore_socket;
}

/* Step 1: one mbuf pool on the port's socket, shared by its queues (each
   poller, an lcore, has its own cache in it). */
static int create_pool(rxf_dpdk_dev *d, int sock) {
    char name[64];
    snprintf(name, sizeof(name), "rxf_pool_%u_s%d", d->port, sock);
    d->pool = rte_pktmbuf_pool_create(name, d->cfg.pool_size, d->cfg.pool_cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      sock);
    return d->pool ? 0 : fail(d, "rte_pktmbuf_pool_create", rte_errno);
}

/* nic_timestamps: request RTE_ETH_RX_OFFLOAD_TIMESTAMP when the port offers
   it (auto, on); on and not offered is an error. */
static int timestamp_offload(rxf_dpdk_dev *d, const struct rte_eth_dev_info *info, uint64_t *offloads) {
    if (d->cfg.nic_timestamps == RXF_DPDK_TS_OFF) return 0;
    if (info->rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) {
        *offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
        d->ts_offload = 1;
        return 0;
    }
    if (d->cfg.nic_timestamps != RXF_DPDK_TS_ON) return 0;
    snprintf(d->error, sizeof(d->error),
             "nic_timestamps = on: port %u (driver %s) does not offer RTE_ETH_RX_OFFLOAD_TIMESTAMP "
             "(use auto: rx_ts_ns then comes from a PMD timestamp when a frame carries one, else the TSC)",
             d->port, d->driver);
    return -1;
}

/* Step 2: rte_eth_dev_configure, RSS over IP/UDP (as far as the PMD offers) when > 1 queue. */
static int configure_port(rxf_dpdk_dev *d, const struct rte_eth_dev_info *info) {
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    if (timestamp_offload(d, info, &conf.rxmode.offloads) != 0) return -1;
    uint64_t rss = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info->flow_type_rss_offloads;
    if (d->nq > 1 && rss) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = rss;
    }
    int rc = rte_eth_dev_configure(d->port, d->nq, 1, &conf);
    return rc != 0 ? fail(d, "rte_eth_dev_configure", rc) : 0;
}

/* Step 3: ring sizes adjusted to the PMD, the RX queues and one TX queue (some PMDs need one). */
static int setup_queues(rxf_dpdk_dev *d, int sock) {
    uint16_t nrx = d->cfg.rx_desc, ntx = d->cfg.tx_desc;
    int rc = rte_eth_dev_adjust_nb_rx_tx_desc(d->port, &nrx, &ntx);
    if (rc != 0) return fail(d, "rte_eth_dev_adjust_nb_rx_tx_desc", rc);
    for (uint16_t q = 0; q < d->nq; q++) {
        rc = rte_eth_rx_queue_setup(d->port, q, nrx, (unsigned)sock, NULL, d->pool);
        if (rc != 0) return fail(d, "rte_eth_rx_queue_setup", rc);
    }
    rc = rte_eth_tx_queue_setup(d->port, 0, ntx, (unsigned)sock, NULL);
    return rc != 0 ? fail(d, "rte_eth_tx_queue_setup", rc) : 0;
}

static int eth_clock_reader(void *arg, uint64_t *ticks) {
    return rte_eth_read_clock(*(const uint16_t *)arg, ticks) == 0 ? 0 : -1;
}

void rxf_dpdk_describe_nic_ts(char *out, size_t outlen, int mode, const rxf_dpdk_cfg *cfg, const char *driver,
                              uint64_t hz) {
    int in_auto = cfg->nic_ts_format == RXF_DPDK_TSFMT_AUTO;
    if (mode == RXF_DPDK_NICTS_NS) {
        snprintf(out, outlen, "pmd timestamp in ns since the epoch, taken as is (%s: nic_ts_format %s)", driver,
                 in_auto ? "auto: the first stamped frame was within a day of CLOCK_REALTIME, a real-time clock"
                         : "ns");
        return;
    }
    snprintf(out, outlen, "nic clock via rte_eth_read_clock, calibrated to CLOCK_REALTIME at start (%s, %llu Hz %s)%s",
             driver, (unsigned long long)hz, cfg->nic_clock_hz ? "as configured" : "measured",
             mode == RXF_DPDK_NICTS_UNDECIDED ? "; nic_ts_format auto: ticks or ns, decided on the first stamped frame"
             : in_auto ? "; nic_ts_format auto: the first stamped frame was device ticks" : "");
}

/* A PMD timestamp of a port whose clock rte_eth_read_clock reads: ns as is
   (nic_ts_format ns), else device ticks (ticks, or maybe: auto) through a
   calibration against CLOCK_REALTIME taken now. 0 ok; -1: the clock cannot
   be calibrated, d->clock_source says so (the TSC is used). */
static int nic_clock(rxf_dpdk_dev *d) {
    if (d->cfg.nic_ts_format == RXF_DPDK_TSFMT_NS) {
        d->nic_ts_mode = RXF_DPDK_NICTS_NS;
    } else if (rxf_dpdk_clock_calibrate_ticks(&d->nic_clock, eth_clock_reader, &d->port, RXF_DPDK_CLOCK_INTERVAL_NS,
                                              d->cfg.nic_clock_hz) != 0) {
        snprintf(d->clock_source, sizeof(d->clock_source),
                 RXF_DPDK_TSC_SOURCE " (the %s clock read by rte_eth_read_clock does not advance)", d->driver);
        return -1;
    } else {
        d->nic_ts_mode = d->cfg.nic_ts_format == RXF_DPDK_TSFMT_AUTO ? RXF_DPDK_NICTS_UNDECIDED : RXF_DPDK_NICTS_CLOCK;
    }
    rxf_dpdk_describe_nic_ts(d->clock_source, sizeof(d->clock_source), d->nic_ts_mode, &d->cfg, d->driver,
                             d->nic_clock.hz);
    return 0;
}

/* Step 4b: where rx_ts_ns comes from. The TSC always (frames without a PMD
   timestamp); a PMD timestamp when the PMD registered the mbuf field (and
   nic_timestamps is not off): device ticks if the PMD has a clock to read,
   else its own unit times nic_ts_unit_ns (net_pcap: the capture's time). */
static int choose_clock(rxf_dpdk_dev *d) {
    uint64_t probe;
    rxf_dpdk_clock_calibrate(&d->clock);
    snprintf(d->clock_source, sizeof(d->clock_source), RXF_DPDK_TSC_SOURCE);
    int off = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
    int bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
    if (d->cfg.nic_timestamps == RXF_DPDK_TS_OFF) return 0;
    if (off < 0 || bit < 0) {
        if (d->cfg.nic_timestamps != RXF_DPDK_TS_ON) return 0;
        snprintf(d->error, sizeof(d->error), "nic_timestamps = on: port %u (driver %s) registered no mbuf RX "
                 "timestamp field after the offload was enabled", d->port, d->driver);
        return -1;
    }
    if (rte_eth_read_clock(d->port, &probe) == 0) {
        if (nic_clock(d) != 0) {
            if (d->cfg.nic_timestamps != RXF_DPDK_TS_ON) return 0;
            snprintf(d->error, sizeof(d->error), "nic_timestamps = on: port %u (driver %s): its clock, read "
                     "by rte_eth_read_clock, does not advance and cannot be calibrated", d->port, d->driver);
            return -1;
        }
    } else if (d->cfg.nic_ts_format == RXF_DPDK_TSFMT_TICKS) {
        snprintf(d->error, sizeof(d->error), "nic_ts_format = ticks: port %u (driver %s) has no clock "
                 "rte_eth_read_clock reads, to convert ticks with (use auto or ns)", d->port, d->driver);
        return -1;
    } else {
        d->nic_ts_mode = RXF_DPDK_NICTS_SCALE;
        if (strcmp(d->driver, "net_pcap") == 0)
            snprintf(d->clock_source, sizeof(d->clock_source), "pmd timestamp (net_pcap: capture time)");
        else
            snprintf(d->clock_source, sizeof(d->clock_source), "pmd timestamp (%s: no rte_eth_read_clock; "
                     "x nic_ts_unit_ns %g, taken as ns since the epoch)", d->driver, d->cfg.nic_ts_unit_ns);
    }
    d->ts_offset = off;
    d->ts_flag = 1ULL << bit;
    return 0;
}

/* Promiscuous / all-multicast as asked (best effort per PMD), remembering
   which this run switched on: a kernel netdev under an AF_PACKET/AF_XDP PMD
   would otherwise stay promiscuous after the process ends. */
static void port_modes_on(rxf_dpdk_dev *d) {
    if (d->cfg.promiscuous && rte_eth_promiscuous_get(d->port) == 0)
        d->promisc_set = rte_eth_promiscuous_enable(d->port) == 0;
    if (d->cfg.all_multicast && rte_eth_allmulticast_get(d->port) == 0)
        d->allmulti_set = rte_eth_allmulticast_enable(d->port) == 0;
}

static void port_modes_off(rxf_dpdk_dev *d) {
    if (d->promisc_set) rte_eth_promiscuous_disable(d->port);
    if (d->allmulti_set) rte_eth_allmulticast_disable(d->port);
    d->promisc_set = d->allmulti_set = 0;
}

/* Step 4: start; port modes (best effort: not every PMD can); the clocks. */
static int start_port(rxf_dpdk_dev *d) {
    int rc = rte_eth_dev_start(d->port);
    if (rc != 0) return fail(d, "rte_eth_dev_start", rc);
    d->started = 1;
    port_modes_on(d);
    return choose_clock(d);
}

int rxf_dpdk_dev_open(rxf_dpdk_dev *d, const rxf_dpdk_cfg *cfg) {
    memset(d, 0, sizeof(*d));
    d->cfg = *cfg;
    d->ts_offset = -1;
    d->nq = cfg->rx_queues;
    if (!eal_ready) {
        snprintf(d->error, sizeof(d->error), "EAL not initialised");
        return -1;
    }
    if (cfg->rx_queues < 1 || cfg->rx_queues > RXF_DPDK_MAX_QUEUES) {
        snprintf(d->error, sizeof(d->error), "rx_queues must be 1..%d", RXF_DPDK_MAX_QUEUES);
        return -1;
    }
    struct rte_eth_dev_info info;
    if (find_port(d, &info) != 0) return -1;
    if (rxf_flow_isolate_early(&d->flow, &cfg->flow, d->port, d->driver, d->error, sizeof(d->error)) != 0) return -1;
    int sock = port_socket(d);
    if (create_pool(d, sock) != 0) return -1;
    if (configure_port(d, &info) != 0) return -1;
    if (setup_queues(d, sock) != 0) return -1;
    if (start_port(d) != 0) return -1;
    return rxf_flow_install(&d->flow, &cfg->flow, d->port, d->nq, d->error, sizeof(d->error));
}

/* An open that failed after rxf_flow_isolate_early: leave isolation, or the
   port stays isolated for the next open in this process. On failure d->error
   says so. */
static void leave_early_isolation(rxf_dpdk_dev *d) {
    struct rte_flow_error e;
    memset(&e, 0, sizeof(e));
    int rc = rte_flow_isolate(d->port, 0, &e);
    if (rc == 0) {
        d->flow.isolated = 0;
        return;
    }
    size_t len = strlen(d->error);
    snprintf(d->error + len, sizeof(d->error) - len, "; leaving flow isolation failed, port %u stays isolated: %s",
             d->port, e.message ? e.message : rte_strerror(rc < 0 ? -rc : rc));
}

void rxf_dpdk_dev_close(rxf_dpdk_dev *d) {
    if (d->started) {
        rxf_flow_close(&d->flow, d->port);
        port_modes_off(d);
        rte_eth_dev_stop(d->port);
        rte_eth_dev_close(d->port);
        d->started = 0;
    } else if (d->flow.isolated) {
        leave_early_isolation(d);
    }
    if (d->pool) rte_mempool_free((struct rte_mempool *)d->pool);
    d->pool = NULL;
}

void rxf_dpdk_queue_init(rxf_dpdk_queue *p, const rxf_dpdk_dev *d, uint16_t q) {
    memset(p, 0, sizeof(*p));
    p->cfg = d->cfg;
    p->port = d->port;
    p->queue = q;
    p->pool = d->pool;
    p->ts_offset = d->ts_offset;
    p->ts_flag = d->ts_flag;
    p->nic_ts_mode = d->nic_ts_mode;
    p->nic_clock = d->nic_clock;
    snprintf(p->driver, sizeof(p->driver), "%s", d->driver);
    snprintf(p->clock_source, sizeof(p->clock_source), "%s", d->clock_source);
    p->lcore.lcore_id = LCORE_ID_ANY;
    p->lcore.socket = -1;
    double unit = d->cfg.nic_ts_unit_ns;
    p->ts_unit_int = (unit >= 1 && unit <= 1e9 && unit == (double)(uint64_t)unit) ? (uint64_t)unit : 0;
    p->clock = d->clock;
    p->last_rx_tsc = rte_rdtsc();
    p->igmp = d->igmp;
}

/* nic_ts_format auto, the first stamped frame of this queue: ns or ticks, once. */
static void decide_nic_ts_format(rxf_dpdk_queue *p, uint64_t raw) {
    p->nic_ts_mode = rxf_dpdk_nic_ts_is_ns(raw, realtime_ns()) ? RXF_DPDK_NICTS_NS : RXF_DPDK_NICTS_CLOCK;
    rxf_dpdk_describe_nic_ts(p->clock_source, sizeof(p->clock_source), p->nic_ts_mode, &p->cfg, p->driver,
                             p->nic_clock.hz);
}

/* The PMD's RX timestamp in epoch ns: device ticks through the calibrated NIC
   clock; ns as is; else integer units (net_pcap's 1000) exactly, others
   through a double. */
static inline uint64_t nic_ts_ns(rxf_dpdk_queue *p, uint64_t raw) {
    if (unlikely(p->nic_ts_mode == RXF_DPDK_NICTS_UNDECIDED)) decide_nic_ts_format(p, raw);
    if (p->nic_ts_mode == RXF_DPDK_NICTS_CLOCK) return rxf_dpdk_clock_ns(&p->nic_clock, raw);
    if (p->nic_ts_mode == RXF_DPDK_NICTS_NS) return raw;
    return p->ts_unit_int ? raw * p->ts_unit_int : (uint64_t)((double)raw * p->cfg.nic_ts_unit_ns);
}

uint64_t rxf_dpdk_nic_ts_ns(rxf_dpdk_queue *p, uint64_t raw) { return nic_ts_ns(p, raw); }

void rxf_dpdk_queue_drain(rxf_dpdk_queue *p) {
    if (p->n_held) {
        rte_pktmbuf_free_bulk((struct rte_mbuf **)p->held, p->n_held);
        p->n_held = 0;
    }
}

const char *rxf_dpdk_last_error(void *ctx) { return ((rxf_dpdk_queue *)ctx)->error; }

/* Pollers as lcores. A polling thread that is not an EAL lcore registers
   itself on its first burst; tls_users counts the queues polled by this
   thread (the A/B lines of one loop are two), and the last to end unregisters
   it. A loop that ends without RXF_EOF (a signal, a limit, the decoder
   stopping) leaves the thread registered: lcore_key's destructor unregisters
   it when the thread exits (its pool cache is not flushed then: the pool
   may already be freed; what it holds returns when the pool is freed).
   A thread is known by a token drawn from a process-wide counter on its
   first burst, never by an address: glibc hands a new thread the stack and
   TLS block of one that exited, so a TLS address comes back. */
static __thread int tls_registered;
static __thread unsigned tls_users;
static __thread uint64_t tls_token;
static _Atomic uint64_t next_token;

static inline uint64_t this_thread(void) {
    if (unlikely(!tls_token)) tls_token = ++next_token;
    return tls_token;
}
static pthread_key_t lcore_key;
static pthread_once_t lcore_key_once = PTHREAD_ONCE_INIT;

static void lcore_thread_exit(void *unused) {
    (void)unused;
    if (tls_registered) rte_thread_unregister();
    tls_registered = 0;
}

static void lcore_key_create(void) { pthread_key_create(&lcore_key, lcore_thread_exit); }

static void *store_token(void *out) {
    *(uint64_t *)out = this_thread();
    return NULL;
}

int rxf_dpdk_thread_tokens(uint64_t *out, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, store_token, &out[i]) != 0) return -1;
        pthread_join(t, NULL);
    }
    return 0;
}

/* The first burst of queue p in this thread: take (or get) an lcore id. */
static void poller_attach(rxf_dpdk_queue *p) {
    p->lcore.thread = this_thread();
    p->lcore.detached = 0;
    tls_users++;
    if (rte_lcore_id() == LCORE_ID_ANY && p->cfg.register_lcore) {
        pthread_once(&lcore_key_once, lcore_key_create);
        if (rte_thread_register() == 0) {
            tls_registered = 1;
            pthread_setspecific(lcore_key, &tls_registered); /* any non-NULL value arms the destructor */
        } else {
            p->lcore.register_failures++;
            p->lcore.register_errno = rte_errno;
        }
    }
    p->lcore.lcore_id = rte_lcore_id();
    p->lcore.registered = tls_registered && p->lcore.lcore_id != LCORE_ID_ANY;
    p->lcore.socket = p->lcore.lcore_id == LCORE_ID_ANY ? -1 : (int)rte_socket_id();
}

/* Polling of queue p ended in its thread (RXF_EOF): note what its lcore's
   cache holds; a thread rxfeed registered gives its cache back to the pool
   and, with its last queue, its lcore id. */
static void poller_detach(rxf_dpdk_queue *p) {
    if (p->lcore.thread != this_thread() || p->lcore.detached) return;
    p->lcore.detached = 1;
    struct rte_mempool *mp = p->pool;
    struct rte_mempool_cache *cache = mp ? rte_mempool_default_cache(mp, rte_lcore_id()) : NULL;
    p->lcore.cache_len_at_end = cache ? cache->len : 0;
    if (!tls_registered) {
        tls_users--;
        return;
    }
    if (cache) rte_mempool_cache_flush(cache, mp);
    if (--tls_users == 0) {
        pthread_setspecific(lcore_key, NULL);
        rte_thread_unregister();
        tls_registered = 0;
    }
}

static int end_of_source(rxf_dpdk_queue *p) {
    poller_detach(p);
    return RXF_EOF;
}

int rxf_dpdk_register_thread(uint32_t *lcore_id) {
    int rc = rte_thread_register();
    *lcore_id = rte_lcore_id();
    return rc;
}

void rxf_dpdk_unregister_thread(void) { rte_thread_unregister(); }

int rxf_dpdk_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    rxf_dpdk_queue *p = ctx;
    if (unlikely(p->lcore.thread != this_thread())) poller_attach(p);
    if (p->cfg.expected_frames && p->stats.frames >= p->cfg.expected_frames) return end_of_source(p);
    if (max > RXF_DPDK_MAX_BURST) max = RXF_DPDK_MAX_BURST;
    struct rte_mbuf **bufs = (struct rte_mbuf **)p->held;
    uint16_t nb = rte_eth_rx_burst(p->port, p->queue, bufs, (uint16_t)max);
    uint64_t now = rte_rdtsc();
    rxf_dpdk_igmp_tick(p->igmp, p->queue, now);
    if (nb == 0) {
        if (p->cfg.idle_timeout_s > 0 &&
            (double)(now - p->last_rx_tsc) > p->cfg.idle_timeout_s * (double)p->clock.hz)
            return end_of_source(p);
        return 0;
    }
    p->last_rx_tsc = now;
    p->n_held = nb;
    p->stats.bursts++;
    p->stats.frames += nb;
    uint64_t sw_ns = 0; /* the burst's epoch ns from the TSC, computed when a frame has no NIC stamp */
    uint32_t n = 0;
    for (uint16_t i = 0; i < nb; i++) {
        struct rte_mbuf *m = bufs[i];
        const uint8_t *frame = (const uint8_t *)m->buf_addr + m->data_off;
        uint32_t len = m->data_len; /* first segment: multi-segment frames are not reassembled */
        rxf_udp_view u;
        rxf_net_verdict v = rxf_parse_ethernet(frame, len, &u);
        if (v != RXF_NET_OK) {
            if (!(v == RXF_NET_NOT_UDP && rxf_dpdk_igmp_take(p->igmp, p->queue, frame, len, now))) p->stats.drops[v]++;
            continue;
        }
        if (!rxf_filter_pass(&p->filter, u.dst_ip, u.dst_port)) { p->stats.filtered++; continue; }
        if (p->ts_offset >= 0 && (m->ol_flags & p->ts_flag)) {
            uint64_t raw = *RTE_MBUF_DYNFIELD(m, p->ts_offset, uint64_t *);
            rxf_packet_set(&pkts[n++], &u, nic_ts_ns(p, raw), RXF_PKT_HW_TIMESTAMP);
            p->stats.nic_stamped++;
        } else {
            if (!sw_ns) sw_ns = rxf_dpdk_clock_ns(&p->clock, now);
            rxf_packet_set(&pkts[n++], &u, sw_ns, 0);
        }
        p->stats.packets++;
        p->stats.bytes += u.len;
    }
    if (n == 0) { /* nothing to hand out: free now, poll again */
        rte_pktmbuf_free_bulk(bufs, nb);
        p->n_held = 0;
    }
    return (int)n;
}

void rxf_dpdk_release(void *ctx, rxf_packet *pkts, uint32_t n) {
    (void)pkts; (void)n;
    rxf_dpdk_queue *p = ctx;
    if (p->n_held) {
        rte_pktmbuf_free_bulk((struct rte_mbuf **)p->held, p->n_held);
        p->n_held = 0;
    }
}

int rxf_dpdk_nic_stats(const rxf_dpdk_dev *d, uint64_t out[6]) {
    struct rte_eth_stats s;
    if (!d->started || rte_eth_stats_get(d->port, &s) != 0) return -1;
    out[0] = s.ipackets; out[1] = s.imissed; out[2] = s.ierrors; out[3] = s.rx_nombuf;
    out[4] = s.ibytes; out[5] = 0;
    return 0;
}

int rxf_dpdk_pool_info(const rxf_dpdk_dev *d, int64_t out[5], uint32_t *cached, uint32_t n, char *name,
                       size_t name_len) {
    struct rte_mempool *mp = d->pool;
    if (!mp) return -1;
    snprintf(name, name_len, "%s", mp->name);
    out[0] = mp->size;
    out[1] = mp->cache_size;
    out[2] = rte_mempool_avail_count(mp); /* the ring plus every lcore's cache */
    out[3] = rte_mempool_in_use_count(mp);
    out[4] = mp->socket_id;
    for (uint32_t i = 0; i < n && i < RTE_MAX_LCORE; i++) {
        struct rte_mempool_cache *c = rte_mempool_default_cache(mp, i);
        cached[i] = c ? c->len : 0;
    }
    return 0;
}

uint32_t rxf_dpdk_max_lcore(void) { return RTE_MAX_LCORE; }

int rxf_dpdk_lcore_socket(uint32_t lcore) {
    return lcore < RTE_MAX_LCORE && rte_lcore_is_enabled(lcore) ? (int)rte_lcore_to_socket_id(lcore) : -1;
}
