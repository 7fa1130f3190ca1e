/*
 * Solarflare/AMD ef_vi receive path as an rxfeed backend (rxf_backend_ops).
 * Written against Onload's public ef_vi API (etherfabric headers, libciul).
 *
 * One struct holds every resource (driver handle, protection domain, VI,
 * registered DMA buffers). Two receive loops share it, chosen from the VI's
 * architecture (nic_type.arch) or the `datapath` setting:
 *  - EF10 (X2, efvi_rx.c): buffers are posted to the RX ring and
 *    refilled in batches once the fill level drops below a threshold; the
 *    busy-poll loop drains ef_eventq_poll and hands each frame's UDP payload,
 *    read in place behind the RX prefix, to the decoder; buffers return to
 *    the free list on release.
 *  - efct (X3, efct_rx.c): nothing is posted; RX_REF events lend the
 *    application a pkt_id in NIC-owned memory, handed out in place and
 *    given back with efct_vi_rxpkt_release.
 */
#ifndef RXF_EFVI_RX_H
#define RXF_EFVI_RX_H

#include <stdint.h>
#include <etherfabric/base.h>
#include <etherfabric/ef_vi.h>
#include <etherfabric/memreg.h>
#include <etherfabric/pd.h>
#include <etherfabric/vi.h>
#include <etherfabric/efct_vi.h>

#include "rxfeed/abi.h"
#include "rxfeed/net.h"

#define RXF_EFVI_BUF_SIZE 2048
#define RXF_EFVI_MAX_EVENTS 64
#define RXF_EFVI_DISCARD_KINDS 9   /* EF_EVENT_RX_DISCARD_* subtypes + "unknown" */

enum rxf_efvi_datapath { RXF_EFVI_DATAPATH_AUTO, RXF_EFVI_DATAPATH_EF10, RXF_EFVI_DATAPATH_EFCT };

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
    int datapath;         /* enum rxf_efvi_datapath; AUTO: what the VI's architecture says */
    int future_peek;      /* efct: efct_vi_rx_future_peek before each completion */
} rxf_efvi_cfg;

typedef struct rxf_efvi_stats {
    uint64_t polls, events, frames, rx, packets, bytes;
    uint64_t discards[RXF_EFVI_DISCARD_KINDS];
    uint64_t ring_empty, no_buffer, jumbo, unsupported_events, resets;
    uint64_t drops[RXF_NET_NVERDICTS];
    /* efct */
    uint64_t rx_ref, bad_len, bad_pkt_id, released, released_on_close, held_max;
    uint64_t future_peeks, future_early_rejects, future_undone, future_timeouts, future_mismatch;
    /* NIC timestamps (timestamps=true): in sync, clock set but not in sync, clock never set
       (CLOCK_REALTIME used instead), none on the frame (CLOCK_REALTIME used instead) */
    uint64_t ts_in_sync, ts_set_not_in_sync, ts_clock_unset, ts_missing;
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
    uint32_t held[RXF_EFVI_MAX_EVENTS];  /* buffer ids (EF10) / pkt_ids (efct) handed out this burst */
    int n_held;
    int arch;            /* the VI's nic_type.arch */
    int efct;            /* 1: the efct loop runs */
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

/* Shared by both loops (efvi_rx.c). */
uint64_t rxf_efvi_now_ns(int clock);
/* Parses the frame in place and fills *out (timestamp from ts_pkt, the VI's
   "first packet buffer"); 1 when handed out, 0 when dropped (counted). */
int rxf_efvi_hand_out(rxf_efvi *e, const uint8_t *frame, uint32_t len, const void *ts_pkt, rxf_packet *out);
void rxf_efvi_count_discard(rxf_efvi *e, unsigned subtype);
void rxf_efvi_on_reset(rxf_efvi *e);
/* RXF_ERROR / RXF_EOF before polling, or 0 to poll. */
int rxf_efvi_poll_begin(rxf_efvi *e);
/* The rx_burst result after a poll that saw nev events and handed out n packets. */
int rxf_efvi_poll_end(rxf_efvi *e, int nev, uint32_t n);

#endif
