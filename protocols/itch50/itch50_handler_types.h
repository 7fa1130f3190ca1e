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

typedef struct rxf_itch_handlers {
    uint32_t version;     /* RXF_ITCH_HANDLERS_VERSION */
    uint32_t struct_size; /* sizeof(rxf_itch_handlers) */
    void *ctx;
    rxf_itch_handler on[256]; /* indexed by the message type byte */
} rxf_itch_handlers;
