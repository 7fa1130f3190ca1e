/*
 * Solarflare/AMD ef_vi receive path as an rxfeed backend (rxf_backend_ops).
 * Written against Onload's public ef_vi API (etherfabric headers, libciul).
 *
 * One struct holds every resource (driver handle, protection domain, VI,
 * registered DMA buffers). Buffers are posted to the RX ring and refilled in
 * batches once the fill level drops below a threshold; the busy-poll loop
 * drains ef_eventq_poll and hands each frame's UDP payload, read in place
 * behind the RX prefix, to the decoder; buffers return to the free list on
 * release.
 */
#ifndef RXF_EFVI_RX_H
#define RXF_EFVI_RX_H

#include <stdint.h>
#include <etherfabric/base.h>
#include <etherfabric/ef_vi.h>
#include <etherfabric/memreg.h>
#include <etherfabric/pd.h>
#include <etherfabric/vi.h>

#include "rxfeed/abi.h"
#include "rxfeed/net.h"

#define RXF_EFVI_BUF_SIZE 2048
#define RXF_EFVI_MAX_EVENTS 64
#define RXF_EFVI_DISCARD_KINDS 9

typedef struct rxf_efvi_cfg {
    const char *interface;
    int rx_ring;          /* descriptors */
    int ev_ring;          /* event queue entries (-1: driver default) */
    int refill_batch;     /* repost when at least this many buffers are free */
    int timestamps;       /* ask for hardware RX timestamps */
    uint32_t n_filters;
    uint32_t filter_ip[RXF_FILTER_MAX];   /* host order; n_filters <= RXF_FILTER_MAX */
    uint16_t filter_port[RXF_FILTER_MAX];
    uint64_t expected_frames;
    double idle_timeout_s;
} rxf_efvi_cfg;

typedef struct rxf_efvi_stats {
    uint64_t polls, events, frames, rx, packets, bytes;
    uint64_t discards[RXF_EFVI_DISCARD_KINDS];
    uint64_t ring_empty, no_buffer, jumbo, unsupported_events, resets;
    uint64_t drops[RXF_NET_NVERDICTS];
} rxf_efvi_stats;

typedef struct rxf_efvi {
    rxf_efvi_cfg cfg;
    ef_driver_handle dh;
    ef_pd pd;
    ef_vi vi;
    ef_memreg mr;
    int have_dh, have_pd, have_vi, have_mr;
    uint8_t *mem;        /* n_bufs * RXF_EFVI_BUF_SIZE, page aligned, registered */
    int n_bufs;
    ef_addr *dma;        /* per buffer */
    int *free_ids;       /* free list (buffers not in the ring, not held) */
    int n_free;
    int held[RXF_EFVI_MAX_EVENTS];  /* buffers handed to the decoder this burst */
    int n_held;
    int prefix;
    int reset;
    uint64_t last_rx_ns;
    rxf_efvi_stats stats;
    char error[256];
} rxf_efvi;

int rxf_efvi_open(rxf_efvi *e, const rxf_efvi_cfg *cfg);
void rxf_efvi_close(rxf_efvi *e);
int rxf_efvi_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max);
void rxf_efvi_release(void *ctx, rxf_packet *pkts, uint32_t n);
const char *rxf_efvi_last_error(void *ctx);

#endif
