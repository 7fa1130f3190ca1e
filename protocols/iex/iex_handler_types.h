/*
 * The IEX handler-table types, included by iex_handlers.h (which adds the
 * version and capsule name). Declarations only - no preprocessor lines - so
 * that cffi's cdef() can parse it as it is. Needs rxfeed/abi.h and
 * _iex_records.h first.
 *
 * One table serves the three feeds: a message's type byte indexes on[], and
 * meta->protocol_id says which feed's layout the record has (the same type
 * byte means the same message in every feed that has it).
 */

typedef struct rxf_iex_meta {
    const rxf_packet *packet;  /* the datagram it came in                          */
    const uint8_t *raw;        /* the message's wire bytes (after its u16 length)   */
    uint32_t raw_len;
    uint16_t protocol_id;      /* 0x8003 TOPS, 0x8004 DEEP, 0x8005 DEEP+            */
    uint16_t _pad0;
    uint32_t channel_id;       /* IEX-TP channel (DEEP+: 1..16, others 1)           */
    uint32_t session_id;       /* IEX-TP session id                                */
    uint64_t sequence;         /* IEX-TP message sequence number (1-based)         */
    int64_t send_time;         /* the segment's send time, ns since the epoch (UTC) */
    uint32_t event_end;        /* 0 only for a DEEP price level update of an event */
                               /* still in progress (event-complete flag clear);    */
                               /* 1 for every other message                         */
    uint32_t _pad1;
} rxf_iex_meta;

typedef void (*rxf_iex_handler)(void *ctx, const rxf_iex_record *rec, const rxf_iex_meta *meta);

typedef struct rxf_iex_handlers {
    uint32_t version;      /* RXF_IEX_HANDLERS_VERSION */
    uint32_t struct_size;  /* sizeof(rxf_iex_handlers) */
    void *ctx;
    rxf_iex_handler on[256];  /* indexed by the message type byte; NULL: not wanted */
} rxf_iex_handlers;
