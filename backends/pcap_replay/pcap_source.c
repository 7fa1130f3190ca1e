/* See pcap_source.h. Formats: classic pcap (usec and nsec magic, either byte
   order) and pcapng (SHB, IDB, EPB, SPB; several interfaces and sections). */
#include "pcap_source.h"
#include "rxfeed/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static inline uint32_t rd32(const rxf_pcap *pc, const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return pc->swap ? __builtin_bswap32(v) : v;
}
static inline uint16_t rd16(const rxf_pcap *pc, const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return pc->swap ? __builtin_bswap16(v) : v;
}

static uint64_t mono_ns(void) {
    return rxf_clock_ns(CLOCK_MONOTONIC);
}

static int fail(rxf_pcap *pc, const char *msg) {
    snprintf(pc->error, sizeof(pc->error), "%s (at byte %llu of the %s stream)", msg,
             (unsigned long long)pc->src.offset, pc->src.gzip ? "decompressed" : "file");
    return RXF_ERROR;
}

/* Read a section header's byte order. p holds >= 12 bytes. */
static int shb_order(rxf_pcap *pc, const uint8_t *p) {
    uint32_t bom;
    memcpy(&bom, p + 8, 4);
    if (bom == 0x1A2B3C4Du) pc->swap = 0;
    else if (bom == 0x4D3C2B1Au) pc->swap = 1;
    else return -1;
    return 0;
}

static int read_file_header(rxf_pcap *pc, const char *path);

int rxf_pcap_open(rxf_pcap *pc, const char *path, int fd, const uint8_t *prefix, size_t prefix_len, int map) {
    memset(pc, 0, sizeof(*pc));
    pc->loops = 1;
    int rc = fd >= 0 ? rxf_src_open_fd(&pc->src, fd, path, prefix, prefix_len, RXF_PCAP_WINDOW, map)
                     : rxf_src_open(&pc->src, path, RXF_PCAP_WINDOW, map);
    if (rc != 0) {
        snprintf(pc->error, sizeof(pc->error), "%s", pc->src.error);
        return -1;
    }
    if (read_file_header(pc, path) != 0) {
        rxf_src_close(&pc->src);
        return -1;
    }
    return 0;
}

/* The classic header or the first section header's byte order. */
static int read_file_header(rxf_pcap *pc, const char *path) {
    size_t avail;
    const uint8_t *p = rxf_src_wait(&pc->src, 24) == 0 ? rxf_src_peek(&pc->src, 24, &avail, 0) : NULL;
    if (!p) {
        if (pc->src.error[0]) snprintf(pc->error, sizeof(pc->error), "%s", pc->src.error);
        else snprintf(pc->error, sizeof(pc->error), "%s: too short to be a pcap or pcapng file", path);
        return -1;
    }
    uint32_t magic;
    memcpy(&magic, p, 4);
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du) {
        pc->format = 1; pc->swap = 0; pc->nsec = magic == 0xa1b23c4du;
    } else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u) {
        pc->format = 1; pc->swap = 1; pc->nsec = magic == 0x4d3cb2a1u;
    } else if (magic == 0x0A0D0D0Au) {
        pc->format = 2;
        if (shb_order(pc, p) != 0) {
            snprintf(pc->error, sizeof(pc->error), "%s: pcapng section header has a bad byte-order magic", path);
            return -1;
        }
    } else {
        snprintf(pc->error, sizeof(pc->error), "%s: not a pcap or pcapng file (magic 0x%08x)", path, magic);
        return -1;
    }
    if (pc->format == 1) {
        pc->linktype = rd32(pc, p + 20) & 0xffffu;
        rxf_src_advance(&pc->src, 24);
    }
    return 0;
}

/* After a rewind: step over the classic file header again (it is re-read). */
static int skip_file_header(rxf_pcap *pc) {
    if (pc->format != 1) return 0;
    size_t avail;
    if (rxf_src_wait(&pc->src, 24) != 0 || !rxf_src_peek(&pc->src, 24, &avail, 0)) return -1;
    rxf_src_advance(&pc->src, 24);
    return 0;
}

void rxf_pcap_close(rxf_pcap *pc) { rxf_src_close(&pc->src); }

const char *rxf_pcap_last_error(void *ctx) { return ((rxf_pcap *)ctx)->error; }

/* Timestamp units of the interface to ns since the epoch, plus if_tsoffset.
   Checked arithmetic: a result below 0 or past 2^64-1 ns is clamped and counted. */
static uint64_t ts_to_ns(rxf_pcap *pc, const rxf_pcap_if *ifc, uint64_t ts) {
    unsigned __int128 v;
    if (ifc->tsres_pow2) {
        v = ((unsigned __int128)ts * 1000000000u) >> ifc->tsres;
    } else if (ifc->tsres <= 9) {
        uint64_t m = 1;
        for (uint32_t i = ifc->tsres; i < 9; i++) m *= 10;
        v = (unsigned __int128)ts * m;        /* < 2^94: no overflow */
    } else {
        uint64_t d = 1;
        for (uint32_t i = 9; i < ifc->tsres && i < 28; i++) d *= 10;
        v = ts / d;
    }
    int64_t off_ns;
    __int128 t;
    if (__builtin_mul_overflow(ifc->tsoffset_s, (int64_t)1000000000, &off_ns))
        t = ifc->tsoffset_s < 0 ? -1 : (__int128)UINT64_MAX + 1; /* out of range either way */
    else
        t = (__int128)v + off_ns;
    if (t < 0) { pc->stats.ts_out_of_range++; return 0; }
    if (t > (__int128)UINT64_MAX) { pc->stats.ts_out_of_range++; return UINT64_MAX; }
    return (uint64_t)t;
}

static void parse_idb(rxf_pcap *pc, const uint8_t *b, uint32_t blen) {
    if (pc->n_if >= RXF_PCAP_MAX_IF) { pc->n_if++; return; }
    rxf_pcap_if *ifc = &pc->ifs[pc->n_if++];
    memset(ifc, 0, sizeof(*ifc));
    ifc->tsres = 6;
    if (blen < 20) return;
    ifc->linktype = rd16(pc, b + 8);
    uint32_t off = 16, end = blen - 4;
    while (off + 4 <= end) {
        uint16_t code = rd16(pc, b + off), olen = rd16(pc, b + off + 2);
        off += 4;
        if (code == 0 || off + olen > end) break;
        if (code == 9 && olen >= 1) {
            ifc->tsres_pow2 = (b[off] & 0x80) != 0;
            ifc->tsres = b[off] & 0x7f;
            if (ifc->tsres_pow2 && ifc->tsres > 63) ifc->tsres = 63;
        } else if (code == 14 && olen >= 8) {
            uint64_t v;
            memcpy(&v, b + off, 8);
            if (pc->swap) v = __builtin_bswap64(v);
            ifc->tsoffset_s = (int64_t)v;
        }
        off += (olen + 3u) & ~3u;
    }
}

/* A peek came back short: an error, more to come later (2: a refill we may
   not do now, or an interrupted read), the clean end of the data, or data
   that ends inside a record (counted, then end). */
static int short_read(rxf_pcap *pc, size_t avail, int header) {
    if (pc->src.error[0]) return fail(pc, pc->src.error);
    if (!rxf_src_ended(&pc->src)) return 2;
    if (header && avail == 0) return 0;
    pc->stats.truncated_records++;
    rxf_src_advance(&pc->src, avail);
    return 0;
}

/* Find the next frame. 1: frame found; 0: end of data; RXF_ERROR; 2: need refill (not allowed). */
static int next_frame(rxf_pcap *pc, int may_refill, const uint8_t **frame, uint32_t *caplen,
                      uint32_t *linktype, uint64_t *ts_ns, size_t *consume) {
    size_t avail;
    for (;;) {
        if (pc->format == 1) {
            const uint8_t *h = rxf_src_peek(&pc->src, 16, &avail, may_refill);
            if (!h) return short_read(pc, avail, 1);
            uint32_t incl = rd32(pc, h + 8);
            if (incl > RXF_PCAP_MAX_RECORD) return fail(pc, "corrupt pcap: record length is implausible");
            const uint8_t *r = rxf_src_peek(&pc->src, 16u + incl, &avail, may_refill);
            if (!r) return short_read(pc, avail, 0);
            uint64_t sec = rd32(pc, r), frac = rd32(pc, r + 4);
            *ts_ns = sec * 1000000000ull + (pc->nsec ? frac : frac * 1000ull);
            *frame = r + 16;
            *caplen = incl;
            *linktype = pc->linktype;
            *consume = 16u + incl;
            return 1;
        }
        /* pcapng */
        const uint8_t *h = rxf_src_peek(&pc->src, 12, &avail, may_refill);
        if (!h) return short_read(pc, avail, 1);
        uint32_t btype_raw;
        memcpy(&btype_raw, h, 4);
        if (btype_raw == 0x0A0D0D0Au) { /* new section: new byte order, interfaces restart */
            if (shb_order(pc, h) != 0) return fail(pc, "corrupt pcapng: bad section byte-order magic");
            pc->n_if = 0;
        }
        uint32_t btype = rd32(pc, h), blen = rd32(pc, h + 4);
        if (blen < 12 || (blen & 3) || blen > RXF_PCAP_MAX_RECORD) return fail(pc, "corrupt pcapng: bad block length");
        const uint8_t *b = rxf_src_peek(&pc->src, blen, &avail, may_refill);
        if (!b) return short_read(pc, avail, 0);
        if (rd32(pc, b + blen - 4) != blen) return fail(pc, "corrupt pcapng: trailing block length differs");
        if (btype == 1) {
            parse_idb(pc, b, blen);
        } else if (btype == 6) { /* enhanced packet block */
            if (blen < 32) return fail(pc, "corrupt pcapng: enhanced packet block too short");
            uint32_t ifid = rd32(pc, b + 8), cap = rd32(pc, b + 20);
            if (cap > blen - 32) return fail(pc, "corrupt pcapng: captured length past the block");
            if (ifid >= pc->n_if || ifid >= RXF_PCAP_MAX_IF) return fail(pc, "corrupt pcapng: packet names an undeclared interface");
            uint64_t ts = ((uint64_t)rd32(pc, b + 12) << 32) | rd32(pc, b + 16);
            *ts_ns = ts_to_ns(pc, &pc->ifs[ifid], ts);
            *frame = b + 28;
            *caplen = cap;
            *linktype = pc->ifs[ifid].linktype;
            *consume = blen;
            return 1;
        } else if (btype == 3) { /* simple packet block: interface 0, no timestamp */
            if (blen < 16) return fail(pc, "corrupt pcapng: simple packet block too short");
            if (pc->n_if == 0) return fail(pc, "corrupt pcapng: simple packet before any interface");
            uint32_t orig = rd32(pc, b + 8);
            uint32_t cap = blen - 16;
            *frame = b + 12;
            *caplen = orig < cap ? orig : cap;
            *linktype = pc->ifs[0].linktype;
            *ts_ns = 0;
            *consume = blen;
            return 1;
        } else if (btype != 0x0A0D0D0Au) {
            pc->stats.skipped_blocks++;
        }
        rxf_src_advance(&pc->src, blen);
    }
}

int rxf_pcap_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    rxf_pcap *pc = (rxf_pcap *)ctx;
    uint32_t n = 0;
    while (n < max) {
        const uint8_t *frame;
        uint32_t caplen, linktype;
        uint64_t ts;
        size_t consume;
        int rc = next_frame(pc, n == 0, &frame, &caplen, &linktype, &ts, &consume);
        if (rc == RXF_ERROR) return n ? (int)n : RXF_ERROR;
        if (rc == 2) break;
        if (rc == 0) {
            if (pc->stats.loops_done >= pc->loops) return n ? (int)n : RXF_EOF;
            pc->stats.loops_done++;
            if (pc->stats.loops_done >= pc->loops) return n ? (int)n : RXF_EOF;
            if (rxf_src_rewind(&pc->src) != 0 || skip_file_header(pc) != 0)
                return n ? (int)n : fail(pc, pc->src.error[0] ? pc->src.error : "the file got shorter than its header");
            pc->n_if = 0;
            pc->pending_reset = 1;
            pc->started = 0;
            if (n) break; /* the window may move: end this burst first */
            continue;
        }
        if (pc->speed > 0.0 && ts) {
            uint64_t now = mono_ns();
            if (!pc->started) { pc->started = 1; pc->first_ts = ts; pc->start_mono = now; }
            uint64_t due = pc->start_mono + (uint64_t)((double)(ts > pc->first_ts ? ts - pc->first_ts : 0) / pc->speed);
            if (now < due) break; /* not yet: the loop polls again (never sleeps) */
        }
        rxf_src_advance(&pc->src, consume);
        pc->stats.records++;
        rxf_udp_view u;
        rxf_net_verdict v = rxf_parse_frame(linktype, frame, caplen, &u);
        if (v != RXF_NET_OK) { pc->stats.drops[v]++; continue; }
        if (!rxf_filter_pass(&pc->filter, u.dst_ip, u.dst_port)) { pc->stats.filtered++; continue; }
        rxf_packet_set(&pkts[n++], &u, ts, pc->pending_reset ? RXF_PKT_SOURCE_RESET : 0);
        pc->pending_reset = 0;
        pc->stats.packets++;
        pc->stats.bytes += u.len;
    }
    return (int)n;
}
