# cython: language_level=3, boundscheck=False, wraparound=False
"""Native fault injector exported through the rxfeed C ABI, and the C table
that lets it wrap a pure-Python backend."""
from libc.stdlib cimport malloc, free
from libc.string cimport strncpy
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer, PyCapsule_IsValid
from rxfeed_abi cimport fill_backend_ops, RXF_BACKEND_CAPSULE, RXF_ABI_VERSION, RXF_EOF, RXF_ERROR, RXF_PKT_STREAM

from rxfeed._runloop import backend_table
from rxfeed.interfaces import Packet

#: Fault kinds with a rate, in the order of the C ``rate[]`` array.
KINDS = ("drop", "duplicate", "reorder", "delay", "truncate", "corrupt")


cdef int _py_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil:
    with gil:
        return (<PythonSource>ctx).burst(pkts, max)


cdef void _py_release(void *ctx, rxf_packet *pkts, uint32_t n) noexcept nogil:
    with gil:
        (<PythonSource>ctx).release_views()


cdef const char *_py_last_error(void *ctx) noexcept nogil:
    return (<PythonSource>ctx).error


cdef class PythonSource:
    """A C table over a pure-Python backend's ``read_burst``: one Python call
    per burst (the GIL taken inside the table), the buffers borrowed without
    a copy until ``release``. An exception ends the source with RXF_ERROR
    and its text."""

    def __cinit__(self, backend):
        self.backend = backend
        self.views = <Py_buffer *>malloc(RXF_FAULTS_MAX_BURST * sizeof(Py_buffer))
        if self.views == NULL:
            raise MemoryError()
        self.held_objects = []
        self.flags = RXF_PKT_STREAM if getattr(backend, "stream", False) else 0
        self.error[0] = 0
        fill_backend_ops(&self.ops, <void *>self, _py_rx_burst, _py_release, _py_last_error)

    def __dealloc__(self):
        self.release_views()
        free(self.views)

    def capsule(self):
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    cdef void release_views(self) noexcept:
        cdef uint32_t i
        for i in range(self.n_views):
            PyBuffer_Release(&self.views[i])
        self.n_views = 0
        self.held_objects = []

    cdef int burst(self, rxf_packet *pkts, uint32_t max) noexcept:
        self.release_views()
        try:
            bufs = self.backend.read_burst(min(max, RXF_FAULTS_MAX_BURST))
            if bufs is None:
                return RXF_EOF
            for b in list(bufs)[:min(max, RXF_FAULTS_MAX_BURST)]:
                self._borrow(b, &pkts[self.n_views])
            return self.n_views
        except BaseException as exc:
            self.release_views()
            text = f"{type(exc).__name__}: {exc}".encode(errors="replace")
            strncpy(self.error, text, sizeof(self.error) - 1)
            self.error[sizeof(self.error) - 1] = 0
            return RXF_ERROR

    cdef _borrow(self, b, rxf_packet *p):
        meta = b if isinstance(b, Packet) else None
        data = meta.data if meta is not None else b
        PyObject_GetBuffer(data, &self.views[self.n_views], PyBUF_SIMPLE)
        self.held_objects.append(data)
        p.data = <const uint8_t *>self.views[self.n_views].buf
        p.len = <uint32_t>self.views[self.n_views].len
        self.n_views += 1
        p.flags = self.flags | (meta.flags if meta is not None else 0)
        p.rx_ts_ns = meta.rx_ts_ns if meta is not None else 0
        p.src_ip = meta.src_ip if meta is not None else 0
        p.dst_ip = meta.dst_ip if meta is not None else 0
        p.src_port = meta.src_port if meta is not None else 0
        p.dst_port = meta.dst_port if meta is not None else 0
        p.line = meta.line if meta is not None else 0


cdef const rxf_backend_ops *_inner_ops(capsule) except NULL:
    """The inner backend's table, checked as a run checks it (name, ABI, rx_burst)."""
    return <const rxf_backend_ops *><size_t>backend_table(capsule)


cdef class FaultInjector:
    """The wrapper table around ``inner_capsule`` (whose owner ``owner`` is
    kept alive as long as this object).

    :param rates: one per :data:`KINDS`, each 0..1.
    :param kill_after_ns / kill_after_packets: -1 for never.
    """

    def __cinit__(self, inner_capsule, owner, rates, unsigned long long seed, unsigned int reorder_max,
                  unsigned long long delay_ns, long long kill_after_ns, long long kill_after_packets,
                  unsigned int hold_max, unsigned long long arena_bytes):
        cdef rxf_faults_cfg cfg
        cdef const char *why = NULL
        cdef const rxf_backend_ops *inner = _inner_ops(inner_capsule)
        if len(rates) != RXF_FAULT_NKINDS:
            raise ValueError(f"faults: {RXF_FAULT_NKINDS} rates expected")
        cfg.seed = seed
        for i, r in enumerate(rates):
            cfg.rate[i] = r
        cfg.reorder_max, cfg.delay_ns = reorder_max, delay_ns
        cfg.kill_after_ns, cfg.kill_after_packets = kill_after_ns, kill_after_packets
        cfg.hold_max, cfg.arena_bytes = hold_max, arena_bytes
        self.f = rxf_faults_new(inner, &cfg, &why)
        if self.f == NULL:
            raise ValueError(why.decode())
        self.inner_owner = (owner, inner_capsule)
        rxf_faults_ops(self.f, &self.ops)

    def __dealloc__(self):
        rxf_faults_free(self.f)

    def close(self):
        """Give the inner backend back its last burst and drop what is held
        (before the inner backend closes); the table then ends at once."""
        rxf_faults_close(self.f)

    def capsule(self):
        """The wrapper's table (valid while this object lives)."""
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    def stats(self) -> dict:
        """Faults injected by kind, packets in and out, and what is held now."""
        cdef const rxf_faults_stats *s = rxf_faults_get_stats(self.f)
        return {"inner_packets": s.inner, "delivered": s.delivered, "dropped": s.dropped,
                "duplicated": s.duplicated, "reordered": s.reordered, "delayed": s.delayed,
                "truncated": s.truncated, "corrupted": s.corrupted, "killed_after": s.killed_after,
                "killed": bool(s.killed), "no_room": s.no_room, "held": rxf_faults_held(self.f),
                "held_peak": s.held_peak}


def prng_sequence(unsigned long long seed, int n):
    """The first ``n`` outputs of the C PRNG (splitmix64) from ``seed`` (tests)."""
    cdef uint64_t s = seed
    return [rxf_faults_next(&s) for _ in range(n)]
