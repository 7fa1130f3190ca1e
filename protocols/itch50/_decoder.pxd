from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from cpython.ref cimport PyObject
from rxfeed_abi cimport rxf_decoder_ops, rxf_packet
from rxfeed_mold cimport rxf_mold_session
from rxfeed_recovery cimport rxf_recovery
from _records cimport rxf_itch_record
from itch50_handlers cimport rxf_itch_handlers, rxf_itch_handler, rxf_itch_wire_handler, rxf_itch_meta


cdef struct TypeHandlers:
    # the C handlers of one message type, in the order their tables were attached
    uint32_t n_on
    uint32_t n_wire
    rxf_itch_handler on[8]
    void *on_ctx[8]
    rxf_itch_wire_handler wire[8]
    void *wire_ctx[8]


cdef struct PendingRec:
    rxf_itch_record rec
    uint64_t sequence
    uint64_t rx_ts_ns
    uint8_t has_seq
    uint8_t status      # ST_* of _decoder.pyx: what the session layer made of it
    char session[10]    # the session of the message's own packet

cdef struct EventRec:
    int kind
    char session[10]
    uint64_t first
    uint64_t count
    uint64_t rx_ts_ns

cdef struct DecoderState:
    rxf_mold_session mold
    rxf_recovery rec            # sequencer + re-request (recovering: datagrams of the session go through it)
    int recovering
    uint64_t now_ns             # CLOCK_MONOTONIC at the start of the burst (recovering only)
    rxf_packet rec_pkt          # the packet being offered: what a delivered block is handed on as
    uint64_t answers_wrong_session, answers_malformed, answers_not_wanted
    uint8_t *answer             # buffer for one re-request answer (64 KiB)
    int sequenced               # 0: dissect: every message of every datagram, with its status
    uint8_t *held               # copy of the datagram held by the session layer (an implausible jump)
    uint32_t held_cap
    rxf_packet held_pkt         # that datagram, its data pointing at `held`
    uint64_t per_type[256]
    uint64_t messages
    uint64_t packets
    uint64_t bytes
    uint64_t err_unknown_type
    uint64_t err_bad_length
    uint64_t err_truncated_block
    uint64_t err_trailing_bytes
    uint64_t lost_in_malformed
    uint64_t implied_length
    uint64_t stream_unrecoverable
    uint64_t stream_truncated_tail
    uint64_t source_resets
    int stream_dead
    uint8_t carry[65540]
    uint32_t carry_len
    rxf_itch_handlers *handlers[8]
    int n_handlers
    uint8_t py_sub[256]
    uint8_t batch_sub[256]
    # The dispatch table, rebuilt whenever a consumer is attached or changes:
    # per type byte, its wire length (0: not an ITCH 5.0 type) | ROUTE_* flags << 8.
    uint16_t route[256]
    TypeHandlers by_type[256]   # the C handlers of each type (ROUTE_ON / ROUTE_WIRE)
    rxf_itch_meta meta          # packet, session, has_sequence: set once per packet
    PendingRec *pending
    uint32_t n_pending
    uint32_t cap_pending
    uint8_t *batch_buf[256]
    uint32_t batch_n[256]
    uint32_t batch_cap
    EventRec *events
    uint32_t n_events
    uint32_t cap_events
    void *owner
    int stop
    int stop_at_eos
    int log_arrivals
    uint64_t *arrivals
    uint64_t n_arrivals
    uint64_t cap_arrivals


cdef class ItchDecoder:
    cdef DecoderState *st
    cdef rxf_decoder_ops ops
    cdef dict _callbacks
    cdef void *_cb[256]
    cdef uint8_t _cbmeta[256]
    cdef uint8_t _cbview[256]          # 1: the callback of the type takes views (MessageView)
    cdef PyObject *_reuse[256]         # per type: the last message object, reused when nobody holds it
    cdef PyObject *_meta_reuse         # the same for MessageMeta
    cdef object _batch_callback
    cdef dict _batches
    cdef object _event_callback
    cdef list _events
    cdef list _handler_capsules
    cdef list _loss_listeners
    cdef object _rerequest_server
    cdef double _reorder_window_ms
    cdef object error
    cdef void _route(self) noexcept
    cdef void _flush_pending(self) noexcept
    cdef int _call(self, uint8_t t, const PendingRec *p) except -1
    cdef void _flush_batch(self, uint8_t t) noexcept
    cdef void _flush_events(self) noexcept
