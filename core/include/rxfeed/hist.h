/*
 * Cycle counter and an HDR-style log-linear histogram of cycle counts, for
 * latency measured inside native loops (rdtsc on x86, CLOCK_MONOTONIC ns
 * elsewhere). Percentiles are computed in Python (rxfeed._runloop).
 */
#ifndef RXFEED_HIST_H
#define RXFEED_HIST_H

#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t rxf_cycles(void) { return __rdtsc(); }
#else
#include "rxfeed/clock.h"
static inline uint64_t rxf_cycles(void) {
    return rxf_clock_ns(CLOCK_MONOTONIC);
}
#endif
/* HDR-style log-linear buckets: exact below 128 cycles, then 64 sub-buckets
   per power of two (<= 1.6% relative error), up to 2^48 cycles. */
#define RXF_HIST_SUB 64
#define RXF_HIST_BUCKETS (128 + 42 * RXF_HIST_SUB)
static inline uint32_t rxf_hist_index(uint64_t v) {
    if (v < 128) return (uint32_t)v;
    int e = 63 - __builtin_clzll(v);          /* >= 7 */
    if (e > 47) return RXF_HIST_BUCKETS - 1;
    return 128 + (uint32_t)(e - 7) * RXF_HIST_SUB + (uint32_t)((v >> (e - 6)) & 63);
}
static inline uint64_t rxf_hist_value(uint32_t i) {   /* lower bound of bucket i */
    if (i < 128) return i;
    uint32_t e = (i - 128) / RXF_HIST_SUB + 7, sub = (i - 128) % RXF_HIST_SUB;
    return ((uint64_t)(64 + sub)) << (e - 6);
}

#endif
