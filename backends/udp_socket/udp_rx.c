/* See udp_rx.h. */
#define _GNU_SOURCE
#include "udp_rx.h"
#include "rxfeed/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_BUSY_POLL
#define SO_BUSY_POLL 46
#endif

static uint64_t mono_ns(void) {
    return rxf_clock_ns(CLOCK_MONOTONIC);
}

static int fail(rxf_udp *u, const char *what) {
    snprintf(u->error, sizeof(u->error), "%s: %s", what, strerror(errno));
    return -1;
}

int rxf_udp_open(rxf_udp *u, const rxf_udp_cfg *cfg) {
    memset(u, 0, sizeof(*u));
    u->cfg = *cfg;
    u->fd = -1;
    if (cfg->n_groups > RXF_FILTER_MAX) {
        snprintf(u->error, sizeof(u->error), "at most %d filters; got %u", RXF_FILTER_MAX, cfg->n_groups);
        return -1;
    }
    u->fd = socket(AF_INET, SOCK_DGRAM | (cfg->blocking ? 0 : SOCK_NONBLOCK), 0);
    if (u->fd < 0) return fail(u, "socket");
    int one = 1;
    setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(u->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0) return fail(u, "SO_TIMESTAMPNS");
    if (setsockopt(u->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) != 0) return fail(u, "SO_RXQ_OVFL");
    setsockopt(u->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    if (cfg->rcvbuf > 0) {
        /* SO_RCVBUFFORCE passes rmem_max as root; fall back to the capped one */
        if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &cfg->rcvbuf, sizeof(int)) != 0 &&
            setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &cfg->rcvbuf, sizeof(int)) != 0)
            return fail(u, "SO_RCVBUF");
    }
    if (cfg->busy_poll_us > 0 &&
        setsockopt(u->fd, SOL_SOCKET, SO_BUSY_POLL, &cfg->busy_poll_us, sizeof(int)) != 0)
        return fail(u, "SO_BUSY_POLL (needs CAP_NET_ADMIN to raise it)");
    if (cfg->blocking) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
        setsockopt(u->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(cfg->port), .sin_addr.s_addr = INADDR_ANY};
    if (bind(u->fd, (struct sockaddr *)&a, sizeof(a)) != 0) return fail(u, "bind");
    for (uint32_t i = 0; i < cfg->n_groups; i++) {
        uint32_t g = cfg->group[i];
        if (!g || (g >> 28) != 0xE) continue; /* unicast: nothing to join */
        int rc;
        if (cfg->source[i]) {
            struct ip_mreq_source m = {.imr_multiaddr.s_addr = htonl(g), .imr_sourceaddr.s_addr = htonl(cfg->source[i]),
                                       .imr_interface.s_addr = htonl(cfg->iface_addr)};
            rc = setsockopt(u->fd, IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &m, sizeof(m));
        } else {
            struct ip_mreqn m = {.imr_multiaddr.s_addr = htonl(g), .imr_address.s_addr = htonl(cfg->iface_addr),
                                 .imr_ifindex = cfg->iface_index};
            rc = setsockopt(u->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m));
        }
        if (rc != 0) {
            struct in_addr ga = {.s_addr = htonl(g)};
            snprintf(u->error, sizeof(u->error), "joining %s: %s", inet_ntoa(ga), strerror(errno));
            return -1;
        }
    }
    u->bufs = malloc((size_t)RXF_UDP_MAX_BATCH * RXF_UDP_BUF);
    if (!u->bufs) { errno = ENOMEM; return fail(u, "malloc"); }
    u->last_rx_ns = mono_ns();
    return 0;
}

void rxf_udp_close(rxf_udp *u) {
    if (u->fd > 0) close(u->fd);
    u->fd = -1;
    free(u->bufs);
    u->bufs = NULL;
}

const char *rxf_udp_last_error(void *ctx) { return ((rxf_udp *)ctx)->error; }


/* The line of a packet: the index of the group it was sent to (A/B lines as
   two groups of one socket); 0 for unicast or a group not joined. */
static uint32_t udp_line_of(const rxf_udp_cfg *cfg, uint32_t dst_ip) {
    for (uint32_t j = 0; j < cfg->n_groups; j++)
        if (cfg->group[j] && cfg->group[j] == dst_ip)
            return j;
    return 0;
}

int rxf_udp_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    rxf_udp *u = ctx;
    if (max > RXF_UDP_MAX_BATCH) max = RXF_UDP_MAX_BATCH;
    for (uint32_t i = 0; i < max; i++) { /* re-arm: the kernel rewrote the lengths */
        u->iov[i].iov_base = u->bufs + (size_t)i * RXF_UDP_BUF;
        u->iov[i].iov_len = RXF_UDP_BUF;
        struct msghdr *h = &u->msgs[i].msg_hdr;
        h->msg_iov = &u->iov[i];
        h->msg_iovlen = 1;
        h->msg_name = &u->names[i];
        h->msg_namelen = sizeof(u->names[i]);
        h->msg_control = u->ctrl[i];
        h->msg_controllen = sizeof(u->ctrl[i]);
        h->msg_flags = 0;
    }
    u->stats.calls++;
    int n = recvmmsg(u->fd, u->msgs, max, u->cfg.blocking ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
    if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            fail(u, "recvmmsg");
            return RXF_ERROR;
        }
        if (u->cfg.idle_timeout_s > 0 && (double)(mono_ns() - u->last_rx_ns) > u->cfg.idle_timeout_s * 1e9)
            return RXF_EOF;
        return 0;
    }
    u->last_rx_ns = mono_ns();
    for (int i = 0; i < n; i++) {
        struct msghdr *h = &u->msgs[i].msg_hdr;
        rxf_packet *k = &pkts[i];
        memset(k, 0, sizeof(*k));
        k->data = u->iov[i].iov_base;
        k->len = u->msgs[i].msg_len;
        if (h->msg_flags & MSG_TRUNC) u->stats.truncated++;
        const struct sockaddr_in *src = (const struct sockaddr_in *)&u->names[i];
        k->src_ip = ntohl(src->sin_addr.s_addr);
        k->src_port = ntohs(src->sin_port);
        k->dst_port = u->cfg.port;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                k->rx_ts_ns = rxf_timespec_ns(&ts);
            } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                uint32_t d;
                memcpy(&d, CMSG_DATA(c), sizeof(d));
                u->stats.kernel_drops = d; /* cumulative count from the kernel */
            } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                struct in_pktinfo pi;
                memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                k->dst_ip = ntohl(pi.ipi_addr.s_addr);
                k->line = udp_line_of(&u->cfg, k->dst_ip);
            }
        }
        u->stats.packets++;
        u->stats.bytes += k->len;
    }
    return n;
}
