/*
 * rxfeed C ABI, version 1.
 *
 * The hot path of rxfeed is three parties meeting through this header inside
 * one nogil loop, with no Python call per packet:
 *
 *   backend  --rx_burst()-->  loop  --on_burst()-->  decoder (framing + decoding)
 *            <--release()--
 *
 * A backend fills an array of rxf_packet with pointers into memory it owns
 * (a file's read window, a DPDK mbuf, an ef_vi DMA buffer). A pointer is valid from
 * the rx_burst() that returned it until the matching release(); a decoder that
 * wants to keep bytes longer copies them.
 *
 * Function tables travel between separately compiled extensions inside
 * PyCapsules named RXF_BACKEND_CAPSULE / RXF_DECODER_CAPSULE. Each table starts
 * with abi_version and struct_size so a loop can refuse an incompatible
 * plugin instead of crashing. See docs/plugin-abi.md.
 */
#ifndef RXFEED_ABI_H
#define RXFEED_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RXF_ABI_VERSION 1u

#define RXF_BACKEND_CAPSULE "rxfeed.backend_ops.v1"
#define RXF_DECODER_CAPSULE "rxfeed.decoder_ops.v1"

/* rx_burst() return values below zero. */
#define RXF_EOF (-1)   /* the source is exhausted; the loop ends normally */
#define RXF_ERROR (-2) /* the backend failed; its error text says why      */

/* rxf_packet.flags */
#define RXF_PKT_STREAM 0x1u       /* a chunk of a byte stream, not a datagram:
                                     messages may straddle packets           */
#define RXF_PKT_SOURCE_RESET 0x2u /* first packet after the source rewound
                                     (a replay loop): session state restarts */
#define RXF_PKT_HW_TIMESTAMP 0x4u /* rx_ts_ns came from the NIC              */

#include "rxfeed/abi_types.h"  /* rxf_packet, rxf_backend_ops, rxf_decoder_ops */

#include <stddef.h>
/* The smallest decoder table accepted: ABI 1 as first released (no on_idle). */
#define RXF_DECODER_OPS_MIN_SIZE offsetof(rxf_decoder_ops, on_idle)

#ifdef __cplusplus
}
#endif
#endif
