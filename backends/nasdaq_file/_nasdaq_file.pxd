from libc.stdint cimport uint32_t, uint64_t
from rxfeed_abi cimport rxf_backend_ops, rxf_packet
from rxfeed_src cimport rxf_src

cdef struct NasdaqFileState:
    rxf_src src
    uint32_t chunk
    uint64_t loops
    uint64_t loops_done
    uint64_t chunks
    uint64_t bytes
    int pending_reset
    char error[200]


cdef class NasdaqFileReader:
    cdef NasdaqFileState *st
    cdef rxf_backend_ops ops
    cdef bint is_open
