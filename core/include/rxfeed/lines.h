/*
 * Several lines (copies of one feed: A/B multicast lines, two NICs, two
 * sockets) read as one backend. Each rx_burst polls the lines round robin,
 * starting after the line of the previous burst, and returns the first
 * burst it gets, every packet tagged with its line (rxf_packet.line); the
 * release that follows goes to that line's backend. A line that ends (EOF)
 * or fails is skipped from then on; the run ends when every line has ended
 * (RXF_EOF if any line reached its end, else RXF_ERROR). A line that
 * delivers nothing for `silence_ns` is marked down (counted), and up again
 * with its next packet. No copy, no allocation: the inner backends' buffers
 * are handed on as they are.
 */
#ifndef RXFEED_LINES_H
#define RXFEED_LINES_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rxfeed/abi.h"
#include "rxfeed/clock.h"

#define RXF_LINES_MAX 8u

enum { RXF_LINE_RUNNING = 0, RXF_LINE_EOF = 1, RXF_LINE_ERROR = 2 };

typedef struct rxf_line {
    const rxf_backend_ops *ops;
    uint64_t packets, bursts, last_ns, downs, ups;
    int state, down;
    char error[200];
} rxf_line;

typedef struct rxf_lines {
    rxf_line line[RXF_LINES_MAX];
    uint32_t n, next, current;
    uint64_t silence_ns, started_ns;
    char error[256];
} rxf_lines;

static inline uint64_t rxf_lines_now(void) {
    return rxf_clock_ns(CLOCK_MONOTONIC_COARSE);
}

static inline void rxf_line_ended(rxf_lines *ls, uint32_t i, int rc) {
    rxf_line *l = &ls->line[i];
    if (rc == RXF_EOF) {
        l->state = RXF_LINE_EOF;
        return;
    }
    l->state = RXF_LINE_ERROR;
    const char *why = l->ops->last_error ? l->ops->last_error(l->ops->ctx) : NULL;
    snprintf(l->error, sizeof l->error, "%s", why && why[0] ? why : "the backend failed");
    snprintf(ls->error, sizeof ls->error, "line %u: %s", i, l->error);
}

static inline void rxf_line_silent(rxf_lines *ls, rxf_line *l, uint64_t now) {
    uint64_t since = l->last_ns ? l->last_ns : ls->started_ns;
    if (!l->down && ls->silence_ns && now > since && now - since >= ls->silence_ns) {
        l->down = 1;
        l->downs++;
    }
}

static inline int rxf_lines_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    rxf_lines *ls = (rxf_lines *)ctx;
    uint64_t now = rxf_lines_now();
    uint32_t k, j, eofs = 0, running = 0;
    if (!ls->started_ns)
        ls->started_ns = now;
    for (k = 0; k < ls->n; k++) {
        uint32_t i = (ls->next + k) % ls->n;
        rxf_line *l = &ls->line[i];
        if (l->state != RXF_LINE_RUNNING)
            continue;
        int rc = l->ops->rx_burst(l->ops->ctx, pkts, max);
        if (rc > 0) {
            for (j = 0; j < (uint32_t)rc; j++)
                pkts[j].line = i;
            l->packets += (uint64_t)rc;
            l->bursts++;
            l->last_ns = now;
            if (l->down) {
                l->down = 0;
                l->ups++;
            }
            ls->current = i;
            ls->next = (i + 1) % ls->n;
            return rc;
        }
        if (rc < 0)
            rxf_line_ended(ls, i, rc);
        else
            rxf_line_silent(ls, l, now);
    }
    for (k = 0; k < ls->n; k++) {
        eofs += ls->line[k].state == RXF_LINE_EOF;
        running += ls->line[k].state == RXF_LINE_RUNNING;
    }
    if (running)
        return 0;
    return eofs ? RXF_EOF : RXF_ERROR;
}

static inline void rxf_lines_release(void *ctx, rxf_packet *pkts, uint32_t n) {
    rxf_lines *ls = (rxf_lines *)ctx;
    const rxf_backend_ops *ops = ls->line[ls->current].ops;
    if (ops->release)
        ops->release(ops->ctx, pkts, n);
}

static inline const char *rxf_lines_last_error(void *ctx) {
    return ((rxf_lines *)ctx)->error;
}

#endif /* RXFEED_LINES_H */
