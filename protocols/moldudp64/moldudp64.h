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
 *
 * Implausible sequence numbers (one corrupt or forged datagram must not move
 * the session): a packet whose `seq + count` does not fit in 64 bits is
 * dropped and counted (overflow_packets). A forward jump of more than
 * `max_jump` messages is not taken at once: accept() answers RXF_MOLD_HOLD,
 * the caller keeps a copy of the packet (the candidate) and passes the next
 * packet to rxf_mold_resolve() first. That packet confirms the candidate if
 * it continues from the candidate's position rather than from the session's
 * (then the session moves: the gap is reported and the caller delivers the
 * held packet and the new one, in sequence order); otherwise the candidate is
 * dropped and counted (implausible_packets) and the session stays where it
 * was. A candidate still held when the input ends or restarts is dropped the
 * same way (rxf_mold_drop_candidate), and so is one still held when accept()
 * holds another (a caller that passed a packet to accept() with a candidate
 * held): the first candidate's messages are counted, never overwritten.
 *
 * A session change is held the same way: a packet of another session becomes
 * the candidate and the next packet confirms it if it belongs to that new
 * session near the candidate's position. So one stray packet of another
 * session (or a corrupt session field) is dropped and counted, and cannot
 * make the session restart and deliver its messages a second time. The very
 * first session is taken as it comes. max_jump 0: no limit and no session
 * confirmation (every change is taken at once).
 *
 * Only sequence numbers are compared here; the caller owns the bytes.
 */
#ifndef RXFEED_MOLDUDP64_H
#define RXFEED_MOLDUDP64_H

#include <stdint.h>
#include <string.h>

#define RXF_MOLD_HEADER_LEN 20u
#define RXF_MOLD_PAST 8u       /* earlier sessions remembered (their positions) */
#define RXF_MOLD_END_OF_SESSION 0xFFFFu

/* rxf_mold_accept() results */
#define RXF_MOLD_SHORT (-1)  /* shorter than a header: counted, nothing else      */
#define RXF_MOLD_NOTHING 0   /* nothing new (duplicate, heartbeat, end of session) */
#define RXF_MOLD_DELIVER 1   /* deliver messages [skip, count) of the block       */
#define RXF_MOLD_HOLD 2      /* implausible jump: keep the packet, resolve with the next */
#define RXF_MOLD_OVERFLOW 3  /* seq + count wraps: dropped, counted               */

/* rxf_mold_resolve() results */
#define RXF_MOLD_UNDECIDED 0 /* no candidate, or the packet cannot tell (short, overflow) */
#define RXF_MOLD_CONFIRMED 1
#define RXF_MOLD_REJECTED 2

typedef struct rxf_mold_session {
    char session[10];
    uint8_t have_session;
    uint8_t have_candidate;
    uint64_t initial_seq; /* expected first sequence of a session; 0: take the first seen */
    uint64_t max_jump;    /* forward jumps beyond this wait for confirmation; 0: no limit */
    uint64_t next_seq;    /* next sequence number to deliver */
    uint64_t cand_seq;    /* the held candidate: its first sequence ...       */
    uint64_t cand_end;    /* ... and the sequence after its last message      */
    char cand_session[10];
    uint8_t cand_new_session; /* the candidate is another session's first packet */
    /* sessions left before, with the position they were left at: a session
       that comes back resumes there (never delivers a sequence twice) */
    struct { char session[10]; uint64_t next_seq; } past[RXF_MOLD_PAST];
    uint32_t n_past;
    /* counters */
    uint64_t packets, short_packets, heartbeats, end_of_session, session_changes;
    uint64_t gaps, gap_messages, duplicate_packets, duplicate_messages;
    uint64_t implausible_packets, overflow_packets, jumps_confirmed;
    uint64_t implausible_messages, overflow_messages; /* messages those packets declared */
} rxf_mold_session;

typedef struct rxf_mold_verdict {
    uint64_t seq;           /* sequence number of the packet's first message      */
    uint32_t count;         /* messages in the block (0: heartbeat/end of session) */
    uint32_t skip;          /* leading messages already delivered (duplicates)     */
    uint64_t gap_first;     /* gap_count > 0: messages gap_first.. were never seen */
    uint64_t gap_count;
    uint8_t session_changed, end_of_session;
    uint8_t packet_first;   /* CONFIRMED: the new packet comes before the held one */
} rxf_mold_verdict;

/* A MoldUDP64 request packet (client -> re-request server): session (10),
   sequence of the first message wanted (u64 BE), message count (u16 BE).
   Writes RXF_MOLD_HEADER_LEN bytes to out and returns that length. */
static inline uint32_t rxf_mold_request(uint8_t *out, const char *session, uint64_t seq, uint16_t count) {
    memcpy(out, session, 10);
    for (int i = 0; i < 8; i++) out[10 + i] = (uint8_t)(seq >> (56 - 8 * i));
    out[18] = (uint8_t)(count >> 8);
    out[19] = (uint8_t)count;
    return RXF_MOLD_HEADER_LEN;
}

/* Header fields; 0 if shorter than a header. */
static inline int rxf_mold_header(const uint8_t *p, uint32_t len, uint64_t *seq, uint32_t *count) {
    if (len < RXF_MOLD_HEADER_LEN) return 0;
    uint64_t s = 0;
    for (int i = 0; i < 8; i++) s = (s << 8) | p[10 + i];
    *seq = s;
    *count = ((uint32_t)p[18] << 8) | p[19];
    return 1;
}

/* Do `count` message blocks ([u16 BE length][message]) fit in the packet,
   exactly, after the header? (Checked on a re-request answer before it is
   offered: a malformed answer is refused, not half delivered.) */
static inline int rxf_mold_blocks_fit(const uint8_t *p, uint32_t len, uint32_t count) {
    uint32_t off = RXF_MOLD_HEADER_LEN;
    for (uint32_t i = 0; i < count; i++) {
        if (off + 2 > len) return 0;
        uint32_t m = ((uint32_t)p[off] << 8) | p[off + 1];
        if (m > len - off - 2) return 0;
        off += 2 + m;
    }
    return off == len;
}

/* Messages in a block (0 for heartbeat and end of session). */
static inline uint32_t rxf_mold_messages(uint32_t count) {
    return count == RXF_MOLD_END_OF_SESSION ? 0 : count;
}

/* Is `seq` within `limit` messages ahead of `from` (anything behind is)? */
static inline int rxf_mold_near(uint64_t from, uint64_t seq, uint64_t limit) {
    return seq <= from || seq - from <= limit;
}

/* Drop a held candidate (counted as implausible). 1 if there was one. */
static inline int rxf_mold_drop_candidate(rxf_mold_session *s) {
    if (!s->have_candidate) return 0;
    s->have_candidate = 0;
    s->implausible_packets++;
    s->implausible_messages += s->cand_end - s->cand_seq;
    return 1;
}

static inline void rxf_mold_reset(rxf_mold_session *s) {
    s->have_session = 0;
    s->have_candidate = 0;
    s->next_seq = 0;
    s->n_past = 0;
}

/* The slot of `session` among the sessions left before, or of the oldest. */
static inline uint32_t rxf_mold_past_slot(const rxf_mold_session *s, const char *session, int *found) {
    uint32_t n = s->n_past < RXF_MOLD_PAST ? s->n_past : RXF_MOLD_PAST;
    for (uint32_t i = 0; i < n; i++)
        if (memcmp(s->past[i].session, session, 10) == 0) { *found = 1; return i; }
    *found = 0;
    return s->n_past % RXF_MOLD_PAST;
}

/* Switch to `session`: the one left is remembered with its position; a
   session seen before resumes at its position, a new one starts at
   initial_seq (or at first_seq when that is 0). */
static inline void rxf_mold_start_session(rxf_mold_session *s, const char *session, uint64_t first_seq) {
    int found;
    if (s->have_session) {
        uint32_t i = rxf_mold_past_slot(s, s->session, &found);
        if (!found) s->n_past++;
        memcpy(s->past[i].session, s->session, 10);
        s->past[i].next_seq = s->next_seq;
    }
    uint32_t j = rxf_mold_past_slot(s, session, &found);
    memcpy(s->session, session, 10);
    s->have_session = 1;
    s->have_candidate = 0;
    s->next_seq = found ? s->past[j].next_seq : s->initial_seq ? s->initial_seq : first_seq;
}

static inline void rxf_mold_gap(rxf_mold_session *s, uint64_t to, rxf_mold_verdict *v) {
    v->gap_first = s->next_seq;
    v->gap_count = to - s->next_seq;
    s->gaps++;
    s->gap_messages += v->gap_count;
    s->next_seq = to;
}

/* Keep a packet as the candidate (the caller keeps its bytes). One held
   already (a packet passed to accept() instead of resolve()) is dropped and
   counted first: no message goes unaccounted for. */
static inline int rxf_mold_hold(rxf_mold_session *s, const uint8_t *p, uint64_t seq, uint32_t count,
                                int new_session) {
    rxf_mold_drop_candidate(s);
    s->have_candidate = 1;
    s->cand_new_session = (uint8_t)new_session;
    memcpy(s->cand_session, p, 10);
    s->cand_seq = seq;
    s->cand_end = seq + count;
    return RXF_MOLD_HOLD;
}

/* A held first packet of another session, decided by the packet after it:
   confirmed when that packet is of the same new session and near it (the
   session changes; both packets are then passed to accept()). */
static inline int rxf_mold_resolve_session(rxf_mold_session *s, const uint8_t *p, uint64_t seq,
                                           rxf_mold_verdict *v) {
    int follows = memcmp(s->cand_session, p, 10) == 0
                  && rxf_mold_near(seq, s->cand_seq, s->max_jump)
                  && rxf_mold_near(s->cand_end, seq, s->max_jump);
    if (!follows) {
        rxf_mold_drop_candidate(s);
        return RXF_MOLD_REJECTED;
    }
    uint64_t first = seq < s->cand_seq ? seq : s->cand_seq;
    s->session_changes++;
    v->session_changed = 1;
    rxf_mold_start_session(s, s->cand_session, first);
    v->packet_first = seq < s->cand_seq;
    if (first > s->next_seq) rxf_mold_gap(s, first, v);
    return RXF_MOLD_CONFIRMED;
}

/* With a candidate held, decide it by the packet that follows it. CONFIRMED:
   the session moved to the earlier of the two packets (v->gap_* is the gap,
   v->packet_first says which to deliver first; pass both to accept()).
   REJECTED: the candidate was dropped and counted; pass p to accept(). */
static inline int rxf_mold_resolve(rxf_mold_session *s, const uint8_t *p, uint32_t len, rxf_mold_verdict *v) {
    uint64_t seq;
    uint32_t count;
    memset(v, 0, sizeof(*v));
    if (!s->have_candidate || !rxf_mold_header(p, len, &seq, &count)) return RXF_MOLD_UNDECIDED;
    if (rxf_mold_messages(count) > UINT64_MAX - seq) return RXF_MOLD_UNDECIDED;
    if (s->cand_new_session) return rxf_mold_resolve_session(s, p, seq, v);
    int follows = memcmp(s->session, p, 10) == 0
                  && !rxf_mold_near(s->next_seq, seq, s->max_jump)        /* not the old position */
                  && rxf_mold_near(seq, s->cand_seq, s->max_jump)         /* near the candidate   */
                  && rxf_mold_near(s->cand_end, seq, s->max_jump);
    if (!follows) {
        rxf_mold_drop_candidate(s);
        return RXF_MOLD_REJECTED;
    }
    s->have_candidate = 0;
    s->jumps_confirmed++;
    v->packet_first = seq < s->cand_seq;
    rxf_mold_gap(s, v->packet_first ? seq : s->cand_seq, v);
    return RXF_MOLD_CONFIRMED;
}

/* What of a packet is new (RXF_MOLD_* above). v->seq/count/skip are set for
   every packet with a header. */
static inline int rxf_mold_accept(rxf_mold_session *s, const uint8_t *p, uint32_t len, rxf_mold_verdict *v) {
    uint64_t seq;
    uint32_t raw_count;
    memset(v, 0, sizeof(*v));
    if (!rxf_mold_header(p, len, &seq, &raw_count)) { s->short_packets++; return RXF_MOLD_SHORT; }
    uint32_t count = rxf_mold_messages(raw_count);
    v->seq = seq;
    v->count = count;
    v->skip = count;
    if (count > UINT64_MAX - seq) { s->overflow_packets++; s->overflow_messages += count; return RXF_MOLD_OVERFLOW; }
    int other_session = s->have_session && memcmp(s->session, p, 10) != 0;
    if (s->max_jump && other_session) return rxf_mold_hold(s, p, seq, count, 1);
    if (!s->have_session || other_session) {
        if (other_session) { s->session_changes++; v->session_changed = 1; }
        rxf_mold_start_session(s, (const char *)p, seq);
    }
    if (s->max_jump && !rxf_mold_near(s->next_seq, seq, s->max_jump)) return rxf_mold_hold(s, p, seq, count, 0);
    s->packets++;
    if (raw_count == RXF_MOLD_END_OF_SESSION) {
        s->end_of_session++;
        v->end_of_session = 1;
    } else if (count == 0) {
        s->heartbeats++;
    }
    if (seq > s->next_seq) rxf_mold_gap(s, seq, v);
    if (count == 0) return RXF_MOLD_NOTHING;
    if (seq + count <= s->next_seq) {
        s->duplicate_packets++;
        s->duplicate_messages += count;
        return RXF_MOLD_NOTHING;
    }
    v->skip = (uint32_t)(s->next_seq - seq);
    s->duplicate_messages += v->skip;
    s->next_seq = seq + count;
    return RXF_MOLD_DELIVER;
}

#endif
