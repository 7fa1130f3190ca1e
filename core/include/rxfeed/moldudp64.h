/*
 * MoldUDP64 downstream session tracking (NASDAQ MoldUDP64 protocol 1.00).
 *
 * Packet: session (10 bytes, alphanumeric), sequence number of the first
 * message (u64 BE), message count (u16 BE); then `count` message blocks of
 * [u16 BE length][message]. count 0 is a heartbeat (sequence = next expected),
 * 0xFFFF marks the end of the session.
 *
 * rxf_mold_accept() decides, before any message is read, what of a packet is
 * new: every sequence number is delivered at most once and in order; a jump
 * forward is a gap (reported with first missing sequence and count); what was
 * already delivered is a duplicate and skipped.
 */
#ifndef RXFEED_MOLDUDP64_H
#define RXFEED_MOLDUDP64_H

#include <stdint.h>
#include <string.h>

#define RXF_MOLD_HEADER_LEN 20u
#define RXF_MOLD_END_OF_SESSION 0xFFFFu

typedef struct rxf_mold_session {
    char session[10];
    uint8_t have_session;
    uint8_t ended;
    uint64_t initial_seq; /* expected first sequence of a session; 0: take the first seen */
    uint64_t next_seq;    /* next sequence number to deliver */
    /* counters */
    uint64_t packets, short_packets, heartbeats, end_of_session, session_changes;
    uint64_t gaps, gap_messages, duplicate_packets, duplicate_messages;
} rxf_mold_session;

typedef struct rxf_mold_verdict {
    uint64_t seq;           /* sequence number of the packet's first message      */
    uint32_t count;         /* messages in the block (0: heartbeat/end of session) */
    uint32_t skip;          /* leading messages already delivered (duplicates)     */
    uint64_t gap_first;     /* gap_count > 0: messages gap_first.. were never seen */
    uint64_t gap_count;
    uint8_t session_changed, end_of_session, heartbeat;
} rxf_mold_verdict;

static inline void rxf_mold_reset(rxf_mold_session *s) {
    s->have_session = 0;
    s->ended = 0;
    s->next_seq = 0;
}

/* 1: deliver messages [skip, count) of the block; 0: nothing to deliver;
   -1: shorter than a MoldUDP64 header (counted). */
static inline int rxf_mold_accept(rxf_mold_session *s, const uint8_t *p, uint32_t len, rxf_mold_verdict *v) {
    memset(v, 0, sizeof(*v));
    if (len < RXF_MOLD_HEADER_LEN) { s->short_packets++; return -1; }
    s->packets++;
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++) seq = (seq << 8) | p[10 + i];
    uint32_t count = ((uint32_t)p[18] << 8) | p[19];
    v->seq = seq;
    if (!s->have_session || memcmp(s->session, p, 10) != 0) {
        if (s->have_session) { s->session_changes++; v->session_changed = 1; }
        memcpy(s->session, p, 10);
        s->have_session = 1;
        s->ended = 0;
        s->next_seq = s->initial_seq ? s->initial_seq : seq;
    }
    if (count == RXF_MOLD_END_OF_SESSION) {
        s->end_of_session++;
        s->ended = 1;
        v->end_of_session = 1;
        count = 0;
    } else if (count == 0) {
        s->heartbeats++;
        v->heartbeat = 1;
    }
    if (seq > s->next_seq) {
        v->gap_first = s->next_seq;
        v->gap_count = seq - s->next_seq;
        s->gaps++;
        s->gap_messages += v->gap_count;
        s->next_seq = seq;
    }
    if (count == 0) return 0;
    if (seq + count <= s->next_seq) {
        s->duplicate_packets++;
        s->duplicate_messages += count;
        return 0;
    }
    v->skip = (uint32_t)(s->next_seq - seq);
    s->duplicate_messages += v->skip;
    v->count = count;
    s->next_seq = seq + count;
    return 1;
}

#endif
