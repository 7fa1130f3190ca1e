/* Live capture around a backend table: see record.h. */
#define _GNU_SOURCE
#include "record.h"
#include "rxfeed/net.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- what one packet is in the ring ---- */

#define PAD_RECORD UINT32_MAX /* len of a record that only fills the ring's end */

typedef struct rec_hdr {
    uint32_t size; /* whole record, header included, multiple of 8 */
    uint32_t len;  /* payload bytes after the header; PAD_RECORD: padding */
    uint64_t ts;
    uint32_t src_ip, dst_ip;
    uint16_t src_port, dst_port;
    uint32_t line;
    uint32_t flags;
    uint32_t reserved;
} rec_hdr;

/* Counters: each written by one thread only (load + store), read by any. */
typedef _Atomic uint64_t counter;

struct rxf_record {
    rxf_backend_ops inner;
    rxf_record_cfg cfg;
    char *dir, *prefix;
    /* the ring: positions only grow; offset = position % cap */
    uint8_t *ring;
    uint64_t cap;
    _Alignas(64) _Atomic uint64_t head; /* written by the loop   */
    _Alignas(64) _Atomic uint64_t tail; /* written by the writer */
    _Atomic uint64_t flushed;           /* position written and flushed to the kernel */
    _Atomic int stop;                   /* the writer ends once the ring is empty */
    _Atomic int failed;                 /* a write failed: recording stopped */
    _Atomic int accepting;              /* the loop copies packets */
    /* the loop's counters */
    counter seen, queued, overflow_packets, overflow_bytes, too_big, after_error, ring_peak;
    /* the writer's counters */
    counter packets, bytes, file_bytes, files, write_errors, lost_to_error;
    /* the writer's file */
    int fd;
    uint8_t *out;                      /* OUT_CAP bytes                          */
    size_t out_len;
    uint64_t out_packets, out_bytes;   /* what the buffer holds                  */
    uint64_t file_off;                 /* bytes of the current file written      */
    uint64_t file_index, cur_bytes, cur_packets, cur_first_ts;
    char path[4096];
    char error[4400];
    pthread_t thread;
    int thread_started;
};

static _Thread_local char why_buf[4500];

static void bump(counter *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by, memory_order_relaxed);
}

static uint64_t get(const counter *c) { return atomic_load_explicit((counter *)c, memory_order_relaxed); }

/* ---- the loop's side: copy into the ring, never wait ---- */

static void enqueue(rxf_record *r, const rxf_packet *p)
{
    if (p->len > RXF_RECORD_MAX_PAYLOAD) {
        bump(&r->too_big, 1);
        return;
    }
    uint64_t need = (sizeof(rec_hdr) + p->len + 7u) & ~(uint64_t)7u;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t off = head % r->cap, contig = r->cap - off;
    uint64_t pad = contig < need ? contig : 0;
    if (need + pad > r->cap - (head - tail)) {
        bump(&r->overflow_packets, 1);
        bump(&r->overflow_bytes, p->len);
        return;
    }
    if (pad) {
        if (contig >= sizeof(rec_hdr)) { /* else the reader skips the short end by itself */
            rec_hdr *ph = (rec_hdr *)(r->ring + off);
            ph->size = (uint32_t)contig;
            ph->len = PAD_RECORD;
        }
        head += pad;
        off = 0;
    }
    rec_hdr *h = (rec_hdr *)(r->ring + off);
    h->size = (uint32_t)need;
    h->len = p->len;
    h->ts = p->rx_ts_ns;
    h->src_ip = p->src_ip;
    h->dst_ip = p->dst_ip;
    h->src_port = p->src_port;
    h->dst_port = p->dst_port;
    h->line = p->line;
    h->flags = p->flags;
    h->reserved = 0;
    if (p->len)
        memcpy(h + 1, p->data, p->len);
    head += need;
    atomic_store_explicit(&r->head, head, memory_order_release);
    bump(&r->queued, 1);
    if (head - tail > get(&r->ring_peak))
        atomic_store_explicit(&r->ring_peak, head - tail, memory_order_relaxed);
}

int rxf_record_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max)
{
    rxf_record *r = ctx;
    int n = r->inner.rx_burst(r->inner.ctx, pkts, max);
    if (n <= 0)
        return n;
    uint32_t got = (uint32_t)n > max ? max : (uint32_t)n;
    bump(&r->seen, got);
    if (!atomic_load_explicit(&r->accepting, memory_order_relaxed))
        return n;
    if (atomic_load_explicit(&r->failed, memory_order_acquire)) {
        bump(&r->after_error, got);
        return n;
    }
    for (uint32_t i = 0; i < got; i++)
        enqueue(r, &pkts[i]);
    return n;
}

void rxf_record_release(void *ctx, rxf_packet *pkts, uint32_t n)
{
    rxf_record *r = ctx;
    if (r->inner.release)
        r->inner.release(r->inner.ctx, pkts, n);
}

const char *rxf_record_last_error(void *ctx)
{
    rxf_record *r = ctx;
    return r->inner.last_error ? r->inner.last_error(r->inner.ctx) : "the inner backend failed";
}

/* ---- pcapng ---- */

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16be(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32be(uint8_t *p, uint32_t v) { put16be(p, (uint16_t)(v >> 16)); put16be(p + 2, (uint16_t)v); }

/* Section header, then one Ethernet interface with nanosecond times. */
static size_t file_header(uint8_t *b)
{
    static const uint8_t shb[28] = {0x0A, 0x0D, 0x0D, 0x0A, 28, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0,
                                    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 28, 0, 0, 0};
    memcpy(b, shb, sizeof shb);
    uint8_t *idb = b + sizeof shb;
    memset(idb, 0, 32);
    put32(idb, 1);          /* interface description block */
    put32(idb + 4, 32);
    put16(idb + 8, 1);      /* LINKTYPE_ETHERNET */
    put32(idb + 12, 262144); /* snaplen */
    put16(idb + 16, 9);     /* if_tsresol */
    put16(idb + 18, 1);
    idb[20] = 9;            /* 10^-9 s */
    put32(idb + 28, 32);    /* opt_endofopt (zeros) then the length again */
    return sizeof shb + 32;
}

#define FRAME_HDR 42u /* Ethernet 14 + IPv4 20 + UDP 8 */

/* Ethernet/IPv4/UDP headers for one recorded payload. The destination MAC
   is the group's multicast MAC (else zero); the source MAC is 02:00 and the
   line number (big-endian), so the line survives the capture. */
static void frame_header(uint8_t *f, const rec_hdr *h)
{
    memset(f, 0, FRAME_HDR);
    if ((h->dst_ip >> 28) == 0xE) {
        f[0] = 0x01, f[1] = 0x00, f[2] = 0x5E;
        f[3] = (uint8_t)((h->dst_ip >> 16) & 0x7F), f[4] = (uint8_t)(h->dst_ip >> 8), f[5] = (uint8_t)h->dst_ip;
    }
    f[6] = 0x02;
    put32be(f + 8, h->line);
    put16be(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    put16be(ip + 2, (uint16_t)(20 + 8 + h->len));
    ip[8] = 64;
    ip[9] = 17;
    put32be(ip + 12, h->src_ip);
    put32be(ip + 16, h->dst_ip);
    put16be(ip + 10, rxf_net_csum(ip, 20));
    uint8_t *udp = ip + 20;
    put16be(udp, h->src_port);
    put16be(udp + 2, h->dst_port);
    put16be(udp + 4, (uint16_t)(8 + h->len));
}

/* ---- the writer's side ---- */

static void fail(rxf_record *r, const char *what, int err)
{
    if (atomic_load_explicit(&r->failed, memory_order_relaxed))
        return;
    snprintf(r->error, sizeof r->error, "record: %s %s: %s", what, r->path, strerror(err));
    bump(&r->write_errors, 1);
    atomic_store_explicit(&r->failed, 1, memory_order_release);
}

#define OUT_CAP (1u << 20) /* the writer's own buffer: one write(2) per MiB */

/* Hand the buffer to the kernel. Its packets count as recorded only once
   written; on an error they are lost_to_error and recording stops. */
static int flush_out(rxf_record *r)
{
    size_t done = 0;
    if (r->fd < 0 && r->out_len) { /* no file (it could not be made): nothing reaches the disk */
        bump(&r->lost_to_error, r->out_packets);
        r->out_len = r->out_packets = r->out_bytes = 0;
        return -1;
    }
    while (done < r->out_len) {
        ssize_t w = write(r->fd, r->out + done, r->out_len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fail(r, "cannot write", w < 0 ? errno : EIO);
            if (done && ftruncate(r->fd, (off_t)r->file_off) != 0) /* keep whole blocks only */
                bump(&r->write_errors, 1);
            bump(&r->lost_to_error, r->out_packets);
            r->out_len = r->out_packets = r->out_bytes = 0;
            return -1;
        }
        done += (size_t)w;
    }
    r->file_off += r->out_len;
    bump(&r->file_bytes, r->out_len);
    bump(&r->packets, r->out_packets);
    bump(&r->bytes, r->out_bytes);
    r->out_len = r->out_packets = r->out_bytes = 0;
    return 0;
}

/* Append n bytes (n <= OUT_CAP) to the buffer, writing it out when full. */
static int out_put(rxf_record *r, const void *data, size_t n)
{
    if (r->out_len + n > OUT_CAP && flush_out(r) != 0)
        return -1;
    memcpy(r->out + r->out_len, data, n);
    r->out_len += n;
    return 0;
}

/* Write out, fsync and close the current file; 0 or -1 (counted as failed). */
static int close_file(rxf_record *r)
{
    if (r->fd < 0)
        return 0;
    int rc = flush_out(r);
    if (rc == 0 && fsync(r->fd) != 0) {
        fail(r, "cannot fsync", errno);
        rc = -1;
    }
    if (close(r->fd) != 0 && rc == 0) {
        fail(r, "cannot close", errno);
        rc = -1;
    }
    r->fd = -1;
    return rc;
}

/* Create the next file (never over an existing one) and write its header. */
static int open_file(rxf_record *r)
{
    uint8_t hdr[64];
    snprintf(r->path, sizeof r->path, "%s/%s-%06llu.pcapng", r->dir, r->prefix,
             (unsigned long long)++r->file_index);
    r->fd = open(r->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (r->fd < 0) {
        fail(r, "cannot create", errno);
        return -1;
    }
    bump(&r->files, 1);
    r->file_off = 0;
    r->cur_bytes = file_header(hdr);
    r->cur_packets = 0;
    return out_put(r, hdr, r->cur_bytes);
}

static int wants_rotation(const rxf_record *r, const rec_hdr *h, uint64_t block)
{
    if (r->cur_packets == 0)
        return 0;
    if (r->cfg.rotate_bytes && r->cur_bytes + block > r->cfg.rotate_bytes)
        return 1;
    return r->cfg.rotate_ns && h->ts >= r->cur_first_ts && h->ts - r->cur_first_ts >= r->cfg.rotate_ns;
}

/* One enhanced packet block; -1 on a write error. */
static int write_packet(rxf_record *r, const rec_hdr *h)
{
    uint32_t caplen = FRAME_HDR + h->len, pad = (4u - caplen % 4u) % 4u;
    uint32_t block = 28u + caplen + pad + 4u;
    if (wants_rotation(r, h, block) && (close_file(r) != 0 || open_file(r) != 0))
        return -1;
    if (r->fd < 0)
        return -1;
    uint8_t epb[28 + FRAME_HDR], tail[8] = {0};
    put32(epb, 6);
    put32(epb + 4, block);
    put32(epb + 8, 0);
    put32(epb + 12, (uint32_t)(h->ts >> 32));
    put32(epb + 16, (uint32_t)h->ts);
    put32(epb + 20, caplen);
    put32(epb + 24, caplen);
    frame_header(epb + 28, h);
    put32(tail + pad, block);
    if (out_put(r, epb, sizeof epb) != 0 || out_put(r, h + 1, h->len) != 0 || out_put(r, tail, pad + 4u) != 0)
        return -1;
    if (r->cur_packets++ == 0)
        r->cur_first_ts = h->ts;
    r->cur_bytes += block;
    r->out_packets++;
    r->out_bytes += h->len;
    return 0;
}

/* Write (or, after an error, discard) everything between tail and head. */
static void drain_ring(rxf_record *r, uint64_t head)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    while (tail != head) {
        uint64_t off = tail % r->cap;
        if (r->cap - off < sizeof(rec_hdr)) { /* a short end: skipped by both sides */
            tail += r->cap - off;
            continue;
        }
        const rec_hdr *h = (const rec_hdr *)(r->ring + off);
        if (h->len != PAD_RECORD) {
            if (atomic_load_explicit(&r->failed, memory_order_relaxed) || write_packet(r, h) != 0)
                bump(&r->lost_to_error, 1);
        }
        tail += h->size;
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
}

static void *writer_main(void *arg)
{
    rxf_record *r = arg;
    const struct timespec nap = {0, 200000}; /* 0.2 ms between looks at an empty ring */
    for (;;) {
        int stop = atomic_load_explicit(&r->stop, memory_order_acquire);
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        if (head != atomic_load_explicit(&r->tail, memory_order_relaxed)) {
            drain_ring(r, head);
            continue;
        }
        if (stop)
            break;
        if (atomic_load_explicit(&r->flushed, memory_order_relaxed) != head) {
            flush_out(r);
            atomic_store_explicit(&r->flushed, head, memory_order_release);
            continue;
        }
        nanosleep(&nap, NULL);
    }
    close_file(r);
    atomic_store_explicit(&r->flushed, atomic_load_explicit(&r->tail, memory_order_relaxed), memory_order_release);
    return NULL;
}

/* ---- life cycle ---- */

static const char *check_cfg(const rxf_record_cfg *cfg)
{
    if (cfg->dir == NULL || cfg->dir[0] == 0)
        return "record: no directory";
    if (cfg->prefix == NULL || cfg->prefix[0] == 0 || strchr(cfg->prefix, '/'))
        return "record: the file prefix must be a plain name";
    if (cfg->ring_bytes < 4096 || cfg->ring_bytes > (1ull << 40))
        return "record: ring_bytes must be 4096 .. 2^40";
    if (cfg->rotate_bytes && cfg->rotate_bytes < 4096)
        return "record: rotate_bytes must be 0 or >= 4096";
    return NULL;
}

rxf_record *rxf_record_new(const rxf_backend_ops *inner, const rxf_record_cfg *cfg, const char **why)
{
    if ((*why = check_cfg(cfg)) != NULL)
        return NULL;
    *why = "record: out of memory";
    rxf_record *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->inner = *inner;
    r->cfg = *cfg;
    r->cap = cfg->ring_bytes & ~(uint64_t)7u;
    r->ring = aligned_alloc(64, (r->cap + 63u) & ~(uint64_t)63u);
    r->out = malloc(OUT_CAP);
    r->fd = -1;
    r->dir = strdup(cfg->dir);
    r->prefix = strdup(cfg->prefix);
    if (!r->ring || !r->out || !r->dir || !r->prefix) {
        rxf_record_free(r);
        return NULL;
    }
    r->cfg.dir = r->dir;
    r->cfg.prefix = r->prefix;
    if (open_file(r) != 0) {
        snprintf(why_buf, sizeof why_buf, "%s", r->error);
        *why = why_buf;
        rxf_record_free(r);
        return NULL;
    }
    int err = pthread_create(&r->thread, NULL, writer_main, r);
    if (err) {
        snprintf(why_buf, sizeof why_buf, "record: cannot start the writer thread: %s", strerror(err));
        *why = why_buf;
        rxf_record_free(r);
        return NULL;
    }
    r->thread_started = 1;
    atomic_store(&r->accepting, 1);
    *why = NULL;
    return r;
}

int rxf_record_drain(rxf_record *r, uint64_t timeout_ns)
{
    const struct timespec nap = {0, 100000};
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    for (uint64_t waited = 0;; waited += 100000) {
        uint64_t flushed = atomic_load_explicit(&r->flushed, memory_order_acquire);
        if (flushed - head < (1ull << 63)) /* flushed >= head */
            return 0;
        if (!r->thread_started || waited >= timeout_ns)
            return -1;
        nanosleep(&nap, NULL);
    }
}

void rxf_record_stop(rxf_record *r)
{
    atomic_store(&r->accepting, 0);
    if (r->thread_started) {
        atomic_store_explicit(&r->stop, 1, memory_order_release);
        pthread_join(r->thread, NULL);
        r->thread_started = 0;
    }
    close_file(r);
}

void rxf_record_free(rxf_record *r)
{
    if (r == NULL)
        return;
    rxf_record_stop(r);
    free(r->ring);
    free(r->out);
    free(r->dir);
    free(r->prefix);
    free(r);
}

void rxf_record_get_stats(const rxf_record *r, rxf_record_stats *o)
{
    o->seen = get(&r->seen);
    o->queued = get(&r->queued);
    o->overflow_packets = get(&r->overflow_packets);
    o->after_error = get(&r->after_error);
    o->overflow_bytes = get(&r->overflow_bytes);
    o->too_big = get(&r->too_big);
    o->packets = get(&r->packets);
    o->bytes = get(&r->bytes);
    o->file_bytes = get(&r->file_bytes);
    o->files = get(&r->files);
    o->write_errors = get(&r->write_errors);
    o->lost_to_error = get(&r->lost_to_error);
    o->ring_peak = get(&r->ring_peak);
}

const char *rxf_record_error(const rxf_record *r)
{
    return atomic_load_explicit((_Atomic int *)&r->failed, memory_order_acquire) ? r->error : "";
}
