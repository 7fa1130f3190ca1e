/*
 * C-level ITCH 5.0 handler table: how Cython/C consumers (order books,
 * strategies) receive decoded records inside the nogil loop, with no Python.
 *
 * A consumer fills an rxf_itch_handlers (NULL for types it ignores) and gives
 * the decoder a PyCapsule named RXF_ITCH_HANDLERS_CAPSULE pointing at it
 * (ItchDecoder.add_handlers). Per type it takes the decoded record (on[t])
 * or a wire view of the bytes (wire[t], see itch50_wire.h), or both. The
 * decoder reads the table when it is attached (ItchDecoder.refresh_handlers
 * after changing it). The record, message and meta pointers are valid only
 * during the call.
 */
#ifndef RXF_ITCH50_HANDLERS_H
#define RXF_ITCH50_HANDLERS_H

#include <stdint.h>
#include "rxfeed/abi.h"
#include "_records.h"

#define RXF_ITCH_HANDLERS_VERSION 1u
#define RXF_ITCH_HANDLERS_CAPSULE "rxfeed.itch50.handlers.v1"

#include "itch50_handler_types.h"  /* rxf_itch_meta, rxf_itch_handler, rxf_itch_handlers */
#include "itch50_wire.h"           /* wire structs and accessors for wire handlers */

/* struct_size of a table of the first layout (no wire[]): still accepted. */
#define RXF_ITCH_HANDLERS_V1_SIZE offsetof(rxf_itch_handlers, wire)

#endif
