/* See efvi_rx.h. Set-up, the EF10 loop, and what both loops share. */
#include "efvi_rx.h"
#include "efct_rx.h"
#include "rxfeed/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(rxf_efvi *e, const char *what, int rc) {
    snprintf(e->error, sizeof(e->error), "%s: %s", what, strerror(rc < 0 ? -rc : rc));
    return -1;
}

uint64_t rxf_efvi_now_ns(int clock) {
    return rxf_clock_ns(clock);
}

/* Post free buffers until the ring is full; one doorbell for the batch. */
static void refill(rxf_efvi *e) {
    int room = ef_vi_receive_capacity(&e->vi) - ef_vi_receive_fill_level(&e->vi);
    int posted = 0;
    while (room > 0 && e->n_free > 0) {
        int id = e->free_ids[--e->n_free];
        if (ef_vi_receive_init(&e->vi, e->dma[id], id) != 0) { e->n_free++; break; }
        room--;
        posted++;
    }
    if (posted) ef_vi_receive_push(&e->vi);
}

/* The loop the VI needs: efct on X3-type (efct / ef10ct) VIs, EF10 otherwise;
   a `datapath` the VI cannot run is refused. */
static int choose_datapath(rxf_efvi *e) {
    e->arch = e->vi.nic_type.arch;
    int vi_efct = e->arch == EF_VI_ARCH_EFCT || e->arch == EF_VI_ARCH_EF10CT;
    int want = e->cfg.datapath;
    if (want == RXF_EFVI_DATAPATH_AUTO) want = vi_efct ? RXF_EFVI_DATAPATH_EFCT : RXF_EFVI_DATAPATH_EF10;
    if ((want == RXF_EFVI_DATAPATH_EFCT) != vi_efct) {
        snprintf(e->error, sizeof(e->error), "datapath %s asked, but the VI on %s is %s (nic_type.arch %d)",
                 want == RXF_EFVI_DATAPATH_EFCT ? "efct" : "ef10", e->cfg.interface,
                 vi_efct ? "efct (X3)" : "not efct", e->arch);
        return -1;
    }
    e->efct = vi_efct;
    if (e->cfg.future_peek && !e->efct) {
        snprintf(e->error, sizeof(e->error), "future_peek needs the efct datapath (X3); the VI on %s is not efct",
                 e->cfg.interface);
        return -1;
    }
    return 0;
}

/* EF10: buffers for the ring plus one burst held by the decoder, DMA-aligned,
   registered once, the ring filled. */
static int setup_ef10_buffers(rxf_efvi *e) {
    e->prefix = ef_vi_receive_prefix_len(&e->vi);
    e->n_bufs = ef_vi_receive_capacity(&e->vi) + RXF_EFVI_MAX_EVENTS;
    size_t bytes = (size_t)e->n_bufs * RXF_EFVI_BUF_SIZE;
    if (posix_memalign((void **)&e->mem, 4096, bytes) != 0) return fail(e, "posix_memalign", ENOMEM);
    int rc = ef_memreg_alloc(&e->mr, e->dh, &e->pd, e->dh, e->mem, bytes);
    if (rc < 0) return fail(e, "ef_memreg_alloc", rc);
    e->have_mr = 1;
    e->dma = calloc((size_t)e->n_bufs, sizeof(ef_addr));
    e->free_ids = calloc((size_t)e->n_bufs, sizeof(int));
    if (!e->dma || !e->free_ids) return fail(e, "calloc", ENOMEM);
    for (int i = 0; i < e->n_bufs; i++) {
        e->dma[i] = ef_memreg_dma_addr(&e->mr, (size_t)i * RXF_EFVI_BUF_SIZE);
        e->free_ids[e->n_free++] = e->n_bufs - 1 - i;
    }
    refill(e);
    return 0;
}

static int add_filters(rxf_efvi *e) {
    for (uint32_t i = 0; i < e->cfg.n_filters; i++) {
        ef_filter_spec fs;
        ef_filter_spec_init(&fs, EF_FILTER_FLAG_NONE);
        int rc = ef_filter_spec_set_ip4_local(&fs, IPPROTO_UDP, htonl(e->cfg.filter_ip[i]),
                                              htons(e->cfg.filter_port[i]));
        if (rc == 0) rc = ef_vi_filter_add(&e->vi, e->dh, &fs, NULL);
        if (rc < 0) {
            struct in_addr a = {.s_addr = htonl(e->cfg.filter_ip[i])};
            snprintf(e->error, sizeof(e->error), "ef_vi_filter_add(udp %s:%u): %s", inet_ntoa(a),
                     e->cfg.filter_port[i], strerror(-rc));
            return -1;
        }
    }
    return 0;
}

int rxf_efvi_open(rxf_efvi *e, const rxf_efvi_cfg *cfg) {
    memset(e, 0, sizeof(*e));
    e->cfg = *cfg;
    if (cfg->n_filters > RXF_FILTER_MAX) {
        snprintf(e->error, sizeof(e->error), "at most %d filters; got %u", RXF_FILTER_MAX, cfg->n_filters);
        return -1;
    }
    int rc = ef_driver_open(&e->dh);
    if (rc < 0) return fail(e, "ef_driver_open (is the Onload driver loaded? /dev/sfc_char)", rc);
    e->have_dh = 1;
    rc = ef_pd_alloc_by_name(&e->pd, e->dh, cfg->interface, EF_PD_DEFAULT);
    if (rc < 0) {
        snprintf(e->error, sizeof(e->error), "ef_pd_alloc_by_name(%s): %s (not a Solarflare/AMD interface?)",
                 cfg->interface, strerror(-rc));
        return -1;
    }
    e->have_pd = 1;
    enum ef_vi_flags flags = cfg->timestamps ? EF_VI_RX_TIMESTAMPS : EF_VI_FLAGS_DEFAULT;
    rc = ef_vi_alloc_from_pd(&e->vi, e->dh, &e->pd, e->dh, cfg->ev_ring, cfg->rx_ring, 0, NULL, -1, flags);
    if (rc < 0) return fail(e, "ef_vi_alloc_from_pd", rc);
    e->have_vi = 1;
    if (choose_datapath(e) != 0) return -1;
    if (!e->efct && setup_ef10_buffers(e) != 0) return -1;
    if (add_filters(e) != 0) return -1;
    e->last_rx_ns = rxf_efvi_now_ns(CLOCK_MONOTONIC);
    return 0;
}

void rxf_efvi_close(rxf_efvi *e) {
    if (e->have_vi && e->efct) rxf_efct_release_all(e);  /* pkt_ids lent to a burst never released */
    if (e->have_vi) ef_vi_free(&e->vi, e->dh);       /* also removes its filters */
    if (e->have_mr) ef_memreg_free(&e->mr, e->dh);
    if (e->have_pd) ef_pd_free(&e->pd, e->dh);
    if (e->have_dh) ef_driver_close(e->dh);
    e->have_vi = e->have_mr = e->have_pd = e->have_dh = 0;
    free(e->mem);
    free(e->dma);
    free(e->free_ids);
    e->mem = NULL;
    e->dma = NULL;
    e->free_ids = NULL;
}

const char *rxf_efvi_last_error(void *ctx) { return ((rxf_efvi *)ctx)->error; }

static inline void give_back(rxf_efvi *e, uint32_t id) { e->free_ids[e->n_free++] = (int)id; }

/* rx_ts_ns: the NIC's timestamp (ns since the Unix epoch) when asked for and
   the adapter clock was ever set; CLOCK_REALTIME at hand-out otherwise. */
static uint64_t stamp(rxf_efvi *e, const void *ts_pkt, uint32_t *flags) {
    *flags = 0;
    if (!e->cfg.timestamps) return rxf_efvi_now_ns(CLOCK_REALTIME);
    ef_precisetime t;
    int rc = ef_vi_receive_get_precise_timestamp(&e->vi, ts_pkt, &t);
    if (rc != 0) e->stats.ts_missing++;
    else if (!(t.tv_flags & EF_VI_SYNC_FLAG_CLOCK_SET)) e->stats.ts_clock_unset++;
    else {
        if (t.tv_flags & EF_VI_SYNC_FLAG_CLOCK_IN_SYNC) e->stats.ts_in_sync++;
        else e->stats.ts_set_not_in_sync++;
        *flags = RXF_PKT_HW_TIMESTAMP;
        return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
    }
    return rxf_efvi_now_ns(CLOCK_REALTIME);
}

int rxf_efvi_hand_out(rxf_efvi *e, const uint8_t *frame, uint32_t len, const void *ts_pkt, rxf_packet *out) {
    rxf_udp_view u;
    rxf_net_verdict v = rxf_parse_ethernet(frame, len, &u);
    if (v != RXF_NET_OK) { e->stats.drops[v]++; return 0; }
    if (e->n_held >= RXF_EFVI_MAX_EVENTS) { e->stats.no_buffer++; return 0; }  /* more than a burst held */
    uint32_t flags;
    uint64_t ts = stamp(e, ts_pkt, &flags);
    rxf_packet_set(out, &u, ts, flags);
    e->stats.packets++;
    e->stats.bytes += u.len;
    return 1;
}

void rxf_efvi_count_discard(rxf_efvi *e, unsigned subtype) {
    e->stats.discards[subtype < RXF_EFVI_DISCARD_KINDS - 1 ? subtype : RXF_EFVI_DISCARD_KINDS - 1]++;
}

void rxf_efvi_on_reset(rxf_efvi *e) {
    e->stats.resets++;
    e->reset = 1;
    snprintf(e->error, sizeof(e->error), "ef_vi: the VI was reset (NIC reset or hot-plug); reopen the backend");
}

int rxf_efvi_poll_begin(rxf_efvi *e) {
    if (e->reset) return RXF_ERROR;
    if (e->cfg.expected_frames && e->stats.frames >= e->cfg.expected_frames) return RXF_EOF;
    e->stats.polls++;
    return 0;
}

int rxf_efvi_poll_end(rxf_efvi *e, int nev, uint32_t n) {
    if (nev > 0) e->last_rx_ns = rxf_efvi_now_ns(CLOCK_MONOTONIC);
    else if (e->cfg.idle_timeout_s > 0 &&
             (double)(rxf_efvi_now_ns(CLOCK_MONOTONIC) - e->last_rx_ns) > e->cfg.idle_timeout_s * 1e9)
        return RXF_EOF;
    if (n == 0 && e->reset) return RXF_ERROR;
    return (int)n;
}

/* One EF10 RX event: the frame behind the prefix handed out, or the buffer back. */
static void ef10_rx(rxf_efvi *e, const ef_event *ev, rxf_packet *pkts, uint32_t *n) {
    int id = (int)EF_EVENT_RX_RQ_ID(*ev);
    if (id < 0 || id >= e->n_bufs) { e->stats.unsupported_events++; return; }
    e->stats.rx++;
    e->stats.frames++;
    if (!EF_EVENT_RX_SOP(*ev) || EF_EVENT_RX_CONT(*ev)) { /* jumbo: not reassembled */
        e->stats.jumbo++;
        give_back(e, (uint32_t)id);
        return;
    }
    const uint8_t *buf = e->mem + (size_t)id * RXF_EFVI_BUF_SIZE;
    int bytes = (int)EF_EVENT_RX_BYTES(*ev) - e->prefix;
    if (bytes < 0 || bytes > RXF_EFVI_BUF_SIZE - e->prefix) {
        e->stats.drops[RXF_NET_TRUNCATED]++;
        give_back(e, (uint32_t)id);
        return;
    }
    if (!rxf_efvi_hand_out(e, buf + e->prefix, (uint32_t)bytes, buf, &pkts[*n])) { give_back(e, (uint32_t)id); return; }
    e->held[e->n_held++] = (uint32_t)id;
    (*n)++;
}

static void ef10_event(rxf_efvi *e, const ef_event *ev, rxf_packet *pkts, uint32_t *n) {
    e->stats.events++;
    switch (EF_EVENT_TYPE(*ev)) {
    case EF_EVENT_TYPE_RX:
        ef10_rx(e, ev, pkts, n);
        break;
    case EF_EVENT_TYPE_RX_DISCARD: {
        int id = (int)EF_EVENT_RX_DISCARD_RQ_ID(*ev);
        e->stats.frames++;
        rxf_efvi_count_discard(e, EF_EVENT_RX_DISCARD_TYPE(*ev));
        if (id >= 0 && id < e->n_bufs) give_back(e, (uint32_t)id);
        break;
    }
    case EF_EVENT_TYPE_RESET:
        rxf_efvi_on_reset(e);
        break;
    default: /* RX_MULTI / packed stream: not used by this VI's flags */
        e->stats.unsupported_events++;
        break;
    }
}

int rxf_efvi_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    rxf_efvi *e = ctx;
    if (e->efct) return rxf_efct_rx_burst(e, pkts, max);
    int rc = rxf_efvi_poll_begin(e);
    if (rc) return rc;
    ef_event evs[RXF_EFVI_MAX_EVENTS];
    int want = (int)(max < RXF_EFVI_MAX_EVENTS ? max : RXF_EFVI_MAX_EVENTS);
    int nev = ef_eventq_poll(&e->vi, evs, want);
    uint32_t n = 0;
    for (int i = 0; i < nev; i++) ef10_event(e, &evs[i], pkts, &n);
    if (nev > 0 && ef_vi_receive_fill_level(&e->vi) == 0) e->stats.ring_empty++; /* this poll drained the ring */
    if (e->n_free >= e->cfg.refill_batch || ef_vi_receive_fill_level(&e->vi) < e->cfg.refill_batch) refill(e);
    return rxf_efvi_poll_end(e, nev, n);
}

void rxf_efvi_release(void *ctx, rxf_packet *pkts, uint32_t n) {
    (void)pkts; (void)n;
    rxf_efvi *e = ctx;
    if (e->efct) { rxf_efct_release(e); return; }
    for (int i = 0; i < e->n_held; i++) give_back(e, e->held[i]);
    e->n_held = 0;
    if (e->n_free >= e->cfg.refill_batch) refill(e);
}
