# Cython declarations of the IEX-TP session layer (iextp.h).
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from rxfeed_recovery cimport rxf_seq_block

cdef extern from "iextp.h" nogil:
    enum: RXF_IEXTP_HEADER_LEN, RXF_IEXTP_PROTOCOL_TOPS, RXF_IEXTP_PROTOCOL_DEEP, RXF_IEXTP_PROTOCOL_DEEP_PLUS
    enum: RXF_IEXTP_UDP_MAX_MESSAGES
    enum: RXF_IEXTP_OK, RXF_IEXTP_MALFORMED, RXF_IEXTP_NOTHING, RXF_IEXTP_DELIVER, RXF_IEXTP_HOLD, RXF_IEXTP_OTHER
    enum: RXF_IEXTP_UNDECIDED, RXF_IEXTP_CONFIRMED, RXF_IEXTP_REJECTED
    ctypedef struct rxf_iextp_header:
        uint8_t version
        uint16_t protocol_id
        uint32_t channel_id, session_id
        uint16_t payload_len, message_count
        int64_t stream_offset, first_seq, send_time_ns
    ctypedef struct rxf_iextp_session:
        uint16_t protocol_id
        uint32_t channel_id
        uint64_t initial_seq, max_jump
        uint8_t have_session, have_candidate, offset_known
        uint32_t session_id
        uint64_t next_seq, next_offset
        int64_t last_send_ns
        uint64_t cand_seq, cand_end
        uint32_t cand_session
        uint64_t packets, heartbeats, session_changes, restarts, jumps_confirmed
        uint64_t gaps, gap_messages, duplicate_packets, duplicate_messages
        uint64_t implausible_packets, implausible_messages, offset_mismatches, other_stream
        uint64_t short_packets, bad_version, truncated, trailing_bytes, count_mismatch, bad_sequence
        uint64_t malformed_messages
    ctypedef struct rxf_iextp_verdict:
        rxf_iextp_header h
        uint64_t seq
        uint32_t count, skip, skip_bytes
        uint64_t gap_first, gap_count
        uint8_t session_changed, restarted, offset_mismatch, packet_first
    int rxf_iextp_parse(const uint8_t *p, uint32_t len, rxf_iextp_header *h)
    int rxf_iextp_blocks_fit(const uint8_t *p, uint32_t len, uint32_t count)
    int rxf_iextp_next_message(const uint8_t *p, uint32_t len, uint32_t *off, const uint8_t **msg, uint32_t *msg_len)
    int rxf_iextp_accept(rxf_iextp_session *s, const uint8_t *p, uint32_t len, rxf_iextp_verdict *v)
    int rxf_iextp_resolve(rxf_iextp_session *s, const uint8_t *p, uint32_t len, rxf_iextp_verdict *v)
    int rxf_iextp_drop_candidate(rxf_iextp_session *s)
    void rxf_iextp_reset(rxf_iextp_session *s)
    void rxf_iextp_start_session(rxf_iextp_session *s, uint32_t session_id, uint64_t first_seq)
    int rxf_iextp_near(uint64_t frm, uint64_t seq, uint64_t limit)
    int rxf_iextp_in_stream(const rxf_iextp_session *s, const rxf_iextp_header *h)
    int rxf_iextp_seq_block(const rxf_iextp_session *s, const uint8_t *p, uint32_t len, uint64_t head,
                            rxf_seq_block *b)
    uint32_t rxf_iextp_request(uint8_t *out, uint32_t cap, uint16_t protocol_id, uint32_t channel_id,
                               uint32_t session_id, uint64_t first, uint64_t count)
