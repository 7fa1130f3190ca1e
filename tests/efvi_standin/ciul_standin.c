/*
 * rxfeed's ef_vi stand-in: a simulated Solarflare NIC behind the subset of
 * the ef_vi API that rxfeed's efvi backend uses. Tests only. Written from the
 * documented API (names, signatures, event semantics); no Onload code.
 *
 * EF10 personality (default, this file): the "NIC" takes the RX buffers the
 * application posts (ef_vi_receive_init / _push), "DMAs" frames into them --
 * from a pcap (RXF_EFVI_STANDIN_PCAP) or from a UDP socket joined to the
 * filtered groups (RXF_EFVI_STANDIN_UDP=1) -- behind an RX prefix, and raises
 * RX events carrying the buffer's request id and the length including the
 * prefix. efct (X3) personality (RXF_EFVI_STANDIN_ARCH=efct, efct_standin.c):
 * NIC-owned superbuffers, RX_REF events, futures. On demand (environment):
 *   RXF_EFVI_STANDIN_ARCH=ef10|efct  the VI's architecture (nic_type.arch)
 *   RXF_EFVI_STANDIN_PREFIX=N        RX prefix bytes (default 14; EF10)
 *   RXF_EFVI_STANDIN_BURST=N         most frames DMA'd per ef_eventq_poll (default 64)
 *   RXF_EFVI_STANDIN_DISCARD_EVERY=N every Nth frame is an RX_DISCARD / RX_REF_DISCARD (reasons cycle)
 *   RXF_EFVI_STANDIN_RESET_AFTER=N   after N frames, an EF_EVENT_TYPE_RESET
 *   RXF_EFVI_STANDIN_RING_FULL=wait  hold frames while no buffer is posted / no superbuffer
 *                                    is free (default: drop them, as hardware does)
 *   RXF_EFVI_STANDIN_IFNAME=name     the one interface that is "a Solarflare NIC"
 *                                    (default sfc0; with UDP, any existing one)
 *   RXF_EFVI_STANDIN_TS_FLAGS=N      timestamp sync flags (default 3: clock set, in sync;
 *                                    -1: frames carry no timestamp)
 *   RXF_EFVI_STANDIN_STATS=path      at ef_vi_free, the NIC's counters as "name value" lines
 * efct only: RXF_EFVI_STANDIN_SUPERBUFS, _SB_PKTS (pool shape), _LEAK_EVERY,
 * _BAD_LEN_EVERY, _FUTURE_DELAY, _FUTURE_MISS_EVERY (see efct_standin.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <etherfabric/base.h>
#include <etherfabric/ef_vi.h>
#include <etherfabric/memreg.h>
#include <etherfabric/pd.h>
#include <etherfabric/vi.h>

#include "standin_nic.h"

int rxf_standin_env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

int ef_driver_open(ef_driver_handle *dh_out) { *dh_out = 3; return 0; }
int ef_driver_close(ef_driver_handle dh) { (void)dh; return 0; }

int ef_pd_alloc_by_name(ef_pd *pd, ef_driver_handle pd_dh, const char *name, enum ef_pd_flags flags) {
    (void)pd_dh;
    const char *sfc = getenv("RXF_EFVI_STANDIN_IFNAME");
    int ok = strcmp(name, sfc && *sfc ? sfc : "sfc0") == 0;
    if (!ok && getenv("RXF_EFVI_STANDIN_UDP")) ok = if_nametoindex(name) != 0;
    if (!ok) return -ENODEV;
    memset(pd, 0, sizeof(*pd));
    pd->pd_flags = flags;
    pd->ifindex = (int)if_nametoindex(name);
    snprintf(pd->intf_name, sizeof(pd->intf_name), "%s", name);
    return 0;
}
int ef_pd_free(ef_pd *pd, ef_driver_handle pd_dh) { (void)pd; (void)pd_dh; return 0; }

int ef_memreg_alloc(ef_memreg *mr, ef_driver_handle mr_dh, struct ef_pd *pd, ef_driver_handle pd_dh, void *p,
                    size_t len) {
    (void)mr_dh; (void)pd; (void)pd_dh;
    if (((uintptr_t)p & 4095) != 0) return -EINVAL; /* real memreg wants page alignment */
    mr->base = (ef_addr)(uintptr_t)p;
    mr->len = len;
    return 0;
}
int ef_memreg_free(ef_memreg *mr, ef_driver_handle mr_dh) { (void)mr; (void)mr_dh; return 0; }

int ef_vi_alloc_from_pd(ef_vi *vi, ef_driver_handle vi_dh, struct ef_pd *pd, ef_driver_handle pd_dh,
                        int evq_capacity, int rxq_capacity, int txq_capacity, ef_vi *evq_opt,
                        ef_driver_handle evq_dh, enum ef_vi_flags flags) {
    (void)vi_dh; (void)pd; (void)pd_dh; (void)evq_capacity; (void)txq_capacity; (void)evq_opt; (void)evq_dh;
    if (rxq_capacity <= 0) rxq_capacity = 512;
    struct rxf_standin_nic *n = calloc(1, sizeof(*n));
    if (!n) return -ENOMEM;
    n->cap = rxq_capacity;
    n->addr = calloc((size_t)rxq_capacity, sizeof(ef_addr));
    n->id = calloc((size_t)rxq_capacity, sizeof(ef_request_id));
    n->prefix = rxf_standin_env_int("RXF_EFVI_STANDIN_PREFIX", 14);
    n->burst = rxf_standin_env_int("RXF_EFVI_STANDIN_BURST", 64);
    n->discard_every = rxf_standin_env_int("RXF_EFVI_STANDIN_DISCARD_EVERY", 0);
    n->reset_after = (uint64_t)rxf_standin_env_int("RXF_EFVI_STANDIN_RESET_AFTER", 0);
    const char *rf = getenv("RXF_EFVI_STANDIN_RING_FULL");
    n->wait_when_full = rf && strcmp(rf, "wait") == 0;
    n->ts_flags = rxf_standin_env_int("RXF_EFVI_STANDIN_TS_FLAGS", EF_VI_SYNC_FLAG_CLOCK_SET |
                                      EF_VI_SYNC_FLAG_CLOCK_IN_SYNC);
    n->udp_fd = -1;
    n->ifindex = pd ? pd->ifindex : 0;
    vi->nic = n;
    const char *arch = getenv("RXF_EFVI_STANDIN_ARCH");
    vi->nic_type.arch = arch && strcmp(arch, "efct") == 0 ? EF_VI_ARCH_EFCT : EF_VI_ARCH_EF10;
    if (vi->nic_type.arch == EF_VI_ARCH_EFCT && rxf_standin_efct_init(n) != 0) return -ENOMEM;
    const char *pcap = getenv("RXF_EFVI_STANDIN_PCAP");
    if (pcap && *pcap) {
        int fd = open(pcap, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 24) { if (fd >= 0) close(fd); return -ENOENT; }
        n->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (n->map == MAP_FAILED) return -errno;
        n->map_len = (size_t)st.st_size;
        uint32_t magic;
        memcpy(&magic, n->map, 4);
        if (magic != 0xa1b2c3d4u && magic != 0xa1b23c4du) return -EPROTO; /* little-endian classic pcap only */
        n->nsec = magic == 0xa1b23c4du;
        n->pos = 24;
    }
    vi->rxq_capacity = rxq_capacity;
    vi->rx_prefix_len = vi->nic_type.arch == EF_VI_ARCH_EFCT ? 0 : n->prefix;
    vi->flags = flags;
    return 0;
}

/* The NIC's counters for the tests (RXF_EFVI_STANDIN_STATS). */
static void write_stats(struct rxf_standin_nic *n) {
    const char *path = getenv("RXF_EFVI_STANDIN_STATS");
    FILE *out = path && *path ? fopen(path, "w") : NULL;
    if (!out) return;
    fprintf(out, "frames %llu\n", (unsigned long long)n->frames);
    rxf_standin_efct_write_stats(n, out);
    fclose(out);
}

int ef_vi_free(ef_vi *vi, ef_driver_handle nic) {
    (void)nic;
    struct rxf_standin_nic *n = vi->nic;
    if (!n) return 0;
    write_stats(n);
    rxf_standin_efct_free(n);
    if (n->map) munmap((void *)n->map, n->map_len);
    if (n->udp_fd >= 0) close(n->udp_fd);
    free(n->addr);
    free(n->id);
    free(n);
    vi->nic = NULL;
    return 0;
}

void ef_filter_spec_init(ef_filter_spec *fs, enum ef_filter_flags flags) {
    memset(fs, 0, sizeof(*fs));
    fs->flags = flags;
}
int ef_filter_spec_set_ip4_local(ef_filter_spec *fs, int protocol, unsigned host_be32, int port_be16) {
    fs->protocol = protocol;
    fs->host_be32 = host_be32;
    fs->port_be16 = port_be16;
    fs->set = 1;
    return 0;
}
int ef_vi_filter_add(ef_vi *vi, ef_driver_handle vi_dh, const ef_filter_spec *fs, ef_filter_cookie *cookie) {
    (void)vi_dh;
    struct rxf_standin_nic *n = vi->nic;
    if (!fs->set || fs->protocol != IPPROTO_UDP) return -EINVAL;
    if (n->nfilters >= MAX_FILTERS) return -ENOSPC;
    n->fip[n->nfilters] = ntohl(fs->host_be32);
    n->fport[n->nfilters] = ntohs((uint16_t)fs->port_be16);
    if (getenv("RXF_EFVI_STANDIN_UDP")) { /* the "NIC" hears the group through a kernel socket */
        if (n->udp_fd < 0) {
            n->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
            int one = 1, rcv = 1 << 22;
            setsockopt(n->udp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            setsockopt(n->udp_fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = (uint16_t)fs->port_be16};
            if (bind(n->udp_fd, (struct sockaddr *)&a, sizeof(a)) != 0) return -errno;
        }
        struct ip_mreqn m;
        memset(&m, 0, sizeof(m));
        m.imr_multiaddr.s_addr = fs->host_be32;
        m.imr_ifindex = n->ifindex;
        if (setsockopt(n->udp_fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) != 0) return -errno;
    }
    if (cookie) { cookie->filter_id = n->nfilters; cookie->filter_type = 0; }
    n->nfilters++;
    return 0;
}

int ef_vi_receive_prefix_len(const ef_vi *vi) { return vi->rx_prefix_len; }
int ef_vi_receive_capacity(const ef_vi *vi) { return vi->rxq_capacity; }
int ef_vi_receive_fill_level(const ef_vi *vi) { return vi->nic->n_posted + vi->nic->n_pending; }

int ef_vi_receive_init(ef_vi *vi, ef_addr addr, ef_request_id dma_id) {
    struct rxf_standin_nic *n = vi->nic;
    if (n->n_posted + n->n_pending >= n->cap) return -EAGAIN;
    int slot = (n->head + n->n_posted + n->n_pending) % n->cap;
    n->addr[slot] = addr;
    n->id[slot] = dma_id;
    n->n_pending++;
    return 0;
}
void ef_vi_receive_push(ef_vi *vi) { vi->nic->n_posted += vi->nic->n_pending; vi->nic->n_pending = 0; }
int ef_vi_receive_post(ef_vi *vi, ef_addr addr, ef_request_id dma_id) {
    int rc = ef_vi_receive_init(vi, addr, dma_id);
    if (rc == 0) ef_vi_receive_push(vi);
    return rc;
}

int ef_vi_receive_get_precise_timestamp(ef_vi *vi, const void *pkt, ef_precisetime *ts_out) {
    memset(ts_out, 0, sizeof(*ts_out));
    if (vi->nic->efct) return rxf_standin_efct_timestamp(vi->nic, pkt, ts_out);
    if (!(vi->flags & EF_VI_RX_TIMESTAMPS) || vi->rx_prefix_len < 8 || vi->nic->ts_flags < 0) return -ENODATA;
    uint32_t s, ns;
    memcpy(&s, pkt, 4);
    memcpy(&ns, (const uint8_t *)pkt + 4, 4);
    ts_out->tv_sec = s;
    ts_out->tv_nsec = ns;
    ts_out->tv_flags = (uint16_t)vi->nic->ts_flags;
    return 0;
}

int ef_vi_receive_get_timestamp(ef_vi *vi, const void *pkt, ef_timespec *ts_out) {
    ef_precisetime t;
    int rc = ef_vi_receive_get_precise_timestamp(vi, pkt, &t);
    ts_out->tv_sec = (time_t)t.tv_sec;
    ts_out->tv_nsec = (long)t.tv_nsec;
    return rc;
}

int rxf_standin_push_event(struct rxf_standin_nic *n, const ef_event *ev) {
    if (n->fifo_n >= FIFO_SIZE) return 0;
    n->fifo[(n->fifo_head + n->fifo_n++) % FIFO_SIZE] = *ev;
    return 1;
}

int rxf_standin_maybe_reset(struct rxf_standin_nic *n) {
    if (!n->reset_after || n->reset_sent || n->frames < n->reset_after) return 0;
    ef_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.generic.type = EF_EVENT_TYPE_RESET;
    n->reset_sent = rxf_standin_push_event(n, &ev);
    return 1;
}

/* The next frame on the wire, or NULL. */
const uint8_t *rxf_standin_peek_frame(struct rxf_standin_nic *n, uint32_t *len, uint64_t *ts_ns) {
    if (n->map) {
        if (n->pos + 16 > n->map_len) return NULL;
        const uint8_t *h = n->map + n->pos;
        uint32_t sec, frac, incl;
        memcpy(&sec, h, 4); memcpy(&frac, h + 4, 4); memcpy(&incl, h + 8, 4);
        if (incl > n->map_len - n->pos - 16) return NULL;
        *len = incl;
        *ts_ns = (uint64_t)sec * 1000000000ull + (n->nsec ? frac : (uint64_t)frac * 1000u);
        return h + 16;
    }
    if (n->udp_fd >= 0) {
        if (!n->udp_have) {
            struct sockaddr_in src;
            socklen_t sl = sizeof(src);
            ssize_t r = recvfrom(n->udp_fd, n->udp_frame + 42, BUF_SIZE, 0, (struct sockaddr *)&src, &sl);
            if (r < 0) return NULL;
            uint8_t *f = n->udp_frame; /* Ethernet + IPv4 + UDP around the payload */
            memset(f, 0, 42);
            f[0] = 0x01; f[1] = 0x00; f[2] = 0x5e; f[12] = 0x08; f[13] = 0x00;
            f[14] = 0x45; f[22] = 16; f[23] = 17;
            uint16_t tot = htons((uint16_t)(20 + 8 + r)), ul = htons((uint16_t)(8 + r));
            memcpy(f + 16, &tot, 2);
            memcpy(f + 26, &src.sin_addr.s_addr, 4);
            uint32_t dst = htonl(n->fip[0]);
            memcpy(f + 30, &dst, 4);
            memcpy(f + 34, &src.sin_port, 2);
            uint16_t dp = htons(n->fport[0]);
            memcpy(f + 36, &dp, 2);
            memcpy(f + 38, &ul, 2);
            n->udp_len = (uint32_t)(42 + r);
            n->udp_have = 1;
        }
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        *ts_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
        *len = n->udp_len;
        return n->udp_frame;
    }
    return NULL;
}

void rxf_standin_consume_frame(struct rxf_standin_nic *n, uint32_t len) {
    if (n->map) n->pos += 16 + len;
    else n->udp_have = 0;
}

int rxf_standin_filter_index(const struct rxf_standin_nic *n, const uint8_t *f, uint32_t len) {
    if (len < 38 || f[12] != 0x08 || f[13] != 0x00) return -1;
    uint32_t ihl = (uint32_t)(f[14] & 15) * 4;
    if (len < 14 + ihl + 4 || f[23] != 17) return -1;
    uint32_t dst = ((uint32_t)f[30] << 24) | ((uint32_t)f[31] << 16) | ((uint32_t)f[32] << 8) | f[33];
    uint16_t port = (uint16_t)((f[14 + ihl + 2] << 8) | f[14 + ihl + 3]);
    for (int i = 0; i < n->nfilters; i++)
        if (n->fip[i] == dst && n->fport[i] == port) return i;
    return -1;
}

int rxf_standin_filtered_out(struct rxf_standin_nic *n, const uint8_t *f, uint32_t len) {
    if (n->nfilters == 0 || n->udp_fd >= 0) return 0;
    return rxf_standin_filter_index(n, f, len) < 0;
}

/* Take up to `burst` frames off the wire into posted buffers, queueing
   their events; frames that find no posted buffer are dropped (or, with
   RING_FULL=wait, left on the wire). */
static void ingest(struct rxf_standin_nic *n) {
    for (int j = 0; j < n->burst && n->fifo_n < FIFO_SIZE; j++) {
        ef_event ev;
        memset(&ev, 0, sizeof(ev));
        if (rxf_standin_maybe_reset(n)) return;
        uint32_t flen;
        uint64_t ts;
        const uint8_t *f = rxf_standin_peek_frame(n, &flen, &ts);
        if (!f) return;
        if (rxf_standin_filtered_out(n, f, flen)) { rxf_standin_consume_frame(n, flen); continue; }
        if (n->n_posted == 0) {
            if (n->wait_when_full) return;
            rxf_standin_consume_frame(n, flen); /* no descriptor: the NIC drops it */
            continue;
        }
        int slot = n->head;
        n->head = (n->head + 1) % n->cap;
        n->n_posted--;
        uint8_t *buf = (uint8_t *)(uintptr_t)n->addr[slot];
        n->frames++;
        uint32_t room = BUF_SIZE - (uint32_t)n->prefix;
        uint32_t copy = flen < room ? flen : room;
        uint32_t s = (uint32_t)(ts / 1000000000ull), ns = (uint32_t)(ts % 1000000000ull);
        memset(buf, 0, (size_t)n->prefix);
        if (n->prefix >= 8) { memcpy(buf, &s, 4); memcpy(buf + 4, &ns, 4); }
        memcpy(buf + n->prefix, f, copy);
        if ((n->discard_every && n->frames % (uint64_t)n->discard_every == 0) || flen > room) {
            ev.rx_discard.type = EF_EVENT_TYPE_RX_DISCARD;
            ev.rx_discard.rq_id = (unsigned)n->id[slot];
            ev.rx_discard.len = (unsigned)(n->prefix + copy);
            ev.rx_discard.flags = EF_EVENT_FLAG_SOP;
            ev.rx_discard.subtype = flen > room ? EF_EVENT_RX_DISCARD_TRUNC
                                                : (unsigned)((n->frames / (uint64_t)n->discard_every) % 4);
        } else {
            ev.rx.type = EF_EVENT_TYPE_RX;
            ev.rx.rq_id = (unsigned)n->id[slot];
            ev.rx.len = (unsigned)(n->prefix + copy);
            ev.rx.flags = EF_EVENT_FLAG_SOP;
        }
        rxf_standin_consume_frame(n, flen);
        rxf_standin_push_event(n, &ev);
    }
}

int ef_eventq_poll(ef_vi *vi, ef_event *evs, int evs_len) {
    struct rxf_standin_nic *n = vi->nic;
    if (n->fifo_n == 0) {
        if (n->efct) rxf_standin_efct_ingest(n);
        else ingest(n);
    }
    int k = 0;
    while (k < evs_len && n->fifo_n > 0) {
        evs[k++] = n->fifo[n->fifo_head];
        n->fifo_head = (n->fifo_head + 1) % FIFO_SIZE;
        n->fifo_n--;
    }
    return k;
}

int ef_eventq_has_event(const ef_vi *vi) {
    const struct rxf_standin_nic *n = vi->nic;
    return n->fifo_n > 0 || (n->reset_after && !n->reset_sent && n->frames >= n->reset_after);
}
