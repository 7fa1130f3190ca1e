/*
 * Flow steering for the DPDK backend: rte_flow rules that steer exactly the
 * configured destinations (the `filters`, group:port with `*` wildcards) to
 * chosen RX queues, and flow isolation (rte_flow_isolate) so that, on a
 * bifurcated driver (mlx5), everything no rule matches stays with the kernel.
 *
 * One rule per filter: pattern ETH / IPV4 (dst) / UDP (dst) / END, a
 * wildcard being the item without that field (no spec, no mask); action
 * QUEUE (the filter's queue) or RSS over all RX queues. Every rule is
 * validated (rte_flow_validate) before any is created; close destroys them.
 *
 * Where the PMD cannot (no flow ops, or it rejects a rule), `flow_rules`
 * says what happens: on = the device does not open (the error says why),
 * auto = software filters only, with the reason kept in rxf_flow_state for
 * the backend to report. The software filter of every queue stays on in
 * every mode. No DPDK header here: Cython declares these structs as they are.
 *
 * Hooks (dpdk_rx.c): rxf_flow_isolate_early before rte_eth_dev_configure,
 * rxf_flow_install after rte_eth_dev_start, rxf_flow_close before stop.
 */
#ifndef RXF_DPDK_FLOW_H
#define RXF_DPDK_FLOW_H

#include <stddef.h>
#include <stdint.h>
#include "rxfeed/net.h"

#define RXF_FLOW_MAX_QUEUES 16

typedef enum rxf_flow_mode { RXF_FLOW_OFF = 0, RXF_FLOW_AUTO = 1, RXF_FLOW_ON = 2 } rxf_flow_mode;

typedef struct rxf_flow_cfg {
    int rules;          /* rxf_flow_mode of `flow_rules` */
    int isolate;        /* rxf_flow_mode of `flow_isolate` */
    int rss;            /* 1: action RSS over all RX queues; 0: QUEUE queue[i] */
    rxf_dst_filter dst; /* the filters, host order, 0 = wildcard */
    uint16_t queue[RXF_FILTER_MAX]; /* the QUEUE action's queue of filter i */
} rxf_flow_cfg;

typedef struct rxf_flow_state {
    int steering;       /* 1: rte_flow rules installed; 0: software filters only */
    int isolated;       /* rte_flow_isolate(port, 1) is in effect */
    uint32_t rules;     /* rules created (destroyed on close; still reported after) */
    void *flows[RXF_FILTER_MAX]; /* their handles (struct rte_flow *), NULL once destroyed */
    char reason[320];   /* why software only / why not isolated ("" when all went as asked) */
    char driver[32];    /* the PMD's name, for the reasons */
} rxf_flow_state;

/* Before rte_eth_dev_configure: isolation as `isolate` says for the port's
   PMD `driver` (rte_eth_dev_info's driver_name). 0 ok; -1 with err set. */
int rxf_flow_isolate_early(rxf_flow_state *s, const rxf_flow_cfg *c, uint16_t port, const char *driver, char *err,
                           size_t errlen);
/* After rte_eth_dev_start: validate every rule, then create them. auto falls back
   (leaving isolation again if it was entered for the rules). 0 ok; -1 with err set. */
int rxf_flow_install(rxf_flow_state *s, const rxf_flow_cfg *c, uint16_t port, uint16_t nq, char *err,
                     size_t errlen);
/* Before the port stops: destroy the rules created (rte_flow_flush if one will not go). */
void rxf_flow_close(rxf_flow_state *s, uint16_t port);
/* The drivers flow_isolate = auto isolates: comma-separated substrings of the
   driver name (default "mlx5": mlx5_pci, net_mlx5). -1 if too long (127 max). */
int rxf_flow_set_isolating_drivers(const char *names);
/* Rule i as built (testpmd syntax), from the rte_flow items themselves. 0 ok; -1 bad index or too long. */
int rxf_flow_describe(const rxf_flow_cfg *c, uint32_t i, uint16_t nq, char *out, size_t outlen);

#endif
