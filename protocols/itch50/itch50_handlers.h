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

#include "itch50_handler_types.h"  /* rxf_itch_meta, rxf_itch_handler, rxf_itch_handlers */

#endif
