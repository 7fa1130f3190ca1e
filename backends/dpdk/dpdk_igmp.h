/*
 * IGMP from the DPDK TX queue on a fully bypassed port (issue 15): the
 * responder of rxfeed/igmp.h driven by the RX pollers.
 *
 * TX queue 0 has one writer: the poller of RX queue 0. It sends the
 * unsolicited reports and every due answer (rxf_dpdk_igmp_tick, one integer
 * compare when nothing is due). Queries seen by the other queues' pollers
 * are copied into a one-frame slot per queue (an atomic flag, single
 * producer / single consumer) that queue 0's poller takes.
 *
 * Leaves are sent from the device's close, in the closing thread, after the
 * pollers stopped (rxfeed closes a device only after its run loops returned)
 * and before the port stops. Should queue 0's poller still run, close fences
 * it off: it sets `closing`, waits while the poller is inside an IGMP step
 * (`in_step`), and the poller does no IGMP from then on. (Stopping a port
 * under a running poller is not safe in DPDK anyway: the fence only keeps
 * the IGMP state and TX queue 0 single-writer.) The responder is freed
 * after the port closed.
 */
#ifndef RXF_DPDK_IGMP_H
#define RXF_DPDK_IGMP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rxfeed/igmp.h"

#define RXF_DPDK_IGMP_QUEUES 16   /* RXF_DPDK_MAX_QUEUES (checked in dpdk_igmp.c) */

typedef struct rxf_dpdk_igmp_cfg {
    uint8_t version;              /* 2 or 3 */
    uint32_t robustness;
    double interval_s;            /* between unsolicited reports (and leaves) */
    uint32_t src_ip;              /* host order */
    uint32_t ngroups;
    rxf_igmp_group groups[RXF_IGMP_MAX_GROUPS];
} rxf_dpdk_igmp_cfg;

/* A query handed from another queue's poller to queue 0's. */
typedef struct rxf_dpdk_igmp_slot {
    _Atomic uint32_t full;
    uint32_t len;
    /* queries handed over / dropped, the slot still full: written by the
       producer only, read by any thread (relaxed) */
    _Atomic uint64_t handed, dropped;
    uint8_t frame[RXF_IGMP_FRAME_MAX];
} rxf_dpdk_igmp_slot;

typedef struct rxf_dpdk_igmp {
    rxf_igmp_state st;            /* queue 0's poller only (and close) */
    uint16_t port;
    void *pool;                   /* TX mbufs */
    double leave_spacing_s;
    _Atomic uint32_t handed;      /* slots filled, not yet taken (raised before the slot is published) */
    _Atomic uint32_t closing;     /* set by close: queue 0's poller does no more IGMP */
    _Atomic uint32_t in_step;     /* queue 0's poller is in an IGMP step (run, or a query of its own) */
    rxf_dpdk_igmp_slot slots[RXF_DPDK_IGMP_QUEUES];
} rxf_dpdk_igmp;

/* On a started port: its MAC and MTU, a TX pool, the groups; the first
   unsolicited report goes out at queue 0's next poll. NULL with err set. */
rxf_dpdk_igmp *rxf_dpdk_igmp_open(uint16_t port, const rxf_dpdk_igmp_cfg *cfg, char *err, size_t errlen);
/* Leaves, as many as the robustness in force (rxf_igmp_robustness: a
   querier's QRV or the configured one), spaced by min(interval, 0.2 s), from the closing
   thread: pollers stopped, port started. Fences queue 0's poller off first
   (see above); afterwards the responder sends nothing more. */
void rxf_dpdk_igmp_leave(rxf_dpdk_igmp *g);
/* After the port closed (its TX ring may hold the pool's mbufs until then). */
void rxf_dpdk_igmp_free(rxf_dpdk_igmp *g);
/* The IGMP TX pools that exist in this process (tests: close frees its own). */
unsigned rxf_dpdk_igmp_pools(void);
/* Queue 0: take handed-over queries, send what is due. */
void rxf_dpdk_igmp_run(rxf_dpdk_igmp *g, uint64_t now_tsc);
/* A frame rx_burst found not to be UDP: 1 if it was an IGMP query (taken), else 0. */
int rxf_dpdk_igmp_take(rxf_dpdk_igmp *g, uint16_t queue, const uint8_t *frame, uint32_t len, uint64_t now_tsc);
/* Queries the other queues handed over (dropped: 1 for the ones the slots had to drop), all queues. */
uint64_t rxf_dpdk_igmp_handover(const rxf_dpdk_igmp *g, int dropped);

/* On every poll of every queue: only queue 0 acts, and only when something is due. */
static inline void rxf_dpdk_igmp_tick(rxf_dpdk_igmp *g, uint16_t queue, uint64_t now_tsc) {
    if (!g || queue != 0) return;
    if (now_tsc < g->st.next_due && !atomic_load_explicit(&g->handed, memory_order_relaxed)) return;
    rxf_dpdk_igmp_run(g, now_tsc);
}

#endif
