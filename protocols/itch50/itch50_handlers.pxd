# Cython declarations of itch50_handlers.h (the C-level handler table).
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from rxfeed_abi cimport rxf_packet
from _records cimport rxf_itch_record

cdef extern from "itch50_handlers.h" nogil:
    enum: RXF_ITCH_HANDLERS_VERSION
    const char *RXF_ITCH_HANDLERS_CAPSULE
    ctypedef struct rxf_itch_meta:
        const rxf_packet *packet
        const uint8_t *raw
        uint32_t raw_len
        uint32_t has_sequence
        uint64_t sequence
        const char *session
    const size_t RXF_ITCH_HANDLERS_V1_SIZE
    ctypedef void (*rxf_itch_handler)(void *ctx, const rxf_itch_record *rec, const rxf_itch_meta *meta) noexcept nogil
    ctypedef void (*rxf_itch_wire_handler)(void *ctx, const uint8_t *msg, uint32_t len,
                                           const rxf_itch_meta *meta) noexcept nogil
    ctypedef struct rxf_itch_handlers:
        uint32_t version
        uint32_t struct_size
        void *ctx
        rxf_itch_handler on[256]
        rxf_itch_wire_handler wire[256]
