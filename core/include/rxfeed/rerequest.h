/*
 * Re-request scheduling: which missing sequence ranges to ask for, when, and
 * how often. Protocol-neutral: the transport's `send(first, count)` builds
 * and sends the request packet (each session layer has its own format), and
 * the answers come back as ordinary packets on a line of their own, into
 * the sequencer.
 *
 *   want(first, count)  a hole opened (the sequencer's gap callback); merged
 *                       with what is already wanted, split into requests of
 *                       at most max_count messages
 *   filled(upto)        everything before `upto` arrived or was declared lost;
 *                       a range settled in part is asked for again at once
 *                       (the answer was one full packet: the rest follows)
 *   answered(first, n)  an answer arrived: the ranges it starts or covers are
 *                       trimmed wherever they are (not only the first)
 *   poll(now)           sends what is due: new requests, and requests not
 *                       answered within timeout_ns, again, with the timeout
 *                       doubled each time (backoff), at most max_attempts
 *                       times; at most max_in_flight requests unanswered at
 *                       once. A range that used up its attempts is given up
 *                       (counted): never asked for again, but tracked until
 *                       settled, so that a late answer (a slow server, the
 *                       hole still waiting) is still taken; the sequencer
 *                       declares it lost on its own timer.
 *
 * Bounded: at most RXF_RR_MAX_RANGES ranges are tracked; more is counted
 * (dropped_wants) and left to the sequencer's timeout. No allocation.
 */
#ifndef RXFEED_REREQUEST_H
#define RXFEED_REREQUEST_H

#include <stdint.h>
#include <string.h>

#define RXF_RR_MAX_RANGES 256u

typedef struct rxf_rr_range {
    uint64_t first, count;
    uint64_t sent_ns;    /* last time asked; 0: not yet */
    uint64_t timeout_ns; /* current timeout (doubles with each attempt) */
    uint32_t attempts;
    uint32_t given_up;   /* attempts used up: not asked for again */
} rxf_rr_range;

typedef struct rxf_rr {
    /* returns 0 when sent, else the request is tried again at the next poll */
    int (*send)(void *user, uint64_t first, uint64_t count);
    void *user;
    uint64_t max_count, timeout_ns;
    uint32_t max_attempts, max_in_flight;
    rxf_rr_range r[RXF_RR_MAX_RANGES]; /* sorted by first, disjoint */
    uint32_t n;
    /* counters */
    uint64_t requests_sent, messages_requested, retries, given_up_ranges, given_up_messages;
    uint64_t dropped_wants, send_errors;
} rxf_rr;

static inline void rxf_rr_init(rxf_rr *c, int (*send)(void *, uint64_t, uint64_t), void *user,
                               uint64_t max_count, uint64_t timeout_ns, uint32_t max_attempts,
                               uint32_t max_in_flight) {
    memset(c, 0, sizeof *c);
    c->send = send;
    c->user = user;
    c->max_count = max_count ? max_count : 1;
    c->timeout_ns = timeout_ns;
    c->max_attempts = max_attempts ? max_attempts : 1;
    c->max_in_flight = max_in_flight ? max_in_flight : 1;
}

static inline void rxf_rr_remove(rxf_rr *c, uint32_t i) {
    memmove(&c->r[i], &c->r[i + 1], sizeof(rxf_rr_range) * (c->n - i - 1));
    c->n--;
}

static inline int rxf_rr_insert(rxf_rr *c, uint64_t first, uint64_t count) {
    uint32_t pos = c->n;
    if (c->n == RXF_RR_MAX_RANGES) {
        c->dropped_wants++;
        return -1;
    }
    while (pos > 0 && c->r[pos - 1].first > first)
        pos--;
    memmove(&c->r[pos + 1], &c->r[pos], sizeof(rxf_rr_range) * (c->n - pos));
    memset(&c->r[pos], 0, sizeof c->r[pos]);
    c->r[pos].first = first;
    c->r[pos].count = count;
    c->r[pos].timeout_ns = c->timeout_ns;
    c->n++;
    return 0;
}

/* A hole [first, first + count): ask for what is not asked for already. */
static inline void rxf_rr_want(rxf_rr *c, uint64_t first, uint64_t count) {
    uint64_t end = first + count, at = first;
    uint32_t i = 0;
    if (count == 0 || end < first)
        return;
    while (at < end) {
        while (i < c->n && c->r[i].first + c->r[i].count <= at) /* ranges wholly before `at` */
            i++;
        uint64_t stop = end; /* up to the next tracked range, if it starts inside */
        if (i < c->n && c->r[i].first <= at) {
            at = c->r[i].first + c->r[i].count; /* already wanted */
            continue;
        }
        if (i < c->n && c->r[i].first < stop)
            stop = c->r[i].first;
        while (at < stop) {
            uint64_t n = stop - at < c->max_count ? stop - at : c->max_count;
            if (rxf_rr_insert(c, at, n) != 0)
                return;
            at += n;
            i++;
        }
    }
}

/* The range's messages before `upto` came: it now starts there and is asked
   for afresh (a server fills one packet per request; the rest follows). */
static inline void rxf_rr_trim(const rxf_rr *c, rxf_rr_range *r, uint64_t upto) {
    r->count -= upto - r->first;
    r->first = upto;
    r->sent_ns = 0;
    r->attempts = 0;
    r->given_up = 0;
    r->timeout_ns = c->timeout_ns;
}

/* Everything before `upto` is settled (arrived or declared lost). */
static inline void rxf_rr_filled(rxf_rr *c, uint64_t upto) {
    while (c->n && c->r[0].first + c->r[0].count <= upto)
        rxf_rr_remove(c, 0);
    if (c->n && c->r[0].first < upto) /* partly settled */
        rxf_rr_trim(c, &c->r[0], upto);
}

/* An answer brought [first, first + count): a range it starts or covers is
   trimmed (as in filled()), wherever the range is; holes behind an open one
   are answered too. */
static inline void rxf_rr_answered(rxf_rr *c, uint64_t first, uint64_t count) {
    uint64_t end = first + count;
    uint32_t i = 0;
    while (i < c->n) {
        rxf_rr_range *r = &c->r[i];
        if (first <= r->first && r->first < end) {
            if (r->first + r->count <= end) {
                rxf_rr_remove(c, i);
                continue;
            }
            rxf_rr_trim(c, r, end);
        }
        i++;
    }
}

/* Send what is due at `now` (ns, the caller's clock). */
static inline void rxf_rr_poll(rxf_rr *c, uint64_t now) {
    uint32_t i = 0, in_flight = 0;
    for (uint32_t k = 0; k < c->n; k++) /* requests sent and still within their timeout */
        in_flight += c->r[k].sent_ns && now - c->r[k].sent_ns < c->r[k].timeout_ns;
    while (i < c->n) {
        rxf_rr_range *r = &c->r[i];
        int due = !r->given_up && (!r->sent_ns || now - r->sent_ns >= r->timeout_ns);
        if (!due) {
            i++;
            continue;
        }
        if (r->attempts >= c->max_attempts) { /* used up: give up, the sequencer will declare it */
            c->given_up_ranges++;
            c->given_up_messages += r->count;
            r->given_up = 1;
            i++;
            continue;
        }
        if (in_flight >= c->max_in_flight)
            break;
        if (c->send(c->user, r->first, r->count) != 0) {
            c->send_errors++;
            break; /* the socket is full or failing: try again at the next poll */
        }
        if (r->attempts) {
            c->retries++;
            r->timeout_ns *= 2;
        }
        r->attempts++;
        r->sent_ns = now ? now : 1;
        c->requests_sent++;
        c->messages_requested += r->count;
        in_flight++;
        i++;
    }
}

#endif /* RXFEED_REREQUEST_H */
