/*
 * C-level ITCH 5.0 handler table: how Cython/C consumers (order books,
 * strategies) receive decoded records inside the nogil loop, with no Python.
 *
 * A consumer fills an rxf_itch_handlers (NULL for types it ignores) and gives
 * the decoder a PyCapsule named RXF_ITCH_HANDLERS_CAPSULE pointing at it
 * (ItchDecoder.add_handlers). The record and meta pointers are valid only
 * during the call.
 */
#ifndef RXF_ITCH50_HANDLERS_H
#define RXF_ITCH50_HANDLERS_H

#include <stdint.h>
#include "rxfeed/abi.h"
#include "_records.h"

#define RXF_ITCH_HANDLERS_VERSION 1u
#define RXF_ITCH_HANDLERS_CAPSULE "rxfeed.itch50.handlers.v1"

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

#endif
