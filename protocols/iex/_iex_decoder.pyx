# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The IEX decoder: IEX-TP session layer (one tracker per channel), then the
generated length-checked decoder of the feed (TOPS 1.6, DEEP 1.0 or DEEP+
1.0, told by the segments' message protocol id), then three ways out as for
ITCH: C handler tables, Python callbacks per type, numpy batches per type.

Every length is checked before bytes are read: rxf_iextp_accept() refuses a
segment whose blocks do not fill its payload exactly, and each message is
checked against its type's spec length by the generated decoder."""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, malloc, realloc, free
from libc.string cimport memcpy, memset
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.unicode cimport PyUnicode_DecodeLatin1
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM

from rxfeed_abi cimport fill_decoder_ops, RXF_DECODER_CAPSULE, RXF_PKT_SOURCE_RESET, rxf_packet, rxf_decoder_ops
from rxfeed_recovery cimport (rxf_seq_block, rxf_seq_callbacks, rxf_recovery, RXF_REC_LINE_REREQUEST,
                              RXF_REC_RECV_PER_TICK, RXF_HIST_BUCKETS, rxf_rec_now, rxf_rec_init, rxf_rec_connect,
                              rxf_rec_destroy, rxf_rec_offer, rxf_rec_wanted, rxf_rec_tick, rxf_rec_expecting,
                              rxf_rec_recv, rxf_rec_flush, rxf_hist_value)
from iextp cimport *
from _iex_records cimport *
from _iex_decode cimport decode_feed, record_size_of
from iex_handlers cimport (RXF_IEX_HANDLERS_VERSION, RXF_IEX_HANDLERS_CAPSULE, RXF_IEX_EVENT_COMPLETE, rxf_iex_meta,
                           rxf_iex_handlers)

import numpy as np

from rxfeed.protocols.iex import messages as _messages
from rxfeed.protocols.iex.dtypes import DTYPES as _DTYPES
from rxfeed.protocols.iex.spec import FEEDS as _FEEDS

DEF MAX_HANDLER_TABLES = 8
DEF MAX_CHANNELS = 16
DEF SCRATCH_CAP = 65600
DEF EV_GAP = 1
DEF EV_SESSION_CHANGE = 2
DEF EV_RESTART = 3
DEF EV_IMPLAUSIBLE = 4
DEF EV_OFFSET_MISMATCH = 5
DEF EV_END_OF_MESSAGES = 6
# What the session layer made of a message (MessageMeta.status)
DEF ST_NEW = 1
DEF ST_DUPLICATE = 2
DEF ST_IMPLAUSIBLE = 3

EVENT_KINDS = {EV_GAP: "gap", EV_SESSION_CHANGE: "session_change", EV_RESTART: "sequence_restart",
               EV_IMPLAUSIBLE: "implausible_sequence", EV_OFFSET_MISMATCH: "stream_offset_mismatch",
               EV_END_OF_MESSAGES: "end_of_messages"}
#: MessageMeta.status by ST_* code: what the session layer made of a message.
STATUS_NAMES = (None, "new", "duplicate", "implausible")
cdef tuple _STATUS = STATUS_NAMES
#: Feed names by index (DecoderState.feed) and their IEX-TP message protocol ids.
FEED_NAMES = ("TOPS", "DEEP", "DEEP+")
PROTOCOL_IDS = {"TOPS": RXF_IEXTP_PROTOCOL_TOPS, "DEEP": RXF_IEXTP_PROTOCOL_DEEP,
                "DEEP+": RXF_IEXTP_PROTOCOL_DEEP_PLUS}

cdef extern from *:
    """
    static PyObject *rxf_iex_tuple_alloc(PyObject *cls, Py_ssize_t n) {
        return ((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, n);
    }
    """
    object rxf_iex_tuple_alloc(object cls, Py_ssize_t n)


cdef inline void _put(object o, Py_ssize_t i, object v):
    Py_INCREF(v)
    PyTuple_SET_ITEM(o, i, v)


cdef inline int _feed_of(uint16_t protocol_id) noexcept nogil:
    if protocol_id == RXF_IEXTP_PROTOCOL_TOPS:
        return 0
    if protocol_id == RXF_IEXTP_PROTOCOL_DEEP:
        return 1
    if protocol_id == RXF_IEXTP_PROTOCOL_DEEP_PLUS:
        return 2
    return -1


cdef inline uint32_t _event_end(int feed, const rxf_iex_record *r) noexcept nogil:
    """0 only for a DEEP price level update of an event still in progress."""
    cdef char t = r.hdr.message_type
    if feed == 1 and (t == b'8' or t == b'5'):
        return r.PriceLevelUpdateBuy.event_flags & RXF_IEX_EVENT_COMPLETE
    return 1


cdef inline void _event(DecoderState *st, int kind, uint32_t channel, uint32_t session, uint64_t first,
                        uint64_t count, uint64_t ts) noexcept nogil:
    cdef EventRec *e
    if st.n_events == st.cap_events:
        e = <EventRec *>realloc(st.events, (st.cap_events * 2 + 16) * sizeof(EventRec))
        if e == NULL:
            return  # the counters still hold it; only the detail is lost
        st.events = e
        st.cap_events = st.cap_events * 2 + 16
    e = &st.events[st.n_events]
    st.n_events += 1
    e.kind = kind
    e.channel_id = channel
    e.session_id = session
    e.first = first
    e.count = count
    e.rx_ts_ns = ts


cdef inline int _queue_py(DecoderState *st, const rxf_iex_record *rec, uint32_t size,
                          const rxf_iex_meta *meta, uint64_t rx_ts, uint8_t status) noexcept nogil:
    cdef PendingRec *pend
    if st.n_pending == st.cap_pending:
        pend = <PendingRec *>realloc(st.pending, (st.cap_pending * 2 + 256) * sizeof(PendingRec))
        if pend == NULL:
            return 0
        st.pending = pend
        st.cap_pending = st.cap_pending * 2 + 256
    pend = &st.pending[st.n_pending]
    st.n_pending += 1
    memcpy(&pend.rec, rec, size)
    pend.sequence = meta.sequence
    pend.send_time = meta.send_time
    pend.session_id = meta.session_id
    pend.channel_id = meta.channel_id
    pend.rx_ts_ns = rx_ts
    pend.status = status
    return 1


cdef inline int _batch(DecoderState *st, const rxf_iex_record *rec, uint8_t t, uint32_t size) noexcept nogil:
    if st.batch_buf[t] == NULL:  # the feed decides the record size: allocated at the first record
        st.batch_buf[t] = <uint8_t *>malloc(<size_t>st.batch_cap * size)
        if st.batch_buf[t] == NULL:
            return 0
    memcpy(st.batch_buf[t] + <size_t>st.batch_n[t] * size, rec, size)
    st.batch_n[t] += 1
    if st.batch_n[t] == st.batch_cap:
        with gil:
            if st.n_pending:  # queued callbacks first: outputs see messages in decode order
                (<IexDecoder>st.owner)._flush_pending()
            (<IexDecoder>st.owner)._flush_batch(t)
    return 1


cdef inline void _message(DecoderState *st, const uint8_t *m, uint32_t mlen, rxf_iex_meta *meta,
                          uint8_t status) noexcept nogil:
    """Decode one message (its length checked against its type first) and hand
    it to every output (``status``: what the session layer made of it; only
    dissect mode passes others than ST_NEW)."""
    cdef rxf_iex_record rec
    cdef int rc = decode_feed(st.feed, m, mlen, &rec)
    cdef int i
    cdef uint8_t t
    cdef uint32_t size
    if rc != RXF_IEX_OK:
        if rc == RXF_IEX_UNKNOWN_TYPE:
            st.err_unknown_type += 1
        else:
            st.err_bad_length += 1
        return
    t = m[0]
    st.per_type[t] += 1
    st.messages += 1
    meta.raw = m
    meta.raw_len = mlen
    meta.event_end = _event_end(st.feed, &rec)
    for i in range(st.n_handlers):
        if st.handlers[i].on[t] != NULL:
            st.handlers[i].on[t](st.handlers[i].ctx, &rec, meta)
    size = record_size_of(st.feed, t)
    if st.py_sub[t] and not _queue_py(st, &rec, size, meta, meta.packet.rx_ts_ns, status):
        _out_of_memory(st, "python callback queue")
        return
    if st.batch_sub[t] and not _batch(st, &rec, t, size):
        _out_of_memory(st, "numpy batch")
        return
    if t == b'S' and rec.SystemEvent.system_event == b'C':
        st.end_of_messages += 1
        _event(st, EV_END_OF_MESSAGES, meta.channel_id, meta.session_id, meta.sequence, 0, meta.packet.rx_ts_ns)
        if st.stop_at_end:
            st.stop = 1


cdef void _out_of_memory(DecoderState *st, const char *what) noexcept nogil:
    with gil:
        (<IexDecoder>st.owner).error = MemoryError(what.decode())
    st.stop = 1


include "arrival_log.pxi"


cdef inline void _verdict_events(DecoderState *st, Stream *sm, const rxf_iextp_verdict *v, uint64_t ts) noexcept nogil:
    """The events of a session-layer verdict: session change, restart, gap, offset mismatch."""
    cdef uint32_t ch = sm.s.channel_id, sid = sm.s.session_id
    if v.session_changed:
        _event(st, EV_SESSION_CHANGE, ch, sid, v.seq, 0, ts)
    if v.restarted:
        _event(st, EV_RESTART, ch, sid, v.seq, 0, ts)
    if v.gap_count:
        _event(st, EV_GAP, ch, sid, v.gap_first, v.gap_count, ts)
    if v.offset_mismatch:
        _event(st, EV_OFFSET_MISMATCH, ch, sid, v.seq, <uint64_t>v.h.stream_offset, ts)


cdef inline void _deliver(DecoderState *st, Stream *sm, const rxf_packet *pkt, const rxf_iextp_verdict *v,
                          uint8_t status) noexcept nogil:
    """A parsed segment's messages (rxf_iextp_parse checked that exactly
    ``count`` blocks fill its payload) to the outputs: ``status`` ST_NEW:
    messages [skip, count), or in dissect mode all, the first ``skip``
    marked duplicate; otherwise all, each with ``status``."""
    cdef rxf_iex_meta meta
    cdef uint32_t off = RXF_IEXTP_HEADER_LEN, i = 0, mlen
    cdef const uint8_t *m
    if st.sequenced and status == ST_NEW:
        off += v.skip_bytes
        i = v.skip
    meta.packet = pkt
    meta.protocol_id = v.h.protocol_id
    meta.channel_id = v.h.channel_id
    meta.session_id = v.h.session_id
    meta.send_time = v.h.send_time_ns
    while i < v.count and rxf_iextp_next_message(pkt.data, pkt.len, &off, &m, &mlen):
        meta.sequence = v.seq + i
        _message(st, m, mlen, &meta, status if status != ST_NEW else (ST_DUPLICATE if i < v.skip else ST_NEW))
        i += 1
        if st.stop and st.stop_at_end:
            break
    if st.log_arrivals and status == ST_NEW:
        _arrival(st, v.seq + v.skip, v.count - v.skip)


cdef inline void _hold(DecoderState *st, Stream *sm, const rxf_packet *pkt) noexcept nogil:
    """Keep a copy of the segment the tracker holds (a candidate); it outlives the burst."""
    cdef uint8_t *b
    if pkt.data == sm.held:
        return
    if pkt.len > sm.held_cap:
        b = <uint8_t *>realloc(sm.held, pkt.len)
        if b == NULL:  # cannot keep it: it cannot be confirmed either
            _held_dropped(st, sm, sm.s.cand_seq, sm.s.cand_end)
            rxf_iextp_drop_candidate(&sm.s)
            return
        sm.held = b
        sm.held_cap = pkt.len
    memcpy(sm.held, pkt.data, pkt.len)
    sm.held_pkt = pkt[0]
    sm.held_pkt.data = sm.held


cdef inline void _held_dropped(DecoderState *st, Stream *sm, uint64_t seq, uint64_t end) noexcept nogil:
    """A held candidate, messages ``seq``..``end``, was dropped (already
    counted): an event, and in dissect mode its messages, marked implausible."""
    cdef rxf_iextp_verdict v
    _event(st, EV_IMPLAUSIBLE, sm.s.channel_id, sm.s.cand_session, seq, end - seq, sm.held_pkt.rx_ts_ns)
    if st.sequenced or sm.held == NULL or sm.held_pkt.data != sm.held:
        return
    memset(&v, 0, sizeof(v))
    if rxf_iextp_parse(sm.held, sm.held_pkt.len, &v.h) == RXF_IEXTP_OK and <uint64_t>v.h.first_seq == seq:
        v.seq = seq
        v.count = v.h.message_count
        _deliver(st, sm, &sm.held_pkt, &v, ST_IMPLAUSIBLE)


cdef inline void _segment(DecoderState *st, Stream *sm, const rxf_packet *pkt) noexcept nogil:
    """One segment through the tracker, then its new messages to the outputs."""
    cdef rxf_iextp_verdict v
    cdef uint8_t had_candidate = sm.s.have_candidate and pkt.data != sm.held
    cdef uint64_t held_seq = sm.s.cand_seq, held_end = sm.s.cand_end
    cdef int rc = rxf_iextp_accept(&sm.s, pkt.data, pkt.len, &v)
    if rc == RXF_IEXTP_MALFORMED or rc == RXF_IEXTP_OTHER:
        return
    _verdict_events(st, sm, &v, pkt.rx_ts_ns)
    if rc == RXF_IEXTP_HOLD:
        if had_candidate:  # a second hold: the tracker dropped (counted) the first
            _held_dropped(st, sm, held_seq, held_end)
        _hold(st, sm, pkt)
        return
    if rc == RXF_IEXTP_DELIVER:
        _deliver(st, sm, pkt, &v, ST_NEW)
    elif not st.sequenced and v.count:  # a whole duplicate segment, shown in dissect mode
        _deliver(st, sm, pkt, &v, ST_DUPLICATE)


include "_iextp_recovery.pxi"


cdef void _stream_packet(DecoderState *st, Stream *sm, const rxf_packet *pkt, int depth) noexcept nogil:
    """A segment of the stream: it first decides a held candidate (confirmed:
    both segments go through in sequence order; rejected: the held one is
    dropped), then goes through the tracker itself. ``depth``: how many
    released candidates are being taken (each in its own scratch copy)."""
    cdef rxf_iextp_verdict v
    cdef rxf_packet first, second
    cdef uint8_t *copy
    cdef int r
    if sm.s.have_candidate and pkt.data != sm.held:
        if depth >= 2:  # a third candidate in a row: dropped and counted, not decided
            _held_dropped(st, sm, sm.s.cand_seq, sm.s.cand_end)
            rxf_iextp_drop_candidate(&sm.s)
        else:
            if st.recovering and _rec_would_confirm(sm, pkt):
                _rec_flush(st)  # the session leaves its position: the sequencer settles first
            r = rxf_iextp_resolve(&sm.s, pkt.data, pkt.len, &v)
            if r == RXF_IEXTP_REJECTED:
                _held_dropped(st, sm, sm.s.cand_seq, sm.s.cand_end)
            elif r == RXF_IEXTP_CONFIRMED:
                v.seq = sm.s.next_seq  # the events' first: where the session (re)starts, not set by resolve()
                _verdict_events(st, sm, &v, pkt.rx_ts_ns)  # the session change / gap up to the new position
                # the released candidate moves to scratch: either segment may be held again below
                copy = st.scratch + depth * SCRATCH_CAP
                memcpy(copy, sm.held, sm.held_pkt.len)
                first = sm.held_pkt
                first.data = copy
                second = pkt[0]
                if v.packet_first:
                    first, second = second, first
                _segment(st, sm, &first)
                if st.recovering:  # the sequencer continues from the new position, not the old one
                    _rec_sync(st, sm)
                _stream_packet(st, sm, &second, depth + 1)
                if st.recovering:
                    _rec_sync(st, sm)
                return
    _entry(st, sm, pkt)


cdef inline Stream *_stream_of(DecoderState *st, const rxf_packet *pkt) noexcept nogil:
    """The tracker of a segment's channel (made at its first segment), or NULL:
    not IEX-TP version 1, another feed, another channel than configured, too many channels."""
    cdef const uint8_t *p = pkt.data
    cdef uint16_t proto
    cdef uint32_t ch, i
    cdef Stream *sm
    if pkt.len < RXF_IEXTP_HEADER_LEN or p[0] != 1:
        st.not_iextp += 1
        return NULL
    proto = <uint16_t>(p[2] | (p[3] << 8))
    ch = <uint32_t>p[4] | (<uint32_t>p[5] << 8) | (<uint32_t>p[6] << 16) | (<uint32_t>p[7] << 24)
    if st.protocol_id == 0:
        if _feed_of(proto) < 0 or (st.feed >= 0 and _feed_of(proto) != st.feed):
            st.other_protocol += 1
            return NULL
        st.feed = _feed_of(proto)
        st.protocol_id = proto
    elif proto != st.protocol_id:
        st.other_protocol += 1
        return NULL
    if st.channel and ch != st.channel:
        st.other_channel += 1
        return NULL
    for i in range(st.n_streams):
        if st.channel_of[i] == ch:
            return &st.streams[i]
    if st.n_streams == MAX_CHANNELS:
        st.too_many_channels += 1
        return NULL
    sm = &st.streams[st.n_streams]
    st.channel_of[st.n_streams] = ch
    st.n_streams += 1
    sm.s.protocol_id = proto
    sm.s.channel_id = ch
    sm.s.initial_seq = st.initial_seq
    sm.s.max_jump = st.max_jump
    return sm


cdef inline void _reset(DecoderState *st) noexcept nogil:
    """The source rewound (a replay loop): every tracker starts again."""
    cdef uint32_t i
    for i in range(st.n_streams):
        if rxf_iextp_drop_candidate(&st.streams[i].s):
            _held_dropped(st, &st.streams[i], st.streams[i].s.cand_seq, st.streams[i].s.cand_end)
        rxf_iextp_reset(&st.streams[i].s)
    st.source_resets += 1


cdef int _on_burst(void *ctx, const rxf_packet *pkts, uint32_t n) noexcept nogil:
    cdef DecoderState *st = <DecoderState *>ctx
    cdef uint32_t i
    cdef Stream *sm
    if st.recovering:
        st.now_ns = rxf_rec_now()
    for i in range(n):
        if pkts[i].flags & RXF_PKT_SOURCE_RESET:
            if st.recovering:
                _rec_flush(st)
            _reset(st)
        st.packets += 1
        st.bytes += pkts[i].len
        sm = _stream_of(st, &pkts[i])
        if sm != NULL:
            _stream_packet(st, sm, &pkts[i], 0)
        if st.stop:
            break
    if st.recovering and not st.stop:
        _rec_tick(st)
    _to_python(st)
    return st.stop


cdef inline void _to_python(DecoderState *st) noexcept nogil:
    """Events and queued callbacks of this burst to Python (one GIL take, only when there are some)."""
    if st.n_pending or st.n_events:
        with gil:
            if st.n_events:
                (<IexDecoder>st.owner)._flush_events()
            if st.n_pending:
                (<IexDecoder>st.owner)._flush_pending()


cdef int _on_idle(void *ctx) noexcept nogil:
    """Nothing arrived: recovery's timeouts, requests and answers go on."""
    cdef DecoderState *st = <DecoderState *>ctx
    if not st.recovering:
        return 0
    _rec_tick(st)
    _to_python(st)
    return st.stop


cdef void _on_end(void *ctx) noexcept nogil:
    cdef DecoderState *st = <DecoderState *>ctx
    cdef uint32_t i
    if st.recovering:
        _rec_drain_at_end(st)
        _rec_flush(st)
    for i in range(st.n_streams):
        if rxf_iextp_drop_candidate(&st.streams[i].s):
            _held_dropped(st, &st.streams[i], st.streams[i].s.cand_seq, st.streams[i].s.cand_end)


# --- Python messages ---------------------------------------------------------------------------------------
DEF K_UINT = 0
DEF K_INT64 = 1
DEF K_CHAR = 2
DEF K_ALPHA = 3


def _converters(str feed):
    """Per type character: [(record offset, K_*, size)] of each field of the feed's message class."""
    out = {}
    for t, m in _FEEDS[feed].by_type.items():
        dt = _DTYPES[feed][t]
        rows = []
        for f in m.fields:
            off = dt.fields[f.name][1]
            if f.kind == "alpha":
                rows.append((off, K_ALPHA, f.size))
            elif f.kind == "char":
                rows.append((off, K_CHAR, 1))
            elif dt.fields[f.name][0].kind == "i":
                rows.append((off, K_INT64, 8))
            else:
                rows.append((off, K_UINT, dt.fields[f.name][0].itemsize))
        out[t] = rows
    return out


cdef list _CHARS = [chr(i) for i in range(256)]


cdef object _record_to_py(const rxf_iex_record *r, list fields, object cls):
    """A record as its namedtuple (built in place): text as ``str`` (Strings
    without their right padding), numbers as ``int`` in wire units."""
    cdef const char *b = <const char *>r
    cdef Py_ssize_t i = 0, n
    cdef uint64_t u
    cdef int64_t s
    cdef uint32_t u32
    cdef uint8_t u8
    msg = rxf_iex_tuple_alloc(cls, len(fields))
    for off, kind, size in fields:
        if kind == K_ALPHA:
            n = size
            while n > 0 and b[off + n - 1] == b' ':
                n -= 1
            v = PyUnicode_DecodeLatin1(b + <Py_ssize_t>off, n, NULL)
        elif kind == K_CHAR:
            v = _CHARS[<uint8_t>b[off]]
        elif kind == K_INT64:
            memcpy(&s, b + <Py_ssize_t>off, 8)
            v = s
        elif size == 8:
            memcpy(&u, b + <Py_ssize_t>off, 8)
            v = u
        elif size == 4:
            memcpy(&u32, b + <Py_ssize_t>off, 4)
            v = u32
        else:
            u8 = <uint8_t>b[off]
            v = u8
        _put(msg, i, v)
        i += 1
    return msg


cdef object _meta(const PendingRec *p, uint16_t protocol_id):
    m = rxf_iex_tuple_alloc(_messages.MessageMeta, 7)
    _put(m, 0, p.session_id)
    _put(m, 1, p.sequence)
    _put(m, 2, p.rx_ts_ns)
    _put(m, 3, _STATUS[p.status])
    _put(m, 4, p.channel_id)
    _put(m, 5, protocol_id)
    _put(m, 6, p.send_time)
    return m


cdef class IexDecoder:
    """IEX decoder (TOPS 1.6, DEEP 1.0, DEEP+ 1.0 over IEX-TP).

    :param feed: ``"TOPS"``, ``"DEEP"``, ``"DEEP+"``, or None: the first
        IEX-TP segment's message protocol id decides; segments of another
        protocol id are counted (``other_protocol``) and dropped.
    :param channel: IEX-TP channel id to take (0: every channel, one tracker each).
    :param initial_sequence: sequence a session is expected to start at (1); 0: the first seen.
    :param max_sequence_jump: a forward jump (or another session id) of more
        than this waits for the next segment to confirm it; 0: no limit.
    :param batch_size: records per numpy batch.
    :param stop_at_end_of_session: stop the loop at the System Event "end of messages" (``C``).
    :param sequenced: False: dissect mode, every message of every segment
        reaches the outputs, duplicates and implausible ones included, with
        ``MessageMeta.status`` saying what the session layer made of it.
    """

    def __cinit__(self, feed=None, unsigned int channel=0, unsigned long long initial_sequence=1,
                  unsigned long long max_sequence_jump=10000, unsigned int batch_size=65536,
                  bint stop_at_end_of_session=False, bint sequenced=True):
        if feed is not None and feed not in PROTOCOL_IDS:
            raise ValueError(f"not an IEX feed: {feed!r} (one of {', '.join(PROTOCOL_IDS)})")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.st = <DecoderState *>calloc(1, sizeof(DecoderState))
        if self.st == NULL:
            raise MemoryError()
        self.st.scratch = <uint8_t *>malloc(2 * SCRATCH_CAP)
        if self.st.scratch == NULL:
            raise MemoryError()
        self.st.feed = FEED_NAMES.index(feed) if feed is not None else -1
        self.st.channel = channel
        self.st.initial_seq = initial_sequence
        self.st.max_jump = max_sequence_jump
        self.st.batch_cap = batch_size
        self.st.stop_at_end = stop_at_end_of_session
        self.st.sequenced = sequenced
        self.st.owner = <void *>self
        self.st.rec.fd = -1
        fill_decoder_ops(&self.ops, self.st, _on_burst, _on_end, NULL)
        self.ops.on_idle = _on_idle
        self._callbacks = {}
        self._py_fields = [None] * 256
        self._batches = {}
        self._events = []
        self._handler_capsules = []
        self._loss_listeners = []
        self._rerequest_server = None
        self._reorder_window_ms = 0.0
        self._batch_callback = None
        self._event_callback = None
        self.error = None

    def __dealloc__(self):
        cdef int t
        cdef uint32_t i
        if self.st != NULL:
            for t in range(256):
                free(self.st.batch_buf[t])
            for i in range(self.st.n_streams):
                free(self.st.streams[i].held)
            free(self.st.pending)
            free(self.st.events)
            free(self.st.arrivals)
            free(self.st.answer)
            free(self.st.scratch)
            if self.st.recovering:
                rxf_rec_destroy(&self.st.rec)
            free(self.st)

    def capsule(self):
        """The decoder function table for the run loop (valid while this object lives)."""
        return PyCapsule_New(&self.ops, RXF_DECODER_CAPSULE, NULL)

    @property
    def feed(self):
        """``"TOPS"``, ``"DEEP"`` or ``"DEEP+"``; None until the first segment told."""
        return FEED_NAMES[self.st.feed] if self.st.feed >= 0 else None

    # --- (a) C handlers -------------------------------------------------
    def add_handlers(self, consumer):
        """Attach a C handler table: a PyCapsule named ``rxfeed.iex.handlers.v1``
        or an object whose ``capsule()`` returns one (kept alive by the decoder)."""
        capsule = consumer.capsule() if hasattr(consumer, "capsule") else consumer
        if not PyCapsule_IsValid(capsule, RXF_IEX_HANDLERS_CAPSULE):
            raise TypeError("expected a PyCapsule named " + RXF_IEX_HANDLERS_CAPSULE.decode())
        cdef rxf_iex_handlers *h = <rxf_iex_handlers *>PyCapsule_GetPointer(capsule, RXF_IEX_HANDLERS_CAPSULE)
        if h.version != RXF_IEX_HANDLERS_VERSION or h.struct_size != sizeof(rxf_iex_handlers):
            raise ValueError(f"handler table version {h.version}/size {h.struct_size} is not "
                             f"{RXF_IEX_HANDLERS_VERSION}/{sizeof(rxf_iex_handlers)}: rebuild the consumer")
        if self.st.n_handlers >= MAX_HANDLER_TABLES:
            raise ValueError(f"at most {MAX_HANDLER_TABLES} handler tables")
        self.st.handlers[self.st.n_handlers] = h
        self.st.n_handlers += 1
        self._handler_capsules.append((consumer, capsule))

    # --- (b) Python callbacks ------------------------------------------
    def subscribe(self, callback, types=None, *, bint with_meta=False):
        """Call ``callback(msg)`` (or ``callback(msg, meta)``) for each message of
        ``types`` (type characters; None: all). ``msg`` is the feed's class of
        :mod:`rxfeed.protocols.iex.messages`; ``meta`` a :class:`MessageMeta`."""
        for t in self._types(types):
            self._callbacks[t] = callback
            self._cb[t] = <void *>callback
            self._cbmeta[t] = with_meta
            self.st.py_sub[t] = 1

    def unsubscribe(self, types=None):
        for t in self._types(types):
            self.st.py_sub[t] = 0
            self._cb[t] = NULL
            self._callbacks.pop(t, None)

    # --- (c) numpy batches ----------------------------------------------
    def subscribe_batches(self, callback=None, types=None):
        """Collect records of ``types`` into numpy structured arrays (dtypes in
        :mod:`rxfeed.protocols.iex.dtypes`, of the decoded feed). With
        ``callback``, each full batch goes to ``callback(type_char, array)``;
        without, batches are kept for :meth:`take_batches`."""
        self._batch_callback = callback
        for t in self._types(types):
            self.st.batch_sub[t] = 1

    def flush(self):
        """Deliver partial batches and queued callbacks (called at end of run)."""
        cdef int t
        if self.st.n_events:
            self._flush_events()
        if self.st.n_pending:
            self._flush_pending()
        for t in range(256):
            if self.st.batch_sub[t] and self.st.batch_n[t]:
                self._flush_batch(t)
        if self.error is not None:
            err, self.error = self.error, None
            raise err

    def take_batches(self):
        """``{type_char: array}`` of everything collected so far (concatenated)."""
        self.flush()
        out = {}
        for t, arrs in self._batches.items():
            out[t] = arrs[0] if len(arrs) == 1 else np.frombuffer(b"".join([a.data for a in arrs]), dtype=arrs[0].dtype)
        self._batches = {}
        return out

    # --- recovery ---------------------------------------------------------------
    def enable_recovery(self, double window_ms, unsigned int max_blocks=16384, unsigned int slot_bytes=2048,
                        unsigned long long max_bytes=64 << 20):
        """Put rxfeed's sequencer between the lines and the IEX-TP tracker (as
        for ITCH, docs/recovery.md). One channel only: set ``channel`` (DEEP+
        has 16; run one decoder per channel). Before the run."""
        cdef rxf_seq_callbacks cb
        if self.st.recovering:
            raise RuntimeError("recovery is already on")
        if not self.st.sequenced:
            raise ValueError("recovery needs sequenced delivery (not dissect mode)")
        if self.st.channel == 0:
            raise ValueError("recovery follows one IEX-TP channel: set channel (TOPS and DEEP: 1)")
        if window_ms <= 0:
            raise ValueError("window_ms must be > 0")
        cb.user = self.st
        cb.deliver = _rec_deliver
        cb.lost = _rec_lost
        cb.gap = NULL
        self.st.answer = <uint8_t *>malloc(ANSWER_CAP)
        if self.st.answer == NULL or rxf_rec_init(&self.st.rec, &cb, max_blocks, slot_bytes, max_bytes,
                                                  <uint64_t>(window_ms * 1e6)) != 0:
            rxf_rec_destroy(&self.st.rec)
            raise MemoryError(f"reorder buffer of {max_blocks} x {slot_bytes} bytes")
        self.st.recovering = 1
        self._reorder_window_ms = window_ms

    def connect_rerequest(self, str host, int port, unsigned int max_messages=RXF_IEXTP_UDP_MAX_MESSAGES,
                          double timeout_ms=10.0, unsigned int attempts=4, unsigned int in_flight=16,
                          double delay_ms=0.5):
        """Send IEX-TP Gap Fill Requests (Sequenced Messages, UDP) to ``host:port``
        for holes open ``delay_ms``: at most ``max_messages`` per request (the
        specification's UDP limit is 1,000), ``in_flight`` unanswered at once,
        each sent again after ``timeout_ms`` (doubling) up to ``attempts`` times."""
        import socket as _socket

        if not self.st.recovering:
            raise RuntimeError("enable_recovery() first")
        if not 1 <= max_messages <= RXF_IEXTP_UDP_MAX_MESSAGES:
            raise ValueError(f"max_messages must be in 1..{RXF_IEXTP_UDP_MAX_MESSAGES}")
        try:
            ip = _socket.gethostbyname(host)
        except OSError as exc:
            raise ValueError(f"gap fill server {host!r}: {exc}") from None
        cdef uint32_t ip_be = int.from_bytes(_socket.inet_aton(ip), "little")
        cdef uint16_t port_be = _socket.htons(port)
        cdef int rc = rxf_rec_connect(&self.st.rec, ip_be, port_be, _rec_request, max_messages,
                                      <uint64_t>(timeout_ms * 1e6), attempts, in_flight, <uint64_t>(delay_ms * 1e6))
        if rc != 0:
            raise OSError(-rc, f"gap fill socket to {ip}:{port}")
        self._rerequest_server = f"{ip}:{port}"

    def add_loss_listener(self, callback):
        """``callback(event)`` for each range declared lost (a ``gap`` event)."""
        self._loss_listeners.append(callback)

    def recovery_counters(self):
        """What recovery did (None when off): the same keys as the ITCH decoder's."""
        if not self.st.recovering:
            return None
        return _recovery_report(&self.st.rec, self._reorder_window_ms, self._rerequest_server, {
            "malformed": self.st.answers_malformed, "wrong_session": self.st.answers_wrong_session,
            "not_asked_or_settled": self.st.answers_not_wanted})

    # --- arrival log --------------------------------------------------------------
    def log_arrivals(self, bint on=True):
        """Record, per segment, its first new sequence, message count and the
        CLOCK_REALTIME ns when its last message was handled."""
        self.st.log_arrivals = on

    def take_arrivals(self):
        """The arrival log so far as numpy (sequence, count, done_ns); emptied."""
        return _take_arrivals(self.st)

    # --- events ----------------------------------------------------------------
    def on_event(self, callback):
        """``callback(event_dict)`` for gaps, session changes, restarts, implausible
        sequences, stream offset mismatches and end of messages (``EVENT_KINDS``)."""
        self._event_callback = callback

    @property
    def events(self):
        """Events so far, as dicts (kind, channel, session, first, count, rx_ts_ns)."""
        return list(self._events)

    def pop_error(self):
        """The exception a Python callback raised (which stopped the loop), or None."""
        err, self.error = self.error, None
        return err

    def counters(self) -> dict:
        """Everything counted, as plain ints (IEX-TP counters summed over channels, and per channel)."""
        cdef dict s
        st = self.st
        keys = ("packets", "heartbeats", "session_changes", "restarts", "jumps_confirmed", "gaps", "gap_messages",
                "duplicate_packets", "duplicate_messages", "implausible_packets", "implausible_messages",
                "offset_mismatches", "short_packets", "bad_version", "truncated", "trailing_bytes",
                "count_mismatch", "bad_sequence", "malformed_messages")
        channels = []
        total = dict.fromkeys(keys, 0)
        for i in range(st.n_streams):
            s = st.streams[i].s
            d = {k: s[k] for k in keys}
            for k in keys:
                total[k] += d[k]
            channels.append({"channel": s["channel_id"], "session": s["session_id"] if s["have_session"] else None,
                             "next_sequence": s["next_seq"] if s["have_session"] else None, **d})
        if st.recovering:
            total["duplicate_packets"] += st.rec.seq.duplicates
            total["duplicate_messages"] += st.rec.seq.duplicate_messages
        errors = {k: v for k, v in {
            "unknown_type": st.err_unknown_type, "bad_length": st.err_bad_length, "not_iextp": st.not_iextp,
            "short_packet": total["short_packets"], "bad_version": total["bad_version"],
            "truncated_segment": total["truncated"], "trailing_bytes": total["trailing_bytes"],
            "count_mismatch": total["count_mismatch"], "bad_sequence": total["bad_sequence"],
            "implausible_sequence": total["implausible_packets"],
            "stream_offset_mismatch": total["offset_mismatches"]}.items() if v}
        return {
            "feed": self.feed, "packets": st.packets, "bytes": st.bytes, "messages": st.messages,
            "messages_per_type": {chr(t): st.per_type[t] for t in range(256) if st.per_type[t]},
            "gaps": total["gaps"], "gap_messages": total["gap_messages"],
            "duplicate_packets": total["duplicate_packets"], "duplicates": total["duplicate_messages"],
            "heartbeats": total["heartbeats"], "session_changes": total["session_changes"],
            "restarts": total["restarts"], "sequence_jumps_confirmed": total["jumps_confirmed"],
            "implausible_messages": total["implausible_messages"],
            "malformed_messages": total["malformed_messages"], "other_protocol": st.other_protocol,
            "other_channel": st.other_channel, "too_many_channels": st.too_many_channels,
            "source_resets": st.source_resets, "end_of_session": st.end_of_messages, "channels": channels, "errors": errors,
            "recovery": self.recovery_counters(),
        }

    # --- internals ---------------------------------------------------------------
    def _types(self, types):
        feeds = [FEED_NAMES[self.st.feed]] if self.st.feed >= 0 else list(FEED_NAMES)
        known = {t for f in feeds for t in _FEEDS[f].by_type}
        if types is None:
            types = sorted(known)
        out = []
        for c in types:
            if c not in known:
                raise ValueError(f"not an IEX {'/'.join(feeds)} message type: {c!r}")
            out.append(ord(c))
        return out

    cdef void _flush_pending(self) noexcept:
        cdef uint32_t i, n = self.st.n_pending
        cdef PendingRec *p
        cdef uint8_t t
        self.st.n_pending = 0
        if self.error is not None:
            return
        feed = FEED_NAMES[self.st.feed]
        classes = _messages.BY_FEED[feed]
        try:
            for i in range(n):
                p = &self.st.pending[i]
                t = <uint8_t>p.rec.hdr.message_type
                if self._cb[t] == NULL:
                    continue
                fields = self._py_fields[t]
                if fields is None or fields[0] != feed:
                    fields = self._py_fields[t] = (feed, _converters(feed)[chr(t)])
                msg = _record_to_py(&p.rec, fields[1], classes[chr(t)])
                cb = <object>self._cb[t]
                if self._cbmeta[t]:
                    cb(msg, _meta(p, self.st.protocol_id))
                else:
                    cb(msg)
        except BaseException as exc:
            self.error = exc
            self.st.stop = 1

    cdef void _flush_batch(self, uint8_t t) noexcept:
        cdef uint32_t n = self.st.batch_n[t]
        cdef size_t nbytes = <size_t>n * record_size_of(self.st.feed, t)
        self.st.batch_n[t] = 0
        try:
            arr = np.frombuffer((<char *>self.st.batch_buf[t])[:nbytes], dtype=_DTYPES[FEED_NAMES[self.st.feed]][chr(t)])
            if self._batch_callback is not None:
                self._batch_callback(chr(t), arr)
            else:
                self._batches.setdefault(chr(t), []).append(arr)
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            self.st.stop = 1

    cdef void _flush_events(self) noexcept:
        cdef uint32_t i, n = self.st.n_events
        cdef EventRec *e
        self.st.n_events = 0
        try:
            for i in range(n):
                e = &self.st.events[i]
                ev = {"kind": EVENT_KINDS[e.kind], "channel": e.channel_id, "session": e.session_id,
                      "first": e.first, "count": e.count, "rx_ts_ns": e.rx_ts_ns}
                if len(self._events) < 100000:
                    self._events.append(ev)
                if self._event_callback is not None:
                    self._event_callback(ev)
                if e.kind == EV_GAP:
                    for listener in self._loss_listeners:
                        listener(ev)
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            self.st.stop = 1
