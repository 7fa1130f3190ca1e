# IEX-TP recovery: one channel's segments through rxfeed's sequencer
# (core/include/rxfeed/recovery.h), included by _decoder.pyx; the
# protocol-neutral half (answers, ticks, drain) is core's recovery_loop.pxi.
#
# As for MoldUDP64 (protocols/itch50/_mold_recovery.pxi): a segment of the
# current session near the position is offered to the sequencer as a block;
# blocks come back exactly once, in order, and pass the IEX-TP tracker as
# if just received. Everything else (a first segment, another session, a
# suspected restart, an implausible jump, a malformed segment) goes to the
# tracker directly, after the sequencer was flushed when the tracker is
# about to move. Gap fill answers are ordinary segments of the current
# session, checked and offered on line RXF_REC_LINE_REREQUEST.

include "recovery_loop.pxi"


cdef inline Stream *_rec_stream(DecoderState *st) noexcept nogil:
    """The one channel recovery follows (enable_recovery() requires a channel)."""
    return &st.streams[0]


cdef void _rec_deliver(void *user, const rxf_seq_block *b, uint32_t skip) noexcept nogil:
    """A block in sequence order: through the tracker as received."""
    cdef DecoderState *st = <DecoderState *>user
    cdef Stream *sm = _rec_stream(st)
    cdef rxf_packet p = st.rec_pkt
    cdef uint64_t dup_packets = sm.s.duplicate_packets, dup_messages = sm.s.duplicate_messages
    p.data = b.data
    p.len = b.len
    p.rx_ts_ns = b.rx_ns
    p.line = b.line
    _segment(st, sm, &p)
    # the sequencer told copies apart already; an overlap here is the head of an answer, not a fault
    sm.s.duplicate_packets = dup_packets
    sm.s.duplicate_messages = dup_messages


cdef void _rec_lost(void *user, uint64_t first, uint64_t count, int why, uint64_t now_ns) noexcept nogil:
    """The sequencer gave [first, first + count) up: a gap of the session."""
    cdef DecoderState *st = <DecoderState *>user
    cdef Stream *sm = _rec_stream(st)
    sm.s.gaps += 1
    sm.s.gap_messages += count
    if first + count > sm.s.next_seq:
        sm.s.next_seq = first + count
        sm.s.offset_known = 0  # the lost messages' bytes are unknown: the next segment's offset is the reference
    _event(st, EV_GAP, sm.s.channel_id, sm.s.session_id, first, count, rxf_wall_ns())


cdef uint32_t _rec_request(void *user, uint8_t *out, uint32_t cap, uint64_t first, uint64_t count) noexcept nogil:
    """A Gap Fill Request (Sequenced Messages) for [first, first + count) of the current session."""
    cdef DecoderState *st = <DecoderState *>user
    cdef Stream *sm = _rec_stream(st)
    if st.n_streams == 0 or not sm.s.have_session:
        return 0
    return rxf_iextp_request(out, cap, sm.s.protocol_id, sm.s.channel_id, sm.s.session_id, first, count)


cdef inline void _rec_sync(DecoderState *st, Stream *sm) noexcept nogil:
    """After the tracker moved on its own: the sequencer, empty, continues from there."""
    if st.rec.seq.n_held == 0 and sm.s.have_session and not sm.s.have_candidate:
        st.rec.seq.next = sm.s.next_seq


cdef inline void _rec_start(DecoderState *st, Stream *sm, const rxf_packet *pkt) noexcept nogil:
    """The first segment of the first session, a little after initial_sequence:
    the session starts at initial_sequence so that the hole before it can be
    filled like any other (far ahead: the tracker declares it at once)."""
    cdef rxf_iextp_header h
    if sm.s.have_session or sm.s.have_candidate or sm.s.initial_seq == 0:
        return
    if rxf_iextp_parse(pkt.data, pkt.len, &h) != RXF_IEXTP_OK or not rxf_iextp_in_stream(&sm.s, &h):
        return
    if <uint64_t>h.first_seq <= sm.s.initial_seq:
        return
    if sm.s.max_jump and <uint64_t>h.first_seq - sm.s.initial_seq > sm.s.max_jump:
        return
    rxf_iextp_start_session(&sm.s, h.session_id, sm.s.initial_seq)
    st.rec.seq.next = sm.s.next_seq


cdef inline void _entry(DecoderState *st, Stream *sm, const rxf_packet *pkt) noexcept nogil:
    """A segment with no candidate to decide: through the sequencer when
    recovering and it takes it, else straight to the tracker."""
    cdef rxf_seq_block b
    if not st.recovering:
        _segment(st, sm, pkt)
        return
    _rec_start(st, sm, pkt)
    if rxf_iextp_seq_block(&sm.s, pkt.data, pkt.len, _rec_head(st), &b):
        b.rx_ns = pkt.rx_ts_ns
        b.line = pkt.line if pkt.line < RXF_REC_LINE_REREQUEST else RXF_REC_LINE_REREQUEST - 1
        st.rec_pkt = pkt[0]
        rxf_rec_offer(&st.rec, &b, st.now_ns)
        return
    if sm.s.max_jump == 0 and sm.s.have_session and pkt.len >= RXF_IEXTP_HEADER_LEN \
            and _session_id(pkt.data) != sm.s.session_id:
        _rec_flush(st)  # no confirmation asked: the session changes with this segment
    _segment(st, sm, pkt)
    _rec_sync(st, sm)


cdef inline uint32_t _session_id(const uint8_t *p) noexcept nogil:
    """The session id of a segment (at least a header long)."""
    return <uint32_t>p[8] | (<uint32_t>p[9] << 8) | (<uint32_t>p[10] << 16) | (<uint32_t>p[11] << 24)


cdef inline int _rec_would_confirm(Stream *sm, const rxf_packet *pkt) noexcept nogil:
    """Would this segment confirm the held candidate? Asked on a copy of the tracker."""
    cdef rxf_iextp_session trial = sm.s
    cdef rxf_iextp_verdict v
    return rxf_iextp_resolve(&trial, pkt.data, pkt.len, &v) == RXF_IEXTP_CONFIRMED


cdef inline int _rec_answer_ok(DecoderState *st, const uint8_t *p, uint32_t n, rxf_seq_block *b) noexcept nogil:
    """Check one gap fill answer; fill ``b`` if it is to be offered, else count why not."""
    cdef rxf_iextp_header h
    cdef Stream *sm = _rec_stream(st)
    if rxf_iextp_parse(p, n, &h) != RXF_IEXTP_OK or h.message_count == 0:
        st.answers_malformed += 1
        return 0
    if st.n_streams == 0 or not sm.s.have_session or not rxf_iextp_in_stream(&sm.s, &h) \
            or h.session_id != sm.s.session_id:
        st.answers_wrong_session += 1
        return 0
    if not rxf_rec_wanted(&st.rec, <uint64_t>h.first_seq, h.message_count):
        st.answers_not_wanted += 1
        return 0
    b.first = <uint64_t>h.first_seq
    b.count = h.message_count
    b.len = n
    b.data = p
    b.rx_ns = rxf_wall_ns()
    b.line = RXF_REC_LINE_REREQUEST
    return 1
