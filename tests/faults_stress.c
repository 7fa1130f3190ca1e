/* Stress backends/faults/faults.c with a fake inner backend, built with
   ASan/UBSan by tests/test_faults.py: random configs, packet sizes and
   bursts (0 = nothing yet), a read window reused and poisoned on release
   like a file backend's. Checks: no packet shares bytes with another of its
   burst, none points into released inner memory, each inner burst released
   once before the next, counters add up, nothing held after RXF_EOF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "faults.h"

typedef struct {
    uint64_t rng;
    uint32_t total, next;
    uint8_t *buf;
    rxf_packet *out;
    uint32_t out_n;
    int outstanding;
    uint64_t handed, released;
    int errors;
} fake;

static uint32_t rnd(uint64_t *s, uint32_t b) { return b ? (uint32_t)(rxf_faults_next(s) % b) : 0; }

static int fake_rx(void *ctx, rxf_packet *pkts, uint32_t max) {
    fake *f = ctx;
    if (f->outstanding) { fprintf(stderr, "inner rx before release\n"); f->errors++; }
    if (f->next >= f->total) return RXF_EOF;
    if (rnd(&f->rng, 5) == 0) return 0;
    uint32_t n = 1 + rnd(&f->rng, max);
    if (n > f->total - f->next) n = f->total - f->next;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = f->next++;
        uint32_t len = rnd(&f->rng, 1600);
        uint8_t *p = f->buf + (size_t)i * 1600; /* reused window, like pcap */
        for (uint32_t k = 0; k < len; k++) p[k] = (uint8_t)(idx * 7 + k);
        if (len >= 4) memcpy(p, &idx, 4);
        pkts[i] = (rxf_packet){.data = p, .len = len, .rx_ts_ns = 1000000ull * idx + 1};
    }
    f->outstanding = 1; f->handed += n; f->out = pkts; f->out_n = n;
    return (int)n;
}
static void fake_release(void *ctx, rxf_packet *pkts, uint32_t n) {
    fake *f = ctx;
    if (!f->outstanding || n != f->out_n) { fprintf(stderr, "bad inner release\n"); f->errors++; }
    f->released += n; f->outstanding = 0;
    memset(f->buf, 0xDB, (size_t)n * 1600); /* poison the reused window */
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    uint64_t s = 12345;
    for (int r = 0; r < rounds; r++) {
        fake fk = {.rng = rxf_faults_next(&s), .total = 1 + rnd(&s, 20000)};
        fk.buf = malloc(4096 * 1600);
        rxf_backend_ops inner = {RXF_ABI_VERSION, sizeof(rxf_backend_ops), &fk, fake_rx, fake_release, NULL};
        rxf_faults_cfg cfg = {.seed = r, .reorder_max = 1 + rnd(&s, 300), .delay_ns = rnd(&s, 200) * 1000000ull,
                              .kill_after_ns = rnd(&s, 3) ? -1 : (int64_t)rnd(&s, 20000) * 1000000,
                              .kill_after_packets = rnd(&s, 3) ? -1 : (int64_t)rnd(&s, 20000),
                              .hold_max = 1 + rnd(&s, 3000), .arena_bytes = 4096 + rnd(&s, 4 << 20)};
        for (int k = 0; k < RXF_FAULT_NKINDS; k++) cfg.rate[k] = rnd(&s, 4) ? rnd(&s, 1000) / 2000.0 : 0;
        const char *why;
        rxf_faults *f = rxf_faults_new(&inner, &cfg, &why);
        if (!f) { printf("new failed: %s\n", why); return 1; }
        rxf_backend_ops ops; rxf_faults_ops(f, &ops);
        rxf_packet pk[4096]; uint64_t got = 0; int rc;
        uint32_t burst = 1 + rnd(&s, 300);
        for (;;) {
            rc = ops.rx_burst(ops.ctx, pk, burst);
            if (rc < 0) break;
            for (int i = 0; i < rc; i++) { /* no shared bytes, readable */
                volatile uint8_t x = 0;
                for (uint32_t k = 0; k < pk[i].len; k++) x ^= pk[i].data[k];
                for (int j = i + 1; j < rc; j++)
                    if (pk[i].len && pk[j].len && pk[i].data < pk[j].data + pk[j].len && pk[j].data < pk[i].data + pk[i].len) { printf("shared bytes\n"); return 1; }
                if (pk[i].len >= 4 && pk[i].data[0] == 0xDB && pk[i].data[1] == 0xDB && pk[i].data[2] == 0xDB && pk[i].data[3] == 0xDB) { printf("released bytes handed out (round %d)\n", r); return 1; }
            }
            got += rc;
            if (rc > 0) ops.release(ops.ctx, pk, rc);
        }
        const rxf_faults_stats *st = rxf_faults_get_stats(f);
        if (rc != RXF_EOF || got != st->delivered || st->inner != fk.total ||
            got != st->inner - st->dropped - st->killed_after + st->duplicated || rxf_faults_held(f) || fk.errors || fk.handed != fk.released) {
            printf("round %d: accounting: got %llu delivered %llu inner %llu/%u held %llu errors %d\n", r, (unsigned long long)got,
                   (unsigned long long)st->delivered, (unsigned long long)st->inner, fk.total, (unsigned long long)rxf_faults_held(f), fk.errors);
            return 1;
        }
        if (ops.rx_burst(ops.ctx, pk, 8) != RXF_EOF) { printf("after EOF\n"); return 1; }
        rxf_faults_free(f);
        free(fk.buf);
    }
    printf("ok %d rounds\n", rounds);
    return 0;
}
