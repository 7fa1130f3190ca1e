/* rxfeed ef_vi stand-in (tests only) -- the VI, its events and RX ring. */
#ifndef RXF_STANDIN_EF_VI_H
#define RXF_STANDIN_EF_VI_H

#include <stdint.h>
#include <time.h>
#include <etherfabric/base.h>

typedef uint64_t ef_addr;
typedef int ef_request_id;
#define ef_timespec struct timespec

#define EF_VI_DMA_ALIGN 64

enum ef_vi_flags {
    EF_VI_FLAGS_DEFAULT = 0x0,
    EF_VI_RX_TIMESTAMPS = 0x10000,
};

/* event types (subset, same names as the real API) */
enum {
    EF_EVENT_TYPE_RX,
    EF_EVENT_TYPE_TX,
    EF_EVENT_TYPE_RX_DISCARD,
    EF_EVENT_TYPE_TX_ERROR,
    EF_EVENT_TYPE_RX_NO_DESC_TRUNC,
    EF_EVENT_TYPE_SW,
    EF_EVENT_TYPE_OFLOW,
    EF_EVENT_TYPE_TX_WITH_TIMESTAMP,
    EF_EVENT_TYPE_RX_PACKED_STREAM,
    EF_EVENT_TYPE_RX_MULTI,
    EF_EVENT_TYPE_TX_ALT,
    EF_EVENT_TYPE_RX_MULTI_DISCARD,
    EF_EVENT_TYPE_RESET,
    EF_EVENT_TYPE_RX_MULTI_PKTS,
    EF_EVENT_TYPE_RX_REF,
    EF_EVENT_TYPE_RX_REF_DISCARD,
    EF_EVENT_TYPE_MAX,
};

enum {
    EF_EVENT_RX_DISCARD_CSUM_BAD,
    EF_EVENT_RX_DISCARD_MCAST_MISMATCH,
    EF_EVENT_RX_DISCARD_CRC_BAD,
    EF_EVENT_RX_DISCARD_TRUNC,
    EF_EVENT_RX_DISCARD_RIGHTS,
    EF_EVENT_RX_DISCARD_EV_ERROR,
    EF_EVENT_RX_DISCARD_OTHER,
    EF_EVENT_RX_DISCARD_INNER_CSUM_BAD,
    EF_EVENT_RX_DISCARD_MAX,
};

#define EF_EVENT_FLAG_SOP 0x1
#define EF_EVENT_FLAG_CONT 0x2

typedef union {
    struct { unsigned type:16; } generic;
    struct { unsigned type:16; unsigned q_id:16; unsigned rq_id:32; unsigned len:16; unsigned flags:16; } rx;
    struct { unsigned type:16; unsigned q_id:16; unsigned rq_id:32; unsigned len:16; unsigned flags:16;
             unsigned subtype:16; } rx_discard;
    uint64_t u64[2];
} ef_event;

#define EF_EVENT_TYPE(e) ((e).generic.type)
#define EF_EVENT_RX_BYTES(e) ((e).rx.len)
#define EF_EVENT_RX_Q_ID(e) ((e).rx.q_id)
#define EF_EVENT_RX_RQ_ID(e) ((e).rx.rq_id)
#define EF_EVENT_RX_CONT(e) ((e).rx.flags & EF_EVENT_FLAG_CONT)
#define EF_EVENT_RX_SOP(e) ((e).rx.flags & EF_EVENT_FLAG_SOP)
#define EF_EVENT_RX_DISCARD_RQ_ID(e) ((e).rx_discard.rq_id)
#define EF_EVENT_RX_DISCARD_BYTES(e) ((e).rx_discard.len)
#define EF_EVENT_RX_DISCARD_TYPE(e) ((e).rx_discard.subtype)

struct rxf_standin_nic; /* the simulated NIC behind a VI */

typedef struct ef_vi {
    struct rxf_standin_nic *nic;
    int rxq_capacity;
    int rx_prefix_len;
    unsigned flags;
} ef_vi;

extern int ef_vi_receive_prefix_len(const ef_vi *vi);
extern int ef_vi_receive_fill_level(const ef_vi *vi);
extern int ef_vi_receive_capacity(const ef_vi *vi);
extern int ef_vi_receive_init(ef_vi *vi, ef_addr addr, ef_request_id dma_id);
extern void ef_vi_receive_push(ef_vi *vi);
extern int ef_vi_receive_post(ef_vi *vi, ef_addr addr, ef_request_id dma_id);
extern int ef_eventq_poll(ef_vi *evq, ef_event *evs, int evs_len);
extern int ef_vi_receive_get_timestamp(ef_vi *vi, const void *pkt, ef_timespec *ts_out);

#endif
