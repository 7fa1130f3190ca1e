/* Stress backends/record/record.c with a fake inner backend, built with
   ThreadSanitizer and with ASan/UBSan by tests/test_record.py: small rings
   (wrap-around, padding, overflow), random payload sizes (0 bytes, jumbo,
   longer than a UDP datagram) and bursts (0 = nothing yet), rotation by
   size. Usage: record_stress DIR ROUNDS. Checks the counters add up and the
   inner bursts are released once; prints one line per round
   "round R seen S recorded P overflow O too_big T files F" for the test,
   which then reads the files back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "record.h"

#define TOTAL 30000u

typedef struct {
    uint64_t rng;
    uint32_t next;
    uint8_t *buf;
    int outstanding;
    int errors;
} fake;

static uint32_t rnd(uint64_t *s, uint32_t b)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return b ? (uint32_t)((z ^ (z >> 31)) % b) : 0;
}

static uint32_t payload_len(uint64_t *s)
{
    uint32_t k = rnd(s, 1000);
    if (k == 0)
        return 65508 + rnd(s, 100); /* too big for a UDP datagram */
    if (k < 20)
        return 9000 + rnd(s, 56000);
    return rnd(s, 1600);
}

static int fake_rx(void *ctx, rxf_packet *pkts, uint32_t max)
{
    fake *f = ctx;
    if (f->outstanding) {
        fprintf(stderr, "inner rx before release\n");
        f->errors++;
    }
    if (f->next >= TOTAL)
        return RXF_EOF;
    if (rnd(&f->rng, 5) == 0)
        return 0;
    uint32_t n = 1 + rnd(&f->rng, max), at = 0;
    if (n > TOTAL - f->next)
        n = TOTAL - f->next;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = f->next++, len = payload_len(&f->rng);
        uint8_t *p = f->buf + at; /* one reused window, like a file backend's */
        at += len;
        for (uint32_t k = 0; k < len; k++)
            p[k] = (uint8_t)(idx * 7 + k);
        if (len >= 4)
            memcpy(p, &idx, 4);
        pkts[i] = (rxf_packet){.data = p, .len = len, .rx_ts_ns = 1000000ull * idx + 1, .src_ip = 0x0A000001,
                               .dst_ip = 0xE9360C6F, .src_port = 1, .dst_port = 2, .line = idx % 3};
    }
    f->outstanding = 1;
    return (int)n;
}

static void fake_release(void *ctx, rxf_packet *pkts, uint32_t n)
{
    fake *f = ctx;
    (void)pkts;
    (void)n;
    if (!f->outstanding) {
        fprintf(stderr, "release twice\n");
        f->errors++;
    }
    f->outstanding = 0;
}

static int one_round(const char *dir, int round)
{
    static const uint64_t rings[] = {4096, 8192, 70000, 1u << 20, 16u << 20};
    fake f = {.rng = 0x1234u + (uint64_t)round, .buf = malloc((size_t)64 * 66000)};
    rxf_backend_ops inner = {RXF_ABI_VERSION, sizeof(rxf_backend_ops), &f, fake_rx, fake_release, NULL};
    char prefix[32];
    snprintf(prefix, sizeof prefix, "r%d", round);
    rxf_record_cfg cfg = {.dir = dir, .prefix = prefix, .ring_bytes = rings[round % 5],
                          .rotate_bytes = round % 2 ? 0 : 300000 + 100000u * (unsigned)round};
    const char *why;
    rxf_record *r = rxf_record_new(&inner, &cfg, &why);
    if (r == NULL) {
        fprintf(stderr, "new: %s\n", why);
        return 1;
    }
    rxf_backend_ops ops = {0};
    ops.ctx = r;
    ops.rx_burst = rxf_record_rx_burst;
    ops.release = rxf_record_release;
    rxf_packet pkts[64];
    const struct timespec nap = {0, 20000};
    for (;;) {
        int n = ops.rx_burst(ops.ctx, pkts, 1 + rnd(&f.rng, 64));
        if (n < 0)
            break;
        if (n > 0)
            ops.release(ops.ctx, pkts, (uint32_t)n);
        if (rnd(&f.rng, 50) == 0)
            nanosleep(&nap, NULL); /* let the writer catch up now and then */
    }
    rxf_record_stop(r);
    rxf_record_stats s;
    rxf_record_get_stats(r, &s);
    int bad = f.errors;
    if (s.seen != TOTAL || s.queued + s.overflow_packets + s.too_big + s.after_error != s.seen ||
        s.packets + s.lost_to_error != s.queued || s.write_errors || s.too_big == 0) {
        fprintf(stderr, "round %d: counters do not add up\n", round);
        bad++;
    }
    printf("round %d seen %llu recorded %llu overflow %llu too_big %llu files %llu\n", round,
           (unsigned long long)s.seen, (unsigned long long)s.packets, (unsigned long long)s.overflow_packets,
           (unsigned long long)s.too_big, (unsigned long long)s.files);
    rxf_record_free(r);
    free(f.buf);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int bad = 0, rounds = atoi(argv[2]);
    for (int i = 0; i < rounds; i++)
        bad += one_round(argv[1], i);
    return bad ? 1 : 0;
}
