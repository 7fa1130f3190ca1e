/* See dpdk_rx.h. */
#include "dpdk_rx.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_version.h>

static int eal_ready = 0;

const char *rxf_dpdk_version(void) { return rte_version(); }
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

void rxf_dpdk_clock_calibrate(rxf_dpdk_clock *c) {
    struct timespec ts;
    c->tsc_hz = rte_get_tsc_hz();
    if (c->tsc_hz == 0) c->tsc_hz = 1; /* never after EAL; keeps the division defined */
    clock_gettime(CLOCK_REALTIME, &ts);
    c->tsc0 = rte_rdtsc();
    c->epoch_ns0 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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

/* Step 1: one mbuf pool per queue (no sharing between pollers). */
static int create_pools(rxf_dpdk_dev *d, int sock) {
    for (uint16_t q = 0; q < d->nq; q++) {
        char name[64];
        snprintf(name, sizeof(name), "rxf_pool_%u_%u", d->port, q);
        d->pools[q] = rte_pktmbuf_pool_create(name, d->cfg.pool_size, d->cfg.pool_cache, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, sock);
        if (!d->pools[q]) return fail(d, "rte_pktmbuf_pool_create", rte_errno);
    }
    return 0;
}

/* Step 2: rte_eth_dev_configure, RSS over IP/UDP (as far as the PMD offers) when > 1 queue. */
static int configure_port(rxf_dpdk_dev *d, const struct rte_eth_dev_info *info) {
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
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
        rc = rte_eth_rx_queue_setup(d->port, q, nrx, (unsigned)sock, NULL, d->pools[q]);
        if (rc != 0) return fail(d, "rte_eth_rx_queue_setup", rc);
    }
    rc = rte_eth_tx_queue_setup(d->port, 0, ntx, (unsigned)sock, NULL);
    return rc != 0 ? fail(d, "rte_eth_tx_queue_setup", rc) : 0;
}

/* Step 4: start; port modes (best effort: not every PMD can); the PMD's RX
   timestamp field if it registered one; the TSC calibration. */
static int start_port(rxf_dpdk_dev *d) {
    int rc = rte_eth_dev_start(d->port);
    if (rc != 0) return fail(d, "rte_eth_dev_start", rc);
    d->started = 1;
    if (d->cfg.promiscuous) rte_eth_promiscuous_enable(d->port);
    if (d->cfg.all_multicast) rte_eth_allmulticast_enable(d->port);
    int off = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
    int bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
    if (off >= 0 && bit >= 0) {
        d->ts_offset = off;
        d->ts_flag = 1ULL << bit;
    }
    rxf_dpdk_clock_calibrate(&d->clock);
    return 0;
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
    if (rxf_flow_isolate_early(&d->flow, &cfg->flow, d->port, d->error, sizeof(d->error)) != 0) return -1;
    int sock = port_socket(d);
    if (create_pools(d, sock) != 0) return -1;
    if (configure_port(d, &info) != 0) return -1;
    if (setup_queues(d, sock) != 0) return -1;
    if (start_port(d) != 0) return -1;
    return rxf_flow_install(&d->flow, &cfg->flow, d->port, d->nq, d->error, sizeof(d->error));
}

void rxf_dpdk_dev_close(rxf_dpdk_dev *d) {
    if (d->started) {
        rxf_flow_close(&d->flow, d->port);
        rte_eth_dev_stop(d->port);
        rte_eth_dev_close(d->port);
        d->started = 0;
    }
    for (uint16_t q = 0; q < RXF_DPDK_MAX_QUEUES; q++) {
        if (d->pools[q]) rte_mempool_free((struct rte_mempool *)d->pools[q]);
        d->pools[q] = NULL;
    }
}

void rxf_dpdk_queue_init(rxf_dpdk_queue *p, const rxf_dpdk_dev *d, uint16_t q) {
    memset(p, 0, sizeof(*p));
    p->cfg = d->cfg;
    p->port = d->port;
    p->queue = q;
    p->ts_offset = d->ts_offset;
    p->ts_flag = d->ts_flag;
    double unit = d->cfg.nic_ts_unit_ns;
    p->ts_unit_int = (unit >= 1 && unit <= 1e9 && unit == (double)(uint64_t)unit) ? (uint64_t)unit : 0;
    p->clock = d->clock;
    p->last_rx_tsc = rte_rdtsc();
    p->igmp = d->igmp;
}

/* The PMD's RX timestamp in ns: integer units (net_pcap's 1000) exactly, others through a double. */
static inline uint64_t nic_ts_ns(const rxf_dpdk_queue *p, uint64_t raw) {
    return p->ts_unit_int ? raw * p->ts_unit_int : (uint64_t)((double)raw * p->cfg.nic_ts_unit_ns);
}

void rxf_dpdk_queue_drain(rxf_dpdk_queue *p) {
    if (p->n_held) {
        rte_pktmbuf_free_bulk((struct rte_mbuf **)p->held, p->n_held);
        p->n_held = 0;
    }
}

const char *rxf_dpdk_last_error(void *ctx) { return ((rxf_dpdk_queue *)ctx)->error; }

int rxf_dpdk_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    rxf_dpdk_queue *p = ctx;
    if (p->cfg.expected_frames && p->stats.frames >= p->cfg.expected_frames) return RXF_EOF;
    if (max > RXF_DPDK_MAX_BURST) max = RXF_DPDK_MAX_BURST;
    struct rte_mbuf **bufs = (struct rte_mbuf **)p->held;
    uint16_t nb = rte_eth_rx_burst(p->port, p->queue, bufs, (uint16_t)max);
    uint64_t now = rte_rdtsc();
    rxf_dpdk_igmp_tick(p->igmp, p->queue, now);
    if (nb == 0) {
        if (p->cfg.idle_timeout_s > 0 &&
            (double)(now - p->last_rx_tsc) > p->cfg.idle_timeout_s * (double)p->clock.tsc_hz)
            return RXF_EOF;
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
