# cython: language_level=3, boundscheck=False, wraparound=False
"""A C backend table over a pure-Python backend, for native wrappers
(:class:`rxfeed.backend_base.WrapperBackend`) that drive an inner backend's
table themselves."""
from libc.stdlib cimport malloc, free
from libc.string cimport strncpy
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport fill_backend_ops, RXF_BACKEND_CAPSULE, RXF_EOF, RXF_ERROR, RXF_PKT_STREAM

from rxfeed.interfaces import Packet

#: most packets one ``read_burst`` call is asked for
MAX_BURST = RXF_PYSOURCE_MAX_BURST


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
        self.views = <Py_buffer *>malloc(RXF_PYSOURCE_MAX_BURST * sizeof(Py_buffer))
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
        """The table (valid while this object lives)."""
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
            want = min(max, RXF_PYSOURCE_MAX_BURST)
            bufs = self.backend.read_burst(want)
            if bufs is None:
                return RXF_EOF
            bufs = list(bufs)
            if len(bufs) > want:  # dropping the extra would be a silent loss
                raise ValueError(f"read_burst({want}) returned {len(bufs)} buffers (at most {want} allowed)")
            for b in bufs:
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


def backend_table_of(backend):
    """``backend``'s C table as ``(capsule, keep_alive)``: a native backend's
    own capsule, or one over a pure-Python backend's ``read_burst`` (a
    :class:`PythonSource`). Whoever uses the table keeps ``keep_alive``
    (the backend, and the source if one was made) as long as it does."""
    capsule = backend.native_capsule()
    if capsule is not None:
        return capsule, (backend, None)
    source = PythonSource(backend)
    return source.capsule(), (backend, source)
