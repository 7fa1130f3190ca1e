/*
 * Link layer -> IPv4 -> UDP parsing for backends that receive whole frames
 * (pcap replay, DPDK, ef_vi). Every length is checked before a header is
 * read; the verdict says why a frame was dropped so backends can count it.
 */
#ifndef RXFEED_NET_H
#define RXFEED_NET_H

#include <stdint.h>
#include <string.h>

/* pcap/pcapng link types handled */
#define RXF_LINK_ETHERNET 1u
#define RXF_LINK_RAW 101u       /* LINKTYPE_RAW: raw IPv4/IPv6            */
#define RXF_LINK_DLT_RAW_A 12u  /* DLT_RAW on most BSDs                     */
#define RXF_LINK_DLT_RAW_B 14u  /* DLT_RAW on OpenBSD                       */
#define RXF_LINK_LINUX_SLL 113u
#define RXF_LINK_LINUX_SLL2 276u
#define RXF_LINK_IPV4 228u

typedef enum rxf_net_verdict {
    RXF_NET_OK = 0,
    RXF_NET_TRUNCATED,   /* shorter than a header or length field says   */
    RXF_NET_NOT_IPV4,    /* ARP, IPv6, LLDP, ...                         */
    RXF_NET_NOT_UDP,     /* TCP, ICMP, IGMP, ...                         */
    RXF_NET_FRAGMENT,    /* IPv4 fragment: not reassembled, dropped      */
    RXF_NET_BAD_HEADER,  /* IHL < 5, UDP length < 8, ...                 */
    RXF_NET_LINKTYPE,    /* a link type we do not parse                  */
    RXF_NET_NVERDICTS
} rxf_net_verdict;

typedef struct rxf_udp_view {
    const uint8_t *payload;
    uint32_t len;
    uint32_t src_ip, dst_ip; /* host byte order */
    uint16_t src_port, dst_port;
} rxf_udp_view;

static inline uint16_t rxf_net_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

/* The Internet checksum (RFC 1071) of len bytes: what goes in an IPv4, IGMP,
   ... header's checksum field (zeroed first); 0 over data carrying a right one. */
static inline uint16_t rxf_net_csum(const uint8_t *p, uint32_t len) {
    uint32_t sum = 0;
    for (uint32_t i = 0; i + 1 < len; i += 2) sum += rxf_net_be16(p + i);
    if (len & 1) sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16) sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}
static inline uint32_t rxf_net_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline rxf_net_verdict rxf_parse_ipv4_udp(const uint8_t *p, uint32_t len, rxf_udp_view *out) {
    if (len < 20) return RXF_NET_TRUNCATED;
    if ((p[0] >> 4) != 4) return RXF_NET_NOT_IPV4;
    uint32_t ihl = (uint32_t)(p[0] & 0x0f) * 4u; /* options honoured */
    uint32_t total = rxf_net_be16(p + 2);
    if (ihl < 20 || total < ihl) return RXF_NET_BAD_HEADER;
    if (total > len) return RXF_NET_TRUNCATED; /* snap length cut it */
    uint16_t frag = rxf_net_be16(p + 6);
    if ((frag & 0x2000u) || (frag & 0x1fffu)) return RXF_NET_FRAGMENT;
    if (p[9] != 17) return RXF_NET_NOT_UDP;
    const uint8_t *u = p + ihl;
    uint32_t ulen_avail = total - ihl;
    if (ulen_avail < 8) return RXF_NET_TRUNCATED;
    uint32_t ulen = rxf_net_be16(u + 4);
    if (ulen < 8) return RXF_NET_BAD_HEADER;
    if (ulen > ulen_avail) return RXF_NET_TRUNCATED;
    out->src_ip = rxf_net_be32(p + 12);
    out->dst_ip = rxf_net_be32(p + 16);
    out->src_port = rxf_net_be16(u);
    out->dst_port = rxf_net_be16(u + 2);
    out->payload = u + 8;
    out->len = ulen - 8;
    return RXF_NET_OK;
}

/* The EtherType of an Ethernet II frame past up to two 802.1Q / 802.1ad
   tags, and in *l3 the offset of what follows it; -1 if truncated. */
static inline int rxf_net_ethertype(const uint8_t *f, uint32_t len, uint32_t *l3) {
    if (len < 14) return -1;
    uint32_t off = 12;
    uint16_t et = rxf_net_be16(f + off);
    for (int tags = 0; (et == 0x8100 || et == 0x88a8) && tags < 2; tags++) {
        off += 4;
        if (len < off + 2) return -1;
        et = rxf_net_be16(f + off);
    }
    *l3 = off + 2;
    return et;
}

/* Ethernet II with up to two 802.1Q / 802.1ad tags. */
static inline rxf_net_verdict rxf_parse_ethernet(const uint8_t *f, uint32_t len, rxf_udp_view *out) {
    uint32_t off;
    int et = rxf_net_ethertype(f, len, &off);
    if (et < 0) return RXF_NET_TRUNCATED;
    if (et != 0x0800) return RXF_NET_NOT_IPV4;
    return rxf_parse_ipv4_udp(f + off, len - off, out);
}

/* Any supported link type. */
static inline rxf_net_verdict rxf_parse_frame(uint32_t linktype, const uint8_t *f, uint32_t len,
                                              rxf_udp_view *out) {
    switch (linktype) {
    case RXF_LINK_ETHERNET:
        return rxf_parse_ethernet(f, len, out);
    case RXF_LINK_LINUX_SLL: /* 16-byte header, protocol at 14 */
        if (len < 16) return RXF_NET_TRUNCATED;
        if (rxf_net_be16(f + 14) != 0x0800) return RXF_NET_NOT_IPV4;
        return rxf_parse_ipv4_udp(f + 16, len - 16, out);
    case RXF_LINK_LINUX_SLL2: /* 20-byte header, protocol at 0 */
        if (len < 20) return RXF_NET_TRUNCATED;
        if (rxf_net_be16(f) != 0x0800) return RXF_NET_NOT_IPV4;
        return rxf_parse_ipv4_udp(f + 20, len - 20, out);
    case RXF_LINK_RAW:
    case RXF_LINK_DLT_RAW_A:
    case RXF_LINK_DLT_RAW_B:
    case RXF_LINK_IPV4:
        return rxf_parse_ipv4_udp(f, len, out);
    default:
        return RXF_NET_LINKTYPE;
    }
}

#include "rxfeed/abi.h"

/* Fill a packet descriptor from a parsed UDP datagram (timestamp and flags
   are the caller's). */
static inline void rxf_packet_set(rxf_packet *k, const rxf_udp_view *u, uint64_t rx_ts_ns, uint32_t flags) {
    k->data = u->payload;
    k->len = u->len;
    k->flags = flags;
    k->rx_ts_ns = rx_ts_ns;
    k->src_ip = u->src_ip;
    k->dst_ip = u->dst_ip;
    k->src_port = u->src_port;
    k->dst_port = u->dst_port;
    k->line = 0;
}

/* Destination filter: a frame passes when it matches any entry; an empty
   filter passes everything. ip 0 / port 0 are wildcards. */
#define RXF_FILTER_MAX 16
typedef struct rxf_dst_filter {
    uint32_t n;
    uint32_t ip[RXF_FILTER_MAX];
    uint16_t port[RXF_FILTER_MAX];
} rxf_dst_filter;

static inline int rxf_filter_pass(const rxf_dst_filter *flt, uint32_t ip, uint16_t port) {
    if (flt->n == 0) return 1;
    for (uint32_t i = 0; i < flt->n; i++)
        if ((flt->ip[i] == 0 || flt->ip[i] == ip) && (flt->port[i] == 0 || flt->port[i] == port)) return 1;
    return 0;
}

#endif
