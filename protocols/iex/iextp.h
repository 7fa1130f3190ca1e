/*
 * IEX-TP downstream session tracking (Investors Exchange "Transport
 * Specification", IEX-TP version 1, document version 1.26 of June 2, 2026).
 *
 * Outbound segment (all fields little endian): a 40-byte header
 *     0 version u8 (1)         1 reserved u8          2 message protocol id u16
 *     4 channel id u32         8 session id u32      12 payload length u16
 *    14 message count u16     16 stream offset i64   24 first message sequence number i64
 *    32 send time i64 (ns since the POSIX epoch, UTC)
 * then the payload: `message count` message blocks of [u16 length][message].
 * Message protocol ids (the feed specifications' "Protocol Identification on
 * IEX-TP"): TOPS 1.6 0x8003 (TOPS 1.5 was 0x8002), DEEP 1.0 0x8004,
 * DEEP+ 1.0 0x8005. A heartbeat (sent after one second without messages) has
 * message count 0 and payload length 0, the next message's sequence number
 * and the next byte's stream offset.
 *
 * rxf_iextp_parse() checks every length before anything else is read:
 * payload length must equal the datagram length - 40 (more: a truncated
 * segment; less: trailing bytes), and exactly `message count` blocks must fill
 * the payload (a block running past it, or bytes left over, is a count that
 * disagrees with the payload). Such a segment is refused as a whole and
 * counted; none of its messages is delivered.
 *
 * rxf_iextp_accept() then decides, like the MoldUDP64 session layer
 * (protocols/moldudp64/moldudp64.h, whose ideas it reuses), what of a
 * segment is new: every sequence number of a session is delivered at most
 * once and in order; a jump forward is a gap (first missing sequence and
 * count); what was delivered already is a duplicate and skipped. A segment of
 * another protocol id or channel id than configured is another stream:
 * dropped and counted (DEEP+ has up to 16 channels, one tracker each).
 *
 * Implausible positions are held and confirmed (max_jump as for MoldUDP64):
 * a forward jump of more than max_jump messages, or a segment of another
 * session id, is kept by the caller as the candidate and decided by the next
 * segment (rxf_iextp_resolve): confirmed if that one continues from the
 * candidate, else the candidate is dropped and counted (implausible_packets).
 * Sessions left are remembered (RXF_IEXTP_PAST) and resume where they were.
 *
 * Sequence restart at 1 within one session id: the specification says a
 * message "is uniquely identified within a message protocol by its Session ID
 * and Sequence Number", so a session id never reuses a sequence number and
 * the specification describes no restart. One that happens anyway is a reset
 * event: a segment of the current session whose first sequence is 1, behind
 * the position, sent later than anything seen in the session (a late copy of
 * the session's first segment carries its old send time), is held and
 * confirmed by the next segment (same session, continuing from the candidate,
 * still behind the old position, sent no earlier): then the session restarts
 * at 1 (`restarts`, v->restarted) and both are delivered. Otherwise the
 * candidate is dropped (implausible). This confirmation is asked even with
 * max_jump 0: without it one stray old segment would deliver the session again.
 *
 * Stream offset: the byte offset of the segment's payload in the session's
 * stream of message blocks, so the next segment's offset is this one's plus
 * its payload length, however the A/B lines aggregate messages. Checked for
 * every segment that brings something new: at the position it must be equal;
 * after a gap of n messages it must be at least n * 2 bytes further (a block
 * is at least its length field); a segment overlapping what was delivered
 * must place its first new block exactly there. A mismatch is counted
 * (offset_mismatches, v->offset_mismatch) and the expected offset resyncs to
 * the segment. It means the session's byte stream and its sequence numbers
 * disagree: bytes were lost or added without their sequence numbers (a
 * corrupt or forged header, a sender fault, a reset without a new session
 * id); delivery still follows the sequence numbers, but messages and byte
 * offsets of this session can no longer both be trusted (a bytestream gap
 * fill request would ask for the wrong bytes).
 *
 * Gap fill: the specification describes re-request by unicast Gap Fill
 * Request (UDP or TCP) to the feed's Gap Fill Servers; the answer is standard
 * outbound segments of the current session (earlier sessions cannot be
 * requested). TOPS 1.66, DEEP 1.08 and DEEP+ 1.04 support TCP and UDP with
 * Request Type "Sequenced Messages" and answer at most 1,000 messages per UDP
 * request. rxf_iextp_request() builds such a request (one range) and
 * rxf_iextp_test_request() the UDP Gap Fill Test Request (no range: the
 * answer is a heartbeat-like segment).
 *
 * For rxfeed's sequencer (core rxfeed/recovery.h), a segment of the current
 * session is a block (first sequence, message count, bytes):
 * rxf_iextp_seq_block().
 *
 * Only headers are compared here; the caller owns the bytes (and keeps a copy
 * of a held candidate).
 */
#ifndef RXFEED_IEXTP_H
#define RXFEED_IEXTP_H

#include <stdint.h>
#include <string.h>

#include "rxfeed/sequencer.h"

#define RXF_IEXTP_HEADER_LEN 40u
#define RXF_IEXTP_VERSION 1u
#define RXF_IEXTP_PROTOCOL_TOPS 0x8003u
#define RXF_IEXTP_PROTOCOL_DEEP 0x8004u
#define RXF_IEXTP_PROTOCOL_DEEP_PLUS 0x8005u
#define RXF_IEXTP_PAST 8u                   /* earlier sessions remembered (their positions) */
#define RXF_IEXTP_REQUEST_HEADER_LEN 16u    /* Gap Fill Request header */
#define RXF_IEXTP_REQUEST_RANGE_LEN 16u     /* one Request Range Block */
#define RXF_IEXTP_REQUEST_SEQUENCED 1u      /* Request Type: Sequenced Messages */
#define RXF_IEXTP_REQUEST_BYTESTREAM 2u     /* Request Type: Bytestream */
#define RXF_IEXTP_UDP_MAX_MESSAGES 1000u    /* Maximum UDP Retransmission Response of TOPS, DEEP, DEEP+ */

/* rxf_iextp_parse() results (a refused segment is counted by its reason) */
#define RXF_IEXTP_OK 0
#define RXF_IEXTP_E_SHORT 1     /* shorter than a header                          */
#define RXF_IEXTP_E_VERSION 2   /* version is not 1                               */
#define RXF_IEXTP_E_TRUNCATED 3 /* payload length > bytes after the header        */
#define RXF_IEXTP_E_TRAILING 4  /* payload length < bytes after the header        */
#define RXF_IEXTP_E_BLOCKS 5    /* message count disagrees with the blocks        */
#define RXF_IEXTP_E_SEQUENCE 6  /* sequence < 1, offset < 0, or seq + count overflows */

/* rxf_iextp_accept() results */
#define RXF_IEXTP_MALFORMED (-1) /* refused by rxf_iextp_parse: counted, nothing else */
#define RXF_IEXTP_NOTHING 0      /* nothing new (duplicate, heartbeat)                */
#define RXF_IEXTP_DELIVER 1      /* deliver messages [skip, count) of the segment     */
#define RXF_IEXTP_HOLD 2         /* keep the segment, resolve with the next one       */
#define RXF_IEXTP_OTHER 3        /* another protocol id or channel id: dropped        */

/* rxf_iextp_resolve() results */
#define RXF_IEXTP_UNDECIDED 0 /* no candidate, or the segment cannot tell (malformed, other stream) */
#define RXF_IEXTP_CONFIRMED 1
#define RXF_IEXTP_REJECTED 2

/* what a held candidate is */
#define RXF_IEXTP_CAND_JUMP 1
#define RXF_IEXTP_CAND_SESSION 2
#define RXF_IEXTP_CAND_RESTART 3

typedef struct rxf_iextp_header {
    uint8_t version, reserved;
    uint16_t protocol_id;
    uint32_t channel_id, session_id;
    uint16_t payload_len, message_count;
    int64_t stream_offset, first_seq, send_time_ns;
} rxf_iextp_header;

typedef struct rxf_iextp_position {
    uint32_t session_id;
    uint8_t offset_known;
    uint64_t next_seq, next_offset;
    int64_t last_send_ns;
} rxf_iextp_position;

typedef struct rxf_iextp_session {
    /* configuration */
    uint16_t protocol_id; /* the stream's message protocol id; 0: any */
    uint32_t channel_id;  /* the stream's channel id; 0: any          */
    uint64_t initial_seq; /* expected first sequence of a session; 0: take the first seen */
    uint64_t max_jump;    /* forward jumps beyond this wait for confirmation; 0: no limit */
    /* state */
    uint8_t have_session, have_candidate, offset_known;
    uint32_t session_id;
    uint64_t next_seq;    /* next sequence number to deliver                     */
    uint64_t next_offset; /* stream offset expected of that message's block      */
    int64_t last_send_ns; /* latest send time seen in the session                */
    uint8_t cand_kind;
    uint32_t cand_session;
    uint64_t cand_seq, cand_end; /* the held candidate's first sequence and the one after its last */
    int64_t cand_send_ns;
    rxf_iextp_position past[RXF_IEXTP_PAST];
    uint32_t n_past;
    /* counters: segments taken, and why others were not */
    uint64_t packets, heartbeats, session_changes, restarts, jumps_confirmed;
    uint64_t gaps, gap_messages, duplicate_packets, duplicate_messages;
    uint64_t implausible_packets, implausible_messages, offset_mismatches, other_stream;
    uint64_t short_packets, bad_version, truncated, trailing_bytes, count_mismatch, bad_sequence;
    uint64_t malformed_messages; /* messages declared by refused segments with a whole header */
} rxf_iextp_session;

typedef struct rxf_iextp_verdict {
    rxf_iextp_header h;   /* the segment's header (when it has one)              */
    uint64_t seq;         /* sequence number of its first message                */
    uint32_t count;       /* its messages (0: heartbeat)                         */
    uint32_t skip;        /* leading messages already delivered (duplicates)     */
    uint32_t skip_bytes;  /* payload bytes of those: the first new block is at 40 + skip_bytes */
    uint64_t gap_first;   /* gap_count > 0: messages gap_first.. were never seen */
    uint64_t gap_count;
    uint8_t session_changed, restarted, offset_mismatch;
    uint8_t packet_first; /* CONFIRMED: the new segment comes before the held one */
} rxf_iextp_verdict;

static inline uint16_t rxf_iextp_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t rxf_iextp_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t rxf_iextp_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline void rxf_iextp_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static inline void rxf_iextp_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline void rxf_iextp_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* The header fields of p (len >= RXF_IEXTP_HEADER_LEN). */
static inline void rxf_iextp_read_header(const uint8_t *p, rxf_iextp_header *h) {
    h->version = p[0];
    h->reserved = p[1];
    h->protocol_id = rxf_iextp_u16(p + 2);
    h->channel_id = rxf_iextp_u32(p + 4);
    h->session_id = rxf_iextp_u32(p + 8);
    h->payload_len = rxf_iextp_u16(p + 12);
    h->message_count = rxf_iextp_u16(p + 14);
    h->stream_offset = (int64_t)rxf_iextp_u64(p + 16);
    h->first_seq = (int64_t)rxf_iextp_u64(p + 24);
    h->send_time_ns = (int64_t)rxf_iextp_u64(p + 32);
}

/* Do exactly `count` message blocks fill the payload [40, len)? */
static inline int rxf_iextp_blocks_fit(const uint8_t *p, uint32_t len, uint32_t count) {
    uint32_t off = RXF_IEXTP_HEADER_LEN;
    if (len < off) return 0;
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < 2) return 0;
        uint32_t m = rxf_iextp_u16(p + off);
        if (m > len - off - 2) return 0;
        off += 2 + m;
    }
    return off == len;
}

/* Check a whole segment (RXF_IEXTP_OK or the reason it is refused); h is
   filled whenever the segment has a whole header. */
static inline int rxf_iextp_parse(const uint8_t *p, uint32_t len, rxf_iextp_header *h) {
    memset(h, 0, sizeof *h);
    if (len < RXF_IEXTP_HEADER_LEN) return RXF_IEXTP_E_SHORT;
    rxf_iextp_read_header(p, h);
    if (h->version != RXF_IEXTP_VERSION) return RXF_IEXTP_E_VERSION;
    if (h->payload_len > len - RXF_IEXTP_HEADER_LEN) return RXF_IEXTP_E_TRUNCATED;
    if (h->payload_len < len - RXF_IEXTP_HEADER_LEN) return RXF_IEXTP_E_TRAILING;
    if (!rxf_iextp_blocks_fit(p, len, h->message_count)) return RXF_IEXTP_E_BLOCKS;
    if (h->first_seq < 1 || h->stream_offset < 0 || h->message_count > INT64_MAX - h->first_seq)
        return RXF_IEXTP_E_SEQUENCE;
    return RXF_IEXTP_OK;
}

/* Payload bytes of the first n blocks of a parsed segment (n <= its count). */
static inline uint32_t rxf_iextp_skip_bytes(const uint8_t *p, uint32_t n) {
    uint32_t off = RXF_IEXTP_HEADER_LEN;
    for (uint32_t i = 0; i < n; i++) off += 2 + rxf_iextp_u16(p + off);
    return off - RXF_IEXTP_HEADER_LEN;
}

/* The message whose block starts at *off in a parsed segment: sets *msg and
   *msg_len and moves *off to the next block. 0 past the payload's end. */
static inline int rxf_iextp_next_message(const uint8_t *p, uint32_t len, uint32_t *off, const uint8_t **msg,
                                         uint32_t *msg_len) {
    if (*off > len || len - *off < 2) return 0;
    uint32_t m = rxf_iextp_u16(p + *off);
    if (m > len - *off - 2) return 0;
    *msg = p + *off + 2;
    *msg_len = m;
    *off += 2 + m;
    return 1;
}

/* Count a refused segment by its reason (and the messages it declared). */
static inline void rxf_iextp_count_malformed(rxf_iextp_session *s, int why, const rxf_iextp_header *h) {
    switch (why) {
    case RXF_IEXTP_E_SHORT: s->short_packets++; return;
    case RXF_IEXTP_E_VERSION: s->bad_version++; break;
    case RXF_IEXTP_E_TRUNCATED: s->truncated++; break;
    case RXF_IEXTP_E_TRAILING: s->trailing_bytes++; break;
    case RXF_IEXTP_E_BLOCKS: s->count_mismatch++; break;
    default: s->bad_sequence++; break;
    }
    s->malformed_messages += h->message_count;
}

/* Is the segment of the configured stream (protocol id, channel id)? */
static inline int rxf_iextp_in_stream(const rxf_iextp_session *s, const rxf_iextp_header *h) {
    return (!s->protocol_id || h->protocol_id == s->protocol_id) && (!s->channel_id || h->channel_id == s->channel_id);
}

/* Is `seq` within `limit` messages ahead of `from` (anything behind is)? 0: no limit. */
static inline int rxf_iextp_near(uint64_t from, uint64_t seq, uint64_t limit) {
    return !limit || seq <= from || seq - from <= limit;
}

/* Could the segment be the session restarting at 1 (see the top)? */
static inline int rxf_iextp_restart_suspect(const rxf_iextp_session *s, const rxf_iextp_header *h) {
    return s->have_session && h->session_id == s->session_id && h->first_seq == 1 && s->next_seq > 1
           && h->send_time_ns > s->last_send_ns;
}

/* Drop a held candidate (counted as implausible). 1 if there was one. */
static inline int rxf_iextp_drop_candidate(rxf_iextp_session *s) {
    if (!s->have_candidate) return 0;
    s->have_candidate = 0;
    s->implausible_packets++;
    s->implausible_messages += s->cand_end - s->cand_seq;
    return 1;
}

static inline void rxf_iextp_reset(rxf_iextp_session *s) {
    s->have_session = s->have_candidate = s->offset_known = 0;
    s->next_seq = s->next_offset = 0;
    s->last_send_ns = 0;
    s->n_past = 0;
}

/* The slot of `session_id` among the sessions left before, or of the oldest. */
static inline uint32_t rxf_iextp_past_slot(const rxf_iextp_session *s, uint32_t session_id, int *found) {
    uint32_t n = s->n_past < RXF_IEXTP_PAST ? s->n_past : RXF_IEXTP_PAST;
    for (uint32_t i = 0; i < n; i++)
        if (s->past[i].session_id == session_id) { *found = 1; return i; }
    *found = 0;
    return s->n_past % RXF_IEXTP_PAST;
}

/* Switch to `session_id`: the one left is remembered with its position; one
   seen before resumes there, a new one starts at initial_seq (or first_seq
   when that is 0) with its stream offset not yet known. */
static inline void rxf_iextp_start_session(rxf_iextp_session *s, uint32_t session_id, uint64_t first_seq) {
    int found;
    if (s->have_session) {
        uint32_t i = rxf_iextp_past_slot(s, s->session_id, &found);
        if (!found) s->n_past++;
        rxf_iextp_position here = {s->session_id, s->offset_known, s->next_seq, s->next_offset, s->last_send_ns};
        s->past[i] = here;
    }
    uint32_t j = rxf_iextp_past_slot(s, session_id, &found);
    s->session_id = session_id;
    s->have_session = 1;
    s->have_candidate = 0;
    s->last_send_ns = found ? s->past[j].last_send_ns : INT64_MIN;
    s->next_seq = found ? s->past[j].next_seq : s->initial_seq ? s->initial_seq : first_seq;
    s->next_offset = found ? s->past[j].next_offset : 0;
    s->offset_known = found ? s->past[j].offset_known : 0;
}

static inline void rxf_iextp_gap(rxf_iextp_session *s, uint64_t to, rxf_iextp_verdict *v) {
    v->gap_first = s->next_seq;
    v->gap_count = to - s->next_seq;
    s->gaps++;
    s->gap_messages += v->gap_count;
    s->next_seq = to;
}

/* A gap decided by resolve(): the held segment is taken after it without an
   offset check (the lost bytes are unknown; its own offset becomes the reference). */
static inline void rxf_iextp_confirmed_gap(rxf_iextp_session *s, uint64_t to, rxf_iextp_verdict *v) {
    rxf_iextp_gap(s, to, v);
    s->offset_known = 0;
}

/* Keep a segment as the candidate (the caller keeps its bytes). One held
   already (a segment passed to accept() instead of resolve()) is dropped and
   counted first: no message goes unaccounted for. */
static inline int rxf_iextp_hold(rxf_iextp_session *s, const rxf_iextp_header *h, int kind) {
    rxf_iextp_drop_candidate(s);
    s->have_candidate = 1;
    s->cand_kind = (uint8_t)kind;
    s->cand_session = h->session_id;
    s->cand_seq = (uint64_t)h->first_seq;
    s->cand_end = (uint64_t)h->first_seq + h->message_count;
    s->cand_send_ns = h->send_time_ns;
    return RXF_IEXTP_HOLD;
}

/* Does the segment's stream offset agree with the session's byte position?
   Called before the position moves, for segments that bring something new
   (or a heartbeat at or ahead of the position). */
static inline int rxf_iextp_offset_ok(const rxf_iextp_session *s, const rxf_iextp_verdict *v) {
    uint64_t offset = (uint64_t)v->h.stream_offset;
    if (v->seq == s->next_seq) return offset == s->next_offset;
    if (v->seq > s->next_seq) { /* n lost messages: at least n * 2 bytes */
        uint64_t missing = v->seq - s->next_seq;
        return offset >= s->next_offset && (offset - s->next_offset) / 2 >= missing;
    }
    return offset + v->skip_bytes == s->next_offset; /* overlapping what was delivered */
}

static inline void rxf_iextp_check_offset(rxf_iextp_session *s, rxf_iextp_verdict *v) {
    int brings_new = v->count ? v->seq + v->count > s->next_seq : v->seq >= s->next_seq;
    if (!brings_new) return;
    if (s->offset_known && !rxf_iextp_offset_ok(s, v)) {
        s->offset_mismatches++;
        v->offset_mismatch = 1;
    }
    s->offset_known = 1;
    s->next_offset = (uint64_t)v->h.stream_offset + v->h.payload_len;
}

/* A segment of the current session at a plausible position: what is new. */
static inline int rxf_iextp_take(rxf_iextp_session *s, const uint8_t *p, rxf_iextp_verdict *v) {
    s->packets++;
    if (v->h.send_time_ns > s->last_send_ns) s->last_send_ns = v->h.send_time_ns;
    if (v->count == 0) s->heartbeats++;
    if (v->seq >= s->next_seq) {
        v->skip = 0;
    } else if (v->seq + v->count > s->next_seq) { /* overlaps what was delivered */
        v->skip = (uint32_t)(s->next_seq - v->seq);
        v->skip_bytes = rxf_iextp_skip_bytes(p, v->skip);
    }
    rxf_iextp_check_offset(s, v);
    if (v->seq > s->next_seq) rxf_iextp_gap(s, v->seq, v);
    if (v->count == 0) return RXF_IEXTP_NOTHING;
    if (v->seq + v->count <= s->next_seq) {
        s->duplicate_packets++;
        s->duplicate_messages += v->count;
        return RXF_IEXTP_NOTHING;
    }
    s->duplicate_messages += v->skip;
    s->next_seq = v->seq + v->count;
    return RXF_IEXTP_DELIVER;
}

/* What of a segment is new (RXF_IEXTP_* above). v->h, seq, count and skip
   are set for every segment that passes rxf_iextp_parse(). */
static inline int rxf_iextp_accept(rxf_iextp_session *s, const uint8_t *p, uint32_t len, rxf_iextp_verdict *v) {
    memset(v, 0, sizeof *v);
    int why = rxf_iextp_parse(p, len, &v->h);
    if (why != RXF_IEXTP_OK) { rxf_iextp_count_malformed(s, why, &v->h); return RXF_IEXTP_MALFORMED; }
    if (!rxf_iextp_in_stream(s, &v->h)) { s->other_stream++; return RXF_IEXTP_OTHER; }
    v->seq = (uint64_t)v->h.first_seq;
    v->count = v->h.message_count;
    v->skip = v->count;
    int other_session = s->have_session && v->h.session_id != s->session_id;
    if (s->max_jump && other_session) return rxf_iextp_hold(s, &v->h, RXF_IEXTP_CAND_SESSION);
    if (!s->have_session || other_session) {
        if (other_session) { s->session_changes++; v->session_changed = 1; }
        rxf_iextp_start_session(s, v->h.session_id, v->seq);
    }
    if (rxf_iextp_restart_suspect(s, &v->h)) return rxf_iextp_hold(s, &v->h, RXF_IEXTP_CAND_RESTART);
    if (!rxf_iextp_near(s->next_seq, v->seq, s->max_jump)) return rxf_iextp_hold(s, &v->h, RXF_IEXTP_CAND_JUMP);
    return rxf_iextp_take(s, p, v);
}

/* A held first segment of another session, decided by the segment after it. */
static inline int rxf_iextp_resolve_session(rxf_iextp_session *s, rxf_iextp_verdict *v, uint64_t seq) {
    int follows = v->h.session_id == s->cand_session && rxf_iextp_near(seq, s->cand_seq, s->max_jump)
                  && rxf_iextp_near(s->cand_end, seq, s->max_jump);
    if (!follows) { rxf_iextp_drop_candidate(s); return RXF_IEXTP_REJECTED; }
    uint64_t first = seq < s->cand_seq ? seq : s->cand_seq;
    s->session_changes++;
    v->session_changed = 1;
    rxf_iextp_start_session(s, s->cand_session, first);
    v->packet_first = seq < s->cand_seq;
    if (first > s->next_seq) rxf_iextp_confirmed_gap(s, first, v);
    return RXF_IEXTP_CONFIRMED;
}

/* A held restart at 1, decided by the segment after it: it must continue from
   the candidate, still behind the old position, sent no earlier. */
static inline int rxf_iextp_resolve_restart(rxf_iextp_session *s, rxf_iextp_verdict *v, uint64_t seq) {
    int follows = v->h.session_id == s->session_id && seq >= s->cand_seq && seq < s->next_seq
                  && rxf_iextp_near(s->cand_end, seq, s->max_jump) && v->h.send_time_ns >= s->cand_send_ns;
    if (!follows) { rxf_iextp_drop_candidate(s); return RXF_IEXTP_REJECTED; }
    s->have_candidate = 0;
    s->restarts++;
    v->restarted = 1;
    s->next_seq = s->cand_seq;
    s->offset_known = 0; /* the restarted stream's bytes: from the held segment on */
    s->last_send_ns = INT64_MIN;
    return RXF_IEXTP_CONFIRMED;
}

/* A held forward jump, decided by the segment after it. */
static inline int rxf_iextp_resolve_jump(rxf_iextp_session *s, rxf_iextp_verdict *v, uint64_t seq) {
    int follows = v->h.session_id == s->session_id
                  && !rxf_iextp_near(s->next_seq, seq, s->max_jump)  /* not the old position */
                  && rxf_iextp_near(seq, s->cand_seq, s->max_jump)   /* near the candidate   */
                  && rxf_iextp_near(s->cand_end, seq, s->max_jump);
    if (!follows) { rxf_iextp_drop_candidate(s); return RXF_IEXTP_REJECTED; }
    s->have_candidate = 0;
    s->jumps_confirmed++;
    v->packet_first = seq < s->cand_seq;
    rxf_iextp_confirmed_gap(s, v->packet_first ? seq : s->cand_seq, v);
    return RXF_IEXTP_CONFIRMED;
}

/* With a candidate held, decide it by the segment that follows it.
   CONFIRMED: the session moved (v->gap_* is the gap, v->session_changed /
   v->restarted say why, v->packet_first which of the two comes first); the
   candidate is released: take both in that order as if they had just
   arrived (the first through accept(); the second through resolve() if the
   first was held again, e.g. a restart of a session that resumed, else
   through accept()). REJECTED: the candidate was dropped and counted; pass p
   to accept(). UNDECIDED: pass p to accept() (it counts what is wrong). */
static inline int rxf_iextp_resolve(rxf_iextp_session *s, const uint8_t *p, uint32_t len, rxf_iextp_verdict *v) {
    memset(v, 0, sizeof *v);
    if (!s->have_candidate || rxf_iextp_parse(p, len, &v->h) != RXF_IEXTP_OK || !rxf_iextp_in_stream(s, &v->h))
        return RXF_IEXTP_UNDECIDED;
    uint64_t seq = (uint64_t)v->h.first_seq;
    if (s->cand_kind == RXF_IEXTP_CAND_SESSION) return rxf_iextp_resolve_session(s, v, seq);
    if (s->cand_kind == RXF_IEXTP_CAND_RESTART) return rxf_iextp_resolve_restart(s, v, seq);
    return rxf_iextp_resolve_jump(s, v, seq);
}

/* The sequencer's view of a segment: 1 and b filled (first, count, len,
   data; the caller sets rx_ns and line) when it is a whole segment of the
   configured stream and the current session, no candidate is held, it is not
   a suspected restart, and it is within max_jump of `head` (the furthest
   sequence the sequencer has seen). Anything else goes to accept() directly. */
static inline int rxf_iextp_seq_block(const rxf_iextp_session *s, const uint8_t *p, uint32_t len, uint64_t head,
                                      rxf_seq_block *b) {
    rxf_iextp_header h;
    if (s->have_candidate || !s->have_session || rxf_iextp_parse(p, len, &h) != RXF_IEXTP_OK) return 0;
    if (!rxf_iextp_in_stream(s, &h) || h.session_id != s->session_id || rxf_iextp_restart_suspect(s, &h)) return 0;
    if (!rxf_iextp_near(head, (uint64_t)h.first_seq, s->max_jump)) return 0;
    b->first = (uint64_t)h.first_seq;
    b->count = h.message_count;
    b->len = len;
    b->data = p;
    b->rx_ns = 0;
    b->line = 0;
    return 1;
}

/* The Gap Fill Request header (16 bytes) into out. */
static inline void rxf_iextp_request_header(uint8_t *out, uint16_t protocol_id, uint32_t channel_id,
                                            uint32_t session_id, uint32_t ranges) {
    out[0] = RXF_IEXTP_VERSION;
    out[1] = RXF_IEXTP_REQUEST_SEQUENCED;
    rxf_iextp_put_u16(out + 2, protocol_id);
    rxf_iextp_put_u32(out + 4, channel_id);
    rxf_iextp_put_u32(out + 8, session_id);
    rxf_iextp_put_u32(out + 12, ranges);
}

/* A Gap Fill Request (Sequenced Messages) for messages [first, first + count)
   of a session: its length (32), or 0 when out is too small or the range is
   empty or not representable (the range block is inclusive: first .. last). */
static inline uint32_t rxf_iextp_request(uint8_t *out, uint32_t cap, uint16_t protocol_id, uint32_t channel_id,
                                         uint32_t session_id, uint64_t first, uint64_t count) {
    uint32_t n = RXF_IEXTP_REQUEST_HEADER_LEN + RXF_IEXTP_REQUEST_RANGE_LEN;
    if (cap < n || count == 0 || first < 1 || first > (uint64_t)INT64_MAX || count - 1 > (uint64_t)INT64_MAX - first)
        return 0;
    rxf_iextp_request_header(out, protocol_id, channel_id, session_id, 1);
    rxf_iextp_put_u64(out + 16, first);
    rxf_iextp_put_u64(out + 24, first + count - 1);
    return n;
}

/* A UDP Gap Fill Test Request (no range): its length (16), or 0 when out is too small. */
static inline uint32_t rxf_iextp_test_request(uint8_t *out, uint32_t cap, uint16_t protocol_id, uint32_t channel_id,
                                              uint32_t session_id) {
    if (cap < RXF_IEXTP_REQUEST_HEADER_LEN) return 0;
    rxf_iextp_request_header(out, protocol_id, channel_id, session_id, 0);
    return RXF_IEXTP_REQUEST_HEADER_LEN;
}

#endif /* RXFEED_IEXTP_H */
