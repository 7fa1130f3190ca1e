# cython: language_level=3, boundscheck=False, wraparound=False
"""The rxfeed run loop: backend -> decoder through the C ABI, without the GIL.

It busy-polls (an empty burst is polled again at once, never slept on),
stops on end of source, a packet or time limit, SIGINT/SIGTERM, or a decoder
that asks to stop, and returns why it stopped."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, calloc, free, realloc
from libc.string cimport memcpy, memset
from libc.signal cimport signal as c_signal, SIGINT, SIGTERM, sighandler_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid, PyCapsule_New
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBuffer_FillInfo, PyBUF_SIMPLE

from rxfeed_abi cimport (fill_decoder_ops, RXF_ABI_VERSION, RXF_BACKEND_CAPSULE, RXF_DECODER_CAPSULE, RXF_EOF, RXF_ERROR,
                         RXF_PKT_STREAM, RXF_DECODER_OPS_MIN_SIZE, rxf_packet, rxf_backend_ops, rxf_decoder_ops,
                         rxf_on_idle_fn, decoder_on_idle)

import os
import threading

from rxfeed.interfaces import Packet

ABI_VERSION = RXF_ABI_VERSION

#: The environment variable that turns poison mode on for every run
#: (``1``/``yes``/``true``/``on``); a run's ``poison`` argument overrides it.
POISON_ENV = "RXFEED_POISON_RELEASED"
cdef enum:
    _POISON = 0xDB
#: The byte written over every byte a decoder was handed, once the burst is over.
POISON_BYTE = _POISON

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


def backend_table(capsule) -> int:
    """The address of a backend capsule's table, after the same checks as a
    run's (capsule name, ABI version, rx_burst); for C code that drives
    other backends (the lines combinator). Valid while the capsule's owner lives."""
    return <size_t>backend_ops_from(capsule)


cdef rxf_decoder_ops *decoder_ops_from(object capsule) except NULL:
    if not PyCapsule_IsValid(capsule, RXF_DECODER_CAPSULE):
        raise TypeError("not a decoder capsule (" + RXF_DECODER_CAPSULE.decode() + ")")
    cdef rxf_decoder_ops *ops = <rxf_decoder_ops *>PyCapsule_GetPointer(capsule, RXF_DECODER_CAPSULE)
    if ops.abi_version != RXF_ABI_VERSION or ops.struct_size < RXF_DECODER_OPS_MIN_SIZE:
        raise ValueError(f"decoder speaks ABI {ops.abi_version}; rxfeed speaks {RXF_ABI_VERSION}")
    if ops.on_burst == NULL:
        raise ValueError("decoder has no on_burst")
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
    out = {"bursts": total, "count": total, "unit": "ns", "what": "rx_burst returned -> decoder done, per burst"}
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

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.installed = False

    def __enter__(self):
        global rxf_stop_requested
        self.installed = self.enabled and threading.current_thread() is threading.main_thread()
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



# --- poison mode ------------------------------------------------------------
# With poison on, the loop copies each burst into an arena of its own, hands the
# decoder the copies and, once the decoder is done, overwrites them with
# POISON_BYTE before the backend's release (the backend's pointers are put back
# first). The backend's own memory is never written: it owns it, may hand the
# same bytes out again (replay loops) and may map it read-only. Two arenas
# alternate, so a pointer kept from the previous burst reads poison, not the
# next burst's bytes. Off, the run pays one NULL test per burst.

cdef struct Quarantine:
    uint8_t *arena[2]
    size_t cap[2]
    size_t used             # bytes copied for the burst being decoded
    int side                # the arena of that burst
    int failed              # an arena could not grow: the run stopped
    const uint8_t **orig    # the backend's data pointers of that burst


def poison_wanted(poison=None):
    """Whether a run poisons released buffers: ``poison`` if given, else the
    :data:`POISON_ENV` environment variable (read once per run)."""
    if poison is None:
        return os.environ.get(POISON_ENV, "").strip().lower() in ("1", "yes", "true", "on")
    return bool(poison)


cdef Quarantine *_new_quarantine(poison, uint32_t burst) except? NULL:
    """The run's quarantine, or NULL when poison mode is off."""
    if not poison_wanted(poison):
        return NULL
    cdef Quarantine *q = <Quarantine *>calloc(1, sizeof(Quarantine))
    if q == NULL:
        raise MemoryError()
    q.orig = <const uint8_t **>calloc(burst, sizeof(uint8_t *))
    if q.orig == NULL:
        free(q)
        raise MemoryError()
    return q


cdef void _free_quarantine(Quarantine *q) noexcept nogil:
    if q != NULL:
        free(q.arena[0])
        free(q.arena[1])
        free(q.orig)
        free(q)


cdef int _quarantine_in(Quarantine *q, rxf_packet *pkts, uint32_t n) noexcept nogil:
    """Point each packet at a copy of its bytes in the current arena; -1 (and
    ``q.failed``) when the arena cannot grow."""
    cdef size_t total = 0, off = 0, cap
    cdef uint32_t i
    cdef uint8_t *grown
    for i in range(n):
        total += pkts[i].len
    if total > q.cap[q.side]:
        cap = total if total > 65536 else 65536
        if cap < 2 * q.cap[q.side]:
            cap = 2 * q.cap[q.side]
        grown = <uint8_t *>realloc(q.arena[q.side], cap)
        if grown == NULL:
            q.failed = 1
            return -1
        q.arena[q.side], q.cap[q.side] = grown, cap
    for i in range(n):
        q.orig[i] = pkts[i].data
        if pkts[i].len:
            memcpy(q.arena[q.side] + off, pkts[i].data, pkts[i].len)
        pkts[i].data = q.arena[q.side] + off
        off += pkts[i].len
    q.used = total
    return 0


cdef void _quarantine_out(Quarantine *q, rxf_packet *pkts, uint32_t n) noexcept nogil:
    """Poison the copies of the burst just decoded and give the packets back
    their backend pointers (for the backend's release)."""
    cdef uint32_t i
    if q.used:
        memset(q.arena[q.side], _POISON, q.used)
    for i in range(n):
        pkts[i].data = q.orig[i]
    q.used = 0
    q.side ^= 1


cdef str _quarantine_error(Quarantine *q):
    return "poison mode: out of memory copying a burst" if q != NULL and q.failed else ""


cdef str _backend_error(const rxf_backend_ops *be, Quarantine *q):
    """Why a native run stopped with BACKEND_ERROR: the quarantine's failure
    or the backend's ``last_error``."""
    err = _quarantine_error(q)
    if not err and be.last_error != NULL:
        err = (<bytes>be.last_error(be.ctx)).decode(errors="replace")
    return err


# Why a loop stopped: one code per reason, shared by both loops.
cdef enum StopReason:
    RUNNING = 0
    END_OF_SOURCE = 1
    PACKET_LIMIT = 2
    TIME_LIMIT = 3
    SIGNAL = 4
    DECODER_STOPPED = 5
    BACKEND_ERROR = 6
    DECODER_ERROR = 7

_REASON_NAMES = {END_OF_SOURCE: "end_of_source", PACKET_LIMIT: "packet_limit", TIME_LIMIT: "time_limit",
                 SIGNAL: "signal", DECODER_STOPPED: "decoder_stopped", BACKEND_ERROR: "backend_error",
                 DECODER_ERROR: "decoder_error"}


cdef struct Limits:
    uint64_t max_packets   # 0: none
    uint64_t deadline_ns   # CLOCK_MONOTONIC; 0: none
    uint64_t total         # packets so far
    uint64_t polls


cdef Limits _limits(unsigned long long max_packets, double max_seconds):
    cdef Limits lim
    lim.max_packets = max_packets
    lim.deadline_ns = _now_ns() + <uint64_t>(max_seconds * 1e9) if max_seconds > 0 else 0
    lim.total = 0
    lim.polls = 0
    return lim


cdef inline uint32_t _burst_size(const Limits *lim, uint32_t burst) noexcept nogil:
    """Packets to ask for next: the burst, or fewer to land on the packet limit."""
    if lim.max_packets and lim.max_packets - lim.total < burst:
        return <uint32_t>(lim.max_packets - lim.total)
    return burst


cdef inline int _limit_reached(Limits *lim, bint every_poll) noexcept nogil:
    """After a poll: the packet limit, a stop signal, or the deadline (read
    every 64 polls on the busy path, every poll on the Python path)."""
    lim.polls += 1
    if lim.max_packets and lim.total >= lim.max_packets:
        return PACKET_LIMIT
    if rxf_stop_requested:
        return SIGNAL
    if lim.deadline_ns and (every_poll or (lim.polls & 63) == 0) and _now_ns() >= lim.deadline_ns:
        return TIME_LIMIT
    return RUNNING


cdef str _decoder_error(const rxf_decoder_ops *dec):
    cdef const char *text = NULL
    if dec.last_error != NULL:
        text = dec.last_error(dec.ctx)
    return text.decode(errors="replace") if text != NULL else ""


cdef uint64_t *_new_hist(latency) except? NULL:
    if latency is None:
        return NULL
    cycles_per_ns()
    cdef uint64_t *hist = <uint64_t *>calloc(RXF_HIST_BUCKETS, sizeof(uint64_t))
    if hist == NULL:
        raise MemoryError()
    return hist


cdef uint64_t *_caller_hist(latency, unsigned long long[::1] counts) except? NULL:
    """The caller's histogram buffer (``run_native(hist=...)``), checked; NULL
    when there is none or no latency is asked for."""
    if latency is None or counts is None:
        return NULL
    if counts.shape[0] != RXF_HIST_BUCKETS:
        raise ValueError(f"hist must have {RXF_HIST_BUCKETS} buckets")
    cycles_per_ns()
    return <uint64_t *>&counts[0]


def histogram_lower_bounds() -> list:
    """The lower bound, in cycles, of every bucket of a ``rxfeed/hist.h``
    histogram (bucket ``i`` holds values in ``[bound[i], bound[i + 1])``)."""
    return [rxf_hist_value(i) for i in range(RXF_HIST_BUCKETS)]


#: Buckets of a ``rxfeed/hist.h`` histogram (the length ``run_native(hist=...)`` wants).
HIST_BUCKETS = RXF_HIST_BUCKETS


cdef rxf_packet *_new_packets(unsigned int burst) except NULL:
    if burst < 1 or burst > 4096:
        raise ValueError("burst must be in 1..4096")
    cdef rxf_packet *pkts = <rxf_packet *>malloc(burst * sizeof(rxf_packet))
    if pkts == NULL:
        raise MemoryError()
    return pkts


cdef inline int _decode(rxf_decoder_ops *dec, rxf_packet *pkts, uint32_t n, uint64_t *hist,
                        Quarantine *q) noexcept nogil:
    """One burst into the decoder (through the quarantine when poison mode is
    on; timed when ``hist``): RUNNING, DECODER_STOPPED, or BACKEND_ERROR when
    the quarantine could not take the burst."""
    cdef int reason = RUNNING
    cdef uint64_t c0
    if q != NULL and _quarantine_in(q, pkts, n) != 0:
        return BACKEND_ERROR
    c0 = rxf_cycles()
    if dec.on_burst(dec.ctx, pkts, n) != 0:
        reason = DECODER_STOPPED
    if hist != NULL:
        hist[rxf_hist_index(rxf_cycles() - c0)] += 1
    if q != NULL:
        _quarantine_out(q, pkts, n)
    return reason


cdef int _native_loop(rxf_backend_ops *be, rxf_decoder_ops *dec, rxf_packet *pkts, uint32_t burst,
                      Limits *lim, uint64_t *hist, Quarantine *q) noexcept nogil:
    """The busy-poll loop: burst in, decode, release, until a stop reason
    (``q``: poison mode, NULL when off)."""
    cdef int n, reason = RUNNING
    cdef rxf_on_idle_fn idle = decoder_on_idle(dec)
    while reason == RUNNING:
        n = be.rx_burst(be.ctx, pkts, _burst_size(lim, burst))
        if n > 0:
            lim.total += n
            reason = _decode(dec, pkts, n, hist, q)
            if be.release != NULL:
                be.release(be.ctx, pkts, n)
        elif n == 0:
            if idle != NULL and idle(dec.ctx) != 0:
                reason = DECODER_STOPPED
        elif n == RXF_EOF:
            reason = END_OF_SOURCE
        elif n < 0:
            reason = BACKEND_ERROR
        if reason == RUNNING:
            reason = _limit_reached(lim, False)
    if dec.on_end != NULL:
        dec.on_end(dec.ctx)
    return reason


def run_native(backend_capsule, decoder_capsule, unsigned int burst=32, unsigned long long max_packets=0,
               double max_seconds=0.0, bint handle_signals=True, latency=None, poison=None,
               unsigned long long[::1] hist=None):
    """Run a native backend into a decoder until it stops.

    Returns ``(packets, reason, error_text)``; reason is one of
    ``end_of_source``, ``packet_limit``, ``time_limit``, ``signal``,
    ``decoder_stopped``, ``backend_error``; error_text is the backend's (or,
    for ``decoder_stopped``, the decoder's) ``last_error``. With ``latency``
    a dict, it is filled with percentiles of the cycles from ``rx_burst``
    returning to the decoder being done, per burst (rdtsc inside the loop).
    ``poison`` (default: :func:`poison_wanted`) hands the decoder copies that
    are poisoned once it is done with them (docs/plugin-abi.md, Buffer lifetime).
    ``hist``: with ``latency``, a writable buffer of :data:`HIST_BUCKETS`
    uint64 the loop counts into (added to, not cleared), which another
    thread may read while the loop runs (live metrics, tools/metrics.py).
    """
    cdef rxf_backend_ops *be = backend_ops_from(backend_capsule)
    cdef rxf_decoder_ops *dec = decoder_ops_from(decoder_capsule)
    cdef rxf_packet *pkts = _new_packets(burst)
    cdef uint64_t *counts = NULL
    cdef uint64_t *owned = NULL
    cdef Quarantine *q = NULL
    cdef int reason = RUNNING
    cdef Limits lim
    err = ""
    sig = _Signals(handle_signals)
    try:
        counts = _caller_hist(latency, hist)
        if counts == NULL:
            counts = owned = _new_hist(latency)
        q = _new_quarantine(poison, burst)
        sig.__enter__()
        lim = _limits(max_packets, max_seconds)
        with nogil:
            reason = _native_loop(be, dec, pkts, burst, &lim, counts, q)
        if reason == BACKEND_ERROR:
            err = _backend_error(be, q)
        elif reason == DECODER_STOPPED:
            err = _decoder_error(dec)
        if counts != NULL:
            latency.update(_hist_summary(counts))
    finally:
        sig.__exit__(None, None, None)
        free(pkts)
        free(owned)
        _free_quarantine(q)
    return lim.total, _REASON_NAMES[reason], err


cdef int _views_to_packets(list bufs, Py_buffer *views, rxf_packet *pkts, uint32_t flags,
                           uint32_t *n) except -1:
    """Borrow each buffer of a Python burst as one rxf_packet (a
    :class:`~rxfeed.interfaces.Packet` brings its metadata); ``*n`` counts
    the buffers held, which the caller releases even after an error."""
    cdef rxf_packet *p
    for b in bufs:
        meta = b if isinstance(b, Packet) else None
        PyObject_GetBuffer(meta.data if meta is not None else b, &views[n[0]], PyBUF_SIMPLE)
        p = &pkts[n[0]]
        n[0] += 1
        p.data = <const uint8_t *>views[n[0] - 1].buf
        p.len = <uint32_t>views[n[0] - 1].len
        p.flags = flags
        p.rx_ts_ns = 0
        p.src_ip = p.dst_ip = 0
        p.src_port = p.dst_port = 0
        p.line = 0
        if meta is not None:
            p.flags |= meta.flags
            p.rx_ts_ns, p.src_ip, p.dst_ip = meta.rx_ts_ns, meta.src_ip, meta.dst_ip
            p.src_port, p.dst_port, p.line = meta.src_port, meta.dst_port, meta.line
    return 0


cdef str _exc_text(BaseException exc):
    return f"{type(exc).__name__}: {exc}"


cdef tuple _python_burst(backend, uint32_t want):
    """One ``read_burst`` of a Python backend: ``(buffers, reason, error)``;
    ``None`` is the end of the source, an exception ends the run cleanly (the
    summary keeps what was decoded)."""
    try:
        bufs = backend.read_burst(want)
    except Exception as exc:
        return [], BACKEND_ERROR, _exc_text(exc)
    if bufs is None:
        return [], END_OF_SOURCE, ""
    bufs = list(bufs)
    if len(bufs) > want:  # dropping the extra would be a silent loss
        return [], BACKEND_ERROR, f"read_burst({want}) returned {len(bufs)} buffers (at most {want} allowed)"
    return bufs, RUNNING, ""


def run_python(backend, decoder_capsule, unsigned int burst=32, unsigned long long max_packets=0,
               double max_seconds=0.0, bint handle_signals=True, poison=None):
    """Run a pure-Python backend (``read_burst(n) -> list of buffers | None``)
    into a native decoder: one Python call per burst, the decoder still runs nogil.
    A backend with ``stream = True`` hands byte-stream chunks, not datagrams.
    Stops for the same reasons as :func:`run_native`; ``poison`` as there."""
    cdef rxf_decoder_ops *dec = decoder_ops_from(decoder_capsule)
    cdef rxf_on_idle_fn idle = decoder_on_idle(dec)
    cdef rxf_packet *pkts = _new_packets(burst)
    cdef Quarantine *q = NULL
    cdef Py_buffer *views = <Py_buffer *>malloc(burst * sizeof(Py_buffer))
    cdef uint32_t i, n, flags = RXF_PKT_STREAM if getattr(backend, "stream", False) else 0
    cdef int reason = RUNNING
    cdef Limits lim
    err = ""
    sig = _Signals(handle_signals)
    try:
        if views == NULL:
            raise MemoryError()
        q = _new_quarantine(poison, burst)
        sig.__enter__()
        lim = _limits(max_packets, max_seconds)
        while reason == RUNNING:
            bufs, reason, err = _python_burst(backend, _burst_size(&lim, burst))
            if reason != RUNNING:
                break
            n = 0
            try:
                _views_to_packets(bufs, views, pkts, flags, &n)
                if n:
                    with nogil:
                        reason = _decode(dec, pkts, n, NULL, q)
                elif idle != NULL and idle(dec.ctx) != 0:
                    reason = DECODER_STOPPED
            finally:
                for i in range(n):
                    PyBuffer_Release(&views[i])
            lim.total += n
            if reason == RUNNING:
                reason = _limit_reached(&lim, True)
        if dec.on_end != NULL:
            dec.on_end(dec.ctx)
        err = _quarantine_error(q) or err
    finally:
        sig.__exit__(None, None, None)
        free(pkts)
        free(views)
        _free_quarantine(q)
    return lim.total, _REASON_NAMES[reason], _decoder_error(dec) if reason == DECODER_STOPPED else err


cdef int _poll_native(rxf_backend_ops *be, rxf_packet *pkts, uint32_t burst, Limits *lim,
                      int *reason) noexcept nogil:
    """Busy-poll a native backend until it returns packets or a stop reason."""
    cdef int n
    while True:
        n = be.rx_burst(be.ctx, pkts, _burst_size(lim, burst))
        if n > 0:
            return n
        if n == RXF_EOF:
            reason[0] = END_OF_SOURCE
            return 0
        if n < 0:
            reason[0] = BACKEND_ERROR
            return 0
        reason[0] = _limit_reached(lim, False)
        if reason[0] != RUNNING:
            return 0


cdef class _PacketBuffer:
    """One native packet's bytes, exported read-only, counting the views
    alive: a slice, cast or numpy array made from ``Packet.data`` outlives
    the view's release, but not this count."""
    cdef const uint8_t *data
    cdef Py_ssize_t length
    cdef int exports

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, <void *>self.data, self.length, 1, flags)
        self.exports += 1

    def __releasebuffer__(self, Py_buffer *view):
        self.exports -= 1


cdef list _packet_views(const rxf_packet *pkts, int n, list buffers):
    """Read-only memoryviews of a native burst; ``buffers`` gets their exporters."""
    cdef _PacketBuffer b
    views = []
    for i in range(n):
        b = _PacketBuffer.__new__(_PacketBuffer)
        b.data, b.length = pkts[i].data, pkts[i].len
        buffers.append(b)
        views.append(memoryview(b))
    return views


cdef int _release_views(list views, list buffers):
    """Release every view handed out; returns how many packets' bytes the
    decoder can still reach (a view kept by an export, or a slice, cast or
    array made from one: ``buffers`` counts those for native memory)."""
    cdef int kept = 0
    cdef _PacketBuffer b
    for v in views:
        try:
            v.release()
        except BufferError:
            kept += 1
    if buffers is not None:
        kept = 0
        for b in buffers:
            kept += b.exports != 0
    return kept


cdef tuple _call_python_decoder(decoder, list packets, list views, list buffers=None):
    """One burst into a Python decoder; views handed out are released after
    the call, so a decoder that kept one gets an error, not stale bytes, and
    one that still reaches a packet's bytes some other way (a slice, cast or
    numpy array of ``data``) stops the run with ``decoder_error``.
    Returns (reason, error text)."""
    try:
        stop = decoder.on_packets(packets)
    except Exception as exc:
        _release_views(views, buffers)
        return DECODER_ERROR, _exc_text(exc)
    kept = _release_views(views, buffers)
    if kept:
        return DECODER_ERROR, (f"the decoder still holds the bytes of {kept} packet(s) after on_packets "
                               f"returned (a slice, cast or numpy array of Packet.data); data is valid only "
                               f"for the call: copy what you keep (bytes(p.data))")
    return (DECODER_STOPPED if stop else RUNNING), ""


def run_native_to_python(backend_capsule, decoder, unsigned int burst=32, unsigned long long max_packets=0,
                         double max_seconds=0.0, bint handle_signals=True, bint stream=False, poison=None):
    """Run a native backend into a :class:`~rxfeed.interfaces.PythonDecoder`:
    polling stays without the GIL; each burst is handed over as
    :class:`~rxfeed.interfaces.Packet` objects whose ``data`` is a
    read-only memoryview of the backend's own buffer (in poison mode, of a
    copy poisoned after the call), valid for the call.
    Returns ``(packets, reason, error_text)`` as :func:`run_native`."""
    cdef rxf_backend_ops *be = backend_ops_from(backend_capsule)
    cdef rxf_packet *pkts = _new_packets(burst)
    cdef Quarantine *q = NULL
    cdef int n, i, reason = RUNNING
    cdef Limits lim
    err = ""
    sig = _Signals(handle_signals)
    try:
        q = _new_quarantine(poison, burst)
        sig.__enter__()
        lim = _limits(max_packets, max_seconds)
        while reason == RUNNING:
            with nogil:
                n = _poll_native(be, pkts, burst, &lim, &reason)
            if n == 0:
                break
            lim.total += n
            if q != NULL and _quarantine_in(q, pkts, n) != 0:
                reason = BACKEND_ERROR
                if be.release != NULL:
                    be.release(be.ctx, pkts, n)
                break
            buffers = []
            views = _packet_views(pkts, n, buffers)
            packets = [Packet(views[i], pkts[i].rx_ts_ns, pkts[i].src_ip, pkts[i].dst_ip, pkts[i].src_port,
                              pkts[i].dst_port, pkts[i].flags | (RXF_PKT_STREAM if stream else 0), pkts[i].line)
                       for i in range(n)]
            try:
                reason, err = _call_python_decoder(decoder, packets, views, buffers)
            finally:
                if q != NULL:
                    _quarantine_out(q, pkts, n)
                if be.release != NULL:
                    be.release(be.ctx, pkts, n)
            if reason == RUNNING:
                reason = _limit_reached(&lim, False)
        if reason == BACKEND_ERROR:
            err = _backend_error(be, q)
        decoder.on_end()
    finally:
        sig.__exit__(None, None, None)
        free(pkts)
        _free_quarantine(q)
    return lim.total, _REASON_NAMES[reason], err


def run_python_to_python(backend, decoder, unsigned int burst=32, unsigned long long max_packets=0,
                         double max_seconds=0.0, bint handle_signals=True):
    """Run a pure-Python backend into a :class:`~rxfeed.interfaces.PythonDecoder`
    (both in Python; the same limits, stop reasons and error handling)."""
    cdef int reason = RUNNING
    cdef uint32_t flags = RXF_PKT_STREAM if getattr(backend, "stream", False) else 0
    cdef Limits lim
    err = ""
    sig = _Signals(handle_signals)
    try:
        sig.__enter__()
        lim = _limits(max_packets, max_seconds)
        while reason == RUNNING:
            bufs, reason, err = _python_burst(backend, _burst_size(&lim, burst))
            if reason != RUNNING:
                break
            views = [memoryview(b.data if isinstance(b, Packet) else b) for b in bufs]
            packets = [b._replace(data=v, flags=b.flags | flags) if isinstance(b, Packet) else Packet(v, flags=flags)
                       for b, v in zip(bufs, views)]
            lim.total += len(packets)
            if packets:
                reason, err = _call_python_decoder(decoder, packets, views)
            if reason == RUNNING:
                reason = _limit_reached(&lim, True)
        decoder.on_end()
    finally:
        sig.__exit__(None, None, None)
    return lim.total, _REASON_NAMES[reason], err


cdef int _null_on_burst(void *ctx, const rxf_packet *pkts, uint32_t n) noexcept nogil:
    return 0


cdef rxf_decoder_ops _null_ops
fill_decoder_ops(&_null_ops, NULL, _null_on_burst, NULL, NULL)


def null_decoder():
    """A decoder that discards every burst (frame counting, backend benchmarks)."""
    return PyCapsule_New(&_null_ops, RXF_DECODER_CAPSULE, NULL)
