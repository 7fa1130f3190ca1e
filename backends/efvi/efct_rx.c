/* See efct_rx.h. */
#include "efct_rx.h"

#include <string.h>

static void release_now(rxf_efvi *e, uint32_t pkt_id) {
    efct_vi_rxpkt_release(&e->vi, pkt_id);
    e->stats.released++;
}

/* An RX_REF: the frame handed out in place, or its pkt_id given back at
   once (bad length, not IPv4/UDP, ...), counted. */
static void on_rx_ref(rxf_efvi *e, const ef_event *ev, rxf_packet *pkts, uint32_t *n) {
    uint32_t pkt_id = ev->rx_ref.pkt_id, len = ev->rx_ref.len;
    e->stats.frames++;
    e->stats.rx_ref++;
    if (len < RXF_ETH_HEADER_LEN || len > RXF_EFCT_FRAME_ROOM) {  /* never read past the slot */
        e->stats.bad_len++;
        release_now(e, pkt_id);
        return;
    }
    const uint8_t *frame = efct_vi_rxpkt_get(&e->vi, pkt_id);
    if (frame == NULL) { e->stats.bad_pkt_id++; return; }  /* not a packet of ours: nothing to give back */
    if (!rxf_efvi_hand_out(e, frame, len, frame, &pkts[*n])) { release_now(e, pkt_id); return; }
    e->held[e->n_held++] = pkt_id;
    if ((uint64_t)e->n_held > e->stats.held_max) e->stats.held_max = (uint64_t)e->n_held;
    (*n)++;
}

/* An RX_REF_DISCARD: counted by reason (its flags), the pkt_id given back. */
static void on_rx_ref_discard(rxf_efvi *e, const ef_event *ev) {
    unsigned flags = ev->rx_ref_discard.flags;
    e->stats.frames++;
    rxf_efvi_count_discard(e, flags ? ef_vi_get_rx_discard_subtype_from_flags(flags) : RXF_EFVI_DISCARD_KINDS - 1);
    release_now(e, ev->rx_ref_discard.pkt_id);
}

static void on_event(rxf_efvi *e, const ef_event *ev, rxf_packet *pkts, uint32_t *n) {
    e->stats.events++;
    switch (EF_EVENT_TYPE(*ev)) {
    case EF_EVENT_TYPE_RX_REF:
        on_rx_ref(e, ev, pkts, n);
        break;
    case EF_EVENT_TYPE_RX_REF_DISCARD:
        on_rx_ref_discard(e, ev);
        break;
    case EF_EVENT_TYPE_RESET:
        rxf_efvi_on_reset(e);
        break;
    default: /* TX completions and the like: this VI does not transmit */
        e->stats.unsupported_events++;
        break;
    }
}

static int poll_events(rxf_efvi *e, rxf_packet *pkts, int room, uint32_t *n) {
    ef_event evs[RXF_EFVI_MAX_EVENTS];
    int nev = ef_eventq_poll(&e->vi, evs, room);
    for (int i = 0; i < nev; i++) on_event(e, &evs[i], pkts, n);
    return nev > 0 ? nev : 0;
}

rxf_net_verdict rxf_efct_early_look(const uint8_t *p) {
    uint32_t off;  /* the valid bytes hold two VLAN tags and a 20-byte IP header: every read below stays inside */
    int et = rxf_net_ethertype(p, EFCT_FUTURE_VALID_BYTES, &off);
    if (et < 0) return RXF_NET_TRUNCATED;
    if (et != 0x0800) return RXF_NET_NOT_IPV4;
    if (off + 20 > EFCT_FUTURE_VALID_BYTES) return RXF_NET_TRUNCATED;
    const uint8_t *ip = p + off;
    if ((ip[0] >> 4) != 4) return RXF_NET_NOT_IPV4;
    if ((ip[0] & 0x0f) < 5) return RXF_NET_BAD_HEADER;
    uint16_t frag = rxf_net_be16(ip + 6);
    if ((frag & 0x2000u) || (frag & 0x1fffu)) return RXF_NET_FRAGMENT;
    if (ip[9] != 17) return RXF_NET_NOT_UDP;
    uint32_t total = rxf_net_be16(ip + 2);  /* the frame's length as the IP header says: warm its lines */
    uint32_t end = off + total;
    if (end > RXF_EFCT_FRAME_ROOM) end = RXF_EFCT_FRAME_ROOM;
    for (uint32_t at = 64; at < end; at += 64) __builtin_prefetch(p + at);
    return RXF_NET_OK;
}

/* The first event future_poll gave is the peeked frame's completion: an
   RX_REF_DISCARD undoes the early look (nothing of it was handed out). */
static void check_completion(rxf_efvi *e, const ef_event *ev, const uint8_t *peeked, rxf_net_verdict early) {
    if (EF_EVENT_TYPE(*ev) == EF_EVENT_TYPE_RX_REF_DISCARD) { e->stats.future_undone++; return; }
    if (EF_EVENT_TYPE(*ev) != EF_EVENT_TYPE_RX_REF || efct_vi_rxpkt_get(&e->vi, ev->rx_ref.pkt_id) != peeked) {
        e->stats.future_mismatch++;
        return;
    }
    if (early != RXF_NET_OK) e->stats.future_early_rejects++;
}

/* Onload's busy-wait outline: peek at the next frame before it completes,
   look at its headers, then wait for its RX_REF with future_poll. The frame
   reaches the decoder only through that completion. */
static int future_step(rxf_efvi *e, rxf_packet *pkts, int room, uint32_t *n) {
    const uint8_t *p = efct_vi_rx_future_peek(&e->vi);
    if (p == NULL) return 0;
    e->stats.future_peeks++;
    rxf_net_verdict early = rxf_efct_early_look(p);
    ef_event evs[RXF_EFVI_MAX_EVENTS];
    int k = 0;
    for (uint32_t spins = 0; k == 0 && spins < RXF_EFCT_FUTURE_SPINS; spins++)
        k = efct_vi_rx_future_poll(&e->vi, evs, room);
    if (k <= 0) { e->stats.future_timeouts++; return 0; }  /* its completion comes through ef_eventq_poll */
    check_completion(e, &evs[0], p, early);
    for (int i = 0; i < k; i++) on_event(e, &evs[i], pkts, n);
    return k;
}

int rxf_efct_rx_burst(rxf_efvi *e, rxf_packet *pkts, uint32_t max) {
    int rc = rxf_efvi_poll_begin(e);
    if (rc) return rc;
    int want = (int)(max < RXF_EFVI_MAX_EVENTS ? max : RXF_EFVI_MAX_EVENTS);
    uint32_t n = 0;
    int nev = 0;
    if (!e->cfg.future_peek) nev = poll_events(e, pkts, want, &n);
    else {
        nev = future_step(e, pkts, want, &n);
        if (nev < want && ef_eventq_has_event(&e->vi)) nev += poll_events(e, pkts, want - nev, &n);
    }
    return rxf_efvi_poll_end(e, nev, n);
}

void rxf_efct_release(rxf_efvi *e) {
    for (int i = 0; i < e->n_held; i++) release_now(e, e->held[i]);
    e->n_held = 0;
}

void rxf_efct_release_all(rxf_efvi *e) {
    e->stats.released_on_close += (uint64_t)e->n_held;
    rxf_efct_release(e);
}
