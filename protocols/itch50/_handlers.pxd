from libc.stdint cimport uint64_t
from itch50_handlers cimport rxf_itch_handlers

cdef struct ChecksumState:
    uint64_t count
    uint64_t checksum
    uint64_t per_type[256]
    uint64_t wire_calls      # calls of the poison wire[] of a first-layout table (must stay 0)

cdef class ChecksumHandler:
    cdef rxf_itch_handlers table
    cdef ChecksumState state

cdef struct TwoFieldsState:
    uint64_t count
    uint64_t shares
    uint64_t price

cdef class AddOrderTwoFields:
    cdef rxf_itch_handlers table
    cdef TwoFieldsState state

cdef struct WireProbeState:
    uint64_t count
    uint64_t wrong_length    # a call whose len is not its type's wire length (must stay 0)
    uint64_t header_sum      # locate + tracking + timestamp through the header accessors
    uint64_t per_type[256]

cdef class WireProbe:
    cdef rxf_itch_handlers table
    cdef WireProbeState state
