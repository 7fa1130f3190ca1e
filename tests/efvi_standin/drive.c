/*
 * Drives the ef_vi backend's C receive loops (efvi_rx.c, efct_rx.c) against
 * the stand-in without Python, for tests/test_efct.py to build with
 * AddressSanitizer + UBSan: opens the VI the environment describes
 * (RXF_EFVI_STANDIN_*), bursts and releases until the end of the source,
 * touches every payload byte handed out, closes, and prints the counters as
 * "name value" lines.
 *
 *   drive FUTURE_PEEK(0|1)
 */
#include <stdio.h>
#include <stdlib.h>

#include "efvi_rx.h"

static void print_stats(const rxf_efvi *e, unsigned long long checksum) {
    const rxf_efvi_stats *s = &e->stats;
    printf("efct %d\nframes %llu\npackets %llu\nbad_len %llu\nreleased %llu\nfuture_peeks %llu\n"
           "future_undone %llu\nresets %llu\nchecksum %llu\n", e->efct, (unsigned long long)s->frames,
           (unsigned long long)s->packets, (unsigned long long)s->bad_len, (unsigned long long)s->released,
           (unsigned long long)s->future_peeks, (unsigned long long)s->future_undone,
           (unsigned long long)s->resets, checksum);
}

int main(int argc, char **argv) {
    rxf_efvi *e = calloc(1, sizeof(*e));
    if (!e) return 2;
    rxf_efvi_cfg cfg = {.interface = "sfc0", .rx_ring = 64, .ev_ring = -1, .refill_batch = 8, .timestamps = 1,
                        .idle_timeout_s = 0.2, .future_peek = argc > 1 && atoi(argv[1])};
    if (rxf_efvi_open(e, &cfg) != 0) {
        printf("error %s\n", e->error);
        rxf_efvi_close(e);
        free(e);
        return 1;
    }
    rxf_packet pkts[RXF_EFVI_MAX_EVENTS];
    unsigned long long checksum = 0;
    for (;;) {
        int n = rxf_efvi_rx_burst(e, pkts, RXF_EFVI_MAX_EVENTS);
        if (n < 0) break;
        for (int i = 0; i < n; i++)
            for (uint32_t j = 0; j < pkts[i].len; j++) checksum += pkts[i].data[j];
        rxf_efvi_release(e, pkts, (uint32_t)n);
    }
    rxf_efvi_close(e);
    print_stats(e, checksum);
    free(e);
    return 0;
}
