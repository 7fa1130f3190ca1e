# cython: language_level=3, boundscheck=False, wraparound=False
"""Paced UDP sending without the GIL: busy-waits on CLOCK_MONOTONIC (vDSO, no
sleep, so no scheduler wake-up jitter at high rates) and records each
datagram's send time (CLOCK_REALTIME ns, comparable with kernel receive
timestamps on the same host)."""
from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport malloc, free

cdef extern from "<errno.h>" nogil:
    int errno
    enum: EAGAIN
    enum: ENOBUFS
    enum: ECONNREFUSED
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC, CLOCK_REALTIME

import numpy as np

cdef extern from "<sys/socket.h>" nogil:
    ssize_t send(int fd, const void *buf, size_t len, int flags)


cdef inline uint64_t _ns(int clock) noexcept nogil:
    cdef timespec ts
    clock_gettime(clock, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


def send_paced(int fd, list payloads, double rate_pps, double max_seconds=0.0, progress=None):
    """Send ``payloads`` on the connected socket ``fd`` at ``rate_pps``
    datagrams per second (0: as fast as possible). Returns ``(sent,
    send_times_ns, retries)``; ``send_times_ns[i]`` is datagram i's send time (taken just before send()).
    ``progress``: a uint64 array whose element 0 is set to the datagrams sent so
    far after each send (read by another thread, e.g. a re-request journal)."""
    cdef Py_ssize_t n = len(payloads), i
    cdef uint64_t[::1] done = progress if progress is not None else np.zeros(1, dtype=np.uint64)
    if done.shape[0] < 1:
        raise ValueError("progress needs at least one element")
    cdef const uint8_t **bufs = <const uint8_t **>malloc(max(n, 1) * sizeof(uint8_t *))
    cdef size_t *lens = <size_t *>malloc(max(n, 1) * sizeof(size_t))
    if bufs == NULL or lens == NULL:
        free(bufs); free(lens)
        raise MemoryError()
    times = np.zeros(n, dtype=np.uint64)
    cdef uint64_t[::1] tv = times
    cdef uint64_t t0, gap = <uint64_t>(1e9 / rate_pps) if rate_pps > 0 else 0, due, limit = 0, retries = 0
    cdef Py_ssize_t sent = 0
    cdef ssize_t rc
    for i in range(n):
        b = payloads[i]
        bufs[i] = <const uint8_t *><char *>b
        lens[i] = len(b)
    try:
        with nogil:
            t0 = _ns(CLOCK_MONOTONIC)
            if max_seconds > 0:
                limit = t0 + <uint64_t>(max_seconds * 1e9)
            for i in range(n):
                due = t0 + <uint64_t>i * gap
                while _ns(CLOCK_MONOTONIC) < due:
                    pass
                tv[i] = _ns(CLOCK_REALTIME)  # before send(): on veth the receiver may finish first
                while True:
                    rc = send(fd, bufs[i], lens[i], 0)
                    if rc >= 0 or (errno != EAGAIN and errno != ENOBUFS):  # EWOULDBLOCK == EAGAIN on Linux
                        break
                    retries += 1
                if rc < 0 and errno != ECONNREFUSED:  # refused: an earlier datagram found no listener
                    break
                sent += 1
                done[0] = sent
                if limit and _ns(CLOCK_MONOTONIC) > limit:
                    break
    finally:
        free(bufs)
        free(lens)
    return sent, times[:sent], retries
