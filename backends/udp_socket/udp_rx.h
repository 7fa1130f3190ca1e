/*
 * Kernel UDP socket receiver as an rxfeed backend: the honest baseline for
 * every machine without a kernel-bypass NIC. recvmmsg() batches into a
 * preallocated ring (no per-packet allocation), kernel receive timestamps
 * (SO_TIMESTAMPNS), socket drop counter (SO_RXQ_OVFL), optional busy polling
 * (SO_BUSY_POLL) and non-blocking spinning, or blocking with a short timeout
 * so the loop still sees stop requests.
 */
#ifndef RXF_UDP_RX_H
#define RXF_UDP_RX_H

#include <stdint.h>
#include <sys/socket.h>
#include "rxfeed/abi.h"
#include "rxfeed/net.h" /* RXF_FILTER_MAX */

#define RXF_UDP_MAX_BATCH 256
#define RXF_UDP_BUF 2048

typedef struct rxf_udp_cfg {
    uint16_t port;
    uint32_t n_groups;
    uint32_t group[RXF_FILTER_MAX];   /* host order; 0 = unicast, no join */
    uint32_t source[RXF_FILTER_MAX];  /* host order; != 0: source-specific join */
    uint32_t iface_addr;                  /* host order; 0 = kernel's choice */
    int iface_index;                      /* 0 = by address */
    int rcvbuf;                           /* bytes; 0 = system default */
    int busy_poll_us;                     /* SO_BUSY_POLL; 0 off */
    int blocking;                         /* 1: blocking recvmmsg (100 ms timeout) */
    double idle_timeout_s;
} rxf_udp_cfg;

typedef struct rxf_udp_stats {
    uint64_t calls, packets, bytes, truncated;
    uint64_t kernel_drops;                /* SO_RXQ_OVFL: datagrams the socket dropped */
} rxf_udp_stats;

typedef struct rxf_udp {
    rxf_udp_cfg cfg;
    int fd;
    uint8_t *bufs;
    struct mmsghdr msgs[RXF_UDP_MAX_BATCH];
    struct iovec iov[RXF_UDP_MAX_BATCH];
    struct sockaddr_storage names[RXF_UDP_MAX_BATCH];
    uint8_t ctrl[RXF_UDP_MAX_BATCH][256];
    uint64_t last_rx_ns;
    rxf_udp_stats stats;
    char error[256];
} rxf_udp;

int rxf_udp_open(rxf_udp *u, const rxf_udp_cfg *cfg);
void rxf_udp_close(rxf_udp *u);
int rxf_udp_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max);
const char *rxf_udp_last_error(void *ctx);

#endif
