/* The full-market ITCH 5.0 day generator's state machine (issue 13, item 4).
 *
 * One mg_market holds a whole day: the seeded PRNG, per-symbol fair price,
 * volatility and spread state, every live order (32 bytes each, in a pool
 * with a free list), the price levels of each (symbol, side) in FIFO order,
 * a min-heap of level prices per (symbol, side) for the best price, and a
 * (symbol, side, price) -> level hash. mg_fill() writes the next messages of
 * the day in NASDAQ file framing (u16 big-endian length + message) into a
 * caller buffer; no allocation per message, no Python.
 *
 * Allocation goes through MG_MALLOC/MG_REALLOC/MG_FREE (PyMem_Raw* in the
 * extension, so tracemalloc sees the state); mg_state_bytes() is the state's
 * own size.
 */
#ifndef RXFEED_MARKET_GEN_ENGINE_H
#define RXFEED_MARKET_GEN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* A new day: symbols (1..65535), n_messages (at least mg_min_messages),
 * seed, zipf exponent, max_live (0: none, else at least 64) and the symbol
 * names (8 bytes each, space padded). NULL when out of memory or arguments
 * are bad (the Python wrapper checks them first, with clear messages). */
typedef struct mg_market mg_market;

uint64_t mg_min_messages(uint32_t symbols);
mg_market *mg_new(uint32_t symbols, uint64_t n_messages, uint64_t seed, double zipf, uint64_t max_live,
                  const uint8_t *names);
void mg_free(mg_market *m);

/* Write up to max_msgs of the next messages into out[0..cap), framed; stops
 * before a message that would not fit (cap >= 64 always fits one). Returns
 * the bytes written; *msgs receives the messages written. 0 at the end. */
size_t mg_fill(mg_market *m, uint8_t *out, size_t cap, uint64_t max_msgs, uint64_t *msgs);

typedef struct {
    uint64_t emitted;      /* messages written so far */
    uint64_t live;         /* live orders now */
    uint64_t peak_live;    /* most live orders at any time */
    uint64_t levels;       /* price levels now */
    uint64_t state_bytes;  /* bytes allocated for the state */
    uint64_t by_type[26];  /* messages written per type letter 'A'..'Z' */
} mg_stats;

void mg_get_stats(const mg_market *m, mg_stats *s);

/* MoldUDP64 in UDP in Ethernet: a packer fed NASDAQ-framed chunks.
 * Datagrams hold whole messages and fit a 1,500-byte frame; each record is a
 * u64 capture time (epoch_ns + the first message's ITCH timestamp) and a u32
 * frame length, little-endian, then the frame. */
typedef struct {
    uint8_t frame_hdr[42];  /* Ethernet + IPv4 + UDP header template (ident, lengths, checksum patched) */
    uint8_t session[10];
    uint64_t epoch_ns;
    uint64_t seq;           /* sequence number of the block's first message */
    uint64_t datagrams;     /* datagrams written (the IPv4 ident) */
    uint64_t first_ts;      /* ITCH timestamp of the block's first message */
    uint32_t count;         /* messages in the open block */
    uint32_t used;          /* bytes of message blocks in the open block */
    uint8_t block[1500];
} mg_mold;

#define MG_MOLD_MAX_RECORD (1500 + 16)

/* Pack the framed messages of in[0..len) into out[0..cap) (cap >=
 * mg_mold_bound(len) is always enough); returns bytes written, or
 * (size_t)-1 if in is not whole framed messages or out is too small. end != 0
 * flushes the open block and writes the end-of-session datagram. */
size_t mg_mold_bound(size_t len);
size_t mg_mold_pack(mg_mold *p, const uint8_t *in, size_t len, uint8_t *out, size_t cap, int end);

#endif
