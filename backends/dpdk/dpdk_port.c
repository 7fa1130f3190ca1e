/* See dpdk_port.h. */
#include "dpdk_port.h"

#include <stdio.h>
#include <string.h>

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
uint16_t rxf_dpdk_port_count(void) { return eal_ready ? rte_eth_dev_count_avail() : 0; }

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

int rxf_dpdk_dev_open(rxf_dpdk_dev *d, const rxf_dpdk_cfg *cfg) {
    memset(d, 0, sizeof(*d));
    d->cfg = *cfg;
    d->ts_offset = -1;
    if (!eal_ready) {
        snprintf(d->error, sizeof(d->error), "EAL not initialised");
        return -1;
    }
    if (cfg->rx_queues < 1 || cfg->rx_queues > RXF_DPDK_MAX_QUEUES) {
        snprintf(d->error, sizeof(d->error), "rx_queues must be 1..%d", RXF_DPDK_MAX_QUEUES);
        return -1;
    }
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
    struct rte_eth_dev_info info;
    int rc = rte_eth_dev_info_get(d->port, &info);
    if (rc != 0) return fail(d, "rte_eth_dev_info_get", rc);
    d->nq = cfg->rx_queues;
    if (d->nq > info.max_rx_queues) {
        snprintf(d->error, sizeof(d->error), "rx_queues %u: port %u has at most %u RX queues", d->nq, d->port,
                 info.max_rx_queues);
        return -1;
    }
    /* mbuf pools live on the port's NUMA socket, one per queue (no sharing between pollers) */
    d->port_socket = rte_eth_dev_socket_id(d->port);
    d->lcore_socket = (int)rte_socket_id();
    int sock = d->port_socket >= 0 ? d->port_socket : d->lcore_socket;
    d->numa_mismatch = d->port_socket >= 0 && d->port_socket != d->lcore_socket;
    for (uint16_t q = 0; q < d->nq; q++) {
        char name[64];
        snprintf(name, sizeof(name), "rxf_pool_%u_%u", d->port, q);
        d->pools[q] = rte_pktmbuf_pool_create(name, cfg->pool_size, cfg->pool_cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE, sock);
        if (!d->pools[q]) return fail(d, "rte_pktmbuf_pool_create", rte_errno);
    }
    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    if (d->nq > 1) {
        uint64_t want = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
        if (want) {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = want;
        }
    }
    rc = rte_eth_dev_configure(d->port, d->nq, 1, &conf);
    if (rc != 0) return fail(d, "rte_eth_dev_configure", rc);
    uint16_t nrx = cfg->rx_desc, ntx = cfg->tx_desc;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(d->port, &nrx, &ntx);
    if (rc != 0) return fail(d, "rte_eth_dev_adjust_nb_rx_tx_desc", rc);
    for (uint16_t q = 0; q < d->nq; q++) {
        rc = rte_eth_rx_queue_setup(d->port, q, nrx, (unsigned)sock, NULL, d->pools[q]);
        if (rc != 0) return fail(d, "rte_eth_rx_queue_setup", rc);
    }
    rc = rte_eth_tx_queue_setup(d->port, 0, ntx, (unsigned)sock, NULL); /* some PMDs need one */
    if (rc != 0) return fail(d, "rte_eth_tx_queue_setup", rc);
    rc = rte_eth_dev_start(d->port);
    if (rc != 0) return fail(d, "rte_eth_dev_start", rc);
    d->started = 1;
    if (cfg->promiscuous) rte_eth_promiscuous_enable(d->port);   /* best effort: not every PMD can */
    if (cfg->all_multicast) rte_eth_allmulticast_enable(d->port);
    /* NIC/PMD receive timestamps, where the PMD registered the dynamic field */
    int off = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
    int bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
    if (off >= 0 && bit >= 0) {
        d->ts_offset = off;
        d->ts_flag = 1ULL << bit;
    }
    return 0;
}

void rxf_dpdk_dev_close(rxf_dpdk_dev *d) {
    if (d->started) {
        rte_eth_dev_stop(d->port);
        rte_eth_dev_close(d->port);
        d->started = 0;
    }
    for (uint16_t q = 0; q < RXF_DPDK_MAX_QUEUES; q++) {
        if (d->pools[q]) rte_mempool_free((struct rte_mempool *)d->pools[q]);
        d->pools[q] = NULL;
    }
}

void rxf_dpdk_queue_init(rxf_dpdk_port *p, const rxf_dpdk_dev *d, uint16_t q) {
    memset(p, 0, sizeof(*p));
    p->cfg = d->cfg;
    p->port = d->port;
    p->queue = q;
    p->ts_offset = d->ts_offset;
    p->ts_flag = d->ts_flag;
    p->tsc_hz = rte_get_tsc_hz();
    p->last_rx_tsc = rte_rdtsc();
}

void rxf_dpdk_queue_drain(rxf_dpdk_port *p) {
    if (p->n_held) {
        rte_pktmbuf_free_bulk((struct rte_mbuf **)p->held, p->n_held);
        p->n_held = 0;
    }
}

const char *rxf_dpdk_last_error(void *ctx) { return ((rxf_dpdk_port *)ctx)->error; }

int rxf_dpdk_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    rxf_dpdk_port *p = ctx;
    if (p->cfg.expected_frames && p->stats.frames >= p->cfg.expected_frames) return RXF_EOF;
    if (max > RXF_DPDK_MAX_BURST) max = RXF_DPDK_MAX_BURST;
    struct rte_mbuf **bufs = (struct rte_mbuf **)p->held;
    uint16_t nb = rte_eth_rx_burst(p->port, p->queue, bufs, (uint16_t)max);
    uint64_t now = rte_rdtsc();
    if (nb == 0) {
        if (p->cfg.idle_timeout_s > 0 && (double)(now - p->last_rx_tsc) > p->cfg.idle_timeout_s * (double)p->tsc_hz)
            return RXF_EOF;
        return 0;
    }
    p->last_rx_tsc = now;
    p->n_held = nb;
    p->stats.bursts++;
    p->stats.frames += nb;
    uint64_t tsc_ns = (uint64_t)((double)now * 1e9 / (double)p->tsc_hz);
    uint32_t n = 0;
    for (uint16_t i = 0; i < nb; i++) {
        struct rte_mbuf *m = bufs[i];
        const uint8_t *frame = (const uint8_t *)m->buf_addr + m->data_off;
        uint32_t len = m->data_len; /* first segment: multi-segment frames are not reassembled */
        rxf_udp_view u;
        rxf_net_verdict v = rxf_parse_ethernet(frame, len, &u);
        if (v != RXF_NET_OK) { p->stats.drops[v]++; continue; }
        if (!rxf_filter_pass(&p->filter, u.dst_ip, u.dst_port)) { p->stats.filtered++; continue; }
        if (p->ts_offset >= 0 && (m->ol_flags & p->ts_flag)) {
            uint64_t raw = *RTE_MBUF_DYNFIELD(m, p->ts_offset, uint64_t *);
            rxf_packet_set(&pkts[n++], &u, (uint64_t)((double)raw * p->cfg.nic_ts_unit_ns), RXF_PKT_HW_TIMESTAMP);
        } else {
            rxf_packet_set(&pkts[n++], &u, tsc_ns, 0);
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
    rxf_dpdk_port *p = ctx;
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
