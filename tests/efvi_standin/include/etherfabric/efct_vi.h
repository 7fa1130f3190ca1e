/*
 * rxfeed ef_vi stand-in (tests only) -- the efct (X3) receive API.
 *
 * On an efct VI the NIC owns the receive memory: large shared "superbuffers"
 * cut into packet slots. An EF_EVENT_TYPE_RX_REF or _RX_REF_DISCARD event
 * hands one slot to the application as a pkt_id; efct_vi_rxpkt_get gives the
 * frame (first byte of the Ethernet header), efct_vi_rxpkt_release gives the
 * slot back. A superbuffer is reused only when every slot in it was
 * released. Same names and meanings as Onload's public efct_vi.h; our own
 * declarations.
 */
#ifndef RXF_STANDIN_EFCT_VI_H
#define RXF_STANDIN_EFCT_VI_H

#include <stdint.h>
#include <etherfabric/ef_vi.h>

/* Bytes of a packet valid through efct_vi_rx_future_peek before its completion event. */
#define EFCT_FUTURE_VALID_BYTES 62

extern const void *efct_vi_rxpkt_get(struct ef_vi *vi, uint32_t pkt_id);
extern void efct_vi_rxpkt_release(struct ef_vi *vi, uint32_t pkt_id);
/* The next packet's first bytes before its completion, or NULL (none, or other work pending). */
extern const void *efct_vi_rx_future_peek(struct ef_vi *vi);
/* After a non-NULL peek: that packet's RX_REF / RX_REF_DISCARD first (0: not complete yet). */
extern int efct_vi_rx_future_poll(ef_vi *vi, ef_event *evs, int evs_len);

#endif
