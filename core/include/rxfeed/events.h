/*
 * Normalised market-data events: one protocol-neutral, fixed-size record that
 * every protocol's books emit and every sink (ring, network, file) carries.
 *
 * One record is 64 bytes (one cache line), naturally aligned, little endian
 * on the wire (the layout of this struct on x86-64 and aarch64). A 16-byte
 * head says what it is (version, kind, side, flags, venue, instrument), then
 * the feed sequence number and the timestamp, then a 32-byte body whose
 * meaning depends on the kind (a union: one named view per kind).
 *
 * The same layout is a numpy dtype (rxfeed.events: EVENT_DTYPE for the head
 * and raw body, one view dtype per kind); tests compare the two field by
 * field. docs/distribution.md ("Event encoding") is the reference.
 *
 * Versioning: `version` is RXF_EVENT_VERSION in every record. A change of
 * layout or of the meaning of a field is a new version; readers reject
 * records of a version they do not know. Adding a kind or a flag keeps the
 * version (readers reject unknown kinds record by record).
 */
#ifndef RXFEED_EVENTS_H
#define RXFEED_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* C11 and C++ (a consumer may be either) */
#ifdef __cplusplus
#define RXF_EV_ASSERT static_assert
#define RXF_EV_ALIGNOF alignof
#else
#define RXF_EV_ASSERT _Static_assert
#define RXF_EV_ALIGNOF _Alignof
#endif

#define RXF_EVENT_VERSION 1u
#define RXF_EVENT_SIZE 64u

/* What a record is (rxf_event.kind). 0 is never a valid kind. */
enum rxf_event_kind {
    RXF_EV_ORDER_ADD = 1,    /* an order rests in the book: order           */
    RXF_EV_ORDER_MODIFY = 2, /* an order's price / quantity / id changed: order */
    RXF_EV_ORDER_DELETE = 3, /* an order left the book: order               */
    RXF_EV_LEVEL = 4,        /* a price level's new total: level            */
    RXF_EV_BBO = 5,          /* top of book changed: bbo                    */
    RXF_EV_TRADE = 6,        /* a trade printed: trade                      */
    RXF_EV_STATUS = 7,       /* an instrument's (or the venue's) trading state: status */
    RXF_EV_LOSS = 8,         /* events or feed messages lost: loss          */
    RXF_EV_SYMBOL = 9,       /* an instrument's definition (id -> name): symbol */
    RXF_EV_KIND_MAX = 9
};

/* rxf_event.side: ASCII, 0 when the kind has no side. */
#define RXF_SIDE_BID 'B'
#define RXF_SIDE_ASK 'S'
#define RXF_SIDE_NONE 0

/* rxf_event.flags */
#define RXF_EVF_LAST 0x01u     /* last event of one feed message: a consumer may
                                  show the book after it (updates in between are
                                  one atomic change)                           */
#define RXF_EVF_SUSPECT 0x02u  /* the instrument's book may be wrong (a loss was
                                  declared and not yet repaired)               */

/* rxf_event.body.status.state */
enum rxf_trading_state {
    RXF_STATE_UNKNOWN = 0,
    RXF_STATE_HALTED = 1,
    RXF_STATE_PAUSED = 2,
    RXF_STATE_QUOTING = 3,  /* quotation only, no trading */
    RXF_STATE_TRADING = 4,
    RXF_STATE_CLOSED = 5
};

/* rxf_event.body.loss.reason */
enum rxf_loss_reason {
    RXF_LOSS_FEED = 1,  /* feed messages declared lost by the sequencer:
                           first / count are feed sequence numbers        */
    RXF_LOSS_RING = 2,  /* events dropped at a full event ring:
                           first / count are event numbers (ring positions) */
    RXF_LOSS_STREAM = 3 /* messages the stream lost after acknowledging them
                           (a server killed before it wrote them to disk), or
                           the publisher gave up: first / count are stream
                           sequence numbers */
};

typedef struct rxf_ev_order {     /* ORDER_ADD / ORDER_MODIFY / ORDER_DELETE */
    int64_t price;          /* add, modify: the (new) price; delete: the price it had */
    uint64_t qty;           /* add: quantity; modify: quantity left; delete: 0 */
    uint64_t order_id;      /* the order (modify: its id before the change) */
    uint64_t new_order_id;  /* modify: its id after (== order_id unless replaced); else 0 */
} rxf_ev_order;

typedef struct rxf_ev_level {     /* LEVEL */
    int64_t price;
    uint64_t qty;           /* the level's new total; 0: the level is gone */
    uint64_t orders;        /* orders at the level (0 when the feed does not say) */
    uint64_t _reserved;
} rxf_ev_level;

typedef struct rxf_ev_bbo {       /* BBO */
    int64_t bid_price;      /* 0 with bid_qty 0: no bid */
    uint64_t bid_qty;
    int64_t ask_price;      /* 0 with ask_qty 0: no ask */
    uint64_t ask_qty;
} rxf_ev_bbo;

typedef struct rxf_ev_trade {     /* TRADE (side: the resting order's, 0 if unknown) */
    int64_t price;
    uint64_t qty;
    uint64_t order_id;      /* the resting order; 0 for a trade without one */
    uint64_t match_id;      /* the venue's trade id; 0 if none */
} rxf_ev_trade;

typedef struct rxf_ev_status {    /* STATUS (symbol 0: the whole venue) */
    uint32_t state;         /* enum rxf_trading_state */
    uint32_t venue_code;    /* the venue's own state code, as it sent it */
    char reason[8];         /* the venue's reason text, space or NUL padded */
    uint64_t _reserved[2];
} rxf_ev_status;

typedef struct rxf_ev_loss {      /* LOSS (symbol 0: every instrument of the venue) */
    uint64_t first;         /* first lost (feed sequence or event number) */
    uint64_t count;
    uint32_t reason;        /* enum rxf_loss_reason */
    uint32_t _reserved0;
    uint64_t _reserved1;
} rxf_ev_loss;

typedef struct rxf_ev_symbol {    /* SYMBOL: the venue names instrument `symbol` */
    char name[16];          /* the venue's symbol, space or NUL padded */
    uint32_t price_decimals;/* prices of this instrument are integers in 10^-price_decimals */
    uint32_t _reserved0;
    uint64_t _reserved1;
} rxf_ev_symbol;

typedef struct rxf_event {
    uint8_t version;        /* RXF_EVENT_VERSION */
    uint8_t kind;           /* enum rxf_event_kind */
    uint8_t side;           /* RXF_SIDE_* */
    uint8_t flags;          /* RXF_EVF_* */
    uint16_t venue;         /* venue id (the publisher's table of venues names it) */
    uint16_t _reserved;     /* 0 */
    uint32_t symbol;        /* instrument id within the venue; 0: none / all */
    uint32_t _reserved2;    /* 0 */
    uint64_t seq;           /* feed sequence number of the message that caused it */
    uint64_t ts;            /* the message's timestamp, ns (the venue's clock) */
    union {
        rxf_ev_order order;
        rxf_ev_level level;
        rxf_ev_bbo bbo;
        rxf_ev_trade trade;
        rxf_ev_status status;
        rxf_ev_loss loss;
        rxf_ev_symbol symbol;
        uint64_t raw[4];
    } body;
} rxf_event;

RXF_EV_ASSERT(sizeof(rxf_event) == RXF_EVENT_SIZE, "rxf_event is 64 bytes");
RXF_EV_ASSERT(RXF_EV_ALIGNOF(rxf_event) == 8, "rxf_event is 8-byte aligned");
RXF_EV_ASSERT(offsetof(rxf_event, venue) == 4, "rxf_event layout");
RXF_EV_ASSERT(offsetof(rxf_event, symbol) == 8, "rxf_event layout");
RXF_EV_ASSERT(offsetof(rxf_event, seq) == 16, "rxf_event layout");
RXF_EV_ASSERT(offsetof(rxf_event, ts) == 24, "rxf_event layout");
RXF_EV_ASSERT(offsetof(rxf_event, body) == 32, "rxf_event layout");
RXF_EV_ASSERT(sizeof(rxf_ev_order) == 32 && sizeof(rxf_ev_level) == 32 && sizeof(rxf_ev_bbo) == 32
               && sizeof(rxf_ev_trade) == 32 && sizeof(rxf_ev_status) == 32 && sizeof(rxf_ev_loss) == 32
               && sizeof(rxf_ev_symbol) == 32,
               "every body view is 32 bytes");
RXF_EV_ASSERT(offsetof(rxf_ev_status, reason) == 8 && offsetof(rxf_ev_loss, reason) == 16,
               "rxf_event body layout");

/* A record with its head filled and its body zeroed. */
static inline rxf_event rxf_event_make(uint8_t kind, uint16_t venue, uint32_t symbol, uint64_t seq, uint64_t ts)
{
    rxf_event e;
    memset(&e, 0, sizeof e);
    e.version = RXF_EVENT_VERSION;
    e.kind = kind;
    e.venue = venue;
    e.symbol = symbol;
    e.seq = seq;
    e.ts = ts;
    return e;
}

/* The LOSS (feed) record of feed messages first .. first + count - 1: every
   book of the venue may be wrong from here (LAST | SUSPECT). */
static inline rxf_event rxf_event_feed_loss(uint16_t venue, uint64_t first, uint64_t count, uint64_t ts)
{
    rxf_event e = rxf_event_make(RXF_EV_LOSS, venue, 0, first, ts);
    e.flags = RXF_EVF_LAST | RXF_EVF_SUSPECT;
    e.body.loss.first = first;
    e.body.loss.count = count;
    e.body.loss.reason = RXF_LOSS_FEED;
    return e;
}

/* 0 when `e` is a record this version can read, else what is wrong (static text). */
static inline const char *rxf_event_check(const rxf_event *e)
{
    if (e->version != RXF_EVENT_VERSION) return "unknown event version";
    if (e->kind == 0 || e->kind > RXF_EV_KIND_MAX) return "unknown event kind";
    return 0;
}

#endif
