/*
 * IGMP host side for ports no kernel owns (issue 15): membership reports
 * built as whole Ethernet frames, queries parsed with every length checked,
 * and a responder that schedules answers as RFC 2236 / RFC 3376 5.2 say.
 * Protocol-neutral: any bypass backend hands frames in and gets frames to
 * send through a callback. Time is in the caller's ticks (TSC, ns, ...):
 * ticks_per_s says how many make a second; the poll path compares one
 * integer (next_due) when nothing is due.
 *
 * Frames: dst MAC 01:00:5e + the low 23 bits of the IPv4 destination, the
 * port's MAC as source, IPv4 with TOS 0xc0, TTL 1, DF, the Router Alert
 * option (RFC 2113; header 24 bytes), IGMP checksum over the whole message.
 * IGMPv2: report 0x16 to the group, leave 0x17 to 224.0.0.2 (v1 report 0x12
 * answers a v1 querier). IGMPv3: report 0x22 to 224.0.0.22 with group
 * records, split over several frames when they exceed the MTU.
 */
#ifndef RXFEED_IGMP_H
#define RXFEED_IGMP_H

#include <stdint.h>
#include <string.h>

#include "rxfeed/net.h"

#define RXF_IGMP_MAX_GROUPS 16   /* as many as destination filters (RXF_FILTER_MAX) */
#define RXF_IGMP_MAX_SOURCES 32  /* SSM sources per group */
#define RXF_IGMP_MAX_QSRC 64     /* queried sources kept per pending answer; more: answer the whole group */
#define RXF_IGMP_FRAME_MAX 1514  /* Ethernet header + 1500 */
#define RXF_IGMP_MIN_MTU 576
#define RXF_IGMP_ETH_LEN 14
#define RXF_IGMP_IP_LEN 24       /* 20 + Router Alert */

#define RXF_IGMP_QUERY 0x11
#define RXF_IGMP_V1_REPORT 0x12
#define RXF_IGMP_V2_REPORT 0x16
#define RXF_IGMP_V2_LEAVE 0x17
#define RXF_IGMP_V3_REPORT 0x22
#define RXF_IGMP_ALL_ROUTERS 0xE0000002u    /* 224.0.0.2 */
#define RXF_IGMP_V3_ROUTERS 0xE0000016u     /* 224.0.0.22 */

/* IGMPv3 group record types (RFC 3376 4.2.12) */
enum { RXF_IGMP_IS_IN = 1, RXF_IGMP_IS_EX = 2, RXF_IGMP_TO_IN = 3, RXF_IGMP_TO_EX = 4,
       RXF_IGMP_ALLOW = 5, RXF_IGMP_BLOCK = 6 };

/* Why a report is sent: the records it carries follow from it. */
typedef enum rxf_igmp_kind { RXF_IGMP_JOIN, RXF_IGMP_ANSWER, RXF_IGMP_LEAVE } rxf_igmp_kind;

typedef struct rxf_igmp_port {
    uint8_t mac[6];
    uint32_t src_ip;   /* host order; 0.0.0.0 is allowed (RFC 3376 4.2.13) */
    uint32_t mtu;      /* IP MTU, RXF_IGMP_MIN_MTU..1500 */
} rxf_igmp_port;

/* A joined group: any source (nsrc 0, EXCLUDE {}) or SSM (INCLUDE {src}). */
typedef struct rxf_igmp_group {
    uint32_t group;
    uint32_t nsrc;
    uint32_t src[RXF_IGMP_MAX_SOURCES];
} rxf_igmp_group;

/* One IGMPv3 group record to put in a report. */
typedef struct rxf_igmp_record {
    uint32_t group;
    uint8_t type;
    uint32_t nsrc;
    const uint32_t *src;   /* host order */
} rxf_igmp_record;

/* A query as parsed (pointers into the frame, lengths checked). */
typedef struct rxf_igmp_query {
    uint8_t version;        /* 1, 2 or 3 */
    uint32_t group;         /* 0: general query */
    uint32_t max_resp_ds;   /* tenths of a second */
    uint32_t nsrc;
    const uint8_t *src;     /* nsrc big-endian addresses (v3; NULL for v1/v2) */
    uint8_t qrv;            /* v3: the querier's Robustness Variable (0: not given); 0 for v1/v2 */
    uint32_t qqi_s;         /* v3: the querier's Query Interval, s (QQIC decoded; 0: not given); 0 for v1/v2 */
} rxf_igmp_query;

typedef enum rxf_igmp_verdict {
    RXF_IGMP_Q_OK = 0,
    RXF_IGMP_Q_NOT_IGMP,   /* not IPv4 protocol 2 */
    RXF_IGMP_Q_OTHER,      /* IGMP, not a query (another host's report) */
    RXF_IGMP_Q_BAD         /* truncated, bad checksum, bad length or fields */
} rxf_igmp_verdict;

typedef struct rxf_igmp_stats {
    uint64_t reports_sent, queries_seen, queries_answered, leaves_sent, tx_failed, bad_queries;
} rxf_igmp_stats;

/* An answer waiting for its deadline. */
typedef struct rxf_igmp_pending {
    uint64_t due;
    uint8_t active, all_sources, version;
    uint32_t nq;
    uint32_t qsrc[RXF_IGMP_MAX_QSRC];
} rxf_igmp_pending;

typedef struct rxf_igmp_state {
    rxf_igmp_port port;
    uint8_t version;                     /* 2 or 3 */
    uint32_t robustness;                 /* configured; a querier's QRV overrides it (rxf_igmp_robustness) */
    uint32_t querier_qrv;                /* the last IGMPv3 query's QRV (0: none, or it said 0) */
    uint32_t querier_qi_s;               /* the last IGMPv3 query's Query Interval, s (125 when none or 0) */
    uint32_t querier_qri_ds;             /* the last general query's max response time, tenths (100 before one) */
    uint64_t ticks_per_s, interval;      /* interval: the most time between unsolicited reports, ticks */
    uint32_t ngroups;
    rxf_igmp_group groups[RXF_IGMP_MAX_GROUPS];
    rxf_igmp_pending pend[RXF_IGMP_MAX_GROUPS];
    uint8_t general_active;
    uint64_t general_due;
    uint32_t unsolicited_left;
    uint64_t unsolicited_due;
    uint8_t older_heard[2];              /* an IGMPv1 / IGMPv2 querier heard (RFC 3376 7.2.1) */
    uint64_t older_until[2];             /* its Querier Present timer: until then the host speaks its version */
    uint64_t next_due;                   /* UINT64_MAX: nothing to send */
    uint64_t rng;
    rxf_igmp_stats stats;
} rxf_igmp_state;

/* Send one frame: 0 sent, else failed (counted as tx_failed). */
typedef int (*rxf_igmp_send_fn)(void *ctx, const uint8_t *frame, uint32_t len);

/* ---- wire helpers ------------------------------------------------------ */

static inline void rxf_igmp_wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void rxf_igmp_wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static inline int rxf_igmp_is_multicast(uint32_t ip) { return (ip >> 28) == 0xE; }

/* An IGMPv3 8-bit code's value (RFC 3376 4.1.1 Max Resp Code, 4.1.7 QQIC:
   below 128 the value itself, from 128 on a floating-point form). */
static inline uint32_t rxf_igmp_code_value(uint8_t code) {
    if (code < 128) return code;
    uint32_t exp = (code >> 4) & 0x7u, mant = code & 0x0fu;
    return (mant | 0x10u) << (exp + 3);
}

/* Max Resp Code -> tenths of a second. */
static inline uint32_t rxf_igmp_max_resp_ds(uint8_t code) { return rxf_igmp_code_value(code); }

/* Ethernet + IPv4 (with Router Alert) headers for igmp_len bytes of IGMP to dst. */
static inline void rxf_igmp_put_headers(const rxf_igmp_port *port, uint32_t dst, uint8_t *f, uint32_t igmp_len) {
    static const uint8_t mc[3] = {0x01, 0x00, 0x5e};
    memcpy(f, mc, 3);
    f[3] = (uint8_t)((dst >> 16) & 0x7f); f[4] = (uint8_t)(dst >> 8); f[5] = (uint8_t)dst;
    memcpy(f + 6, port->mac, 6);
    rxf_igmp_wr16(f + 12, 0x0800);
    uint8_t *ip = f + RXF_IGMP_ETH_LEN;
    ip[0] = 0x46; ip[1] = 0xc0;
    rxf_igmp_wr16(ip + 2, (uint16_t)(RXF_IGMP_IP_LEN + igmp_len));
    rxf_igmp_wr16(ip + 4, 0);           /* identification */
    rxf_igmp_wr16(ip + 6, 0x4000);      /* DF */
    ip[8] = 1; ip[9] = 2;               /* TTL 1, IGMP */
    rxf_igmp_wr16(ip + 10, 0);
    rxf_igmp_wr32(ip + 12, port->src_ip);
    rxf_igmp_wr32(ip + 16, dst);
    ip[20] = 0x94; ip[21] = 0x04; ip[22] = 0; ip[23] = 0;   /* Router Alert */
    rxf_igmp_wr16(ip + 10, rxf_net_csum(ip, RXF_IGMP_IP_LEN));
}

#define RXF_IGMP_HDRS (RXF_IGMP_ETH_LEN + RXF_IGMP_IP_LEN)

/* An IGMPv1/v2 message (report 0x12/0x16 to the group, leave 0x17 to
   224.0.0.2) as a frame in out (cap bytes). Its length, 0 if cap is too small. */
static inline uint32_t rxf_igmp_v2_frame(const rxf_igmp_port *port, uint8_t type, uint32_t group, uint8_t *out,
                                         uint32_t cap) {
    if (cap < RXF_IGMP_HDRS + 8) return 0;
    uint32_t dst = type == RXF_IGMP_V2_LEAVE ? RXF_IGMP_ALL_ROUTERS : group;
    rxf_igmp_put_headers(port, dst, out, 8);
    uint8_t *g = out + RXF_IGMP_HDRS;
    g[0] = type; g[1] = 0;
    rxf_igmp_wr16(g + 2, 0);
    rxf_igmp_wr32(g + 4, group);
    rxf_igmp_wr16(g + 2, rxf_net_csum(g, 8));
    return RXF_IGMP_HDRS + 8;
}

static inline uint32_t rxf_igmp_record_len(const rxf_igmp_record *r) { return 8 + 4 * r->nsrc; }

static inline void rxf_igmp_put_record(uint8_t *p, const rxf_igmp_record *r) {
    p[0] = r->type; p[1] = 0;
    rxf_igmp_wr16(p + 2, (uint16_t)r->nsrc);
    rxf_igmp_wr32(p + 4, r->group);
    for (uint32_t i = 0; i < r->nsrc; i++) rxf_igmp_wr32(p + 8 + 4 * i, r->src[i]);
}

/* One IGMPv3 report holding records[*next..] as far as the MTU (and cap)
   allows; *next moves past them. Its length; 0 when no record was left or
   the next one alone does not fit (*next unchanged: the caller stops). */
static inline uint32_t rxf_igmp_v3_frame(const rxf_igmp_port *port, const rxf_igmp_record *recs, uint32_t n,
                                         uint32_t *next, uint8_t *out, uint32_t cap) {
    uint32_t room = port->mtu > RXF_IGMP_IP_LEN + 8 ? port->mtu - RXF_IGMP_IP_LEN - 8 : 0;
    if (cap < RXF_IGMP_HDRS + 8) return 0;
    if (room > cap - RXF_IGMP_HDRS - 8) room = cap - RXF_IGMP_HDRS - 8;
    uint8_t *g = out + RXF_IGMP_HDRS;
    uint32_t used = 0, i = *next;
    for (; i < n && recs[i].nsrc <= 0xffff && rxf_igmp_record_len(&recs[i]) <= room - used; i++) {
        rxf_igmp_put_record(g + 8 + used, &recs[i]);
        used += rxf_igmp_record_len(&recs[i]);
    }
    if (i == *next) return 0;
    g[0] = RXF_IGMP_V3_REPORT; g[1] = 0;
    rxf_igmp_wr16(g + 2, 0);
    rxf_igmp_wr16(g + 4, 0);
    rxf_igmp_wr16(g + 6, (uint16_t)(i - *next));
    rxf_igmp_wr16(g + 2, rxf_net_csum(g, 8 + used));
    rxf_igmp_put_headers(port, RXF_IGMP_V3_ROUTERS, out, 8 + used);
    *next = i;
    return RXF_IGMP_HDRS + 8 + used;
}

/* The record a joined group gets in a report of this kind (RFC 3376 5.1,
   5.2): any source TO_EX {} / IS_EX {} / TO_IN {}; SSM ALLOW / IS_IN / BLOCK. */
static inline rxf_igmp_record rxf_igmp_group_record(const rxf_igmp_group *g, rxf_igmp_kind kind) {
    static const uint8_t any[3] = {RXF_IGMP_TO_EX, RXF_IGMP_IS_EX, RXF_IGMP_TO_IN};
    static const uint8_t ssm[3] = {RXF_IGMP_ALLOW, RXF_IGMP_IS_IN, RXF_IGMP_BLOCK};
    rxf_igmp_record r = {g->group, g->nsrc ? ssm[kind] : any[kind], g->nsrc, g->src};
    return r;
}

/* ---- query parsing ----------------------------------------------------- */

/* The IPv4 packet inside an Ethernet frame (up to two VLAN tags) if it is
   IGMP: its IGMP message and length (IP total length honoured). */
static inline rxf_igmp_verdict rxf_igmp_locate(const uint8_t *f, uint32_t len, const uint8_t **igmp,
                                               uint32_t *igmp_len) {
    uint32_t off;
    if (rxf_net_ethertype(f, len, &off) != 0x0800 || len < off + 20) return RXF_IGMP_Q_NOT_IGMP;
    const uint8_t *ip = f + off;
    if ((ip[0] >> 4) != 4 || ip[9] != 2) return RXF_IGMP_Q_NOT_IGMP;
    uint32_t ihl = (ip[0] & 0x0fu) * 4u, total = rxf_net_be16(ip + 2);
    if (ihl < 20 || total < ihl || total > len - off) return RXF_IGMP_Q_BAD;
    if (rxf_net_be16(ip + 6) & 0x3fffu) return RXF_IGMP_Q_BAD;   /* a fragment */
    if (rxf_net_csum(ip, ihl) != 0) return RXF_IGMP_Q_BAD;
    *igmp = ip + ihl;
    *igmp_len = total - ihl;
    return RXF_IGMP_Q_OK;
}

/* A query in an Ethernet frame (RFC 3376 7.1: v1 is 8 bytes with max resp
   0, v2 8 bytes with max resp > 0, v3 12 bytes or more; other lengths,
   bad checksums, source lists past the end are RXF_IGMP_Q_BAD). */
static inline rxf_igmp_verdict rxf_igmp_parse_query(const uint8_t *f, uint32_t len, rxf_igmp_query *q) {
    const uint8_t *g;
    uint32_t glen;
    rxf_igmp_verdict v = rxf_igmp_locate(f, len, &g, &glen);
    if (v != RXF_IGMP_Q_OK) return v;
    if (glen < 8) return RXF_IGMP_Q_BAD;
    if (rxf_net_csum(g, glen) != 0) return RXF_IGMP_Q_BAD;
    if (g[0] != RXF_IGMP_QUERY) return RXF_IGMP_Q_OTHER;
    q->group = rxf_net_be32(g + 4);
    q->nsrc = 0;
    q->src = NULL;   /* v3 only: g + 12 of an 8-byte message would point past the frame */
    q->qrv = 0;
    q->qqi_s = 0;
    if (glen == 8) {
        q->version = g[1] ? 2 : 1;
        q->max_resp_ds = g[1] ? g[1] : 100;
    } else if (glen >= 12) {
        q->version = 3;
        q->max_resp_ds = rxf_igmp_max_resp_ds(g[1]);
        q->qrv = g[8] & 0x07u;
        q->qqi_s = rxf_igmp_code_value(g[9]);
        q->src = g + 12;
        q->nsrc = rxf_net_be16(g + 10);
        if (q->nsrc > (glen - 12) / 4) return RXF_IGMP_Q_BAD;
    } else {
        return RXF_IGMP_Q_BAD;
    }
    if (q->group != 0 && !rxf_igmp_is_multicast(q->group)) return RXF_IGMP_Q_BAD;
    if (q->group == 0 && q->nsrc != 0) return RXF_IGMP_Q_BAD;
    return RXF_IGMP_Q_OK;
}

/* The IGMP type of a frame, -1 if it is not a whole IGMP message (cheap:
   for handing queries to another thread before full parsing). */
static inline int rxf_igmp_peek_type(const uint8_t *f, uint32_t len) {
    const uint8_t *g;
    uint32_t glen;
    if (rxf_igmp_locate(f, len, &g, &glen) != RXF_IGMP_Q_OK || glen < 1) return -1;
    return g[0];
}

/* ---- responder ---------------------------------------------------------- */

static inline void rxf_igmp_refresh_due(rxf_igmp_state *st) {
    uint64_t d = UINT64_MAX;
    if (st->unsolicited_left && st->unsolicited_due < d) d = st->unsolicited_due;
    if (st->general_active && st->general_due < d) d = st->general_due;
    for (uint32_t i = 0; i < st->ngroups; i++)
        if (st->pend[i].active && st->pend[i].due < d) d = st->pend[i].due;
    st->next_due = d;
}

/* A responder for the port; robustness >= 1, interval in ticks. 0 ok, -1 bad arguments. */
static inline int rxf_igmp_init(rxf_igmp_state *st, const rxf_igmp_port *port, uint8_t version,
                                uint32_t robustness, uint64_t interval, uint64_t ticks_per_s, uint64_t seed) {
    memset(st, 0, sizeof(*st));
    if ((version != 2 && version != 3) || robustness < 1 || robustness > 255 || ticks_per_s == 0) return -1;
    if (port->mtu < RXF_IGMP_MIN_MTU || port->mtu > 1500) return -1;
    st->port = *port;
    st->version = version;
    st->robustness = robustness;
    st->querier_qi_s = 125;              /* RFC 3376 8.2 default Query Interval */
    st->querier_qri_ds = 100;            /* RFC 3376 8.3 default Query Response Interval */
    st->interval = interval;
    st->ticks_per_s = ticks_per_s;
    st->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    st->next_due = UINT64_MAX;
    return 0;
}

/* Join a group (sources: SSM, IGMPv3 only). 0 ok; -1: full, not multicast,
   a duplicate, too many sources, or sources with IGMPv2. */
static inline int rxf_igmp_add_group(rxf_igmp_state *st, uint32_t group, const uint32_t *src, uint32_t nsrc) {
    if (st->ngroups >= RXF_IGMP_MAX_GROUPS || !rxf_igmp_is_multicast(group)) return -1;
    if (nsrc > RXF_IGMP_MAX_SOURCES || (nsrc && st->version < 3)) return -1;
    for (uint32_t i = 0; i < st->ngroups; i++)
        if (st->groups[i].group == group) return -1;
    rxf_igmp_group *g = &st->groups[st->ngroups++];
    g->group = group;
    g->nsrc = nsrc;
    for (uint32_t i = 0; i < nsrc; i++) g->src[i] = src[i];
    return 0;
}

/* The Robustness Variable in force: the last IGMPv3 query's QRV when it was
   not 0 (RFC 3376 4.1.6, 8.1), else the configured one. How many
   unsolicited reports and leaves are sent. */
static inline uint32_t rxf_igmp_robustness(const rxf_igmp_state *st) {
    return st->querier_qrv ? st->querier_qrv : st->robustness;
}

/* A random number in [0, span) (0 when span is 0). */
static inline uint64_t rxf_igmp_random(rxf_igmp_state *st, uint64_t span) {
    st->rng ^= st->rng << 13; st->rng ^= st->rng >> 7; st->rng ^= st->rng << 17;  /* xorshift64 */
    return span ? st->rng % span : 0;
}

/* Start: robustness unsolicited reports, the first at the next poll. */
static inline void rxf_igmp_start(rxf_igmp_state *st, uint64_t now) {
    st->unsolicited_left = st->ngroups ? rxf_igmp_robustness(st) : 0;
    st->unsolicited_due = now;
    rxf_igmp_refresh_due(st);
}

/* A delay in [0, max_resp_ds tenths of a second) in ticks. */
static inline uint64_t rxf_igmp_delay(rxf_igmp_state *st, uint32_t max_resp_ds) {
    return rxf_igmp_random(st, (uint64_t)max_resp_ds * st->ticks_per_s / 10);
}

static inline int rxf_igmp_find(const rxf_igmp_state *st, uint32_t group) {
    for (uint32_t i = 0; i < st->ngroups; i++)
        if (st->groups[i].group == group) return (int)i;
    return -1;
}

/* Add the queried sources to a pending answer (more than it holds: the whole group). */
static inline void rxf_igmp_merge_sources(rxf_igmp_pending *p, const rxf_igmp_query *q) {
    for (uint32_t k = 0; k < q->nsrc && !p->all_sources; k++) {
        uint32_t s = rxf_net_be32(q->src + 4 * k), j = 0;
        while (j < p->nq && p->qsrc[j] != s) j++;
        if (j < p->nq) continue;
        if (p->nq == RXF_IGMP_MAX_QSRC) { p->all_sources = 1; p->nq = 0; break; }
        p->qsrc[p->nq++] = s;
    }
}

/* RFC 3376 5.2 rules 3-4 (RFC 2236 3 for v1/v2): schedule or merge a group's answer. */
static inline void rxf_igmp_schedule_group(rxf_igmp_state *st, int i, uint64_t due, const rxf_igmp_query *q,
                                           uint8_t version) {
    rxf_igmp_pending *p = &st->pend[i];
    if (!p->active) {
        p->active = 1; p->due = due; p->version = version;
        p->all_sources = q->nsrc == 0; p->nq = 0;
    } else {
        if (due < p->due) p->due = due;
        if (version < p->version) p->version = version;
        if (q->nsrc == 0) { p->all_sources = 1; p->nq = 0; }
    }
    if (version == 3) rxf_igmp_merge_sources(p, q);
    else { p->all_sources = 1; p->nq = 0; }
}

/* The version the host speaks at now (RFC 3376 7.2.1): IGMPv1 while a v1
   querier is present, else IGMPv2 while a v2 querier is, else its own. */
static inline uint8_t rxf_igmp_mode_version(const rxf_igmp_state *st, uint64_t now) {
    for (uint8_t v = 1; v < st->version; v++)
        if (st->older_heard[v - 1] && now < st->older_until[v - 1]) return v;
    return st->version;
}

/* A query heard. An IGMPv3 host takes an IGMPv3 query's QRV and QQIC (0:
   the configured robustness, the default 125 s; RFC 3376 4.1.6-4.1.7); a
   general query's max response time is the Query Response Interval. An
   older querier (re)starts its own Querier Present timer: IGMPv3 hosts for
   the Older Version Querier Present Timeout (RFC 3376 8.12: robustness x
   Query Interval + Query Response Interval), IGMPv2 hosts hearing IGMPv1
   for the Version 1 Router Present Timeout (RFC 2236 8.11: 400 s); the v1
   and v2 timers run apart. */
static inline void rxf_igmp_note_querier(rxf_igmp_state *st, const rxf_igmp_query *q, uint64_t now) {
    if (q->version == 3 && st->version == 3) {
        st->querier_qrv = q->qrv;
        st->querier_qi_s = q->qqi_s ? q->qqi_s : 125;
    }
    if (q->group == 0) st->querier_qri_ds = q->max_resp_ds;
    if (q->version >= st->version) return;
    uint64_t timeout_ds = st->version == 2 ? 4000
        : (uint64_t)rxf_igmp_robustness(st) * st->querier_qi_s * 10 + st->querier_qri_ds;
    st->older_heard[q->version - 1] = 1;
    st->older_until[q->version - 1] = now + timeout_ds * st->ticks_per_s / 10;
}

/* A parsed query: schedule what it asks for (RFC 3376 5.2; v1/v2 queriers
   get v1/v2 answers, per group; a v2 host answers v3 queries in v2). */
static inline void rxf_igmp_on_query(rxf_igmp_state *st, const rxf_igmp_query *q, uint64_t now) {
    rxf_igmp_note_querier(st, q, now);
    uint8_t version = rxf_igmp_mode_version(st, now);
    if (version < 3 && st->general_active) {
        /* an older querier now: the pending IGMPv3 general answer becomes an
           answer per group in that version (each group reported once) */
        rxf_igmp_query every = {.version = version};
        for (uint32_t i = 0; i < st->ngroups; i++) rxf_igmp_schedule_group(st, (int)i, st->general_due, &every, version);
        st->general_active = 0;
    }
    uint64_t due = now + rxf_igmp_delay(st, q->max_resp_ds);
    if (version == 3 && st->general_active && st->general_due <= due) return;   /* rule 1 */
    if (q->group == 0 && version == 3) {
        st->general_active = 1;
        st->general_due = due;
    } else if (q->group == 0) {
        for (uint32_t i = 0; i < st->ngroups; i++)
            rxf_igmp_schedule_group(st, (int)i, now + rxf_igmp_delay(st, q->max_resp_ds), q, version);
    } else {
        int i = rxf_igmp_find(st, q->group);
        if (i >= 0) rxf_igmp_schedule_group(st, i, due, q, version);
    }
    rxf_igmp_refresh_due(st);
}

/* A received frame: queries go to the responder, bad ones are counted.
   Returns the verdict. */
static inline rxf_igmp_verdict rxf_igmp_handle_frame(rxf_igmp_state *st, const uint8_t *f, uint32_t len,
                                                     uint64_t now) {
    rxf_igmp_query q;
    rxf_igmp_verdict v = rxf_igmp_parse_query(f, len, &q);
    if (v == RXF_IGMP_Q_BAD) st->stats.bad_queries++;
    if (v != RXF_IGMP_Q_OK) return v;
    st->stats.queries_seen++;
    if (st->ngroups) rxf_igmp_on_query(st, &q, now);
    return v;
}

/* ---- sending ------------------------------------------------------------ */

static inline void rxf_igmp_count(rxf_igmp_state *st, int rc, int leave) {
    if (rc != 0) st->stats.tx_failed++;
    else if (leave) st->stats.leaves_sent++;
    else st->stats.reports_sent++;
}

/* IGMPv3 reports of n records (as many frames as the MTU needs). */
static inline void rxf_igmp_send_records(rxf_igmp_state *st, const rxf_igmp_record *recs, uint32_t n, int leave,
                                         rxf_igmp_send_fn send, void *ctx) {
    uint8_t frame[RXF_IGMP_FRAME_MAX];
    uint32_t next = 0, len;
    while ((len = rxf_igmp_v3_frame(&st->port, recs, n, &next, frame, sizeof(frame))) > 0)
        rxf_igmp_count(st, send(ctx, frame, len), leave);
    if (next < n) st->stats.tx_failed++;   /* a record larger than the MTU (init rules it out) */
}

static inline void rxf_igmp_send_v2(rxf_igmp_state *st, uint8_t type, uint32_t group, rxf_igmp_send_fn send,
                                    void *ctx) {
    uint8_t frame[RXF_IGMP_HDRS + 8];
    uint32_t len = rxf_igmp_v2_frame(&st->port, type, group, frame, sizeof(frame));
    rxf_igmp_count(st, send(ctx, frame, len), type == RXF_IGMP_V2_LEAVE);
}

static inline uint8_t rxf_igmp_v2_type(rxf_igmp_kind kind, uint8_t version) {
    if (kind == RXF_IGMP_LEAVE) return RXF_IGMP_V2_LEAVE;
    return version == 1 ? RXF_IGMP_V1_REPORT : RXF_IGMP_V2_REPORT;
}

/* Every group in one report of this kind (v3), or one message per group (v1/v2). */
static inline void rxf_igmp_send_all(rxf_igmp_state *st, rxf_igmp_kind kind, uint8_t version,
                                     rxf_igmp_send_fn send, void *ctx) {
    if (version == 1 && kind == RXF_IGMP_LEAVE) return;   /* IGMPv1 has no leave */
    if (version < 3) {
        for (uint32_t i = 0; i < st->ngroups; i++)
            rxf_igmp_send_v2(st, rxf_igmp_v2_type(kind, version), st->groups[i].group, send, ctx);
        return;
    }
    rxf_igmp_record recs[RXF_IGMP_MAX_GROUPS];
    for (uint32_t i = 0; i < st->ngroups; i++) recs[i] = rxf_igmp_group_record(&st->groups[i], kind);
    rxf_igmp_send_records(st, recs, st->ngroups, kind == RXF_IGMP_LEAVE, send, ctx);
}

/* A group's pending answer: the whole group, or for a group-and-source
   query IS_IN of the queried sources we want (RFC 3376 5.2: INCLUDE(A):
   A*B; EXCLUDE({}): B); nothing when that is empty. 1 if something was sent. */
static inline int rxf_igmp_send_group_answer(rxf_igmp_state *st, uint32_t i, uint8_t version,
                                             rxf_igmp_send_fn send, void *ctx) {
    const rxf_igmp_group *g = &st->groups[i];
    rxf_igmp_pending *p = &st->pend[i];
    if (version < 3) {
        rxf_igmp_send_v2(st, rxf_igmp_v2_type(RXF_IGMP_ANSWER, version), g->group, send, ctx);
        return 1;
    }
    rxf_igmp_record r = rxf_igmp_group_record(g, RXF_IGMP_ANSWER);
    uint32_t want[RXF_IGMP_MAX_QSRC], n = 0;
    if (!p->all_sources) {
        for (uint32_t k = 0; k < p->nq; k++) {
            uint32_t j = 0;
            while (j < g->nsrc && g->src[j] != p->qsrc[k]) j++;
            if (g->nsrc == 0 || j < g->nsrc) want[n++] = p->qsrc[k];
        }
        if (n == 0) return 0;
        r.type = RXF_IGMP_IS_IN; r.nsrc = n; r.src = want;
    }
    rxf_igmp_send_records(st, &r, 1, 0, send, ctx);
    return 1;
}

/* Send what is due at now (unsolicited reports, answers). Cheap when nothing is.
   Everything goes out in the version the host speaks at now: an answer
   scheduled for an IGMPv3 query before an older querier was heard is sent
   in the older version (that querier ignores IGMPv3 reports). Unsolicited
   reports after the first are spaced at random in (0, interval] (RFC 3376
   5.1, as Linux does for IGMPv2 too). */
static inline void rxf_igmp_poll(rxf_igmp_state *st, uint64_t now, rxf_igmp_send_fn send, void *ctx) {
    if (now < st->next_due) return;
    uint8_t speak = rxf_igmp_mode_version(st, now);
    if (st->unsolicited_left && now >= st->unsolicited_due) {
        rxf_igmp_send_all(st, RXF_IGMP_JOIN, speak, send, ctx);
        st->unsolicited_left--;
        st->unsolicited_due = now + 1 + rxf_igmp_random(st, st->interval);
    }
    if (st->general_active && now >= st->general_due) {
        rxf_igmp_send_all(st, RXF_IGMP_ANSWER, speak, send, ctx);
        st->general_active = 0;
        st->stats.queries_answered++;
    }
    for (uint32_t i = 0; i < st->ngroups; i++) {
        if (!st->pend[i].active || now < st->pend[i].due) continue;
        uint8_t version = st->pend[i].version < speak ? st->pend[i].version : speak;
        st->stats.queries_answered += (uint64_t)rxf_igmp_send_group_answer(st, i, version, send, ctx);
        st->pend[i].active = 0;
    }
    rxf_igmp_refresh_due(st);
}

/* One round of leaves in the version spoken at now (the caller repeats it
   rxf_igmp_robustness times, spaced); pending answers and unsolicited reports are dropped. */
static inline void rxf_igmp_leave(rxf_igmp_state *st, uint64_t now, rxf_igmp_send_fn send, void *ctx) {
    st->unsolicited_left = 0;
    st->general_active = 0;
    for (uint32_t i = 0; i < st->ngroups; i++) st->pend[i].active = 0;
    rxf_igmp_send_all(st, RXF_IGMP_LEAVE, rxf_igmp_mode_version(st, now), send, ctx);
    rxf_igmp_refresh_due(st);
}

#endif
