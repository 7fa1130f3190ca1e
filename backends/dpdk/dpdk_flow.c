/* See dpdk_flow.h. */
#include "dpdk_flow.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_flow.h>

/* One rule: attribute, items, actions and the storage they point into. */
typedef struct flow_rule {
    struct rte_flow_attr attr;
    struct rte_flow_item items[4];
    struct rte_flow_item_ipv4 ip_spec, ip_mask;
    struct rte_flow_item_udp udp_spec, udp_mask;
    struct rte_flow_action actions[2];
    struct rte_flow_action_queue queue;
    struct rte_flow_action_rss rss;
    uint16_t rss_queues[RXF_FLOW_MAX_QUEUES];
} flow_rule;

/* ETH (any MAC: multicast too) / IPV4 dst / UDP dst / END; a wildcard is an item with no spec. */
static void build_pattern(flow_rule *r, uint32_t ip, uint16_t port) {
    r->items[0].type = RTE_FLOW_ITEM_TYPE_ETH;
    r->items[1].type = RTE_FLOW_ITEM_TYPE_IPV4;
    if (ip) {
        r->ip_spec.hdr.dst_addr = rte_cpu_to_be_32(ip);
        r->ip_mask.hdr.dst_addr = RTE_BE32(0xffffffff);
        r->items[1].spec = &r->ip_spec;
        r->items[1].mask = &r->ip_mask;
    }
    r->items[2].type = RTE_FLOW_ITEM_TYPE_UDP;
    if (port) {
        r->udp_spec.hdr.dst_port = rte_cpu_to_be_16(port);
        r->udp_mask.hdr.dst_port = RTE_BE16(0xffff);
        r->items[2].spec = &r->udp_spec;
        r->items[2].mask = &r->udp_mask;
    }
    r->items[3].type = RTE_FLOW_ITEM_TYPE_END;
}

/* QUEUE queue[i], or RSS (IPv4/UDP hash) over queues 0..nq-1. -1: a queue the port has not. */
static int build_actions(flow_rule *r, const rxf_flow_cfg *c, uint32_t i, uint16_t nq) {
    if (nq < 1 || nq > RXF_FLOW_MAX_QUEUES) return -1;
    if (c->rss) {
        for (uint16_t q = 0; q < nq; q++) r->rss_queues[q] = q;
        r->rss.types = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_UDP;
        r->rss.queue_num = nq;
        r->rss.queue = r->rss_queues;
        r->actions[0].type = RTE_FLOW_ACTION_TYPE_RSS;
        r->actions[0].conf = &r->rss;
    } else {
        if (c->queue[i] >= nq) return -1;
        r->queue.index = c->queue[i];
        r->actions[0].type = RTE_FLOW_ACTION_TYPE_QUEUE;
        r->actions[0].conf = &r->queue;
    }
    r->actions[1].type = RTE_FLOW_ACTION_TYPE_END;
    return 0;
}

/* Rule i of c for a port with nq RX queues. -1: no such filter, or its queue is out of range. */
static int build_rule(flow_rule *r, const rxf_flow_cfg *c, uint32_t i, uint16_t nq) {
    memset(r, 0, sizeof(*r));
    if (c->dst.n > RXF_FILTER_MAX || i >= c->dst.n) return -1;
    r->attr.ingress = 1;
    build_pattern(r, c->dst.ip[i], c->dst.port[i]);
    return build_actions(r, c, i, nq);
}

/* A bounded string being appended to; `over` once something did not fit. */
typedef struct text {
    char *p;
    size_t len, used;
    int over;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
    if (t->over || t->used >= t->len) { t->over = 1; return; }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p + t->used, t->len - t->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->len - t->used) { t->over = 1; return; }
    t->used += (size_t)n;
}

static void put_ipv4(text *t, const char *what, rte_be32_t be) {
    uint32_t a = rte_be_to_cpu_32(be);
    put(t, " %s %u.%u.%u.%u", what, a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

/* An item in testpmd syntax: its type, then every address or port field its mask selects. */
static void put_item(text *t, const struct rte_flow_item *it) {
    if (it->type == RTE_FLOW_ITEM_TYPE_ETH) {
        put(t, "eth%s", it->spec ? " (with spec)" : "");
    } else if (it->type == RTE_FLOW_ITEM_TYPE_IPV4) {
        put(t, "ipv4");
        const struct rte_flow_item_ipv4 *s = it->spec, *m = it->mask;
        if (s && m && m->hdr.src_addr) { put_ipv4(t, "src spec", s->hdr.src_addr); put_ipv4(t, "src mask", m->hdr.src_addr); }
        if (s && m && m->hdr.dst_addr) { put_ipv4(t, "dst spec", s->hdr.dst_addr); put_ipv4(t, "dst mask", m->hdr.dst_addr); }
    } else if (it->type == RTE_FLOW_ITEM_TYPE_UDP) {
        put(t, "udp");
        const struct rte_flow_item_udp *s = it->spec, *m = it->mask;
        if (s && m && m->hdr.src_port)
            put(t, " src spec %u src mask %u", rte_be_to_cpu_16(s->hdr.src_port), rte_be_to_cpu_16(m->hdr.src_port));
        if (s && m && m->hdr.dst_port)
            put(t, " dst spec %u dst mask %u", rte_be_to_cpu_16(s->hdr.dst_port), rte_be_to_cpu_16(m->hdr.dst_port));
    } else {
        put(t, "item%d", (int)it->type);
    }
    put(t, " / ");
}

static void put_action(text *t, const struct rte_flow_action *a) {
    if (a->type == RTE_FLOW_ACTION_TYPE_QUEUE) {
        put(t, "queue index %u", ((const struct rte_flow_action_queue *)a->conf)->index);
    } else if (a->type == RTE_FLOW_ACTION_TYPE_RSS) {
        const struct rte_flow_action_rss *rss = a->conf;
        put(t, "rss queues");
        for (uint32_t q = 0; q < rss->queue_num; q++) put(t, " %u", rss->queue[q]);
        put(t, " end");
    } else {
        put(t, "action%d", (int)a->type);
    }
    put(t, " / ");
}

int rxf_flow_describe(const rxf_flow_cfg *c, uint32_t i, uint16_t nq, char *out, size_t outlen) {
    flow_rule r;
    if (!out || outlen == 0) return -1;
    out[0] = 0;
    if (build_rule(&r, c, i, nq) != 0) return -1;
    text t = {out, outlen, 0, 0};
    put(&t, "%s pattern ", r.attr.ingress ? "ingress" : "egress");
    for (const struct rte_flow_item *it = r.items; it->type != RTE_FLOW_ITEM_TYPE_END; it++) put_item(&t, it);
    put(&t, "end actions ");
    for (const struct rte_flow_action *a = r.actions; a->type != RTE_FLOW_ACTION_TYPE_END; a++) put_action(&t, a);
    put(&t, "end");
    return t.over ? -1 : 0;
}

/* "<call> said: <the PMD's message> (errno N)". */
static void flow_said(char *out, size_t len, const char *call, int rc, const struct rte_flow_error *e) {
    int code = rc < 0 ? -rc : rc;
    snprintf(out, len, "%s said: %s (errno %d)", call, e->message ? e->message : rte_strerror(code), code);
}

/* The filter as written in the config ("*" for a wildcard). */
static void filter_text(const rxf_flow_cfg *c, uint32_t i, char *out, size_t len) {
    uint32_t a = c->dst.ip[i];
    char ip[16] = "*", port[8] = "*";
    if (a) snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    if (c->dst.port[i]) snprintf(port, sizeof(port), "%u", c->dst.port[i]);
    snprintf(out, len, "%s:%s", ip, port);
}

/* Drivers flow_isolate = auto isolates (bifurcated: the kernel keeps what no rule takes). */
static char isolating_drivers[128] = "mlx5";

int rxf_flow_set_isolating_drivers(const char *names) {
    if (!names || strlen(names) >= sizeof(isolating_drivers)) return -1;
    snprintf(isolating_drivers, sizeof(isolating_drivers), "%s", names);
    return 0;
}

/* drv contains one of the comma-separated names. */
static int isolating_driver(const char *drv) {
    char names[sizeof(isolating_drivers)];
    snprintf(names, sizeof(names), "%s", isolating_drivers);
    char *save = NULL;
    for (char *n = strtok_r(names, ",", &save); n; n = strtok_r(NULL, ",", &save))
        if (n[0] && strstr(drv, n)) return 1;
    return 0;
}

static int mode_wants_isolation(const rxf_flow_cfg *c, const char *drv) {
    if (c->isolate == RXF_FLOW_ON) return 1;
    return c->isolate == RXF_FLOW_AUTO && c->rules != RXF_FLOW_OFF && c->dst.n > 0 && isolating_driver(drv);
}

int rxf_flow_isolate_early(rxf_flow_state *s, const rxf_flow_cfg *c, uint16_t port, const char *driver, char *err,
                           size_t errlen) {
    char said[160];
    memset(s, 0, sizeof(*s));
    snprintf(s->driver, sizeof(s->driver), "%s", driver);
    const char *drv = s->driver;
    if (c->isolate == RXF_FLOW_ON && (c->rules == RXF_FLOW_OFF || c->dst.n == 0)) {
        snprintf(err, errlen, "flow_isolate = on needs flow rules: an isolated port without rules receives nothing");
        return -1;
    }
    if (!mode_wants_isolation(c, drv)) return 0;
    struct rte_flow_error e;
    memset(&e, 0, sizeof(e));
    int rc = rte_flow_isolate(port, 1, &e);
    if (rc == 0) {
        s->isolated = 1;
        return 0;
    }
    flow_said(said, sizeof(said), "rte_flow_isolate", rc, &e);
    if (c->isolate == RXF_FLOW_ON) {
        snprintf(err, errlen, "flow_isolate = on: %s (port %u) cannot isolate: %s", drv, port, said);
        return -1;
    }
    snprintf(s->reason, sizeof(s->reason), "not isolated (%s: %s)", drv, said);
    return 0;
}

/* Why rule i could not go in: no flow ops at all (ENOSYS: rte_flow_ops_get found none), or this rule refused. */
static void explain(char *why, size_t len, const rxf_flow_cfg *c, uint32_t i, const char *drv, const char *call,
                    int rc, const struct rte_flow_error *e) {
    char said[160], flt[24];
    flow_said(said, sizeof(said), call, rc, e);
    filter_text(c, i, flt, sizeof(flt));
    if (rc == -ENOSYS)
        snprintf(why, len, "%s has no rte_flow: %s", drv, said);
    else
        snprintf(why, len, "%s cannot take rule %u (%s): %s", drv, i, flt, said);
}

static void destroy_rules(rxf_flow_state *s, uint16_t port) {
    struct rte_flow_error e;
    int stuck = 0;
    for (uint32_t i = 0; i < RXF_FILTER_MAX; i++) {
        if (s->flows[i] && rte_flow_destroy(port, (struct rte_flow *)s->flows[i], &e) != 0) stuck = 1;
        s->flows[i] = NULL;
    }
    if (stuck) rte_flow_flush(port, &e);
}

/* Validate every rule, then create them. 0 ok; -1 with why set (nothing left installed). */
static int create_rules(rxf_flow_state *s, const rxf_flow_cfg *c, uint16_t port, uint16_t nq, char *why,
                        size_t len) {
    struct rte_flow_error e;
    flow_rule r;
    for (uint32_t i = 0; i < c->dst.n; i++) {
        if (build_rule(&r, c, i, nq) != 0) {
            snprintf(why, len, "rule %u: queue %u is not one of the port's %u RX queues", i, c->queue[i], nq);
            return -1;
        }
        memset(&e, 0, sizeof(e));
        int rc = rte_flow_validate(port, &r.attr, r.items, r.actions, &e);
        if (rc != 0) {
            explain(why, len, c, i, s->driver, "rte_flow_validate", rc, &e);
            return -1;
        }
    }
    for (uint32_t i = 0; i < c->dst.n; i++) {
        build_rule(&r, c, i, nq); /* validated above */
        memset(&e, 0, sizeof(e));
        s->flows[i] = rte_flow_create(port, &r.attr, r.items, r.actions, &e);
        if (!s->flows[i]) {
            explain(why, len, c, i, s->driver, "rte_flow_create", -rte_errno, &e);
            destroy_rules(s, port);
            return -1;
        }
    }
    s->rules = c->dst.n;
    return 0;
}

/* auto after isolating for rules that did not go in: an isolated port with no
   rules receives nothing, so leave isolation (the port must be stopped for it). */
static int leave_isolation(rxf_flow_state *s, uint16_t port, char *err, size_t errlen) {
    struct rte_flow_error e;
    memset(&e, 0, sizeof(e));
    int rc = rte_eth_dev_stop(port);
    if (rc == 0) rc = rte_flow_isolate(port, 0, &e);
    if (rc == 0) rc = rte_eth_dev_start(port);
    if (rc != 0) {
        snprintf(err, errlen, "flow rules failed on an isolated port and leaving isolation failed (%s), "
                 "so the port would receive nothing: %s", rte_strerror(rc < 0 ? -rc : rc), s->reason);
        return -1;
    }
    s->isolated = 0;
    return 0;
}

int rxf_flow_install(rxf_flow_state *s, const rxf_flow_cfg *c, uint16_t port, uint16_t nq, char *err,
                     size_t errlen) {
    char why[256];
    if (c->rules == RXF_FLOW_OFF || c->dst.n == 0) {
        if (!s->reason[0]) snprintf(s->reason, sizeof(s->reason), "%s", c->dst.n ? "flow_rules = off" : "no filters");
        return 0;
    }
    if (create_rules(s, c, port, nq, why, sizeof(why)) == 0) {
        s->steering = 1;
        return 0;
    }
    if (c->rules == RXF_FLOW_ON || c->isolate == RXF_FLOW_ON) { /* isolated without rules: nothing arrives */
        snprintf(err, errlen, "%s: %s", c->rules == RXF_FLOW_ON ? "flow_rules = on" : "flow_isolate = on needs the rules",
                 why);
        return -1;
    }
    size_t used = strnlen(s->reason, sizeof(s->reason));
    snprintf(s->reason + used, sizeof(s->reason) - used, "%s%s", used ? "; " : "", why);
    return s->isolated ? leave_isolation(s, port, err, errlen) : 0;
}

void rxf_flow_close(rxf_flow_state *s, uint16_t port) {
    destroy_rules(s, port);
}
