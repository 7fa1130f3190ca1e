from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from rxfeed_abi cimport rxf_decoder_ops, rxf_packet
from rxfeed_recovery cimport rxf_recovery
from iextp cimport rxf_iextp_session
from _iex_records cimport rxf_iex_record
from iex_handlers cimport rxf_iex_handlers

DEF MAX_CHANNELS = 16

cdef struct PendingRec:
    rxf_iex_record rec
    uint64_t sequence
    int64_t send_time
    uint64_t rx_ts_ns
    uint32_t session_id
    uint32_t channel_id
    uint8_t status      # ST_* of _iex_decoder.pyx: what the session layer made of it

cdef struct EventRec:
    int kind
    uint32_t channel_id
    uint32_t session_id
    uint64_t first
    uint64_t count
    uint64_t rx_ts_ns

cdef struct Stream:
    rxf_iextp_session s         # one IEX-TP tracker per channel of the feed
    uint8_t *held               # copy of the segment the tracker holds (a candidate)
    uint32_t held_cap
    rxf_packet held_pkt         # that segment, its data pointing at `held`

cdef struct DecoderState:
    int feed                    # 0 TOPS, 1 DEEP, 2 DEEP+; -1: the first segment decides
    uint16_t protocol_id        # of that feed, 0 until known
    uint32_t channel            # 0: every channel (one tracker each); else only this one
    uint64_t initial_seq, max_jump
    Stream streams[16]
    uint32_t channel_of[16]     # channel id of streams[i]
    uint32_t n_streams
    uint64_t other_protocol, other_channel, too_many_channels, not_iextp
    rxf_recovery rec            # sequencer + gap fill (recovering: one channel only)
    int recovering
    uint64_t now_ns
    rxf_packet rec_pkt
    uint64_t answers_wrong_session, answers_malformed, answers_not_wanted
    uint8_t *answer
    uint8_t *scratch            # released candidates while their confirming segments are taken (2 x 64 KiB)
    uint64_t per_type[256]
    uint64_t messages, packets, bytes
    uint64_t err_unknown_type, err_bad_length
    uint64_t source_resets
    uint64_t end_of_messages    # System Event 'C' seen
    rxf_iex_handlers *handlers[8]
    int n_handlers
    uint8_t py_sub[256]
    uint8_t batch_sub[256]
    PendingRec *pending
    uint32_t n_pending, cap_pending
    uint8_t *batch_buf[256]
    uint32_t batch_n[256]
    uint32_t batch_cap
    EventRec *events
    uint32_t n_events, cap_events
    void *owner
    int stop
    int stop_at_end
    int sequenced               # 0: dissect: every message of every segment, with its status
    int log_arrivals
    uint64_t *arrivals
    uint64_t n_arrivals, cap_arrivals

cdef class IexDecoder:
    cdef DecoderState *st
    cdef rxf_decoder_ops ops
    cdef dict _callbacks
    cdef void *_cb[256]
    cdef uint8_t _cbmeta[256]
    cdef list _py_fields        # per type byte: the converter's field list (or None)
    cdef object _batch_callback
    cdef dict _batches
    cdef object _event_callback
    cdef list _events
    cdef list _handler_capsules
    cdef list _loss_listeners
    cdef object _rerequest_server
    cdef double _reorder_window_ms
    cdef object error
    cdef void _flush_pending(self) noexcept
    cdef void _flush_batch(self, uint8_t t) noexcept
    cdef void _flush_events(self) noexcept
