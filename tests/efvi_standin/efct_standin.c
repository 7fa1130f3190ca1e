/*
 * rxfeed's ef_vi stand-in (tests only): the efct (X3) personality, selected
 * with RXF_EFVI_STANDIN_ARCH=efct. Written from the documented API
 * (etherfabric/efct_vi.h's contract); no Onload code.
 *
 * The NIC owns the receive memory: RXF_EFVI_STANDIN_SUPERBUFS superbuffers
 * (default 4) of RXF_EFVI_STANDIN_SB_PKTS packet slots (default 512, 2 KiB
 * each: 1 MiB, as on the X3). Frames fill the live superbuffer slot by slot;
 * when it is full the NIC moves to a superbuffer none of whose slots is still
 * owned by the application. If there is none, the frame is dropped and
 * counted (exhausted_drops) -- what an application that never releases a
 * pkt_id causes. Each frame raises EF_EVENT_TYPE_RX_REF (pkt_id, len, q_id,
 * filter_id) or EF_EVENT_TYPE_RX_REF_DISCARD (+ flags); both hand the slot to
 * the application until efct_vi_rxpkt_release.
 *
 *   RXF_EFVI_STANDIN_LEAK_EVERY=N     every Nth release is ignored (a leaked pkt_id)
 *   RXF_EFVI_STANDIN_BAD_LEN_EVERY=N  every Nth RX_REF carries a bad length (alternately
 *                                     past the slot and shorter than an Ethernet header)
 *   RXF_EFVI_STANDIN_FUTURE_DELAY=N   efct_vi_rx_future_poll reports "not complete" N times
 *                                     before the completion (default 1)
 *   RXF_EFVI_STANDIN_FUTURE_MISS_EVERY=N  every Nth frame completes before a peek sees it
 *                                     (peek returns NULL: "other work pending")
 *
 * Futures: efct_vi_rx_future_peek writes only the first EFCT_FUTURE_VALID_BYTES
 * of the next frame into its slot (the rest of the slot is poison, 0xA5) and
 * returns it; the rest lands, and the RX_REF is raised, on completion
 * (efct_vi_rx_future_poll, or ef_eventq_poll).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <etherfabric/ef_vi.h>
#include <etherfabric/efct_vi.h>

#include "standin_nic.h"

#define POISON 0xA5

/* RX_REF_DISCARD reasons, cycled through by RXF_EFVI_STANDIN_DISCARD_EVERY */
static const unsigned discard_flags[] = {EF_VI_DISCARD_RX_L4_CSUM_ERR, EF_VI_DISCARD_RX_ETH_FCS_ERR,
                                         EF_VI_DISCARD_RX_ETH_LEN_ERR, EF_VI_DISCARD_RX_L2_CLASS_OTHER};

typedef struct slot_meta {  /* the stand-in's own metadata at the start of each slot */
    uint64_t ts_ns;
    uint32_t len;
} slot_meta;

int rxf_standin_efct_init(struct rxf_standin_nic *n) {
    struct rxf_standin_efct *x = calloc(1, sizeof(*x));
    if (!x) return -1;
    n->efct = x;
    x->n_sb = rxf_standin_env_int("RXF_EFVI_STANDIN_SUPERBUFS", 4);
    x->sb_pkts = rxf_standin_env_int("RXF_EFVI_STANDIN_SB_PKTS", 512);
    if (x->n_sb < 1 || x->n_sb > 64 || x->sb_pkts < 1 || x->sb_pkts > (1 << EFCT_PKT_BITS)) return -1;
    x->leak_every = rxf_standin_env_int("RXF_EFVI_STANDIN_LEAK_EVERY", 0);
    x->bad_len_every = rxf_standin_env_int("RXF_EFVI_STANDIN_BAD_LEN_EVERY", 0);
    x->future_delay = rxf_standin_env_int("RXF_EFVI_STANDIN_FUTURE_DELAY", 1);
    x->future_miss_every = rxf_standin_env_int("RXF_EFVI_STANDIN_FUTURE_MISS_EVERY", 0);
    x->ts_flags = n->ts_flags;
    x->live = -1;
    x->future_slot = -1;
    x->mem_len = (size_t)x->n_sb * (size_t)x->sb_pkts * EFCT_STRIDE;
    x->mem = aligned_alloc(4096, x->mem_len);
    x->refcnt = calloc((size_t)x->n_sb, sizeof(int));
    x->owned = calloc((size_t)x->n_sb * (size_t)x->sb_pkts, 1);
    if (!x->mem || !x->refcnt || !x->owned) return -1;
    memset(x->mem, POISON, x->mem_len);
    return 0;
}

void rxf_standin_efct_free(struct rxf_standin_nic *n) {
    struct rxf_standin_efct *x = n->efct;
    if (!x) return;
    free(x->mem);
    free(x->refcnt);
    free(x->owned);
    free(x);
    n->efct = NULL;
}

void rxf_standin_efct_write_stats(struct rxf_standin_nic *n, FILE *out) {
    const struct rxf_standin_efct *x = n->efct;
    if (!x) return;
    fprintf(out, "superbufs %d\nsb_pkts %d\noutstanding %llu\nmax_outstanding %llu\nreleased %llu\n"
            "bad_releases %llu\nexhausted_drops %llu\nleaked %llu\nfutures %llu\n", x->n_sb, x->sb_pkts,
            (unsigned long long)x->outstanding, (unsigned long long)x->max_outstanding,
            (unsigned long long)x->released, (unsigned long long)x->bad_releases,
            (unsigned long long)x->exhausted_drops, (unsigned long long)x->leaked,
            (unsigned long long)x->futures);
}

static inline uint8_t *slot_base(struct rxf_standin_efct *x, int slot) {
    return x->mem + (size_t)slot * EFCT_STRIDE;
}

static inline uint32_t slot_to_pkt_id(const struct rxf_standin_efct *x, int slot) {
    return ((uint32_t)(slot / x->sb_pkts) << EFCT_PKT_BITS) | (uint32_t)(slot % x->sb_pkts);
}

/* The slot of a pkt_id, or -1 for an id no event gave out. */
static int pkt_id_to_slot(const struct rxf_standin_efct *x, uint32_t pkt_id) {
    uint32_t sb = pkt_id >> EFCT_PKT_BITS, ix = pkt_id & ((1u << EFCT_PKT_BITS) - 1);
    if (sb >= (uint32_t)x->n_sb || ix >= (uint32_t)x->sb_pkts) return -1;
    return (int)(sb * (uint32_t)x->sb_pkts + ix);
}

/* A superbuffer with no slot owned by the application, after the live one (-1: none). */
static int free_superbuf(const struct rxf_standin_efct *x) {
    for (int k = 1; k <= x->n_sb; k++) {
        int sb = (x->live + k + x->n_sb) % x->n_sb;
        if (x->refcnt[sb] == 0) return sb;
    }
    return -1;
}

/* The next slot to write, owned by the application from here on; -1 when
   every superbuffer still holds an unreleased slot. */
static int take_slot(struct rxf_standin_efct *x) {
    if (x->live < 0 || x->live_filled == x->sb_pkts) {
        int sb = free_superbuf(x);
        if (sb < 0) return -1;
        x->live = sb;
        x->live_filled = 0;
        memset(slot_base(x, sb * x->sb_pkts), POISON, (size_t)x->sb_pkts * EFCT_STRIDE);
    }
    int slot = x->live * x->sb_pkts + x->live_filled++;
    x->refcnt[x->live]++;
    x->owned[slot] = 1;
    if (++x->outstanding > x->max_outstanding) x->max_outstanding = x->outstanding;
    return slot;
}

/* Frame bytes [from, to) into the slot (the slot holds at most EFCT_FRAME_ROOM). */
static void write_frame(struct rxf_standin_efct *x, int slot, const uint8_t *f, uint32_t from, uint32_t to) {
    if (to > EFCT_FRAME_ROOM) to = EFCT_FRAME_ROOM;
    if (from < to) memcpy(slot_base(x, slot) + EFCT_FRAME_OFFSET + from, f + from, to - from);
}

/* The completion event of a frame written to `slot`. */
static void complete(struct rxf_standin_nic *n, int slot, uint32_t flen, uint64_t ts, int filter_id) {
    struct rxf_standin_efct *x = n->efct;
    slot_meta m = {.ts_ns = ts, .len = flen};
    memcpy(slot_base(x, slot), &m, sizeof(m));
    n->frames++;
    ef_event ev;
    memset(&ev, 0, sizeof(ev));
    uint32_t len = flen > EFCT_FRAME_ROOM ? EFCT_FRAME_ROOM : flen;
    int discard = (n->discard_every && n->frames % (uint64_t)n->discard_every == 0) || flen > EFCT_FRAME_ROOM;
    if (x->bad_len_every && n->frames % (uint64_t)x->bad_len_every == 0)
        len = (n->frames / (uint64_t)x->bad_len_every) % 2 ? 5000 : 10;
    ev.rx_ref.type = discard ? EF_EVENT_TYPE_RX_REF_DISCARD : EF_EVENT_TYPE_RX_REF;
    ev.rx_ref.len = len;
    ev.rx_ref.pkt_id = slot_to_pkt_id(x, slot);
    ev.rx_ref.q_id = 0;
    ev.rx_ref.filter_id = (unsigned)(filter_id < 0 ? 0 : filter_id);
    if (discard)
        ev.rx_ref_discard.flags = flen > EFCT_FRAME_ROOM ? EF_VI_DISCARD_RX_ETH_LEN_ERR
            : discard_flags[(n->frames / (uint64_t)n->discard_every) % 4];
    rxf_standin_push_event(n, &ev);
}

/* The next frame for this VI off the wire (filtered ones skipped), or NULL. */
static const uint8_t *next_frame(struct rxf_standin_nic *n, uint32_t *flen, uint64_t *ts) {
    for (;;) {
        const uint8_t *f = rxf_standin_peek_frame(n, flen, ts);
        if (!f || !rxf_standin_filtered_out(n, f, *flen)) return f;
        rxf_standin_consume_frame(n, *flen);
    }
}

/* The pending future's frame lands whole and its event is raised. */
static void complete_future(struct rxf_standin_nic *n) {
    struct rxf_standin_efct *x = n->efct;
    if (x->future_slot < 0) return;
    write_frame(x, x->future_slot, x->future_src, EFCT_FUTURE_VALID_BYTES, x->future_len);
    complete(n, x->future_slot, x->future_len, x->future_ts,
             rxf_standin_filter_index(n, x->future_src, x->future_len));
    rxf_standin_consume_frame(n, x->future_len);
    x->future_slot = -1;
}

/* One frame off the wire into a slot with its event; 0 when there was none
   (or it must wait for a free superbuffer). */
static int ingest_one(struct rxf_standin_nic *n) {
    struct rxf_standin_efct *x = n->efct;
    uint32_t flen;
    uint64_t ts;
    const uint8_t *f = next_frame(n, &flen, &ts);
    if (!f) return 0;
    int slot = take_slot(x);
    if (slot < 0) {
        if (n->wait_when_full) return 0;
        x->exhausted_drops++;  /* no free superbuffer: the NIC drops the frame */
        rxf_standin_consume_frame(n, flen);
        return 1;
    }
    write_frame(x, slot, f, 0, flen);
    complete(n, slot, flen, ts, rxf_standin_filter_index(n, f, flen));
    rxf_standin_consume_frame(n, flen);
    return 1;
}

void rxf_standin_efct_ingest(struct rxf_standin_nic *n) {
    complete_future(n);
    for (int j = 0; j < n->burst && n->fifo_n < FIFO_SIZE; j++) {
        if (rxf_standin_maybe_reset(n)) return;
        if (!ingest_one(n)) return;
    }
}

const void *efct_vi_rxpkt_get(struct ef_vi *vi, uint32_t pkt_id) {
    struct rxf_standin_efct *x = vi->nic->efct;
    int slot = x ? pkt_id_to_slot(x, pkt_id) : -1;
    if (slot < 0 || !x->owned[slot]) return NULL;  /* undefined in the real API */
    return slot_base(x, slot) + EFCT_FRAME_OFFSET;
}

void efct_vi_rxpkt_release(struct ef_vi *vi, uint32_t pkt_id) {
    struct rxf_standin_efct *x = vi->nic->efct;
    int slot = x ? pkt_id_to_slot(x, pkt_id) : -1;
    if (slot < 0 || !x->owned[slot]) { if (x) x->bad_releases++; return; }  /* double or bogus release */
    if (x->leak_every && ++x->releases % (uint64_t)x->leak_every == 0) { x->leaked++; return; }
    x->owned[slot] = 0;
    x->refcnt[slot / x->sb_pkts]--;
    x->outstanding--;
    x->released++;
}

int rxf_standin_efct_timestamp(struct rxf_standin_nic *n, const void *pkt, ef_precisetime *ts) {
    struct rxf_standin_efct *x = n->efct;
    const uint8_t *p = pkt;
    if (p < x->mem + EFCT_FRAME_OFFSET || p >= x->mem + x->mem_len) return -EINVAL;
    size_t off = (size_t)(p - x->mem) - EFCT_FRAME_OFFSET;
    if (off % EFCT_STRIDE != 0) return -EINVAL;
    if (x->ts_flags < 0) return -ENODATA;
    slot_meta m;
    memcpy(&m, x->mem + off, sizeof(m));
    ts->tv_sec = (int64_t)(m.ts_ns / 1000000000ull);
    ts->tv_nsec = (uint32_t)(m.ts_ns % 1000000000ull);
    ts->tv_flags = (uint16_t)x->ts_flags;
    return 0;
}

const void *efct_vi_rx_future_peek(struct ef_vi *vi) {
    struct rxf_standin_nic *n = vi->nic;
    struct rxf_standin_efct *x = n->efct;
    if (!x || n->fifo_n > 0 || ef_eventq_has_event(vi)) return NULL;  /* other work pending */
    if (x->future_slot >= 0) return slot_base(x, x->future_slot) + EFCT_FRAME_OFFSET;
    uint32_t flen;
    uint64_t ts;
    const uint8_t *f = next_frame(n, &flen, &ts);
    if (!f) return NULL;
    if (x->future_miss_every && (n->frames + 1) % (uint64_t)x->future_miss_every == 0) {
        ingest_one(n);  /* it completed before anyone looked: an ordinary event */
        return NULL;
    }
    int slot = take_slot(x);
    if (slot < 0) {
        if (!n->wait_when_full) { x->exhausted_drops++; rxf_standin_consume_frame(n, flen); }
        return NULL;
    }
    write_frame(x, slot, f, 0, flen < EFCT_FUTURE_VALID_BYTES ? flen : EFCT_FUTURE_VALID_BYTES);
    x->future_slot = slot;
    x->future_src = f;
    x->future_len = flen;
    x->future_ts = ts;
    x->future_wait = x->future_delay;
    x->futures++;
    return slot_base(x, slot) + EFCT_FRAME_OFFSET;
}

int efct_vi_rx_future_poll(ef_vi *vi, ef_event *evs, int evs_len) {
    struct rxf_standin_nic *n = vi->nic;
    struct rxf_standin_efct *x = n->efct;
    if (!x || x->future_slot < 0 || evs_len < 1) return 0;
    if (x->future_wait > 0) { x->future_wait--; return 0; }
    complete_future(n);
    return ef_eventq_poll(vi, evs, 1);
}
