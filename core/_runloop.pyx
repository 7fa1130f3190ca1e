# cython: language_level=3, boundscheck=False, wraparound=False
"""The rxfeed run loop: backend -> sink through the C ABI, without the GIL.

It busy-polls (an empty burst is polled again at once, never slept on),
stops on end of source, a packet or time limit, SIGINT/SIGTERM, or a sink
that asks to stop, and returns why it stopped."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, free
from libc.signal cimport signal as c_signal, SIGINT, SIGTERM, sighandler_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid, PyCapsule_New
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE

from rxfeed_abi cimport (RXF_ABI_VERSION, RXF_BACKEND_CAPSULE, RXF_SINK_CAPSULE, RXF_EOF, RXF_ERROR,
                         RXF_PKT_STREAM, rxf_packet, rxf_backend_ops, rxf_sink_ops)

import threading

ABI_VERSION = RXF_ABI_VERSION

cdef extern from "rxfeed/hist.h" nogil:
    uint64_t rxf_cycles()
    enum: RXF_HIST_BUCKETS
    uint32_t rxf_hist_index(uint64_t v)
    uint64_t rxf_hist_value(uint32_t i)

cdef extern from *:
    """
    #include <signal.h>
    static volatile sig_atomic_t rxf_stop_requested = 0;
    static void rxf_on_signal(int sig) { (void)sig; rxf_stop_requested = 1; }
    """
    int rxf_stop_requested
    void rxf_on_signal(int sig) noexcept nogil


cdef rxf_backend_ops *backend_ops_from(object capsule) except NULL:
    if not PyCapsule_IsValid(capsule, RXF_BACKEND_CAPSULE):
        raise TypeError("not a backend capsule (" + RXF_BACKEND_CAPSULE.decode() + ")")
    cdef rxf_backend_ops *ops = <rxf_backend_ops *>PyCapsule_GetPointer(capsule, RXF_BACKEND_CAPSULE)
    if ops.abi_version != RXF_ABI_VERSION or ops.struct_size < sizeof(rxf_backend_ops):
        raise ValueError(f"backend speaks ABI {ops.abi_version} (size {ops.struct_size}); rxfeed speaks "
                         f"{RXF_ABI_VERSION} (size {sizeof(rxf_backend_ops)})")
    if ops.rx_burst == NULL:
        raise ValueError("backend has no rx_burst")
    return ops


cdef rxf_sink_ops *sink_ops_from(object capsule) except NULL:
    if not PyCapsule_IsValid(capsule, RXF_SINK_CAPSULE):
        raise TypeError("not a sink capsule (" + RXF_SINK_CAPSULE.decode() + ")")
    cdef rxf_sink_ops *ops = <rxf_sink_ops *>PyCapsule_GetPointer(capsule, RXF_SINK_CAPSULE)
    if ops.abi_version != RXF_ABI_VERSION or ops.struct_size < sizeof(rxf_sink_ops):
        raise ValueError(f"sink speaks ABI {ops.abi_version}; rxfeed speaks {RXF_ABI_VERSION}")
    if ops.on_burst == NULL:
        raise ValueError("sink has no on_burst")
    return ops


cdef inline uint64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


_CYCLES_PER_NS = None


def cycles_per_ns() -> float:
    """The cycle counter's rate, calibrated once against CLOCK_MONOTONIC (50 ms)."""
    global _CYCLES_PER_NS
    cdef uint64_t c0, c1, t0, t1
    if _CYCLES_PER_NS is None:
        t0 = _now_ns()
        c0 = rxf_cycles()
        with nogil:
            while _now_ns() - t0 < 50000000:
                pass
        c1 = rxf_cycles()
        t1 = _now_ns()
        _CYCLES_PER_NS = (c1 - c0) / <double>(t1 - t0)
    return _CYCLES_PER_NS


cdef object _hist_summary(uint64_t *hist):
    """Percentiles (ns) of a cycle histogram."""
    cdef uint64_t total = 0, acc = 0
    cdef uint32_t i
    for i in range(RXF_HIST_BUCKETS):
        total += hist[i]
    if total == 0:
        return {"bursts": 0}
    cpn = cycles_per_ns()
    out = {"bursts": total, "count": total, "unit": "ns", "what": "rx_burst returned -> sink done, per burst"}
    wanted = [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99_9", 0.999)]
    k = 0
    for i in range(RXF_HIST_BUCKETS):
        if hist[i] == 0:
            continue
        acc += hist[i]
        while k < len(wanted) and acc >= wanted[k][1] * total:
            out[wanted[k][0]] = round(rxf_hist_value(i) / cpn, 1)
            k += 1
        last = i
    out["max"] = round(rxf_hist_value(last + 1) / cpn, 1)
    return out


def histogram_summary(const unsigned long long[::1] hist not None, str what=""):
    """Percentiles in ns of a histogram of cycle counts kept by native code
    (``rxfeed/hist.h``; ``len(hist) == RXF_HIST_BUCKETS``)."""
    if hist.shape[0] != RXF_HIST_BUCKETS:
        raise ValueError(f"histogram must have {RXF_HIST_BUCKETS} buckets")
    out = _hist_summary(<uint64_t *>&hist[0])
    if what:
        out["what"] = what
    return out


class _Signals:
    """Route SIGINT/SIGTERM to the C stop flag for the duration of a run
    (main thread only; elsewhere the caller stops the loop by a limit)."""

    def __enter__(self):
        global rxf_stop_requested
        self.installed = threading.current_thread() is threading.main_thread()
        if self.installed:
            # only the thread that owns the handlers starts a fresh stop flag:
            # loops in other threads (run_parallel) share the caller's
            rxf_stop_requested = 0
            self.old_int = <size_t>c_signal(SIGINT, <sighandler_t>rxf_on_signal)
            self.old_term = <size_t>c_signal(SIGTERM, <sighandler_t>rxf_on_signal)
        return self

    def __exit__(self, *exc):
        if self.installed:
            c_signal(SIGINT, <sighandler_t><size_t>self.old_int)
            c_signal(SIGTERM, <sighandler_t><size_t>self.old_term)


def run_native(backend_capsule, sink_capsule, unsigned int burst=32, unsigned long long max_packets=0,
               double max_seconds=0.0, bint handle_signals=True, latency=None):
    """Run a native backend into a sink until it stops.

    Returns ``(packets, reason, error_text)``; reason is one of
    ``end_of_source``, ``packet_limit``, ``time_limit``, ``signal``,
    ``sink_stopped``, ``backend_error``. With ``latency`` a dict, it is
    filled with percentiles of the cycles from ``rx_burst`` returning to the
    sink being done, per burst (rdtsc inside the loop).
    """
    cdef uint64_t *hist = NULL
    cdef uint64_t c0
    if latency is not None:
        cycles_per_ns()
        hist = <uint64_t *>calloc(RXF_HIST_BUCKETS, sizeof(uint64_t))
        if hist == NULL:
            raise MemoryError()
    cdef rxf_backend_ops *be = backend_ops_from(backend_capsule)
    cdef rxf_sink_ops *sk = sink_ops_from(sink_capsule)
    if burst < 1 or burst > 4096:
        raise ValueError("burst must be in 1..4096")
    cdef rxf_packet *pkts = <rxf_packet *>malloc(burst * sizeof(rxf_packet))
    if pkts == NULL:
        raise MemoryError()
    cdef uint64_t total = 0
    cdef uint64_t deadline = 0
    cdef uint64_t polls = 0
    cdef int n = 0, reason = 0, want
    cdef bytes err = b""
    sig = _Signals() if handle_signals else None
    if sig is not None:
        sig.__enter__()
    try:
        with nogil:
            if max_seconds > 0:
                deadline = _now_ns() + <uint64_t>(max_seconds * 1e9)
            while True:
                want = burst
                if max_packets and max_packets - total < <uint64_t>want:
                    want = <int>(max_packets - total)
                n = be.rx_burst(be.ctx, pkts, want)
                if n > 0:
                    total += n
                    c0 = rxf_cycles()
                    if sk.on_burst(sk.ctx, pkts, n) != 0:
                        reason = 5
                    if hist != NULL:
                        hist[rxf_hist_index(rxf_cycles() - c0)] += 1
                    if be.release != NULL:
                        be.release(be.ctx, pkts, n)
                    if reason:
                        break
                    if max_packets and total >= max_packets:
                        reason = 2
                        break
                elif n == RXF_EOF:
                    reason = 1
                    break
                elif n < 0:
                    reason = 6
                    break
                polls += 1
                if rxf_stop_requested:
                    reason = 4
                    break
                if deadline and (polls & 63) == 0 and _now_ns() >= deadline:
                    reason = 3
                    break
            if sk.on_end != NULL:
                sk.on_end(sk.ctx)
        if reason == 6 and be.last_error != NULL:
            err = be.last_error(be.ctx)
        if hist != NULL:
            latency.update(_hist_summary(hist))
    finally:
        if sig is not None:
            sig.__exit__(None, None, None)
        free(pkts)
        free(hist)
    names = {1: "end_of_source", 2: "packet_limit", 3: "time_limit", 4: "signal", 5: "sink_stopped",
             6: "backend_error"}
    return total, names[reason], err.decode(errors="replace")


def run_python(backend, sink_capsule, unsigned int burst=32, unsigned long long max_packets=0,
               double max_seconds=0.0, bint handle_signals=True):
    """Run a pure-Python backend (``read_burst(n) -> list of buffers | None``)
    into a native sink: one Python call per burst, the sink still runs nogil.
    A backend with ``stream = True`` hands byte-stream chunks, not datagrams."""
    cdef rxf_sink_ops *sk = sink_ops_from(sink_capsule)
    cdef rxf_packet *pkts = <rxf_packet *>malloc(burst * sizeof(rxf_packet))
    cdef Py_buffer *views = <Py_buffer *>malloc(burst * sizeof(Py_buffer))
    if pkts == NULL or views == NULL:
        free(pkts); free(views)
        raise MemoryError()
    cdef uint64_t total = 0, deadline = 0
    cdef int rc = 0
    cdef uint32_t i, n, flags = RXF_PKT_STREAM if getattr(backend, "stream", False) else 0
    reason = None
    sig = _Signals() if handle_signals else None
    if sig is not None:
        sig.__enter__()
    if max_seconds > 0:
        deadline = _now_ns() + <uint64_t>(max_seconds * 1e9)
    try:
        while reason is None:
            want = burst
            if max_packets and max_packets - total < want:
                want = max_packets - total
            bufs = backend.read_burst(want)
            if bufs is None:
                reason = "end_of_source"
                break
            n = 0
            try:
                for b in bufs[:want]:
                    PyObject_GetBuffer(b, &views[n], PyBUF_SIMPLE)
                    pkts[n].data = <const uint8_t *>views[n].buf
                    pkts[n].len = <uint32_t>views[n].len
                    pkts[n].flags = flags
                    pkts[n].rx_ts_ns = 0
                    pkts[n].src_ip = pkts[n].dst_ip = 0
                    pkts[n].src_port = pkts[n].dst_port = 0
                    pkts[n].reserved = 0
                    n += 1
                if n:
                    with nogil:
                        rc = sk.on_burst(sk.ctx, pkts, n)
            finally:
                for i in range(n):
                    PyBuffer_Release(&views[i])
            total += n
            if rc != 0:
                reason = "sink_stopped"
            elif max_packets and total >= max_packets:
                reason = "packet_limit"
            elif rxf_stop_requested:
                reason = "signal"
            elif deadline and _now_ns() >= deadline:
                reason = "time_limit"
        if sk.on_end != NULL:
            sk.on_end(sk.ctx)
    finally:
        if sig is not None:
            sig.__exit__(None, None, None)
        free(pkts)
        free(views)
    return total, reason, ""


cdef int _null_on_burst(void *ctx, const rxf_packet *pkts, uint32_t n) noexcept nogil:
    return 0


cdef rxf_sink_ops _null_ops
_null_ops.abi_version = RXF_ABI_VERSION
_null_ops.struct_size = sizeof(rxf_sink_ops)
_null_ops.ctx = NULL
_null_ops.on_burst = _null_on_burst
_null_ops.on_end = NULL


def null_sink():
    """A sink that discards every burst (frame counting, backend benchmarks)."""
    return PyCapsule_New(&_null_ops, RXF_SINK_CAPSULE, NULL)
