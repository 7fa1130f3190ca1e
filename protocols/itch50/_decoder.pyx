# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The ITCH 5.0 decoder: MoldUDP64 session layer or NASDAQ-file stream
framing, then length-checked decode into aligned records, then three ways out:
C handler tables, Python callbacks per type, numpy batches per type.

Every length is checked before bytes are read (``boundscheck(False)`` is safe
here because indexes come from validated lengths, see the comments)."""
cimport cython
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, malloc, realloc, free
from libc.string cimport memcpy, memset, memcmp
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.unicode cimport PyUnicode_DecodeLatin1
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from cpython.tuple cimport PyTuple_SET_ITEM

from rxfeed_abi cimport (fill_decoder_ops, RXF_DECODER_CAPSULE, rxf_on_idle_fn, RXF_PKT_STREAM, RXF_PKT_SOURCE_RESET,
                         rxf_packet, rxf_decoder_ops)
from rxfeed_mold cimport (RXF_MOLD_HEADER_LEN, RXF_MOLD_SHORT, RXF_MOLD_DELIVER, RXF_MOLD_HOLD,
                          RXF_MOLD_OVERFLOW, RXF_MOLD_CONFIRMED, RXF_MOLD_REJECTED, rxf_mold_session,
                          rxf_mold_verdict, rxf_mold_accept, rxf_mold_resolve, rxf_mold_drop_candidate,
                          rxf_mold_reset, RXF_MOLD_END_OF_SESSION, rxf_mold_header, rxf_mold_messages,
                          rxf_mold_near, rxf_mold_blocks_fit, rxf_mold_request, rxf_mold_start_session)
from rxfeed_recovery cimport (rxf_seq_block, rxf_seq_callbacks, rxf_recovery, RXF_REC_LINE_REREQUEST, RXF_REC_RECV_PER_TICK,
                              RXF_HIST_BUCKETS, rxf_rec_now, rxf_rec_init, rxf_rec_connect, rxf_rec_destroy,
                              rxf_rec_offer, rxf_rec_wanted, rxf_rec_tick, rxf_rec_expecting, rxf_rec_recv,
                              rxf_rec_flush, rxf_hist_value)
from _records cimport *
from itch50_handlers cimport (RXF_ITCH_HANDLERS_VERSION, RXF_ITCH_HANDLERS_CAPSULE, RXF_ITCH_HANDLERS_V1_SIZE,
                              rxf_itch_meta, rxf_itch_handlers)

import numpy as np
from rxfeed.protocols.itch50 import messages as _messages
from rxfeed.protocols.itch50.messages import MessageMeta
from rxfeed.protocols.itch50.dtypes import DTYPES as _DTYPES

DEF MAX_HANDLER_TABLES = 8
DEF PY_QUEUE_FLUSH = 256   # queued Python callbacks handed over mid-burst (~24 KiB of records)
DEF EV_GAP = 1
DEF EV_SESSION_CHANGE = 2
DEF EV_END_OF_SESSION = 3
DEF EV_UNRECOVERABLE = 4
DEF EV_IMPLAUSIBLE = 5
DEF EV_OVERFLOW = 6
# What the session layer made of a message (MessageMeta.status)
DEF ST_UNSEQUENCED = 0
DEF ST_NEW = 1
DEF ST_DUPLICATE = 2
DEF ST_IMPLAUSIBLE = 3
DEF ST_OVERFLOW = 4
# What the consumers of a message type asked for (DecoderState.route >> 8)
DEF ROUTE_ON = 1      # C handlers of the decoded record
DEF ROUTE_WIRE = 2    # C handlers of the wire view
DEF ROUTE_PY = 4      # a Python callback
DEF ROUTE_BATCH = 8   # numpy batches

cdef extern from *:
    """
    /* Reusing a message object: when the decoder's own reference is the only
       one left (the callback kept none), the next message of its type is
       written into it instead of a new object -- CPython's own idiom for the
       result tuples of zip() and enumerate(). Off where a reference count of 1
       does not prove that (free-threaded builds) or where the object may cache
       derived state (3.14 tuples cache their hash): a new object each time. */
    #if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX < 0x030E0000
    #define RXF_REUSE 1
    #else
    #define RXF_REUSE 0
    #endif

    /* The reusable object of *reuse if it is free (a new reference), else NULL
       (and *reuse released: the callback kept it, it is the callback's now). */
    static PyObject *rxf_reuse_free(PyObject **reuse) {
        PyObject *o = reuse ? *reuse : NULL;
        if (o == NULL)
            return NULL;
        if (RXF_REUSE && Py_REFCNT(o) == 1) {
            Py_INCREF(o);
            return o;
        }
        *reuse = NULL;
        Py_DECREF(o);
        return NULL;
    }

    /* Keep a new reference to o in *reuse (when reuse is on). */
    static void rxf_reuse_keep(PyObject **reuse, PyObject *o) {
        if (RXF_REUSE && reuse != NULL && o != NULL) {
            Py_INCREF(o);
            *reuse = o;
        }
    }

    /* A namedtuple instance of n slots (namedtuples have __slots__ = (): a
       tuple's layout): the reusable one of *reuse (reuse may be NULL) when
       nobody else holds it, else one from the type's allocator, without the
       intermediate tuple or a Python-level __new__. Its slots are then set by
       rxf_put (a reused one's old values released as they are replaced). */
    static PyObject *rxf_tuple_take(PyObject **reuse, PyObject *cls, Py_ssize_t n) {
        PyObject *o = rxf_reuse_free(reuse);
        if (o != NULL) {
            if (!PyObject_GC_IsTracked(o))  /* the collector untracks tuples of atomic values */
                PyObject_GC_Track(o);
            return o;
        }
        o = ((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, n);
        rxf_reuse_keep(reuse, o);
        return o;
    }

    /* Slot i of a message tuple set to the integer v. In a reused tuple whose
       old value there is an int nobody else holds (reference count 1) with as
       many digits as v needs, the digits are rewritten in place -- no
       allocation, no free -- like CPython's in-place append to a str nobody
       else holds. Only on CPython 3.11, whose int layout this writes (ob_size
       digits of PyLong_SHIFT bits); elsewhere, and for values up to 256
       (CPython's shared small ints), a new int. */
    #if RXF_REUSE && PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    #define RXF_REUSE_INTS 1
    #else
    #define RXF_REUSE_INTS 0
    #endif
    static inline int rxf_put_uint(PyObject *o, Py_ssize_t i, unsigned long long v) {
        PyObject *old = PyTuple_GET_ITEM(o, i), *n;
    #if RXF_REUSE_INTS
        if (old != NULL && v > 256 && Py_REFCNT(old) == 1 && PyLong_CheckExact(old)) {
            digit d[(64 + PyLong_SHIFT - 1) / PyLong_SHIFT];
            Py_ssize_t k = 0;
            unsigned long long x = v;
            while (x) {
                d[k++] = (digit)(x & PyLong_MASK);
                x >>= PyLong_SHIFT;
            }
            if (Py_SIZE(old) == k) {
                memcpy(((PyLongObject *)old)->ob_digit, d, (size_t)k * sizeof(digit));
                return 0;
            }
        }
    #endif
        n = PyLong_FromUnsignedLongLong(v);
        if (n == NULL)
            return -1;
        PyTuple_SET_ITEM(o, i, n);
        Py_XDECREF(old);
        return 0;
    }

    static inline void rxf_put(PyObject *o, Py_ssize_t i, PyObject *v) {
        PyObject *old = PyTuple_GET_ITEM(o, i);
        Py_INCREF(v);
        PyTuple_SET_ITEM(o, i, v);
        Py_XDECREF(old);
    }

    /* A view object of class cls (a cdef class without __cinit__): the
       reusable one of *reuse when nobody else holds it, else a new one. */
    static PyObject *rxf_view_take(PyObject **reuse, PyObject *cls, PyObject *empty) {
        PyObject *o = rxf_reuse_free(reuse);
        if (o != NULL)
            return o;
        o = ((PyTypeObject *)cls)->tp_new((PyTypeObject *)cls, empty, NULL);
        rxf_reuse_keep(reuse, o);
        return o;
    }

    /* What CPython's tp_call is for an instance of a class defined in Python
       with a __call__ (set at import from such a class). */
    static ternaryfunc rxf_slot_tp_call = NULL;
    static PyObject *rxf_str_call = NULL;

    static int rxf_init_call(PyObject *probe_cls) {
        rxf_slot_tp_call = ((PyTypeObject *)probe_cls)->tp_call;
        rxf_str_call = PyUnicode_InternFromString("__call__");
        return rxf_str_call != NULL ? 0 : -1;
    }

    /* callback(a) or callback(a, b) by vectorcall. An instance of a class
       defined in Python whose __call__ is a plain function is called as
       type(cb).__call__(cb, a[, b]): the lookup and call CPython's tp_call
       does for it, without the argument tuple and the bound call it builds. */
    static int rxf_call(PyObject *cb, PyObject *a, PyObject *b) {
        PyObject *stack[4];
        PyObject *res, *f = NULL;
        size_t nargs = b != NULL ? 2 : 1;
        Py_INCREF(cb);  /* the callback may unsubscribe itself */
    #if PY_VERSION_HEX < 0x030E0000
        if (Py_TYPE(cb)->tp_call == rxf_slot_tp_call && rxf_slot_tp_call != NULL) {
            f = _PyType_Lookup(Py_TYPE(cb), rxf_str_call);  /* borrowed */
            if (f != NULL && PyFunction_Check(f))
                Py_INCREF(f);
            else
                f = NULL;
        }
    #endif
        if (f != NULL) {
            stack[1] = cb; stack[2] = a; stack[3] = b;
            res = PyObject_Vectorcall(f, stack + 1, (nargs + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            Py_DECREF(f);
        } else {
            stack[1] = a; stack[2] = b;
            res = PyObject_Vectorcall(cb, stack + 1, nargs | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        }
        Py_DECREF(cb);
        if (res == NULL)
            return -1;
        Py_DECREF(res);
        return 0;
    }
    """
    int RXF_REUSE
    object rxf_tuple_take(PyObject **reuse, object cls, Py_ssize_t n)
    object rxf_view_take(PyObject **reuse, PyObject *cls, object empty)
    void _put "rxf_put"(object o, Py_ssize_t i, object v)
    int _put_uint "rxf_put_uint"(object o, Py_ssize_t i, unsigned long long v) except -1
    int RXF_REUSE_INTS
    int rxf_call(PyObject *cb, PyObject *a, PyObject *b) except -1
    int rxf_init_call(object probe_cls) except -1


class _PyCallable:
    """A class defined in Python with a __call__: its type's tp_call is CPython's slot."""

    def __call__(self):
        pass


rxf_init_call(_PyCallable)

cdef list _CHARS = [chr(i) for i in range(256)]

cdef inline object _alpha(const char *p, Py_ssize_t n):
    while n > 0 and p[n - 1] == b' ':
        n -= 1
    return PyUnicode_DecodeLatin1(p, n, NULL)

# The stock of a locate rarely changes: keep the last str made per locate and
# reuse it while the 8 bytes are the same (one 64-bit compare per message).
cdef uint64_t _stock_key[65536]
cdef uint8_t _stock_set[65536]
cdef list _stock_obj = [None] * 65536

cdef inline object _stock(uint16_t loc, const char *p):
    cdef uint64_t k
    memcpy(&k, p, 8)
    if _stock_set[loc] and _stock_key[loc] == k:
        return _stock_obj[loc]
    s = _alpha(p, 8)
    _stock_key[loc] = k
    _stock_set[loc] = 1
    _stock_obj[loc] = s
    return s

cdef tuple _EMPTY = ()


cdef class MessageView:
    """A message as ``subscribe(callback, view=True)`` hands it: one class per
    type (``AddOrderView``...), with the attributes of the type's namedtuple
    (:mod:`rxfeed.protocols.itch50.messages`) as read-only properties, each
    made into a Python object only when read. The view owns a copy of its
    decoded record, so it stays valid and unchanged after the callback
    returns. When the callback kept no reference to it, the decoder writes
    the next message of the type into the same object (nobody can see it).

    Not a tuple: ``to_message()`` gives the namedtuple; ``==`` compares field
    values with another view or a tuple; iteration, indexing and ``len``
    follow the namedtuple.
    """

    cdef rxf_itch_record rec

    def __init__(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} objects are made by the decoder "
                        "(subscribe(callback, view=True)); build a message from rxfeed.protocols.itch50.messages")

    @property
    def type(self):
        return _CHARS[<uint8_t>self.rec.hdr.type]

    @property
    def stock_locate(self):
        return self.rec.hdr.stock_locate

    @property
    def tracking_number(self):
        return self.rec.hdr.tracking_number

    @property
    def timestamp(self):
        return self.rec.hdr.timestamp

    def to_message(self):
        """The namedtuple of this message (a new object, equal field by field)."""
        return record_to_py(&self.rec, NULL)

    def _asdict(self):
        """The fields as a dict, as ``namedtuple._asdict``."""
        return dict(zip(self._fields, self.to_message()))

    def __iter__(self):
        return iter(self.to_message())

    def __len__(self):
        return len(self._fields)

    def __getitem__(self, index):
        return self.to_message()[index]

    def __eq__(self, other):
        if isinstance(other, MessageView):
            other = (<MessageView>other).to_message()
        elif not isinstance(other, tuple):
            return NotImplemented
        return self.to_message() == other

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(self.to_message())

    def __repr__(self):
        msg = self.to_message()
        return type(self).__name__ + repr(msg)[len(type(msg).__name__):]

    def __copy__(self):
        return self  # immutable

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        raise TypeError(f"{type(self).__name__} cannot be pickled: pickle view.to_message(), the namedtuple")


include "_convert.pxi"

cdef PyObject *_VIEW_CLS[256]
_fill_view_classes(_VIEW_CLS)

EVENT_KINDS = {EV_GAP: "gap", EV_SESSION_CHANGE: "session_change", EV_END_OF_SESSION: "end_of_session",
               EV_UNRECOVERABLE: "unrecoverable_framing", EV_IMPLAUSIBLE: "implausible_sequence",
               EV_OVERFLOW: "sequence_overflow"}
#: MessageMeta.status by ST_* code: what the session layer made of a message.
STATUS_NAMES = (None, "new", "duplicate", "implausible", "overflow")
cdef tuple _STATUS = STATUS_NAMES


def c_layout():
    """The record layout as the C compiler laid it out: (type, field, offset, size);
    a row with an empty field name gives the record size."""
    out = []
    cdef int i
    for i in range(RXF_ITCH_LAYOUT_LEN):
        out.append((chr(rxf_itch_layout[i].type), rxf_itch_layout[i].name.decode(),
                    rxf_itch_layout[i].offset, rxf_itch_layout[i].size))
    return out


def count_framed(const uint8_t[::1] data not None):
    """The floor for benchmarks: walk NASDAQ-file length prefixes in C, decode
    nothing. Returns the number of messages (a zero prefix ends the walk)."""
    cdef size_t pos = 0, n = 0, size = data.shape[0]
    cdef uint32_t L
    with nogil:
        while pos + 2 <= size:
            L = (<uint32_t>data[pos] << 8) | data[pos + 1]
            if L == 0 or pos + 2 + L > size:
                break
            pos += 2 + L
            n += 1
    return n


def decode_one(bytes data):
    """Decode one message with the C decoder (for tests and tools)."""
    cdef rxf_itch_record rec
    cdef int rc = rxf_itch_decode(<const uint8_t *>data, <uint32_t>len(data), &rec)
    if rc == RXF_ITCH_UNKNOWN_TYPE:
        raise ValueError(f"unknown ITCH 5.0 message type {data[:1]!r}")
    if rc == RXF_ITCH_BAD_LENGTH:
        raise ValueError(f"bad length {len(data)} for ITCH 5.0 type {data[:1]!r}")
    return record_to_py(&rec, NULL)


cdef inline void _event(DecoderState *st, int kind, const char *session, uint64_t first, uint64_t count,
                        uint64_t ts) noexcept nogil:
    cdef EventRec *e
    if st.n_events == st.cap_events:
        e = <EventRec *>realloc(st.events, (st.cap_events * 2 + 16) * sizeof(EventRec))
        if e == NULL:
            return  # counters still hold the event; only the detail is lost
        st.events = e
        st.cap_events = st.cap_events * 2 + 16
    e = &st.events[st.n_events]
    st.n_events += 1
    e.kind = kind
    if session != NULL:
        memcpy(e.session, session, 10)
    else:
        memset(e.session, 32, 10)
    e.first = first
    e.count = count
    e.rx_ts_ns = ts


cdef inline void _message(DecoderState *st, const uint8_t *m, uint32_t mlen, uint64_t seq,
                          uint8_t status) noexcept nogil:
    """Length-check and count one message; then only the outputs that asked
    for its type see it (``st.route``, built when consumers attach). The
    packet's meta (``st.meta``) was set by the caller, once per packet."""
    cdef uint16_t route
    if mlen == 0:
        st.err_bad_length += 1
        return
    route = st.route[m[0]]  # mlen >= 1: the type byte is there
    if (route & 0xff) != mlen:  # not an ITCH 5.0 type (length 0 in the table), or not its length
        if (route & 0xff) == 0:
            st.err_unknown_type += 1
        else:
            st.err_bad_length += 1
        return
    st.per_type[m[0]] += 1
    st.messages += 1
    if route >> 8:
        if route & ((ROUTE_ON | ROUTE_WIRE) << 8):
            st.meta.raw = m
            st.meta.raw_len = mlen
            st.meta.sequence = seq
        if route & (ROUTE_WIRE << 8):  # in line: the zero-copy path costs only the calls
            _wire_handlers(st, &st.by_type[m[0]], m, mlen)
        if route & ((ROUTE_PY | ROUTE_BATCH) << 8):
            _deliver(st, m, mlen, <uint8_t>(route >> 8), seq, status)
        elif route & (ROUTE_ON << 8):  # only C record handlers (books, strategies): in line too
            _record_handlers(st, &st.by_type[m[0]], m, mlen)


cdef inline void _wire_handlers(DecoderState *st, const TypeHandlers *h, const uint8_t *m,
                                uint32_t mlen) noexcept nogil:
    """The wire view to every wire handler of the type, in attach order."""
    cdef uint32_t i
    for i in range(h.n_wire):
        h.wire[i](h.wire_ctx[i], m, mlen, &st.meta)


cdef inline void _record_handlers(DecoderState *st, const TypeHandlers *h, const uint8_t *m,
                                  uint32_t mlen) noexcept nogil:
    """One decode onto the stack, then every record handler of the type."""
    cdef rxf_itch_record rec
    cdef uint32_t i
    rxf_itch_decode(m, mlen, &rec)  # cannot fail: the length was checked against the type
    for i in range(h.n_on):
        h.on[i](h.on_ctx[i], &rec, &st.meta)


cdef void _deliver(DecoderState *st, const uint8_t *m, uint32_t mlen, uint8_t want, uint64_t seq,
                   uint8_t status) noexcept nogil:
    """A length-checked message to the outputs of its type when a Python
    callback or a numpy batch wants it (``want``: ROUTE_*; the wire handlers
    ran already): one decode
    shared by the record handlers and the Python queue (decoded straight
    into its slot), then the numpy batch (decoded straight into its row)."""
    cdef uint8_t t = m[0]
    cdef TypeHandlers *h = &st.by_type[t]
    cdef rxf_itch_record tmp
    cdef rxf_itch_record *rec = &tmp
    cdef PendingRec *pend = NULL
    cdef uint32_t i
    if want & ROUTE_PY:
        pend = _pending_slot(st, seq, status)
        if pend != NULL:
            rec = &pend.rec
    if want & (ROUTE_ON | ROUTE_PY):
        rxf_itch_decode(m, mlen, rec)  # cannot fail: the length was checked against the type
    for i in range(h.n_on):
        h.on[i](h.on_ctx[i], rec, &st.meta)
    if want & ROUTE_PY and pend == NULL:
        return  # the callback queue could not grow: the loop stops (error set)
    if want & ROUTE_BATCH:
        _batch_row(st, m, mlen, t)


cdef inline PendingRec *_pending_slot(DecoderState *st, uint64_t seq, uint8_t status) noexcept nogil:
    """The next slot of the Python callback queue, its meta filled (record
    left to the caller); NULL when the queue cannot grow (error set, loop stops)."""
    cdef PendingRec *pend
    if st.n_pending >= PY_QUEUE_FLUSH and st.n_events == 0:
        # a long burst (a file backend's: ~10^5 messages) would queue megabytes
        # and read them back from memory; hand them over while they are in
        # cache (not when an event waits: events go first, at the burst's end)
        with gil:
            (<ItchDecoder>st.owner)._flush_pending()
    if st.n_pending == st.cap_pending:
        pend = <PendingRec *>realloc(st.pending, (st.cap_pending * 2 + 256) * sizeof(PendingRec))
        if pend == NULL:
            with gil:
                (<ItchDecoder>st.owner).error = MemoryError("python callback queue")
            st.stop = 1
            return NULL
        st.pending = pend
        st.cap_pending = st.cap_pending * 2 + 256
    pend = &st.pending[st.n_pending]
    st.n_pending += 1
    pend.sequence = seq
    pend.has_seq = st.meta.session != NULL
    pend.status = status
    if st.meta.session != NULL:
        memcpy(pend.session, st.meta.session, 10)
    pend.rx_ts_ns = st.meta.packet.rx_ts_ns
    return pend


cdef inline void _batch_row(DecoderState *st, const uint8_t *m, uint32_t mlen, uint8_t t) noexcept nogil:
    """Decode the message straight into the next row of its type's batch;
    a full batch goes to Python (the burst's events and the queued callbacks
    first, as at the end of a burst: decode order)."""
    rxf_itch_decode(m, mlen, <rxf_itch_record *>(st.batch_buf[t] + <size_t>st.batch_n[t] * rxf_itch_record_size[t]))
    st.batch_n[t] += 1
    if st.batch_n[t] == st.batch_cap:
        with gil:
            if st.n_events:
                (<ItchDecoder>st.owner)._flush_events()
            if st.n_pending:
                (<ItchDecoder>st.owner)._flush_pending()
            (<ItchDecoder>st.owner)._flush_batch(t)


cdef inline void _packet_meta(DecoderState *st, const rxf_packet *pkt, const char *session) noexcept nogil:
    """The meta every message of this packet shares (``session``: its 10
    bytes, NULL without a session layer); per message only raw, raw_len and
    sequence change, and only when a C handler will see it."""
    st.meta.packet = pkt
    st.meta.session = session
    st.meta.has_sequence = session != NULL
    st.meta.sequence = 0


include "arrival_log.pxi"


cdef inline void _mold_events(DecoderState *st, const rxf_mold_verdict *v, uint64_t ts) noexcept nogil:
    """The events of a session-layer verdict: session change, gap, end of session."""
    if v.session_changed:
        _event(st, EV_SESSION_CHANGE, st.mold.session, v.seq, 0, ts)
    if v.gap_count:
        _event(st, EV_GAP, st.mold.session, v.gap_first, v.gap_count, ts)
    if v.end_of_session:
        _event(st, EV_END_OF_SESSION, st.mold.session, v.seq, 0, ts)
        if st.stop_at_eos:
            st.stop = 1


cdef inline int _mold_block(DecoderState *st, const rxf_packet *pkt, const rxf_mold_verdict *v,
                            uint32_t deliver_from, uint8_t status) noexcept nogil:
    """Walk a datagram's message blocks (every length checked first) and hand
    messages ``deliver_from``.. to _message. ``status`` ST_NEW: the verdict's
    ``skip`` leading messages are duplicates; otherwise every message has
    ``status``. Returns 0 if the blocks ran past the datagram."""
    cdef const uint8_t *p = pkt.data
    cdef uint32_t len = pkt.len
    cdef uint32_t off = RXF_MOLD_HEADER_LEN
    cdef uint32_t i = 0, mlen
    _packet_meta(st, pkt, <const char *>p)
    while i < v.count:
        mlen = 0
        if off + 2 <= len:
            mlen = (<uint32_t>p[off] << 8) | p[off + 1]
        if off + 2 > len or off + 2 + mlen > len:  # the block runs past the datagram
            st.err_truncated_block += 1
            if status == ST_NEW and v.count > (i if i > v.skip else v.skip):
                st.lost_in_malformed += v.count - (i if i > v.skip else v.skip)
            return 0
        off += 2
        if i >= deliver_from:
            _message(st, p + off, mlen, v.seq + i,
                     status if status != ST_NEW else (ST_DUPLICATE if i < v.skip else ST_NEW))
        off += mlen
        i += 1
    if off < len:
        st.err_trailing_bytes += 1
    return 1


cdef inline void _hold(DecoderState *st, const rxf_packet *pkt, const rxf_mold_verdict *v) noexcept nogil:
    """Keep a copy of the datagram the session layer holds (an implausible jump
    waiting for confirmation); it outlives the burst."""
    cdef uint8_t *b
    if pkt.data == st.held:
        return  # already the held copy
    if pkt.len > st.held_cap:
        b = <uint8_t *>realloc(st.held, pkt.len)
        if b == NULL:  # cannot keep it: it cannot be confirmed either
            rxf_mold_drop_candidate(&st.mold)
            _event(st, EV_IMPLAUSIBLE, <const char *>pkt.data, v.seq, v.count, pkt.rx_ts_ns)
            return
        st.held = b
        st.held_cap = pkt.len
    memcpy(st.held, pkt.data, pkt.len)
    st.held_pkt = pkt[0]
    st.held_pkt.data = st.held


cdef inline void _held_rejected(DecoderState *st) noexcept nogil:
    """The held datagram was not confirmed (already counted): an event, and in
    dissect mode its messages, marked implausible."""
    _held_dropped(st, st.mold.cand_seq, st.mold.cand_end)


cdef inline void _held_dropped(DecoderState *st, uint64_t seq, uint64_t end) noexcept nogil:
    """The held datagram, messages ``seq``..``end``, was dropped (already
    counted): an event, and in dissect mode its messages, marked implausible."""
    cdef rxf_mold_verdict v
    memset(&v, 0, sizeof(v))
    v.seq = seq
    v.count = <uint32_t>(end - seq)
    v.skip = v.count
    _event(st, EV_IMPLAUSIBLE, <const char *>st.held, v.seq, v.count, st.held_pkt.rx_ts_ns)
    if not st.sequenced:
        _mold_block(st, &st.held_pkt, &v, 0, ST_IMPLAUSIBLE)


cdef inline void _mold_datagram(DecoderState *st, const rxf_packet *pkt) noexcept nogil:
    """One datagram through the session layer, then its new messages (all of
    them, marked, in dissect mode) to the outputs."""
    cdef rxf_mold_verdict v
    cdef uint8_t had_candidate = st.mold.have_candidate and pkt.data != st.held
    cdef uint64_t held_seq = st.mold.cand_seq, held_end = st.mold.cand_end
    cdef int rc = rxf_mold_accept(&st.mold, pkt.data, pkt.len, &v)  # checks len >= 20 first
    if rc == RXF_MOLD_SHORT:
        return
    _mold_events(st, &v, pkt.rx_ts_ns)
    if rc == RXF_MOLD_HOLD:
        if had_candidate:  # a second hold: the session layer dropped (counted) the first
            _held_dropped(st, held_seq, held_end)
        _hold(st, pkt, &v)
        return
    if rc == RXF_MOLD_OVERFLOW:
        _event(st, EV_OVERFLOW, <const char *>pkt.data, v.seq, v.count, pkt.rx_ts_ns)
        if not st.sequenced:
            _mold_block(st, pkt, &v, 0, ST_OVERFLOW)
        return
    if v.count == 0 or (st.sequenced and rc != RXF_MOLD_DELIVER):
        return
    if _mold_block(st, pkt, &v, v.skip if st.sequenced else 0, ST_NEW) and rc == RXF_MOLD_DELIVER \
            and st.log_arrivals:
        _arrival(st, v.seq, v.count)


include "_mold_recovery.pxi"


cdef inline void _mold_packet(DecoderState *st, const rxf_packet *pkt) noexcept nogil:
    """A MoldUDP64 datagram: it first decides a held jump (confirmed: both
    datagrams go through in sequence order; rejected: the held one is
    dropped), then goes through the session layer itself."""
    cdef rxf_mold_verdict v
    cdef int r
    if st.mold.have_candidate:
        if st.recovering and _rec_would_confirm(st, pkt):
            _rec_flush(st)  # the session leaves its position: the sequencer settles first
        r = rxf_mold_resolve(&st.mold, pkt.data, pkt.len, &v)
        if r == RXF_MOLD_REJECTED:
            _held_rejected(st)
        elif r == RXF_MOLD_CONFIRMED:
            _mold_events(st, &v, pkt.rx_ts_ns)  # the gap up to the new position
            if v.packet_first:
                _mold_datagram(st, pkt)
                _mold_datagram(st, &st.held_pkt)
            else:
                _mold_datagram(st, &st.held_pkt)
                _mold_datagram(st, pkt)
            if st.recovering:
                _rec_sync(st)
            return
    _mold_entry(st, pkt)


cdef inline void _drop_held(DecoderState *st) noexcept nogil:
    """End or restart of the input: a held jump can no longer be confirmed."""
    if rxf_mold_drop_candidate(&st.mold):
        _held_rejected(st)


cdef inline long _frame_len(const uint8_t *q, uint32_t avail, int *implied) noexcept nogil:
    """Framed length (prefix included) of the message at q; 0 if more bytes
    are needed to tell; -1 if it cannot be known (zero prefix, unknown type)."""
    cdef uint32_t L, w
    if avail < 2:
        return 0
    L = (<uint32_t>q[0] << 8) | q[1]
    implied[0] = 0
    if L != 0:
        return 2 + L
    if avail < 3:
        return 0
    w = rxf_itch_wire_size[q[2]]
    if w == 0:
        return -1
    implied[0] = 1
    return 2 + w


cdef inline void _framed(DecoderState *st, const uint8_t *q, uint32_t total, int implied,
                         const rxf_packet *pkt) noexcept nogil:
    if implied:
        st.implied_length += 1
    _message(st, q + 2, total - 2, 0, ST_UNSEQUENCED)


cdef inline void _stream_chunk(DecoderState *st, const rxf_packet *pkt) noexcept nogil:
    cdef const uint8_t *p = pkt.data
    cdef uint32_t len = pkt.len, pos = 0, want, take
    cdef long need
    cdef int implied = 0
    if st.stream_dead:
        return
    _packet_meta(st, pkt, NULL)
    # 1. finish a message carried over from the previous chunk
    while st.carry_len > 0:
        need = _frame_len(st.carry, st.carry_len, &implied)
        if need < 0:
            st.stream_unrecoverable += 1
            st.stream_dead = 1
            st.carry_len = 0  # not a truncated tail: the same bytes in one chunk are not one either
            _event(st, EV_UNRECOVERABLE, NULL, st.messages, 0, 0)
            return
        want = <uint32_t>need if need > 0 else st.carry_len + 1
        take = want - st.carry_len
        if take > len - pos:
            take = len - pos
        memcpy(st.carry + st.carry_len, p + pos, take)
        st.carry_len += take
        pos += take
        if st.carry_len < want:
            if pos == len:
                return
            continue
        if need > 0:
            _framed(st, st.carry, st.carry_len, implied, pkt)
            st.carry_len = 0
    # 2. whole messages in place
    while pos < len:
        need = _frame_len(p + pos, len - pos, &implied)
        if need < 0:
            st.stream_unrecoverable += 1
            st.stream_dead = 1
            _event(st, EV_UNRECOVERABLE, NULL, st.messages, 0, 0)
            return
        if need == 0 or <uint32_t>need > len - pos:
            memcpy(st.carry, p + pos, len - pos)  # < 65537 + 2 bytes: fits CARRY_CAP
            st.carry_len = len - pos
            return
        _framed(st, p + pos, <uint32_t>need, implied, pkt)
        pos += <uint32_t>need


cdef int _on_burst(void *ctx, const rxf_packet *pkts, uint32_t n) noexcept nogil:
    cdef DecoderState *st = <DecoderState *>ctx
    cdef uint32_t i
    if st.recovering:
        st.now_ns = rxf_rec_now()
    for i in range(n):
        if pkts[i].flags & RXF_PKT_SOURCE_RESET:
            _drop_held(st)
            if st.recovering:
                _rec_flush(st)
            rxf_mold_reset(&st.mold)
            st.carry_len = 0
            st.stream_dead = 0
            st.source_resets += 1
        st.packets += 1
        st.bytes += pkts[i].len
        if pkts[i].flags & RXF_PKT_STREAM:
            _stream_chunk(st, &pkts[i])
        else:
            _mold_packet(st, &pkts[i])
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
                (<ItchDecoder>st.owner)._flush_events()
            if st.n_pending:
                (<ItchDecoder>st.owner)._flush_pending()


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
    if st.recovering:
        _rec_drain_at_end(st)
        _rec_flush(st)
    _drop_held(st)
    if st.carry_len:
        st.stream_truncated_tail += 1
        st.carry_len = 0


cdef object _meta(const PendingRec *p, PyObject **reuse):
    """The MessageMeta of a queued message (built in place, as the records are)."""
    m = rxf_tuple_take(reuse, MessageMeta, 4)
    if p.has_seq:
        _put(m, 0, PyUnicode_DecodeLatin1(p.session, 10, NULL))
        _put_uint(m, 1, p.sequence)
    else:
        _put(m, 0, None)
        _put(m, 1, None)
    _put_uint(m, 2, p.rx_ts_ns)
    _put(m, 3, _STATUS[p.status])
    return m


cdef class ItchDecoder:
    """ITCH 5.0 decoder.

    :param initial_sequence: sequence number a MoldUDP64 session is expected
        to start at (1); 0 synchronises on the first packet seen.
    :param batch_size: records per numpy batch.
    :param stop_at_end_of_session: stop the loop at MoldUDP64's end of session.
    :param max_sequence_jump: a MoldUDP64 forward jump of more messages than
        this is held until the next datagram confirms it (else dropped and
        counted as ``implausible_sequence``); 0: no limit.
    :param sequenced: False: dissect mode, every message of every datagram
        reaches the outputs, duplicates and implausible ones included, with
        ``MessageMeta.status`` saying what the session layer made of it.
    """

    def __cinit__(self, unsigned long long initial_sequence=1, unsigned int batch_size=65536,
                  bint stop_at_end_of_session=False, unsigned long long max_sequence_jump=10000,
                  bint sequenced=True):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.st = <DecoderState *>calloc(1, sizeof(DecoderState))
        if self.st == NULL:
            raise MemoryError()
        self.st.mold.initial_seq = initial_sequence
        self.st.mold.max_jump = max_sequence_jump
        self.st.sequenced = sequenced
        self.st.stop_at_eos = stop_at_end_of_session
        self.st.batch_cap = batch_size
        self.st.owner = <void *>self
        fill_decoder_ops(&self.ops, self.st, _on_burst, _on_end, NULL)
        self.ops.on_idle = _on_idle
        self.st.rec.fd = -1
        self._route()  # nobody subscribed yet: every type only length-checked and counted
        self._loss_listeners = []
        self._rerequest_server = None
        self._reorder_window_ms = 0.0
        self._callbacks = {}
        self._batches = {}
        self._events = []
        self._handler_capsules = []
        self._batch_callback = None
        self._event_callback = None
        self.error = None

    def __dealloc__(self):
        cdef int t
        for t in range(256):
            Py_XDECREF(self._reuse[t])
            self._reuse[t] = NULL
        Py_XDECREF(self._meta_reuse)
        self._meta_reuse = NULL
        if self.st != NULL:
            for t in range(256):
                free(self.st.batch_buf[t])
            free(self.st.pending)
            free(self.st.events)
            free(self.st.arrivals)
            free(self.st.held)
            free(self.st.answer)
            if self.st.recovering:
                rxf_rec_destroy(&self.st.rec)
            free(self.st)

    def capsule(self):
        """The decoder function table for the run loop (valid while this object lives)."""
        return PyCapsule_New(&self.ops, RXF_DECODER_CAPSULE, NULL)

    # --- (a) C handlers -------------------------------------------------
    def add_handlers(self, consumer):
        """Attach a C handler table: a PyCapsule named ``rxfeed.itch50.handlers.v1``
        or an object whose ``capsule()`` returns one (kept alive by the decoder).
        Per type the table asks for the decoded record (``on[t]``) or the wire
        view (``wire[t]``; a table of the first layout, ``struct_size`` ending
        after ``on[]``, has none). The table is read now: call
        :meth:`refresh_handlers` after changing it."""
        capsule = consumer.capsule() if hasattr(consumer, "capsule") else consumer
        if not PyCapsule_IsValid(capsule, RXF_ITCH_HANDLERS_CAPSULE):
            raise TypeError("expected a PyCapsule named " + RXF_ITCH_HANDLERS_CAPSULE.decode())
        cdef rxf_itch_handlers *h = <rxf_itch_handlers *>PyCapsule_GetPointer(capsule, RXF_ITCH_HANDLERS_CAPSULE)
        if h.version != RXF_ITCH_HANDLERS_VERSION or (h.struct_size != sizeof(rxf_itch_handlers)
                                                      and h.struct_size != RXF_ITCH_HANDLERS_V1_SIZE):
            raise ValueError(f"handler table version {h.version}/size {h.struct_size} is not "
                             f"{RXF_ITCH_HANDLERS_VERSION}/{sizeof(rxf_itch_handlers)} (or "
                             f"{RXF_ITCH_HANDLERS_V1_SIZE} without wire handlers): rebuild the consumer")
        if self.st.n_handlers >= MAX_HANDLER_TABLES:
            raise ValueError(f"at most {MAX_HANDLER_TABLES} handler tables")
        self.st.handlers[self.st.n_handlers] = h
        self.st.n_handlers += 1
        self._handler_capsules.append((consumer, capsule))  # keeps the owner alive
        self._route()

    def refresh_handlers(self):
        """Read the attached handler tables again (after a consumer changed one)."""
        self._route()

    # --- (b) Python callbacks ------------------------------------------
    def subscribe(self, callback, types=None, *, bint with_meta=False, bint view=False):
        """Call ``callback(msg)`` (or ``callback(msg, meta)``) for each message of
        ``types`` (a string of type characters; None: all). Unsubscribed types
        never reach Python. ``msg`` is the type's namedtuple
        (:mod:`rxfeed.protocols.itch50.messages`), or with ``view=True`` its
        :class:`MessageView` (the same attributes, each made when read: faster
        when a callback reads few fields; valid after the callback too).
        ``meta`` is a :class:`MessageMeta` ``(session, sequence, rx_ts_ns,
        status)`` of the message's own packet (session, sequence and status
        None without MoldUDP64). Callbacks run at the end of each burst, after
        the burst's events, and mid-burst every 256 queued messages while no
        event waits (a file backend's burst holds ~10^5 messages)."""
        if not callable(callback):
            raise TypeError(f"subscribe: callback must be callable, not {type(callback).__name__}")
        for t in self._types(types):
            self._callbacks[t] = callback  # owns the reference _cb borrows
            self._cb[t] = <void *>callback
            self._cbmeta[t] = with_meta
            self._cbview[t] = view
            self.st.py_sub[t] = 1
        self._route()

    def unsubscribe(self, types=None):
        """Stop the Python callbacks of ``types`` (None: all)."""
        for t in self._types(types):
            self.st.py_sub[t] = 0
            self._cb[t] = NULL
            self._callbacks.pop(t, None)
        self._route()

    # --- (c) numpy batches ----------------------------------------------
    def subscribe_batches(self, callback=None, types=None):
        """Collect records of ``types`` into numpy structured arrays (dtypes in
        :mod:`rxfeed.protocols.itch50.dtypes`). With ``callback``, each full
        batch is passed as ``callback(type_char, array)``; without, batches are
        kept for :meth:`take_batches`."""
        self._batch_callback = callback
        cdef int t
        for t in self._types(types):
            if self.st.batch_buf[t] == NULL:
                self.st.batch_buf[t] = <uint8_t *>malloc(<size_t>self.st.batch_cap * rxf_itch_record_size[t])
                if self.st.batch_buf[t] == NULL:
                    raise MemoryError()
            self.st.batch_sub[t] = 1
        self._route()

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
        # joined as bytes: np.concatenate would drop the records' padding (and the C layout)
        out = {t: (arrs[0] if len(arrs) == 1 else np.frombuffer(b"".join([a.data for a in arrs]), dtype=_DTYPES[t]))
               for t, arrs in self._batches.items()}
        self._batches = {}
        return out

    # --- recovery (sequencer, A/B lines, re-request) -----------------------
    def enable_recovery(self, double window_ms, unsigned int max_blocks=16384, unsigned int slot_bytes=2048,
                        unsigned long long max_bytes=64 << 20):
        """Put rxfeed's sequencer between the lines and the session layer: a
        datagram after a hole waits (at most ``window_ms``, ``max_blocks``
        datagrams of up to ``slot_bytes``, ``max_bytes`` in all) for the hole
        to be filled from another line or a re-request; a hole that is not is
        declared lost with its exact range (a ``gap`` event). Before the run."""
        cdef rxf_seq_callbacks cb
        if self.st.recovering:
            raise RuntimeError("recovery is already on")
        if not self.st.sequenced:
            raise ValueError("recovery needs sequenced delivery (not dissect mode)")
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

    def connect_rerequest(self, str host, int port, unsigned int max_messages=1000, double timeout_ms=10.0,
                          unsigned int attempts=4, unsigned int in_flight=16, double delay_ms=0.5):
        """Ask the MoldUDP64 re-request server at ``host:port`` (IPv4, UDP) for
        holes open ``delay_ms`` (time for another line to fill them): at most
        ``max_messages`` per request, ``in_flight`` requests unanswered at once,
        each sent again after ``timeout_ms`` (doubling) up to ``attempts`` times.
        Needs :meth:`enable_recovery` first."""
        import socket as _socket

        if not self.st.recovering:
            raise RuntimeError("enable_recovery() first")
        if not 1 <= max_messages < RXF_MOLD_END_OF_SESSION:
            raise ValueError(f"max_messages must be in 1..{RXF_MOLD_END_OF_SESSION - 1}")
        try:
            ip = _socket.gethostbyname(host)
        except OSError as exc:
            raise ValueError(f"re-request server {host!r}: {exc}") from None
        cdef uint32_t ip_be = int.from_bytes(_socket.inet_aton(ip), "little")
        cdef uint16_t port_be = _socket.htons(port)
        cdef int rc = rxf_rec_connect(&self.st.rec, ip_be, port_be, _rec_request, max_messages,
                                      <uint64_t>(timeout_ms * 1e6), attempts, in_flight, <uint64_t>(delay_ms * 1e6))
        if rc != 0:
            raise OSError(-rc, f"re-request socket to {ip}:{port}")
        self._rerequest_server = f"{ip}:{port}"

    def add_loss_listener(self, callback):
        """``callback(event)`` for each range declared lost (a ``gap`` event),
        after the burst it happened in (books use it to mark themselves suspect)."""
        self._loss_listeners.append(callback)

    def recovery_counters(self):
        """What recovery did (None when it is off): lines, holes filled and
        lost, the reorder buffer's peak, re-requests and their answers, the
        fill latency."""
        if not self.st.recovering:
            return None
        return _recovery_report(&self.st.rec, self._reorder_window_ms, self._rerequest_server, {
            "malformed": self.st.answers_malformed, "wrong_session": self.st.answers_wrong_session,
            "not_asked_or_settled": self.st.answers_not_wanted})

    # --- arrival log (one-way latency) ------------------------------------
    def log_arrivals(self, bint on=True):
        """Record, per MoldUDP64 packet, its first sequence, message count and
        the CLOCK_REALTIME ns when its last message was handled (every C
        handler done; Python callbacks are queued to the end of the burst)."""
        self.st.log_arrivals = on

    def take_arrivals(self):
        """The arrival log so far as numpy (sequence, count, done_ns); emptied."""
        return _take_arrivals(self.st)

    # --- events ----------------------------------------------------------
    def on_event(self, callback):
        """``callback(event_dict)`` for gaps, session changes, end of session,
        implausible sequence jumps and sequence overflows (``EVENT_KINDS``)."""
        self._event_callback = callback

    @property
    def events(self):
        """Events so far, as dicts (kind, session, first, count, rx_ts_ns)."""
        return list(self._events)

    def pop_error(self):
        """The exception a Python callback raised (which stopped the loop), or None."""
        err, self.error = self.error, None
        return err

    def counters(self) -> dict:
        """Everything counted, as plain ints."""
        st = self.st
        per_type = {chr(t): st.per_type[t] for t in range(256) if st.per_type[t]}
        m = st.mold
        errors = {k: v for k, v in {
            "unknown_type": st.err_unknown_type, "bad_length": st.err_bad_length,
            "truncated_block": st.err_truncated_block, "trailing_bytes": st.err_trailing_bytes,
            "short_packet": m.short_packets, "stream_unrecoverable": st.stream_unrecoverable,
            "stream_truncated_tail": st.stream_truncated_tail, "implausible_sequence": m.implausible_packets,
            "sequence_overflow": m.overflow_packets}.items() if v}
        return {
            "packets": st.packets, "bytes": st.bytes, "messages": st.messages, "messages_per_type": per_type,
            "gaps": m.gaps, "gap_messages": m.gap_messages,
            "duplicate_packets": m.duplicate_packets + (st.rec.seq.duplicates if st.recovering else 0),
            "duplicates": m.duplicate_messages + (st.rec.seq.duplicate_messages if st.recovering else 0), "heartbeats": m.heartbeats, "end_of_session": m.end_of_session,
            "session_changes": m.session_changes, "session": m.session[:10].decode("latin-1") if m.have_session else None,
            "next_sequence": m.next_seq if m.have_session else None,
            "sequence_jumps_confirmed": m.jumps_confirmed,
            "implausible_messages": m.implausible_messages, "overflow_messages": m.overflow_messages,
            "implied_lengths": st.implied_length, "lost_in_malformed": st.lost_in_malformed,
            "source_resets": st.source_resets, "errors": errors,
            "recovery": self.recovery_counters(),
        }

    # --- internals ---------------------------------------------------------
    cdef void _route(self) noexcept:
        """Build the dispatch table: per type byte its wire length and what
        its consumers asked for, and its C handlers in attach order. A type
        nobody wants is only length-checked and counted."""
        cdef int t, i
        cdef uint8_t want
        cdef rxf_itch_handlers *h
        cdef TypeHandlers *th
        for t in range(256):
            th = &self.st.by_type[t]
            th.n_on = th.n_wire = 0
            want = 0
            if rxf_itch_wire_size[t]:
                for i in range(self.st.n_handlers):
                    h = self.st.handlers[i]
                    if h.on[t] != NULL:
                        th.on[th.n_on], th.on_ctx[th.n_on] = h.on[t], h.ctx
                        th.n_on += 1
                    if h.struct_size == sizeof(rxf_itch_handlers) and h.wire[t] != NULL:
                        th.wire[th.n_wire], th.wire_ctx[th.n_wire] = h.wire[t], h.ctx
                        th.n_wire += 1
                want = ((ROUTE_ON if th.n_on else 0) | (ROUTE_WIRE if th.n_wire else 0)
                        | (ROUTE_PY if self.st.py_sub[t] else 0) | (ROUTE_BATCH if self.st.batch_sub[t] else 0))
            self.st.route[t] = rxf_itch_wire_size[t] | (<uint16_t>want << 8)

    @staticmethod
    def _types(types):
        if types is None:
            from rxfeed.protocols.itch50.spec import TYPES as types
        out = []
        for c in types:
            b = ord(c)
            if b > 255 or rxf_itch_wire_size[b] == 0:
                raise ValueError(f"not an ITCH 5.0 message type: {c!r}")
            out.append(b)
        return out

    cdef void _flush_pending(self) noexcept:
        """The queued messages to their callbacks, in decode order; an
        exception stops the loop (kept for :meth:`pop_error`)."""
        cdef uint32_t i, n = self.st.n_pending
        cdef PendingRec *p
        cdef uint8_t t
        self.st.n_pending = 0
        if self.error is not None:
            return
        try:
            for i in range(n):
                p = &self.st.pending[i]
                t = <uint8_t>p.rec.hdr.type
                if self._cb[t] != NULL:
                    self._call(t, p)
        except BaseException as exc:
            self.error = exc
            self.st.stop = 1

    cdef int _call(self, uint8_t t, const PendingRec *p) except -1:
        """One queued message to its type's callback: the namedtuple or view
        (reused when the previous one of the type was not kept), and the meta
        if asked. Its objects are released on return, before the next."""
        cdef object msg, meta = None
        if self._cbview[t]:
            msg = rxf_view_take(&self._reuse[t], _VIEW_CLS[t], _EMPTY)
            memcpy(&(<MessageView>msg).rec, &p.rec, rxf_itch_record_size[t])
        else:
            msg = record_to_py(&p.rec, &self._reuse[t])
        if self._cbmeta[t]:
            meta = _meta(p, &self._meta_reuse)
            return rxf_call(<PyObject *>self._cb[t], <PyObject *>msg, <PyObject *>meta)
        return rxf_call(<PyObject *>self._cb[t], <PyObject *>msg, NULL)

    cdef void _flush_batch(self, uint8_t t) noexcept:
        cdef uint32_t n = self.st.batch_n[t]
        cdef size_t nbytes = <size_t>n * rxf_itch_record_size[t]
        self.st.batch_n[t] = 0
        try:
            arr = np.frombuffer((<char *>self.st.batch_buf[t])[:nbytes], dtype=_DTYPES[chr(t)])
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
                ev = {"kind": EVENT_KINDS[e.kind], "session": e.session[:10].decode("latin-1").rstrip(),
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
