# Cython declarations of the IEX C handler table (iex_handlers.h).
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t, uint8_t
from rxfeed_abi cimport rxf_packet
from _iex_records cimport rxf_iex_record

cdef extern from "iex_handlers.h" nogil:
    enum: RXF_IEX_HANDLERS_VERSION
    const char *RXF_IEX_HANDLERS_CAPSULE
    enum: RXF_IEX_PROTO_TOPS, RXF_IEX_PROTO_DEEP, RXF_IEX_PROTO_DEEP_PLUS, RXF_IEX_EVENT_COMPLETE
    ctypedef struct rxf_iex_meta:
        const rxf_packet *packet
        const uint8_t *raw
        uint32_t raw_len
        uint16_t protocol_id
        uint32_t channel_id
        uint32_t session_id
        uint64_t sequence
        int64_t send_time
        uint32_t event_end
    ctypedef void (*rxf_iex_handler)(void *ctx, const rxf_iex_record *rec, const rxf_iex_meta *meta) noexcept nogil
    ctypedef struct rxf_iex_handlers:
        uint32_t version
        uint32_t struct_size
        void *ctx
        rxf_iex_handler on[256]
