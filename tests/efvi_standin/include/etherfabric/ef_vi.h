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

/* NIC architectures (same names and order as the real API) */
enum ef_vi_arch {
    EF_VI_ARCH_FALCON,
    EF_VI_ARCH_EF10,
    EF_VI_ARCH_EF100,
    EF_VI_ARCH_EFCT,
    EF_VI_ARCH_AF_XDP,
    EF_VI_ARCH_EF10CT,
};

struct ef_vi_nic_type {
    unsigned char arch;
    char variant;
    unsigned char revision;
    unsigned char nic_flags;
};

/* timestamp sync flags and the precise time (ns since the Unix epoch) */
#define EF_VI_SYNC_FLAG_CLOCK_SET 1
#define EF_VI_SYNC_FLAG_CLOCK_IN_SYNC 2

typedef struct {
    int64_t tv_sec;
    uint32_t tv_nsec;
    uint16_t tv_nsec_frac;
    uint16_t tv_flags;
} ef_precisetime;

/* why an efct frame was an RX_REF_DISCARD (event flags) */
enum ef_vi_rx_discard_err_flags {
    EF_VI_DISCARD_RX_L4_CSUM_ERR = 0x1,
    EF_VI_DISCARD_RX_L3_CSUM_ERR = 0x2,
    EF_VI_DISCARD_RX_ETH_FCS_ERR = 0x4,
    EF_VI_DISCARD_RX_ETH_LEN_ERR = 0x8,
    EF_VI_DISCARD_RX_TOBE_DISC = 0x10,
    EF_VI_DISCARD_RX_INNER_L4_CSUM_ERR = 0x20,
    EF_VI_DISCARD_RX_INNER_L3_CSUM_ERR = 0x40,
    EF_VI_DISCARD_RX_L2_CLASS_OTHER = 0x80,
    EF_VI_DISCARD_RX_L3_CLASS_OTHER = 0x100,
    EF_VI_DISCARD_RX_L4_CLASS_OTHER = 0x200,
};

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
    /* efct (X3): same field order and widths as the real API */
    struct { unsigned type:16; unsigned len:16; unsigned pkt_id:32; unsigned q_id:8; unsigned filter_id:16;
             unsigned user:8; } rx_ref;
    struct { unsigned type:16; unsigned len:16; unsigned pkt_id:32; unsigned q_id:8; unsigned filter_id:16;
             unsigned user:8; unsigned flags:16; } rx_ref_discard;
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
    struct ef_vi_nic_type nic_type;
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
/* A macro through the VI's operations table in Onload; a function here. */
extern int ef_vi_receive_get_precise_timestamp(ef_vi *vi, const void *pkt, ef_precisetime *ts_out);
extern int ef_eventq_has_event(const ef_vi *vi);

/* The EF_EVENT_RX_DISCARD_* subtype nearest to RX_REF_DISCARD flags (first match wins:
   FCS, length, L4/L3 checksum, inner checksums, class "other"; none: 0). */
static inline unsigned ef_vi_get_rx_discard_subtype_from_flags(unsigned flags) {
    static const struct { unsigned mask, subtype; } order[] = {
        {EF_VI_DISCARD_RX_ETH_FCS_ERR, EF_EVENT_RX_DISCARD_CRC_BAD},
        {EF_VI_DISCARD_RX_ETH_LEN_ERR, EF_EVENT_RX_DISCARD_TRUNC},
        {EF_VI_DISCARD_RX_L4_CSUM_ERR | EF_VI_DISCARD_RX_L3_CSUM_ERR, EF_EVENT_RX_DISCARD_CSUM_BAD},
        {EF_VI_DISCARD_RX_INNER_L4_CSUM_ERR | EF_VI_DISCARD_RX_INNER_L3_CSUM_ERR,
         EF_EVENT_RX_DISCARD_INNER_CSUM_BAD},
        {EF_VI_DISCARD_RX_L2_CLASS_OTHER | EF_VI_DISCARD_RX_L3_CLASS_OTHER | EF_VI_DISCARD_RX_L4_CLASS_OTHER,
         EF_EVENT_RX_DISCARD_OTHER},
    };
    for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (flags & order[i].mask) return order[i].subtype;
    return 0;
}

#endif
