from libc.stdint cimport uint8_t, uint32_t, uint64_t
from rxfeed_abi cimport rxf_backend_ops


cdef struct ReplayState:
    const uint8_t *base      # the file's bytes (owned by ReplayReader.data)
    size_t size
    size_t start             # first record (after the magic)
    size_t pos               # next record
    uint64_t loops           # passes to play
    uint64_t loops_done
    uint64_t records         # records read in this pass (for error texts)
    uint64_t packets         # handed out, all passes
    uint64_t bytes
    uint32_t outstanding     # packets of the burst not released yet
    uint64_t released
    uint64_t release_mismatches  # release() of a count that is not the last burst's
    bint pending_reset       # the next packet starts a new pass
    bint ended               # RXF_EOF returned (or closed): nothing more
    bint failed              # RXF_ERROR returned: the error again, nothing more
    char error[256]


cdef class ReplayReader:
    cdef ReplayState st
    cdef rxf_backend_ops ops
    cdef bytes data
