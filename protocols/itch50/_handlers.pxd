from libc.stdint cimport uint64_t
from itch50_handlers cimport rxf_itch_handlers

cdef struct ChecksumState:
    uint64_t count
    uint64_t checksum
    uint64_t per_type[256]

cdef class ChecksumHandler:
    cdef rxf_itch_handlers table
    cdef ChecksumState state
