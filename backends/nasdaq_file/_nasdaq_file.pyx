# cython: language_level=3, boundscheck=False, wraparound=False
"""NASDAQ historical ITCH file (2-byte length-prefixed messages, plain or gzip;
a file, a pipe or a FIFO) handed to the decoder as stream chunks
(RXF_PKT_STREAM) that end on message boundaries: pointers into the byte
source's read window, no copy after the read.

The backend frames the file itself (a zero prefix is resolved from the ITCH
5.0 type table, as the decoder does) so that a zero prefix before an unknown
type - which cannot be framed - is found here: its byte offset is recorded,
the bytes up to the next point where several messages in a row frame
plausibly are skipped and counted, and the stream goes on from there."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.stdio cimport snprintf
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport (fill_backend_ops, RXF_BACKEND_CAPSULE, RXF_EOF, RXF_ERROR, RXF_PKT_STREAM,
                         RXF_PKT_SOURCE_RESET)
from rxfeed_src cimport (rxf_src_open, rxf_src_open_fd, rxf_src_close, rxf_src_peek, rxf_src_advance,
                         rxf_src_rewind, rxf_src_ended, rxf_src_progress, rxf_src_mapped)

from rxfeed import sources

cdef extern from *:
    void __builtin_prefetch(const void *addr) nogil

cdef enum:
    SYNC_CHAIN = 8        # messages in a row that must frame plausibly to resynchronise
    SYNC_SPAN = 8 * 64    # bytes such a chain can span (ITCH 5.0 messages are < 64 bytes)
    MAX_FRAME = 2 + 65535
    PREFETCH_AHEAD = 1024  # bytes: a few pages' worth of messages ahead of the walk
    CHUNK_OK = 1
    CHUNK_LATER = 2
    CHUNK_END = 0


cdef inline long _frame_len(const uint16_t *wire, const uint8_t *q, size_t avail) noexcept nogil:
    """Framed length (prefix included) at q; 0: more bytes needed; -1: cannot
    be framed - a zero prefix before an unknown type, or a prefix that
    disagrees with its (known) type's size (a corrupt prefix would misframe
    everything after it). An unknown type behind a non-zero prefix is passed
    on whole (the decoder counts it)."""
    cdef uint32_t L
    if avail < 3:
        return 0
    L = (<uint32_t>q[0] << 8) | q[1]
    if L != 0:
        return 2 + L if wire[q[2]] == 0 or wire[q[2]] == L else -1
    return 2 + wire[q[2]] if wire[q[2]] else -1


cdef inline long _plausible(const uint16_t *wire, const uint8_t *q, size_t avail) noexcept nogil:
    """Framed length if q starts a known type whose prefix is zero or its size; else -1."""
    cdef uint32_t L
    if avail < 3 or wire[q[2]] == 0:
        return -1
    L = (<uint32_t>q[0] << 8) | q[1]
    if L != 0 and L != wire[q[2]]:
        return -1
    return 2 + wire[q[2]]


cdef bint _confirmed(const uint16_t *wire, const uint8_t *q, size_t avail, bint final) noexcept nogil:
    """SYNC_CHAIN plausible messages in a row start at q (or, at the end of
    the data, plausible messages up to its last byte)."""
    cdef size_t pos = 0
    cdef long f
    cdef int k
    for k in range(SYNC_CHAIN):
        if final and pos == avail and k > 0:
            return True
        f = _plausible(wire, q + pos, avail - pos)
        if f < 0 or pos + <size_t>f > avail:
            return False
        pos += <size_t>f
    return True


cdef void _end_resync(NasdaqFileState *st, uint64_t skipped) noexcept nogil:
    cdef uint64_t i = st.unframeable - 1
    st.skipped_bytes += skipped
    if i < MAX_UNFRAMEABLE_KEPT:
        st.bad_skipped[i] += skipped


cdef int _resync(NasdaqFileState *st, int may_refill) noexcept nogil:
    """Skip to the next confirmed message start. CHUNK_OK: found (or the data
    ended); CHUNK_LATER: a refill is needed first."""
    cdef size_t avail, i, scan
    cdef const uint8_t *p
    cdef bint final
    while True:
        p = rxf_src_peek(&st.src, SYNC_SPAN, &avail, may_refill)
        final = p == NULL
        if final:
            if not rxf_src_ended(&st.src) and not st.src.error[0]:
                return CHUNK_LATER
            p = rxf_src_peek(&st.src, 0, &avail, 0)
        scan = avail if final else avail - SYNC_SPAN + 1
        for i in range(scan):
            if _confirmed(st.wire, p + i, avail - i, final):
                rxf_src_advance(&st.src, i)
                _end_resync(st, i)
                st.resyncing = 0
                return CHUNK_OK
        rxf_src_advance(&st.src, scan)
        _end_resync(st, scan)
        if final:
            st.resyncing = 0
            return CHUNK_OK
        if not may_refill:
            return CHUNK_LATER


cdef void _start_resync(NasdaqFileState *st) noexcept nogil:
    cdef uint64_t i = st.unframeable
    if i < MAX_UNFRAMEABLE_KEPT:
        st.bad_offset[i] = st.src.offset
        st.bad_skipped[i] = 0
    st.unframeable += 1
    st.resyncing = 1


cdef size_t _whole_messages(NasdaqFileState *st, const uint8_t *p, size_t avail, long *first) noexcept nogil:
    """Bytes of the whole messages at p (within avail). *first: the framed
    length of the message after them (0: unknown yet, -1: unframeable)."""
    cdef size_t pos = 0
    cdef long f
    while True:
        f = _frame_len(st.wire, p + pos, avail - pos)
        if f <= 0 or pos + <size_t>f > avail:
            first[0] = f
            return pos
        __builtin_prefetch(p + pos + PREFETCH_AHEAD)  # a miss here would stall the whole walk
        pos += <size_t>f


cdef int _not_whole(NasdaqFileState *st, int may_refill, long first, const uint8_t **out,
                    size_t *out_len) noexcept nogil:
    """The next message is not whole in the window: read on until it is
    (CHUNK_OK, it alone), later (CHUNK_LATER), or, when the data ends inside
    it, hand out the cut tail (the decoder counts it) or RXF_ERROR."""
    cdef size_t avail
    cdef const uint8_t *p = rxf_src_peek(&st.src, <size_t>first if first > 0 else 3, &avail, may_refill)
    if p != NULL:
        out[0] = p
        out_len[0] = <size_t>first if first > 0 else 0
        return CHUNK_OK
    if not rxf_src_ended(&st.src):
        return CHUNK_LATER
    if avail == 0:
        return RXF_ERROR if st.src.error[0] else CHUNK_END
    out[0] = rxf_src_peek(&st.src, avail, &avail, 0)
    out_len[0] = avail
    return CHUNK_OK


cdef int _next_chunk(NasdaqFileState *st, int may_refill, const uint8_t **out, size_t *out_len) noexcept nogil:
    """CHUNK_OK: whole messages (or, at the very end, a cut one) in *out
    (possibly none: call again); CHUNK_LATER: a refill is needed first;
    CHUNK_END: end of this pass; RXF_ERROR."""
    cdef size_t avail, take
    cdef long first
    cdef const uint8_t *p
    while True:
        if st.resyncing and _resync(st, may_refill) == CHUNK_LATER:
            return CHUNK_LATER
        p = rxf_src_peek(&st.src, st.chunk, &avail, may_refill)
        if p != NULL:
            avail = st.chunk
        elif avail == 0:
            return RXF_ERROR if st.src.error[0] else (CHUNK_END if rxf_src_ended(&st.src) else CHUNK_LATER)
        else:  # less than a chunk: the end of the data, or what a pipe gave so far
            p = rxf_src_peek(&st.src, avail, &avail, 0)
        if not st.check_framing:  # raw bytes: the decoder frames (carrying a message cut at the end)
            out[0] = p
            out_len[0] = avail
            return CHUNK_OK
        take = _whole_messages(st, p, avail, &first)
        if take:
            out[0] = p
            out_len[0] = take
            return CHUNK_OK
        if first < 0:
            _start_resync(st)
            continue
        return _not_whole(st, may_refill, first, out, out_len)


cdef void _set_packet(rxf_packet *pkt, const uint8_t *p, size_t n, int reset) noexcept nogil:
    pkt.data = p
    pkt.len = <uint32_t>n
    pkt.flags = RXF_PKT_STREAM | (RXF_PKT_SOURCE_RESET if reset else 0)
    pkt.rx_ts_ns = 0
    pkt.src_ip = 0
    pkt.dst_ip = 0
    pkt.src_port = 0
    pkt.dst_port = 0
    pkt.line = 0


cdef int _end_of_pass(NasdaqFileState *st) noexcept nogil:
    """0: another pass starts; RXF_EOF; RXF_ERROR (rewind failed)."""
    if st.loops_done >= st.loops:
        return RXF_EOF
    st.loops_done += 1
    if st.loops_done >= st.loops:
        return RXF_EOF
    if rxf_src_rewind(&st.src) != 0:
        return RXF_ERROR
    st.pending_reset = 1
    return 0


cdef void _set_error(NasdaqFileState *st) noexcept nogil:
    """The source's error, with how much of the stream was handed out before it."""
    snprintf(st.error, sizeof(st.error), "%s (after %llu bytes of the %s stream)", st.src.error,
             <unsigned long long>st.src.offset, b"decompressed" if st.src.gzip else b"file")


cdef int _rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil:
    cdef NasdaqFileState *st = <NasdaqFileState *>ctx
    cdef uint32_t n = 0
    cdef size_t take
    cdef const uint8_t *p
    cdef int rc
    while n < max:
        rc = _next_chunk(st, n == 0, &p, &take)  # refill only before the first: handed-out bytes stay put
        if rc == CHUNK_OK and take == 0:
            continue  # a long message is whole now: frame it next time round
        if rc == CHUNK_LATER:
            break
        if rc == RXF_ERROR:
            _set_error(st)
            return n if n else RXF_ERROR
        if rc == CHUNK_END:
            if n:
                break  # a new pass rewinds the window: end this burst first
            rc = _end_of_pass(st)
            if rc == RXF_ERROR:
                _set_error(st)
            if rc != 0:
                return rc
            continue
        _set_packet(&pkts[n], p, take, st.pending_reset)
        st.pending_reset = 0
        rxf_src_advance(&st.src, take)
        st.chunks += 1
        st.bytes += take
        n += 1
    return n


cdef const char *_last_error(void *ctx) noexcept nogil:
    return (<NasdaqFileState *>ctx).error


cdef class NasdaqFileReader:
    """Open a NASDAQ ITCH file (``MMDDYYYY.NASDAQ_ITCH50``, plain or ``.gz``;
    a regular file, a pipe or a FIFO). ``check_framing=False``: raw chunks,
    no walk here (see NasdaqFileConfig)."""

    def __cinit__(self, str path, unsigned int chunk_size=1 << 18, unsigned long long loops=1, bint mmap=True,
                  bint check_framing=True):
        if chunk_size < 4096:
            raise ValueError("chunk_size must be at least 4096 bytes")
        self.st = <NasdaqFileState *>calloc(1, sizeof(NasdaqFileState))
        if self.st == NULL:
            raise MemoryError()
        held = sources.claim(path)  # a pipe whose first bytes were read to detect the format
        cdef bytes prefix = held[1] if held else b""
        cdef size_t window = max(4 * chunk_size, 1 << 22)
        cdef int rc = (rxf_src_open_fd(&self.st.src, held[0], path.encode(), prefix, len(prefix), window, mmap) if held
                       else rxf_src_open(&self.st.src, path.encode(), window, mmap))
        if rc != 0:
            msg = self.st.src.error.decode(errors="replace")
            free(self.st)
            self.st = NULL
            raise ValueError(msg)
        self.is_open = True
        if loops > 1 and not self.st.src.seekable:
            raise ValueError(f"{path}: cannot loop: a pipe or FIFO is read once (give a regular file)")
        self.st.chunk = chunk_size
        self.st.check_framing = check_framing
        self.st.loops = max(loops, 1)
        from rxfeed.protocols.itch50.spec import BY_TYPE

        for t, m in BY_TYPE.items():
            self.st.wire[ord(t)] = m.wire_size
        fill_backend_ops(&self.ops, self.st, _rx_burst, NULL, _last_error)

    def __dealloc__(self):
        if self.st != NULL:
            if self.is_open:
                rxf_src_close(&self.st.src)
            free(self.st)

    @property
    def mapped(self) -> bool:
        """True when the file is mapped (pointers into the mapping, no copy)."""
        return self.is_open and rxf_src_mapped(&self.st.src) != 0

    def capsule(self):
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    def stats(self) -> dict:
        """Chunks and bytes handed out; unframeable points (offset, bytes
        skipped) and gzip trailing bytes, with warnings for the summary."""
        st = self.st
        out = {"chunks": st.chunks, "bytes": st.bytes, "loops": st.loops_done, "gzip": bool(st.src.gzip),
               "drops": {}}
        warnings = []
        if st.unframeable:
            kept = min(st.unframeable, MAX_UNFRAMEABLE_KEPT)
            out["unframeable"] = [{"offset": st.bad_offset[i], "skipped_bytes": st.bad_skipped[i]}
                                  for i in range(kept)]
            out["drops"]["unframeable_bytes"] = st.skipped_bytes
            warnings += [f"unframeable data at byte {e['offset']} (a zero length prefix before an unknown "
                         f"message type, or a length prefix that disagrees with its message type): "
                         f"{e['skipped_bytes']} bytes skipped to the next message"
                         for e in out["unframeable"]]
            if st.unframeable > kept:
                warnings.append(f"{st.unframeable - kept} more unframeable points; {st.skipped_bytes} bytes "
                                "skipped in all")
        if st.src.gzip:
            out["gzip_trailing_bytes"] = st.src.gz_trailing
            if st.src.gz_trailing:
                warnings.append(sources.trailing_warning(st.src.gz_trailing, st.src.gz_trailing_partial))
        if warnings:
            out["warnings"] = warnings
        return out

    def progress(self):
        """(bytes done, bytes total) of the file (compressed bytes for gzip;
        total 0 for a pipe)."""
        cdef uint64_t done = 0, total = 0
        if self.is_open:
            rxf_src_progress(&self.st.src, &done, &total)
        return done, total

    def close(self):
        if self.is_open:
            rxf_src_close(&self.st.src)
            self.is_open = False
