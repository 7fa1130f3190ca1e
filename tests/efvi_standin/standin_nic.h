/*
 * rxfeed ef_vi stand-in (tests only) -- the simulated NIC shared by the EF10
 * personality (ciul_standin.c: application-posted DMA buffers) and the efct
 * (X3) personality (efct_standin.c: NIC-owned superbuffers). Private to the
 * stand-in; the backend only sees the API headers in include/etherfabric.
 */
#ifndef RXF_STANDIN_NIC_H
#define RXF_STANDIN_NIC_H

#include <stdint.h>
#include <stdio.h>
#include <etherfabric/ef_vi.h>

#define MAX_FILTERS 32
#define BUF_SIZE 2048
#define FIFO_SIZE 4096

/* efct packet slots: a 2048-byte stride, the frame at offset 66 of its slot
   (the X3's layout); the first 64 bytes of a slot are the stand-in's own
   metadata (timestamp, length). */
#define EFCT_STRIDE 2048
#define EFCT_FRAME_OFFSET 66
#define EFCT_FRAME_ROOM (EFCT_STRIDE - EFCT_FRAME_OFFSET)
#define EFCT_PKT_BITS 16

struct rxf_standin_efct {
    uint8_t *mem;                   /* n_sb * sb_pkts slots of EFCT_STRIDE bytes */
    size_t mem_len;
    int n_sb, sb_pkts;
    int *refcnt;                    /* per superbuffer: slots written and not yet released */
    int live, live_filled;          /* the superbuffer being filled (-1: none), slots written in it */
    uint8_t *owned;                 /* per slot: 1 while the application owns it */
    uint64_t outstanding, max_outstanding, released, bad_releases, exhausted_drops, leaked, releases;
    int leak_every, bad_len_every, ts_flags;
    /* a future: the frame written ahead of its completion event */
    int future_slot, future_wait, future_delay, future_miss_every;
    const uint8_t *future_src;
    uint32_t future_len;
    uint64_t future_ts, futures;
};

struct rxf_standin_nic {
    /* EF10 RX ring: posted (addr, id); [head, head+n_posted) pushed, then n_pending initialised */
    ef_addr *addr;
    ef_request_id *id;
    int cap, head, n_posted, n_pending;
    /* source */
    const uint8_t *map; size_t map_len, pos; int nsec;
    int udp_fd;
    int ifindex;
    uint8_t udp_frame[BUF_SIZE + 64]; uint32_t udp_len; int udp_have;
    /* behaviour */
    int prefix, burst, discard_every, wait_when_full, ts_flags;
    uint64_t reset_after;
    int reset_sent;
    uint64_t frames;
    int nfilters;
    ef_event fifo[FIFO_SIZE]; int fifo_head, fifo_n; /* the event queue */
    uint32_t fip[MAX_FILTERS];
    uint16_t fport[MAX_FILTERS];
    struct rxf_standin_efct *efct;  /* NULL: the EF10 personality */
};

int rxf_standin_env_int(const char *name, int dflt);
/* The next frame on the wire (NULL: none yet), and taking it off the wire. */
const uint8_t *rxf_standin_peek_frame(struct rxf_standin_nic *n, uint32_t *len, uint64_t *ts_ns);
void rxf_standin_consume_frame(struct rxf_standin_nic *n, uint32_t len);
/* The filter matching the frame's IPv4/UDP destination (-1: none). */
int rxf_standin_filter_index(const struct rxf_standin_nic *n, const uint8_t *f, uint32_t len);
/* 1 when no filter of the VI matches the frame's UDP destination. */
int rxf_standin_filtered_out(struct rxf_standin_nic *n, const uint8_t *f, uint32_t len);
/* Queues an event; 0 when the event queue is full. */
int rxf_standin_push_event(struct rxf_standin_nic *n, const ef_event *ev);
/* Queues the RESET event when RXF_EFVI_STANDIN_RESET_AFTER says so; 1 if it did. */
int rxf_standin_maybe_reset(struct rxf_standin_nic *n);
/* efct personality (efct_standin.c) */
int rxf_standin_efct_init(struct rxf_standin_nic *n);
void rxf_standin_efct_free(struct rxf_standin_nic *n);
void rxf_standin_efct_ingest(struct rxf_standin_nic *n);
int rxf_standin_efct_timestamp(struct rxf_standin_nic *n, const void *pkt, ef_precisetime *ts);
void rxf_standin_efct_write_stats(struct rxf_standin_nic *n, FILE *out);

#endif
