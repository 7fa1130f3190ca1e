from libc.stdint cimport uint64_t
from rxfeed_abi cimport rxf_decoder_ops


cdef struct ToyState:
    uint64_t packets
    uint64_t messages            # new messages (in datagrams not seen before)
    uint64_t duplicates          # messages of datagrams already seen
    uint64_t gaps                # gap events: jumps in the datagram sequence
    uint64_t gap_messages        # datagrams the gaps skipped (what they lost)
    uint64_t malformed           # datagrams cut short (header or a message)
    uint64_t next_seq            # the datagram sequence expected next
    uint64_t per_type[256]
    char error[64]


cdef class ToyCounter:
    cdef ToyState st
    cdef rxf_decoder_ops ops
