# MoldUDP64 recovery: the session's datagrams through rxfeed's sequencer
# (core/include/rxfeed/recovery.h), included by _decoder.pyx.
#
# With recovery on, a datagram of the current session near the session's
# position is offered to the sequencer as a block (first sequence, message
# count, bytes). The sequencer hands blocks back exactly once and in sequence
# order (held ones from its reorder buffer), and they then go through the
# session layer (_mold_datagram) as they would without recovery: the session
# layer never sees a hole except one the sequencer declared lost (_rec_lost
# moves it over the range). Everything else (a first packet, another session,
# an implausible jump, a short or overflowing packet) goes to the session
# layer directly; before the session layer moves to another session or
# position, the sequencer is flushed (its holes are lost, its blocks
# delivered) so the two never disagree.
#
# Re-request answers are read from the recovery socket, checked (session,
# framing, asked for) and offered on line RXF_REC_LINE_REREQUEST.

include "recovery_loop.pxi"


cdef void _rec_deliver(void *user, const rxf_seq_block *b, uint32_t skip) noexcept nogil:
    """A block in sequence order: through the session layer as received."""
    cdef DecoderState *st = <DecoderState *>user
    cdef rxf_packet p = st.rec_pkt
    cdef uint64_t dup_packets = st.mold.duplicate_packets, dup_messages = st.mold.duplicate_messages
    p.data = b.data
    p.len = b.len
    p.rx_ts_ns = b.rx_ns
    p.line = b.line
    _mold_datagram(st, &p)
    # the sequencer told copies apart already (redundant / duplicate); what
    # overlaps here is the head of a re-request answer, not a fault
    st.mold.duplicate_packets = dup_packets
    st.mold.duplicate_messages = dup_messages


cdef void _rec_lost(void *user, uint64_t first, uint64_t count, int why, uint64_t now_ns) noexcept nogil:
    """The sequencer gave [first, first + count) up: a gap of the session."""
    cdef DecoderState *st = <DecoderState *>user
    st.mold.gaps += 1
    st.mold.gap_messages += count
    if first + count > st.mold.next_seq:
        st.mold.next_seq = first + count
    _event(st, EV_GAP, st.mold.session, first, count, rxf_wall_ns())


cdef uint32_t _rec_request(void *user, uint8_t *out, uint32_t cap, uint64_t first, uint64_t count) noexcept nogil:
    """A MoldUDP64 request packet for [first, first + count) of the current session."""
    cdef DecoderState *st = <DecoderState *>user
    if cap < RXF_MOLD_HEADER_LEN or not st.mold.have_session or count == 0 or count >= RXF_MOLD_END_OF_SESSION:
        return 0
    return rxf_mold_request(out, st.mold.session, first, <uint16_t>count)


cdef inline void _rec_sync(DecoderState *st) noexcept nogil:
    """After the session layer moved on its own (a first packet, a confirmed
    jump or session change): the sequencer, empty, continues from there."""
    if st.rec.seq.n_held == 0 and st.mold.have_session and not st.mold.have_candidate:
        st.rec.seq.next = st.mold.next_seq


cdef inline int _rec_block(DecoderState *st, const rxf_packet *pkt, rxf_seq_block *b) noexcept nogil:
    """Fill ``b`` if the sequencer takes ``pkt``: a whole header of the
    current session, no overflow, near the sequencer's position."""
    cdef uint64_t seq
    cdef uint32_t count
    if st.mold.have_candidate or not st.mold.have_session:
        return 0
    if not rxf_mold_header(pkt.data, pkt.len, &seq, &count):
        return 0
    if memcmp(pkt.data, st.mold.session, 10) != 0:
        return 0
    count = rxf_mold_messages(count)
    if count > 0xFFFFFFFFFFFFFFFFULL - seq:
        return 0
    if st.mold.max_jump and not rxf_mold_near(_rec_head(st), seq, st.mold.max_jump):
        return 0
    b.first = seq
    b.count = count
    b.len = pkt.len
    b.data = pkt.data
    b.rx_ns = pkt.rx_ts_ns
    b.line = pkt.line if pkt.line < RXF_REC_LINE_REREQUEST else RXF_REC_LINE_REREQUEST - 1
    return 1


cdef inline void _rec_start(DecoderState *st, const rxf_packet *pkt) noexcept nogil:
    """The first packet of the first session, a little after initial_sequence
    (the first datagrams lost or overtaken): the session starts at
    initial_sequence so that the hole before this packet can be filled like
    any other. A packet far ahead (a late join, more than max_sequence_jump)
    is left to the session layer, which declares the hole at once."""
    cdef uint64_t seq
    cdef uint32_t count
    if st.mold.have_session or st.mold.have_candidate or st.mold.initial_seq == 0:
        return
    if not rxf_mold_header(pkt.data, pkt.len, &seq, &count):
        return
    if seq <= st.mold.initial_seq or rxf_mold_messages(count) > 0xFFFFFFFFFFFFFFFFULL - seq:
        return
    if st.mold.max_jump and seq - st.mold.initial_seq > st.mold.max_jump:
        return
    rxf_mold_start_session(&st.mold, <const char *>pkt.data, seq)
    st.rec.seq.next = st.mold.next_seq


cdef inline void _mold_entry(DecoderState *st, const rxf_packet *pkt) noexcept nogil:
    """A datagram with no candidate to decide: through the sequencer when
    recovering and it takes it, else straight to the session layer."""
    cdef rxf_seq_block b
    if not st.recovering:
        _mold_datagram(st, pkt)
        return
    _rec_start(st, pkt)
    if _rec_block(st, pkt, &b):
        st.rec_pkt = pkt[0]
        rxf_rec_offer(&st.rec, &b, st.now_ns)
        return
    if st.mold.max_jump == 0 and st.mold.have_session and pkt.len >= RXF_MOLD_HEADER_LEN \
            and memcmp(pkt.data, st.mold.session, 10) != 0:
        _rec_flush(st)  # no confirmation asked: the session changes with this packet
    _mold_datagram(st, pkt)
    _rec_sync(st)


cdef inline int _rec_would_confirm(DecoderState *st, const rxf_packet *pkt) noexcept nogil:
    """Would this packet confirm the held candidate (a jump or a new session)?
    Asked on a copy of the session, before the real one moves."""
    cdef rxf_mold_session trial = st.mold
    cdef rxf_mold_verdict v
    return rxf_mold_resolve(&trial, pkt.data, pkt.len, &v) == RXF_MOLD_CONFIRMED


cdef inline int _rec_answer_ok(DecoderState *st, const uint8_t *p, uint32_t n, rxf_seq_block *b) noexcept nogil:
    """Check one re-request answer; fill ``b`` if it is to be offered, else count why not."""
    cdef uint64_t seq
    cdef uint32_t count
    if not rxf_mold_header(p, n, &seq, &count) or count == 0 or count == RXF_MOLD_END_OF_SESSION \
            or count > 0xFFFFFFFFFFFFFFFFULL - seq or not rxf_mold_blocks_fit(p, n, count):
        st.answers_malformed += 1
        return 0
    if not st.mold.have_session or memcmp(p, st.mold.session, 10) != 0:
        st.answers_wrong_session += 1
        return 0
    if not rxf_rec_wanted(&st.rec, seq, count):
        st.answers_not_wanted += 1
        return 0
    b.first = seq
    b.count = count
    b.len = n
    b.data = p
    b.rx_ns = rxf_wall_ns()
    b.line = RXF_REC_LINE_REREQUEST
    return 1
