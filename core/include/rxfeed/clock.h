/*
 * Clocks as uint64 ns: the one conversion from struct timespec every native
 * part uses (CLOCK_REALTIME: ns since the Unix epoch, rx_ts_ns's time base;
 * CLOCK_MONOTONIC: intervals and timeouts).
 */
#ifndef RXF_CLOCK_H
#define RXF_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t rxf_timespec_ns(const struct timespec *ts) {
    return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static inline uint64_t rxf_clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return rxf_timespec_ns(&ts);
}

#endif
