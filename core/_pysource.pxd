from libc.stdint cimport uint8_t, uint32_t
from cpython.buffer cimport Py_buffer
from rxfeed_abi cimport rxf_backend_ops, rxf_packet

cdef enum:
    #: most packets one read_burst call is asked for (the borrowed views' array)
    RXF_PYSOURCE_MAX_BURST = 4096


cdef class PythonSource:
    cdef object backend
    cdef list held_objects
    cdef Py_buffer *views
    cdef uint32_t n_views
    cdef uint32_t flags
    cdef char error[256]
    cdef rxf_backend_ops ops
    cdef int burst(self, rxf_packet *pkts, uint32_t max) noexcept
    cdef void release_views(self) noexcept
    cdef _borrow(self, object b, rxf_packet *p)
