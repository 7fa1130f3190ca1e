# The protocol-neutral half of a decoder's recovery glue, included by a
# decoder's .pyx after it defined (or before it defines) its DecoderState
# with the fields `rec` (rxf_recovery), `now_ns`, `answer` (ANSWER_CAP bytes),
# `rec_pkt` and `stop`, and a function
#     int _rec_answer_ok(DecoderState *st, const uint8_t *p, uint32_t n, rxf_seq_block *b)
# that checks one gap-fill answer in its protocol's framing. What is here
# only moves blocks, time and answers between the sequencer and the socket
# (core/include/rxfeed/recovery.h); it knows no protocol.

cdef extern from *:
    """
    static inline uint64_t rxf_wall_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    """
    uint64_t rxf_wall_ns() nogil

cdef extern from "<unistd.h>" nogil:
    int usleep(unsigned int usec)

DEF ANSWER_CAP = 65536


cdef inline void _rec_flush(DecoderState *st) noexcept nogil:
    """The session layer is about to leave its position: settle the sequencer first."""
    if st.rec.seq.n_held:
        rxf_rec_flush(&st.rec, st.now_ns if st.now_ns else rxf_rec_now())


cdef inline uint64_t _rec_head(const DecoderState *st) noexcept nogil:
    """The furthest sequence the sequencer has seen: past a hole, the stream
    goes on far ahead of the position; plausibility is judged from here."""
    cdef uint64_t head = st.rec.seq.next, end
    if st.rec.seq.n_held:
        end = st.rec.seq.held[st.rec.seq.n_held - 1].first + st.rec.seq.held[st.rec.seq.n_held - 1].count
        if end > head:
            head = end
    return head


cdef inline void _rec_answers(DecoderState *st) noexcept nogil:
    """Read what the gap-fill server sent (a bounded number per call)."""
    cdef uint32_t i
    cdef int32_t n
    cdef rxf_seq_block b
    for i in range(RXF_REC_RECV_PER_TICK):
        if not rxf_rec_expecting(&st.rec, st.now_ns):
            return
        n = rxf_rec_recv(&st.rec, st.answer, ANSWER_CAP)
        if n < 0:
            return  # nothing waiting
        if _rec_answer_ok(st, st.answer, <uint32_t>n, &b):  # an empty datagram is malformed (counted there)
            memset(&st.rec_pkt, 0, sizeof(rxf_packet))
            st.rec_pkt.line = RXF_REC_LINE_REREQUEST
            rxf_rec_offer(&st.rec, &b, st.now_ns)


cdef inline void _rec_tick(DecoderState *st) noexcept nogil:
    """Time-driven recovery work: answers in, timeouts, requests out."""
    st.now_ns = rxf_rec_now()
    if st.rec.fd >= 0:
        _rec_answers(st)
    rxf_rec_tick(&st.rec, st.now_ns)


cdef inline void _rec_drain_at_end(DecoderState *st) noexcept nogil:
    """End of input: holes asked for get up to one reorder window to be
    answered (the sequencer's own timeouts still apply), then what is left
    is flushed (declared lost) by the caller."""
    cdef uint64_t deadline
    _rec_tick(st)
    if st.rec.fd < 0:
        return
    deadline = st.now_ns + st.rec.seq.max_wait_ns
    while st.rec.seq.n_held and st.now_ns < deadline and not st.stop:
        usleep(100)
        _rec_tick(st)


def _latency_summary_py(hist, maximum):
    """count/p50/p90/p99/max (ns) of a log-linear histogram given as a list."""
    total = sum(hist)
    out = {"count": total}
    if not total:
        return out
    for name, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99)):
        want, seen = q * total, 0
        for i, c in enumerate(hist):
            seen += c
            if seen >= want:
                out[name] = int(rxf_hist_value(i))
                break
    out["max"] = maximum
    return out


cdef object _latency_summary(const uint64_t *hist, uint64_t maximum):
    return _latency_summary_py([hist[i] for i in range(RXF_HIST_BUCKETS)], maximum)


cdef dict _recovery_report(rxf_recovery *r, double window_ms, object server, dict refused):
    """What recovery did, for a decoder's counters: lines, holes filled and
    lost, the reorder buffer's peak, gap-fill requests and their answers
    (``refused``: the decoder's own counts of answers it refused, by reason),
    the fill latency."""
    q = r.seq
    lines = []
    for i in range(RXF_REC_LINE_REREQUEST + 1):
        ln = q.lines[i]
        if ln.packets:
            lines.append({"line": "rerequest" if i == RXF_REC_LINE_REREQUEST else i, "packets": ln.packets,
                          "first_arrivals": ln.first_arrivals, "copies": ln.copies, "line_gaps": ln.gaps,
                          "line_gap_messages": ln.gap_messages, "last_rx_ns": ln.last_rx_ns})
    out = {"reorder_window_ms": window_ms, "delivered_messages": q.delivered_messages,
           "redundant_copies": q.redundant, "redundant_messages": q.redundant_messages,
           "duplicate_copies": q.duplicates, "duplicate_messages": q.duplicate_messages,
           "overlap_messages": q.overlap_messages,
           "gaps_opened": q.gaps_opened, "gaps_filled": q.gaps_filled, "lost_ranges": q.lost_ranges,
           "lost_messages": q.lost_messages,
           "lost_by_reason": {"timeout": q.lost_by_why[1], "buffer_full": q.lost_by_why[2],
                              "end_of_input": q.lost_by_why[3]},
           "held_now": q.n_held, "reorder_peak_datagrams": q.held_peak_blocks,
           "reorder_peak_bytes": q.held_peak_bytes, "too_large_to_hold": q.too_large,
           "fill_latency_ns": _latency_summary(r.latency_hist, r.latency_max_ns), "lines": lines}
    if r.fd >= 0:
        rr = r.rr
        out["rerequest"] = {
            "server": server, "requests_sent": rr.requests_sent,
            "messages_requested": rr.messages_requested, "retries": rr.retries,
            "given_up_ranges": rr.given_up_ranges, "given_up_messages": rr.given_up_messages,
            "recovered_messages": r.filled_by_rerequest, "answers": r.responses,
            "answers_refused": refused,
            "send_errors": rr.send_errors, "recv_errors": r.recv_errors, "ranges_dropped": rr.dropped_wants,
            "last_errno": r.last_errno}
    return out
