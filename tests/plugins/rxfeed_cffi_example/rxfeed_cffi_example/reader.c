/* The example_cffi backend's receive path (see reader.h). Plain C against
   rxfeed/abi.h: no CPython API, built by cffi's API mode (_build.py). */
#include <stdio.h>
#include <string.h>
#include "reader.h"

static uint32_t read_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Record an error; the burst so far is still handed out (RXF_ERROR next time). */
static int fail(rxcf_reader *r, uint32_t n, const char *what, uint32_t plen) {
    snprintf(r->error, sizeof r->error, "record at offset %zu: %s (length %u, %zu bytes left)",
             r->pos, what, plen, r->len - r->pos);
    r->failed = 1;
    return n ? (int)n : RXF_ERROR;
}

/* At the end of a pass: start the next one, or say the source is over. */
static int next_pass(rxcf_reader *r) {
    if (r->buf == NULL || r->pass + 1 >= r->loops) return 0;
    r->pass++;
    r->pos = RXCF_MAGIC_LEN;
    r->reset_pending = 1;
    return r->pos < r->len;
}

static int rxcf_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    rxcf_reader *r = ctx;
    uint32_t n = 0;
    if (r->failed) return RXF_ERROR;
    while (n < max) {
        if (r->pos == r->len && !next_pass(r)) return n ? (int)n : RXF_EOF;
        if (r->len - r->pos < 4) return fail(r, n, "cut in its length", 0);
        uint32_t plen = read_u32le(r->buf + r->pos);
        if (plen > RXCF_MAX_PAYLOAD) return fail(r, n, "longer than any UDP payload", plen);
        if (plen > r->len - r->pos - 4) return fail(r, n, "payload past the end of the file", plen);
        memset(&pkts[n], 0, sizeof pkts[n]);
        pkts[n].data = r->buf + r->pos + 4;
        pkts[n].len = plen;
        if (r->reset_pending) pkts[n].flags = RXF_PKT_SOURCE_RESET;
        r->reset_pending = 0;
        r->pos += 4 + (size_t)plen;
        r->packets++;
        r->bytes += plen;
        n++;
    }
    return (int)n;
}

static const char *rxcf_last_error(void *ctx) { return ((rxcf_reader *)ctx)->error; }

int rxcf_reader_open(rxcf_reader *r, rxf_backend_ops *ops, const uint8_t *buf, size_t len, uint32_t loops) {
    memset(r, 0, sizeof *r);
    memset(ops, 0, sizeof *ops);
    if (len < RXCF_MAGIC_LEN || memcmp(buf, RXCF_MAGIC, RXCF_MAGIC_LEN) != 0) {
        snprintf(r->error, sizeof r->error, "not an example_cffi datagram file (no %s magic)", RXCF_MAGIC);
        return -1;
    }
    r->buf = buf;
    r->len = len;
    r->pos = RXCF_MAGIC_LEN;
    r->loops = loops ? loops : 1;
    ops->abi_version = RXF_ABI_VERSION;
    ops->struct_size = sizeof *ops;
    ops->ctx = r;
    ops->rx_burst = rxcf_rx_burst;
    ops->release = NULL; /* packets point into the file's bytes: nothing to give back */
    ops->last_error = rxcf_last_error;
    return 0;
}

void rxcf_reader_close(rxcf_reader *r) {
    r->buf = NULL;
    r->len = r->pos = 0;
    r->loops = 1;
}
