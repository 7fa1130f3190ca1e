/*
 * The efct (X3) receive loop of the ef_vi backend (see efvi_rx.h).
 *
 * No buffers are posted: the NIC writes frames into superbuffers it owns
 * and each EF_EVENT_TYPE_RX_REF lends the application one packet (pkt_id,
 * len). efct_vi_rxpkt_get gives the frame (Ethernet header first, no
 * prefix); it is parsed in place and handed out zero-copy, and the pkt_id
 * goes back with efct_vi_rxpkt_release when the decoder releases the burst
 * (at once for drops and RX_REF_DISCARD, and on close for any still held).
 * Holding pkt_ids pins whole superbuffers, so nothing is kept past a burst.
 *
 * With future_peek, efct_vi_rx_future_peek shows the next frame's first
 * EFCT_FUTURE_VALID_BYTES before its completion: the headers are checked
 * and the payload's cache lines prefetched, but nothing reaches the decoder
 * before the RX_REF from efct_vi_rx_future_poll (an RX_REF_DISCARD undoes
 * the early look).
 */
#ifndef RXF_EFCT_RX_H
#define RXF_EFCT_RX_H

#include "efvi_rx.h"

/* X3 packet slots: a 2048-byte stride with the frame at offset 66, so a
   frame can be at most 1982 bytes; a longer RX_REF length is refused. */
#define RXF_EFCT_FRAME_ROOM 1982u
#define RXF_ETH_HEADER_LEN 14u
/* future_poll attempts before giving up on a completion (hardware trouble);
   the completion then arrives through ef_eventq_poll. */
#define RXF_EFCT_FUTURE_SPINS (1u << 20)

int rxf_efct_rx_burst(rxf_efvi *e, rxf_packet *pkts, uint32_t max);
/* Gives back every pkt_id handed out by the last burst. */
void rxf_efct_release(rxf_efvi *e);
/* On close: gives back whatever is still held. */
void rxf_efct_release_all(rxf_efvi *e);
/* What the first EFCT_FUTURE_VALID_BYTES say about a frame (headers only):
   RXF_NET_OK when they look like IPv4/UDP or cannot be judged that early. */
rxf_net_verdict rxf_efct_early_look(const uint8_t *p);

#endif
