/*
 * Seeded fault injection around any rxfeed backend (the `faults` plugin).
 *
 * A wrapper table: its rx_burst pulls from the inner backend's table and
 * drops, duplicates, reorders (bounded distance), delays, truncates or
 * corrupts packets, or kills the line at a time or packet index. Packets it
 * holds (reorder, delay), duplicates and corrupted copies live in the
 * wrapper's own bounded arena; packets passed through unchanged point into
 * the inner backend's memory, whose burst is released when the wrapper's
 * burst is (docs/recovery.md, "Fault injection").
 */
#ifndef RXFEED_FAULTS_H
#define RXFEED_FAULTS_H

#include <stddef.h>
#include <stdint.h>

#include "rxfeed/abi.h"

/* Fault kinds with a rate (one PRNG stream each). */
enum { RXF_FAULT_DROP, RXF_FAULT_DUPLICATE, RXF_FAULT_REORDER, RXF_FAULT_DELAY, RXF_FAULT_TRUNCATE,
       RXF_FAULT_CORRUPT, RXF_FAULT_NKINDS };

#define RXF_FAULTS_MAX_BURST 4096u

typedef struct rxf_faults_cfg {
    uint64_t seed;
    double rate[RXF_FAULT_NKINDS]; /* per packet, 0..1                        */
    uint32_t reorder_max;          /* a reordered packet is overtaken by
                                      1..reorder_max later packets            */
    uint64_t delay_ns;             /* a delayed packet comes out this much later */
    int64_t kill_after_ns;         /* < 0: never; else the line dies this long
                                      after its first packet                  */
    int64_t kill_after_packets;    /* < 0: never; else after this many packets */
    uint32_t hold_max;             /* packets held at most (reorder + delay)  */
    uint64_t arena_bytes;          /* bytes for copies                        */
} rxf_faults_cfg;

typedef struct rxf_faults_stats {
    uint64_t inner;        /* packets taken from the inner backend            */
    uint64_t delivered;    /* packets handed out                              */
    uint64_t dropped, duplicated, reordered, delayed, truncated, corrupted;
    uint64_t killed_after; /* inner packets swallowed after the kill          */
    uint64_t no_room;      /* faults not injected: hold slots or arena full   */
    uint64_t held_peak;    /* most packets waiting at once                    */
    uint64_t killed;       /* 1 once the line is dead                         */
} rxf_faults_stats;

typedef struct rxf_faults rxf_faults;

/* NULL on bad arguments or no memory (*why says which). `inner` is copied;
   the object owning its context must outlive the wrapper. */
rxf_faults *rxf_faults_new(const rxf_backend_ops *inner, const rxf_faults_cfg *cfg, const char **why);
/* Give back everything borrowed from the inner backend (its last burst) and
   drop what is held; later calls return RXF_EOF. Call before the inner
   backend is closed. */
void rxf_faults_close(rxf_faults *f);
void rxf_faults_free(rxf_faults *f);
/* This wrapper's table (ctx = f). */
void rxf_faults_ops(rxf_faults *f, rxf_backend_ops *ops);
const rxf_faults_stats *rxf_faults_get_stats(const rxf_faults *f);
/* Packets waiting inside the wrapper now (held + queued for output). */
uint64_t rxf_faults_held(const rxf_faults *f);

/* The PRNG (splitmix64), exposed for tests of determinism. */
uint64_t rxf_faults_next(uint64_t *state);

#endif
