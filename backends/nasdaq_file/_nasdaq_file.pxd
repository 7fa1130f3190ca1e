from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from rxfeed_abi cimport rxf_backend_ops, rxf_packet
from rxfeed_src cimport rxf_src

cdef enum:
    MAX_UNFRAMEABLE_KEPT = 16

cdef struct NasdaqFileState:
    rxf_src src
    uint32_t chunk
    uint64_t loops
    uint64_t loops_done
    uint64_t chunks
    uint64_t bytes
    int pending_reset
    uint16_t wire[256]          # message length of each type byte (0: unknown)
    int check_framing           # walk every prefix here (0: raw chunks, the decoder alone frames)
    int resyncing               # skipping bytes after an unframeable point
    uint64_t unframeable        # unframeable points met
    uint64_t skipped_bytes      # bytes skipped while resynchronising
    uint64_t bad_offset[MAX_UNFRAMEABLE_KEPT]   # where (stream offset) ...
    uint64_t bad_skipped[MAX_UNFRAMEABLE_KEPT]  # ... and how much was skipped, for the first few
    char error[256]


cdef class NasdaqFileReader:
    cdef NasdaqFileState *st
    cdef rxf_backend_ops ops
    cdef bint is_open
