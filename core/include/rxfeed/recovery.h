/*
 * Recovery: a sequencer, its re-request client and the request socket, as
 * one unit a session layer (transport) drives from inside the nogil loop.
 *
 * Protocol-neutral. The transport
 *   - offers each datagram of its current session as a block
 *     (rxf_rec_offer), and receives it back, in sequence order, through
 *     the deliver callback it gave;
 *   - is told of ranges declared lost through its lost callback;
 *   - builds request packets (build callback: its own wire format);
 *   - reads the server's answers (rxf_rec_recv) and offers those it accepts
 *     on line RXF_REC_LINE_REREQUEST.
 * rxf_rec_tick() is called after each burst and when the loop is idle:
 * gaps open too long are declared lost, holes open for `request_delay_ns`
 * (time for the other line to fill them) are asked for, unanswered
 * requests are sent again.
 *
 * Recovery latency: for every hole that is filled (not lost), the time from
 * the moment it opened to the moment it was filled goes into a log-linear
 * histogram (ns, rxfeed/hist.h buckets).
 *
 * Clock: CLOCK_MONOTONIC ns (rxf_rec_now).
 */
#ifndef RXFEED_RECOVERY_H
#define RXFEED_RECOVERY_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rxfeed/hist.h"
#include "rxfeed/clock.h"
#include "rxfeed/rerequest.h"
#include "rxfeed/sequencer.h"

#define RXF_REC_LINE_REREQUEST 8u /* the sequencer line the server's answers come on */
#define RXF_REC_MAX_REQUEST 512u  /* bytes of one request packet */
#define RXF_REC_RECV_PER_TICK 64u /* answers read per tick at most */

typedef uint32_t (*rxf_rec_build_fn)(void *user, uint8_t *out, uint32_t cap, uint64_t first, uint64_t count);

typedef struct rxf_recovery {
    rxf_sequencer seq;
    rxf_rr rr;
    rxf_seq_callbacks user_cb; /* the transport's deliver/lost/gap */
    int fd;                    /* request socket (connected to the server); -1: no re-request */
    rxf_rec_build_fn build;
    uint64_t request_delay_ns; /* a hole waits this long for another line before it is asked for */
    uint64_t last_send_ns;
    uint8_t holes_dirty;       /* a block was held since the holes were last asked for */
    uint64_t *latency_hist;    /* RXF_HIST_BUCKETS counters of fill latency in ns */
    uint64_t latency_max_ns;
    /* counters (the transport counts what it refuses of an answer) */
    uint64_t responses, response_bytes, send_errors_errno, recv_errors;
    uint64_t filled_by_rerequest;
    int last_errno;
} rxf_recovery;

static inline uint64_t rxf_rec_now(void) {
    return rxf_clock_ns(CLOCK_MONOTONIC);
}

static inline void rxf_rec_on_deliver(void *user, const rxf_seq_block *b, uint32_t skip) {
    rxf_recovery *r = (rxf_recovery *)user;
    if (b->line == RXF_REC_LINE_REREQUEST)
        r->filled_by_rerequest += b->count - skip;
    r->user_cb.deliver(r->user_cb.user, b, skip);
}

static inline void rxf_rec_on_lost(void *user, uint64_t first, uint64_t count, int why, uint64_t now_ns) {
    rxf_recovery *r = (rxf_recovery *)user;
    if (r->fd >= 0)
        rxf_rr_filled(&r->rr, first + count); /* settled: stop asking */
    if (r->user_cb.lost)
        r->user_cb.lost(r->user_cb.user, first, count, why, now_ns);
}

static inline void rxf_rec_on_gap(void *user, uint64_t first, uint64_t count, uint64_t now_ns) {
    rxf_recovery *r = (rxf_recovery *)user;
    r->holes_dirty = 1;
    if (r->user_cb.gap)
        r->user_cb.gap(r->user_cb.user, first, count, now_ns);
}

static inline int rxf_rec_send(void *user, uint64_t first, uint64_t count) {
    rxf_recovery *r = (rxf_recovery *)user;
    uint8_t pkt[RXF_REC_MAX_REQUEST];
    uint32_t n = r->build(r->user_cb.user, pkt, sizeof pkt, first, count);
    if (n == 0)
        return -1;
    if (send(r->fd, pkt, n, MSG_DONTWAIT) != (ssize_t)n) {
        r->last_errno = errno;
        r->send_errors_errno++;
        return -1;
    }
    return 0;
}

/* The sequencer (reorder buffer: max_blocks slots of slot_size bytes, at most
   max_bytes held; a gap waits max_wait_ns). 0, or -1 out of memory. */
static inline int rxf_rec_init(rxf_recovery *r, const rxf_seq_callbacks *cb, uint32_t max_blocks,
                               uint32_t slot_size, uint64_t max_bytes, uint64_t max_wait_ns) {
    rxf_seq_callbacks own = {r, rxf_rec_on_deliver, rxf_rec_on_lost, rxf_rec_on_gap};
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->user_cb = *cb;
    r->latency_hist = (uint64_t *)calloc(RXF_HIST_BUCKETS, sizeof(uint64_t));
    if (!r->latency_hist)
        return -1;
    return rxf_seq_init(&r->seq, &own, 0, max_blocks, slot_size, max_bytes, max_wait_ns);
}

/* Re-request from server ip:port (network byte order): a non-blocking UDP
   socket connected to it (answers come from it only). 0, or -errno. */
static inline int rxf_rec_connect(rxf_recovery *r, uint32_t ip_be, uint16_t port_be, rxf_rec_build_fn build,
                                  uint64_t max_count, uint64_t timeout_ns, uint32_t max_attempts,
                                  uint32_t max_in_flight, uint64_t request_delay_ns) {
    struct sockaddr_in to;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rcvbuf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = ip_be;
    to.sin_port = port_be;
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    r->fd = fd;
    r->build = build;
    r->request_delay_ns = request_delay_ns;
    rxf_rr_init(&r->rr, rxf_rec_send, r, max_count, timeout_ns, max_attempts, max_in_flight);
    return 0;
}

static inline void rxf_rec_destroy(rxf_recovery *r) {
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    free(r->latency_hist);
    r->latency_hist = NULL;
    rxf_seq_destroy(&r->seq);
}

/* One block; a hole it fills has its latency recorded. */
static inline void rxf_rec_offer(rxf_recovery *r, const rxf_seq_block *b, uint64_t now_ns) {
    uint64_t filled = r->seq.gaps_filled, since = r->seq.gap_since_ns;
    rxf_seq_offer(&r->seq, b, now_ns);
    if (r->seq.gaps_filled != filled) {
        uint64_t lat = now_ns > since ? now_ns - since : 0;
        r->latency_hist[rxf_hist_index(lat)]++;
        if (lat > r->latency_max_ns)
            r->latency_max_ns = lat;
    }
    if (r->seq.n_held && b->first > r->seq.next)
        r->holes_dirty = 1;
    if (r->fd >= 0 && r->rr.n) {
        if (b->line == RXF_REC_LINE_REREQUEST)
            rxf_rr_answered(&r->rr, b->first, b->count);
        rxf_rr_filled(&r->rr, r->seq.next);
    }
}

/* Ask for every hole before a held block (the first one included). */
static inline void rxf_rec_want_holes(rxf_recovery *r) {
    uint64_t at = r->seq.next;
    for (uint32_t i = 0; i < r->seq.n_held; i++) {
        const rxf_seq_held *h = &r->seq.held[i];
        if (h->first > at)
            rxf_rr_want(&r->rr, at, h->first - at);
        if (h->first + h->count > at)
            at = h->first + h->count;
    }
    r->holes_dirty = 0;
}

/* Is an answer [first, first + count) what was asked for: everything in it
   not yet settled (from the sequencer's position on) asked for and not yet
   settled? A server answers at most what it was asked; an answer that runs
   on past that would put its own messages in place of the lines'. */
static inline int rxf_rec_wanted(const rxf_recovery *r, uint64_t first, uint64_t count) {
    uint64_t at = first > r->seq.next ? first : r->seq.next, end = first + count;
    if (at >= end)
        return 0; /* settled already */
    for (uint32_t i = 0; i < r->rr.n && at < end; i++) { /* sorted, disjoint */
        const rxf_rr_range *g = &r->rr.r[i];
        if (g->first + g->count <= at)
            continue;
        if (g->first > at)
            return 0; /* [at, g->first) was not asked for */
        at = g->first + g->count;
    }
    return at >= end;
}

/* Timeouts, requests due, retries. */
static inline void rxf_rec_tick(rxf_recovery *r, uint64_t now_ns) {
    if (r->seq.n_held)
        rxf_seq_tick(&r->seq, now_ns);
    if (r->fd < 0)
        return;
    if (r->seq.n_held && r->holes_dirty && r->seq.gap_open && now_ns - r->seq.gap_since_ns >= r->request_delay_ns)
        rxf_rec_want_holes(r);
    if (r->rr.n) {
        uint64_t sent = r->rr.requests_sent;
        rxf_rr_poll(&r->rr, now_ns);
        if (r->rr.requests_sent != sent)
            r->last_send_ns = now_ns;
    }
}

/* Is an answer worth a recv() now (something asked within the last seconds)? */
static inline int rxf_rec_expecting(const rxf_recovery *r, uint64_t now_ns) {
    return r->fd >= 0 && (r->rr.n || (r->last_send_ns && now_ns - r->last_send_ns < 2000000000ull));
}

/* One answer from the server into buf: its length (0: an empty datagram),
   -1 when none is waiting. */
static inline int32_t rxf_rec_recv(rxf_recovery *r, uint8_t *buf, uint32_t cap) {
    ssize_t n = recv(r->fd, buf, cap, MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            r->recv_errors++; /* e.g. ECONNREFUSED: nobody listens at the server's port */
            r->last_errno = errno;
        }
        return -1;
    }
    r->responses++;
    r->response_bytes += (uint64_t)n;
    return (int32_t)n;
}

/* End of input: every open hole lost, everything held delivered. */
static inline void rxf_rec_flush(rxf_recovery *r, uint64_t now_ns) {
    rxf_seq_flush(&r->seq, now_ns);
    if (r->fd >= 0)
        rxf_rr_filled(&r->rr, r->seq.next);
}

#endif /* RXFEED_RECOVERY_H */
