/*
 * C-level IEX handler table: how Cython/C consumers (books, strategies)
 * receive decoded IEX records inside the nogil loop, with no Python.
 *
 * A consumer fills an rxf_iex_handlers (NULL for types it ignores) and gives
 * the decoder a PyCapsule named RXF_IEX_HANDLERS_CAPSULE pointing at it
 * (IexDecoder.add_handlers). Record and meta pointers are valid only during
 * the call.
 */
#ifndef RXF_IEX_HANDLERS_H
#define RXF_IEX_HANDLERS_H

#include <stdint.h>
#include "rxfeed/abi.h"
#include "_iex_records.h"

#define RXF_IEX_HANDLERS_VERSION 1u
#define RXF_IEX_HANDLERS_CAPSULE "rxfeed.iex.handlers.v1"

#define RXF_IEX_PROTO_TOPS 0x8003u
#define RXF_IEX_PROTO_DEEP 0x8004u
#define RXF_IEX_PROTO_DEEP_PLUS 0x8005u

/* DEEP Price Level Update event_flags bit: the book has finished the event. */
#define RXF_IEX_EVENT_COMPLETE 0x1u

#include "iex_handler_types.h"  /* rxf_iex_meta, rxf_iex_handler, rxf_iex_handlers */

#endif
