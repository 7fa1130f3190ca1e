/* See dpdk_igmp.h. */
#include "dpdk_igmp.h"
#include "dpdk_rx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#define TX_POOL_MAX 8191

_Static_assert(RXF_DPDK_IGMP_QUEUES == RXF_DPDK_MAX_QUEUES, "one hand-over slot per RX queue");

/* TX pools get names of their own: a port closed and opened again in the
   same process (before the old device object is collected) gets a new one. */
static _Atomic unsigned pool_seq;

/* Mbufs for TX: more than TX queue 0's ring holds, so that a PMD freeing
   sent mbufs lazily (when the ring runs low) never starves the pool. */
static unsigned tx_pool_size(uint16_t port) {
    struct rte_eth_txq_info qi;
    unsigned ring = 512;
    if (rte_eth_tx_queue_info_get(port, 0, &qi) == 0 && qi.nb_desc) ring = qi.nb_desc;
    unsigned n = 255;
    while (n < ring + 64 && n < TX_POOL_MAX) n = n * 2 + 1;
    return n;
}

/* An mbuf; when the pool is empty, ask the PMD to free the sent ones first. */
static struct rte_mbuf *tx_mbuf(rxf_dpdk_igmp *g) {
    struct rte_mbuf *m = rte_pktmbuf_alloc((struct rte_mempool *)g->pool);
    if (!m && rte_eth_tx_done_cleanup(g->port, 0, 0) >= 0) m = rte_pktmbuf_alloc((struct rte_mempool *)g->pool);
    return m;
}

/* rxf_igmp_send_fn: one frame out of TX queue 0. */
static int send_frame(void *ctx, const uint8_t *frame, uint32_t len) {
    rxf_dpdk_igmp *g = ctx;
    struct rte_mbuf *m = tx_mbuf(g);
    if (!m) return -1;
    char *data = rte_pktmbuf_append(m, (uint16_t)len);
    if (!data) { rte_pktmbuf_free(m); return -1; }
    memcpy(data, frame, len);
    if (rte_eth_tx_burst(g->port, 0, &m, 1) != 1) { rte_pktmbuf_free(m); return -1; }
    return 0;
}

/* The port's MAC and MTU (1500 when the PMD does not say). */
static int port_identity(uint16_t port, rxf_igmp_port *id, char *err, size_t errlen) {
    struct rte_ether_addr mac;
    int rc = rte_eth_macaddr_get(port, &mac);
    if (rc != 0) {
        snprintf(err, errlen, "IGMP: rte_eth_macaddr_get: %s", rte_strerror(-rc));
        return -1;
    }
    memcpy(id->mac, mac.addr_bytes, 6);
    uint16_t mtu = 1500;
    if (rte_eth_dev_get_mtu(port, &mtu) != 0 || mtu > 1500) mtu = 1500;
    id->mtu = mtu < RXF_IGMP_MIN_MTU ? RXF_IGMP_MIN_MTU : mtu;
    return 0;
}

static int add_groups(rxf_dpdk_igmp *g, const rxf_dpdk_igmp_cfg *cfg, char *err, size_t errlen) {
    for (uint32_t i = 0; i < cfg->ngroups && i < RXF_IGMP_MAX_GROUPS; i++) {
        const rxf_igmp_group *gr = &cfg->groups[i];
        if (rxf_igmp_add_group(&g->st, gr->group, gr->src, gr->nsrc) != 0) {
            snprintf(err, errlen, "IGMP: cannot join group %u.%u.%u.%u with %u sources (IGMPv%u)",
                     gr->group >> 24, (gr->group >> 16) & 255, (gr->group >> 8) & 255, gr->group & 255,
                     gr->nsrc, cfg->version);
            return -1;
        }
    }
    return 0;
}

static int init_state(rxf_dpdk_igmp *g, const rxf_dpdk_igmp_cfg *cfg, char *err, size_t errlen) {
    rxf_igmp_port id;
    if (port_identity(g->port, &id, err, errlen) != 0) return -1;
    id.src_ip = cfg->src_ip;
    uint64_t hz = rte_get_tsc_hz() ? rte_get_tsc_hz() : 1;
    uint64_t interval = (uint64_t)(cfg->interval_s * (double)hz);
    if (rxf_igmp_init(&g->st, &id, cfg->version, cfg->robustness, interval, hz, rte_rdtsc() | 1) != 0) {
        snprintf(err, errlen, "IGMP: bad settings (version %u, robustness %u)", cfg->version, cfg->robustness);
        return -1;
    }
    return add_groups(g, cfg, err, errlen);
}

rxf_dpdk_igmp *rxf_dpdk_igmp_open(uint16_t port, const rxf_dpdk_igmp_cfg *cfg, char *err, size_t errlen) {
    rxf_dpdk_igmp *g = calloc(1, sizeof(*g));
    if (!g) { snprintf(err, errlen, "IGMP: out of memory"); return NULL; }
    g->port = port;
    g->leave_spacing_s = cfg->interval_s < 0.2 ? cfg->interval_s : 0.2;
    if (init_state(g, cfg, err, errlen) != 0) { free(g); return NULL; }
    char name[RTE_MEMPOOL_NAMESIZE];
    snprintf(name, sizeof(name), "rxf_igmp_%u_%u", port, atomic_fetch_add(&pool_seq, 1));
    int sock = rte_eth_dev_socket_id(port);
    g->pool = rte_pktmbuf_pool_create(name, tx_pool_size(port), 0, 0, RTE_PKTMBUF_HEADROOM + RXF_IGMP_FRAME_MAX,
                                      sock >= 0 ? sock : (int)rte_socket_id());
    if (!g->pool) {
        snprintf(err, errlen, "IGMP: TX pool: %s", rte_strerror(rte_errno));
        free(g);
        return NULL;
    }
    rxf_igmp_start(&g->st, rte_rdtsc());
    return g;
}

/* Queue 0's poller enters an IGMP step: 0 when close has begun (nothing to do). */
static int step_enter(rxf_dpdk_igmp *g) {
    atomic_store(&g->in_step, 1);  /* seq_cst, against close's store to closing */
    if (!atomic_load(&g->closing)) return 1;
    atomic_store_explicit(&g->in_step, 0, memory_order_release);
    return 0;
}

static void step_exit(rxf_dpdk_igmp *g) { atomic_store_explicit(&g->in_step, 0, memory_order_release); }

/* The closing thread: from now on queue 0's poller does no IGMP; wait out a step in progress. */
static void fence_poller(rxf_dpdk_igmp *g) {
    atomic_store(&g->closing, 1);
    while (atomic_load(&g->in_step)) rte_pause();
}

void rxf_dpdk_igmp_leave(rxf_dpdk_igmp *g) {
    if (!g) return;
    fence_poller(g);
    if (!g->st.ngroups) return;
    for (uint32_t r = 0, n = rxf_igmp_robustness(&g->st); r < n; r++) {
        if (r) rte_delay_us_sleep((unsigned)(g->leave_spacing_s * 1e6));
        rxf_igmp_leave(&g->st, rte_rdtsc(), send_frame, g);
    }
}

static void count_igmp_pool(struct rte_mempool *mp, void *arg) {
    if (strncmp(mp->name, "rxf_igmp_", 9) == 0) ++*(unsigned *)arg;
}

unsigned rxf_dpdk_igmp_pools(void) {
    unsigned n = 0;
    rte_mempool_walk(count_igmp_pool, &n);
    return n;
}

void rxf_dpdk_igmp_free(rxf_dpdk_igmp *g) {
    if (!g) return;
    if (g->pool) rte_mempool_free((struct rte_mempool *)g->pool);
    free(g);
}

void rxf_dpdk_igmp_run(rxf_dpdk_igmp *g, uint64_t now_tsc) {
    if (!step_enter(g)) return;
    if (atomic_load_explicit(&g->handed, memory_order_acquire)) {
        for (uint32_t q = 1; q < RXF_DPDK_IGMP_QUEUES; q++) {
            rxf_dpdk_igmp_slot *s = &g->slots[q];
            if (!atomic_load_explicit(&s->full, memory_order_acquire)) continue;
            rxf_igmp_handle_frame(&g->st, s->frame, s->len, now_tsc);
            atomic_store_explicit(&s->full, 0, memory_order_release);
            atomic_fetch_sub_explicit(&g->handed, 1, memory_order_acq_rel);
        }
    }
    rxf_igmp_poll(&g->st, now_tsc, send_frame, g);
    step_exit(g);
}

/* A producer's counter (one writer): a relaxed load and store, no locked add. */
static void count(_Atomic uint64_t *c) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* Another queue's query into its slot (dropped, counted, while the slot is full). */
static void hand_over(rxf_dpdk_igmp *g, uint16_t queue, const uint8_t *frame, uint32_t len) {
    rxf_dpdk_igmp_slot *s = &g->slots[queue];
    if (atomic_load_explicit(&s->full, memory_order_acquire) || len > sizeof(s->frame)) {
        count(&s->dropped);
        return;
    }
    memcpy(s->frame, frame, len);
    s->len = len;
    count(&s->handed);
    /* g->handed first: queue 0 never takes a slot it has not counted (no wrap below 0) */
    atomic_fetch_add_explicit(&g->handed, 1, memory_order_acq_rel);
    atomic_store_explicit(&s->full, 1, memory_order_release);
}

int rxf_dpdk_igmp_take(rxf_dpdk_igmp *g, uint16_t queue, const uint8_t *frame, uint32_t len, uint64_t now_tsc) {
    if (!g || queue >= RXF_DPDK_IGMP_QUEUES || rxf_igmp_peek_type(frame, len) != RXF_IGMP_QUERY) return 0;
    if (queue != 0) hand_over(g, queue, frame, len);
    else if (step_enter(g)) {
        rxf_igmp_handle_frame(&g->st, frame, len, now_tsc);
        step_exit(g);
    }
    return 1;
}

uint64_t rxf_dpdk_igmp_handover(const rxf_dpdk_igmp *g, int dropped) {
    uint64_t n = 0;
    for (uint32_t q = 0; q < RXF_DPDK_IGMP_QUEUES; q++)
        n += atomic_load_explicit(dropped ? &g->slots[q].dropped : &g->slots[q].handed, memory_order_relaxed);
    return n;
}
