/*
 * The ITCH 5.0 handler-table types, included by itch50_handlers.h (which
 * adds the version and capsule name). Declarations only - no preprocessor
 * lines - so that cffi's cdef() parses it as it is
 * (rxfeed.protocols.itch50.ffi.HANDLERS_CDEF). Needs rxfeed/abi.h and
 * _records.h first.
 */

typedef struct rxf_itch_meta {
    const rxf_packet *packet; /* the datagram or stream chunk it came in    */
    const uint8_t *raw;       /* the message's wire bytes                    */
    uint32_t raw_len;
    uint32_t has_sequence;    /* 1 when MoldUDP64 carried it                  */
    uint64_t sequence;        /* MoldUDP64 sequence number                   */
    const char *session;      /* 10 bytes, not NUL-terminated; NULL if none  */
} rxf_itch_meta;

typedef void (*rxf_itch_handler)(void *ctx, const rxf_itch_record *rec, const rxf_itch_meta *meta);

/* A wire view: msg points at the message's first byte (its type) inside the
   packet buffer, len is exactly the type's wire length (checked before the
   call: a message of another length never gets here). Read it with the
   accessors of itch50_wire.h (itch_add_order_price(msg), ...): no decode,
   no copy. */
typedef void (*rxf_itch_wire_handler)(void *ctx, const uint8_t *msg, uint32_t len, const rxf_itch_meta *meta);

typedef struct rxf_itch_handlers {
    uint32_t version;     /* RXF_ITCH_HANDLERS_VERSION */
    uint32_t struct_size; /* sizeof(rxf_itch_handlers); a table that ends
                             after on[] (the first layout) is read without wire[] */
    void *ctx;
    rxf_itch_handler on[256];        /* decoded record, indexed by the type byte */
    rxf_itch_wire_handler wire[256]; /* wire view of the same types; a type may
                                        have both (the wire handler runs first) */
} rxf_itch_handlers;
