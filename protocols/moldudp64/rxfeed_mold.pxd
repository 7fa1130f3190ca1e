# Cython declarations of the MoldUDP64 session tracker (protocols/moldudp64/moldudp64.h).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "moldudp64.h" nogil:
    enum: RXF_MOLD_HEADER_LEN
    enum: RXF_MOLD_SHORT, RXF_MOLD_NOTHING, RXF_MOLD_DELIVER, RXF_MOLD_HOLD, RXF_MOLD_OVERFLOW
    enum: RXF_MOLD_UNDECIDED, RXF_MOLD_CONFIRMED, RXF_MOLD_REJECTED
    ctypedef struct rxf_mold_session:
        char session[10]
        uint8_t have_session
        uint8_t have_candidate
        uint64_t initial_seq
        uint64_t max_jump
        uint64_t next_seq
        uint64_t cand_seq
        uint64_t cand_end
        uint64_t packets, short_packets, heartbeats, end_of_session, session_changes
        uint64_t gaps, gap_messages, duplicate_packets, duplicate_messages
        uint64_t implausible_packets, overflow_packets, jumps_confirmed
        uint64_t implausible_messages, overflow_messages
    ctypedef struct rxf_mold_verdict:
        uint64_t seq
        uint32_t count
        uint32_t skip
        uint64_t gap_first
        uint64_t gap_count
        uint8_t session_changed, end_of_session
        uint8_t packet_first
    enum: RXF_MOLD_END_OF_SESSION
    int rxf_mold_header(const uint8_t *p, uint32_t len, uint64_t *seq, uint32_t *count)
    uint32_t rxf_mold_messages(uint32_t count)
    int rxf_mold_near(uint64_t frm, uint64_t seq, uint64_t limit)
    int rxf_mold_blocks_fit(const uint8_t *p, uint32_t len, uint32_t count)
    uint32_t rxf_mold_request(uint8_t *out, const char *session, uint64_t seq, uint16_t count)
    void rxf_mold_reset(rxf_mold_session *s)
    void rxf_mold_start_session(rxf_mold_session *s, const char *session, uint64_t first_seq)
    int rxf_mold_drop_candidate(rxf_mold_session *s)
    int rxf_mold_resolve(rxf_mold_session *s, const uint8_t *p, uint32_t len, rxf_mold_verdict *v)
    int rxf_mold_accept(rxf_mold_session *s, const uint8_t *p, uint32_t len, rxf_mold_verdict *v)
