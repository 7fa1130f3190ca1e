/* See efvi_rx.h. */
#include "efvi_rx.h"

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

static uint64_t now_ns(int clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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
    e->prefix = ef_vi_receive_prefix_len(&e->vi);
    /* buffers: the ring plus one burst held by the decoder, DMA-aligned, registered once */
    e->n_bufs = ef_vi_receive_capacity(&e->vi) + RXF_EFVI_MAX_EVENTS;
    size_t bytes = (size_t)e->n_bufs * RXF_EFVI_BUF_SIZE;
    if (posix_memalign((void **)&e->mem, 4096, bytes) != 0) return fail(e, "posix_memalign", ENOMEM);
    rc = ef_memreg_alloc(&e->mr, e->dh, &e->pd, e->dh, e->mem, bytes);
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
    for (uint32_t i = 0; i < cfg->n_filters; i++) {
        ef_filter_spec fs;
        ef_filter_spec_init(&fs, EF_FILTER_FLAG_NONE);
        rc = ef_filter_spec_set_ip4_local(&fs, IPPROTO_UDP, htonl(cfg->filter_ip[i]), htons(cfg->filter_port[i]));
        if (rc == 0) rc = ef_vi_filter_add(&e->vi, e->dh, &fs, NULL);
        if (rc < 0) {
            struct in_addr a = {.s_addr = htonl(cfg->filter_ip[i])};
            snprintf(e->error, sizeof(e->error), "ef_vi_filter_add(udp %s:%u): %s", inet_ntoa(a),
                     cfg->filter_port[i], strerror(-rc));
            return -1;
        }
    }
    e->last_rx_ns = now_ns(CLOCK_MONOTONIC);
    return 0;
}

void rxf_efvi_close(rxf_efvi *e) {
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

static inline void give_back(rxf_efvi *e, int id) { e->free_ids[e->n_free++] = id; }

int rxf_efvi_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    rxf_efvi *e = ctx;
    if (e->reset) return RXF_ERROR;
    if (e->cfg.expected_frames && e->stats.frames >= e->cfg.expected_frames) return RXF_EOF;
    ef_event evs[RXF_EFVI_MAX_EVENTS];
    int want = (int)(max < RXF_EFVI_MAX_EVENTS ? max : RXF_EFVI_MAX_EVENTS);
    e->stats.polls++;
    int nev = ef_eventq_poll(&e->vi, evs, want);
    uint32_t n = 0;
    for (int i = 0; i < nev; i++) {
        e->stats.events++;
        switch (EF_EVENT_TYPE(evs[i])) {
        case EF_EVENT_TYPE_RX: {
            int id = (int)EF_EVENT_RX_RQ_ID(evs[i]);
            if (id < 0 || id >= e->n_bufs) { e->stats.unsupported_events++; break; }
            e->stats.rx++;
            e->stats.frames++;
            if (!EF_EVENT_RX_SOP(evs[i]) || EF_EVENT_RX_CONT(evs[i])) { /* jumbo: not reassembled */
                e->stats.jumbo++;
                give_back(e, id);
                break;
            }
            const uint8_t *buf = e->mem + (size_t)id * RXF_EFVI_BUF_SIZE;
            int bytes = (int)EF_EVENT_RX_BYTES(evs[i]) - e->prefix;
            if (bytes < 0 || bytes > RXF_EFVI_BUF_SIZE - e->prefix) {
                e->stats.drops[RXF_NET_TRUNCATED]++;
                give_back(e, id);
                break;
            }
            rxf_udp_view u;
            rxf_net_verdict v = rxf_parse_ethernet(buf + e->prefix, (uint32_t)bytes, &u);
            if (v != RXF_NET_OK) { e->stats.drops[v]++; give_back(e, id); break; }
            ef_timespec ts;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
            if (e->cfg.timestamps && ef_vi_receive_get_timestamp(&e->vi, buf, &ts) == 0) {
#pragma GCC diagnostic pop
                rxf_packet_set(&pkts[n++], &u, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec,
                               RXF_PKT_HW_TIMESTAMP);
            } else {
                rxf_packet_set(&pkts[n++], &u, now_ns(CLOCK_REALTIME), 0);
            }
            e->held[e->n_held++] = id;
            e->stats.packets++;
            e->stats.bytes += u.len;
            break;
        }
        case EF_EVENT_TYPE_RX_DISCARD: {
            int id = (int)EF_EVENT_RX_DISCARD_RQ_ID(evs[i]);
            unsigned sub = EF_EVENT_RX_DISCARD_TYPE(evs[i]);
            e->stats.frames++;
            e->stats.discards[sub < RXF_EFVI_DISCARD_KINDS - 1 ? sub : RXF_EFVI_DISCARD_KINDS - 1]++;
            if (id >= 0 && id < e->n_bufs) give_back(e, id);
            break;
        }
        case EF_EVENT_TYPE_RESET:
            e->stats.resets++;
            e->reset = 1;
            snprintf(e->error, sizeof(e->error), "ef_vi: the VI was reset (NIC reset or hot-plug); "
                     "reopen the backend");
            break;
        default: /* RX_MULTI / packed stream / efct RX_REF: not used by this VI's flags */
            e->stats.unsupported_events++;
            break;
        }
    }
    if (nev > 0 && ef_vi_receive_fill_level(&e->vi) == 0) e->stats.ring_empty++; /* this poll drained the ring */
    if (e->n_free >= e->cfg.refill_batch || ef_vi_receive_fill_level(&e->vi) < e->cfg.refill_batch) refill(e);
    if (nev > 0) e->last_rx_ns = now_ns(CLOCK_MONOTONIC);
    else if (e->cfg.idle_timeout_s > 0 &&
             (double)(now_ns(CLOCK_MONOTONIC) - e->last_rx_ns) > e->cfg.idle_timeout_s * 1e9)
        return RXF_EOF;
    if (n == 0 && e->reset) return RXF_ERROR;
    return (int)n;
}

void rxf_efvi_release(void *ctx, rxf_packet *pkts, uint32_t n) {
    (void)pkts; (void)n;
    rxf_efvi *e = ctx;
    for (int i = 0; i < e->n_held; i++) give_back(e, e->held[i]);
    e->n_held = 0;
    if (e->n_free >= e->cfg.refill_batch) refill(e);
}
