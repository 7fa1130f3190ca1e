# Cython declarations of the rxfeed C ABI (include/rxfeed/abi.h).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "rxfeed/abi.h" nogil:
    enum: RXF_ABI_VERSION
    enum: RXF_EOF
    enum: RXF_ERROR
    enum: RXF_PKT_STREAM
    enum: RXF_PKT_SOURCE_RESET
    enum: RXF_PKT_HW_TIMESTAMP
    const char *RXF_BACKEND_CAPSULE
    const char *RXF_DECODER_CAPSULE

    ctypedef struct rxf_packet:
        const uint8_t *data
        uint32_t len
        uint32_t flags
        uint64_t rx_ts_ns
        uint32_t src_ip
        uint32_t dst_ip
        uint16_t src_port
        uint16_t dst_port
        uint32_t line

    ctypedef struct rxf_backend_ops:
        uint32_t abi_version
        uint32_t struct_size
        void *ctx
        int (*rx_burst)(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil
        void (*release)(void *ctx, rxf_packet *pkts, uint32_t n) noexcept nogil
        const char *(*last_error)(void *ctx) noexcept nogil

    ctypedef struct rxf_decoder_ops:
        uint32_t abi_version
        uint32_t struct_size
        void *ctx
        int (*on_burst)(void *ctx, const rxf_packet *pkts, uint32_t n) noexcept nogil
        void (*on_end)(void *ctx) noexcept nogil
        const char *(*last_error)(void *ctx) noexcept nogil
        int (*on_idle)(void *ctx) noexcept nogil
    enum: RXF_DECODER_OPS_MIN_SIZE

ctypedef int (*rxf_rx_burst_fn)(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil
ctypedef void (*rxf_release_fn)(void *ctx, rxf_packet *pkts, uint32_t n) noexcept nogil
ctypedef int (*rxf_on_burst_fn)(void *ctx, const rxf_packet *pkts, uint32_t n) noexcept nogil
ctypedef void (*rxf_on_end_fn)(void *ctx) noexcept nogil
ctypedef const char *(*rxf_last_error_fn)(void *ctx) noexcept nogil
ctypedef int (*rxf_on_idle_fn)(void *ctx) noexcept nogil


cdef inline void fill_backend_ops(rxf_backend_ops *ops, void *ctx, rxf_rx_burst_fn rx_burst,
                                  rxf_release_fn release, rxf_last_error_fn last_error) noexcept nogil:
    """Fill a backend table of this ABI version (``release``/``last_error`` may be NULL)."""
    ops.abi_version = RXF_ABI_VERSION
    ops.struct_size = sizeof(rxf_backend_ops)
    ops.ctx = ctx
    ops.rx_burst = rx_burst
    ops.release = release
    ops.last_error = last_error


cdef inline void fill_decoder_ops(rxf_decoder_ops *ops, void *ctx, rxf_on_burst_fn on_burst,
                                  rxf_on_end_fn on_end, rxf_last_error_fn last_error) noexcept nogil:
    """Fill a decoder table of this ABI version (``on_end``/``last_error`` may be NULL)."""
    ops.abi_version = RXF_ABI_VERSION
    ops.struct_size = sizeof(rxf_decoder_ops)
    ops.ctx = ctx
    ops.on_burst = on_burst
    ops.on_end = on_end
    ops.last_error = last_error
    ops.on_idle = NULL


cdef inline rxf_on_idle_fn decoder_on_idle(const rxf_decoder_ops *ops) noexcept nogil:
    """The table's on_idle, or NULL when it has none (a table of the first ABI 1 size)."""
    if ops.struct_size < sizeof(rxf_decoder_ops):
        return NULL
    return ops.on_idle
