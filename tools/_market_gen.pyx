# cython: language_level=3, boundscheck=False, wraparound=False
"""Native core of :mod:`rxfeed.tools.market_generator`: the day's state
machine in C (``_market_gen_engine.c``), run without the GIL, writing NASDAQ
framed chunks; and a MoldUDP64 pcap/pcapng packer for those chunks."""
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memset
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_Resize


def min_messages(unsigned int symbols):
    """The shortest day for ``symbols``: preamble, 64 activity messages, close."""
    return mg_min_messages(symbols)


cdef class MarketDay:
    """One generated day; :meth:`chunk` hands out its messages in order."""
    cdef mg_market *m
    cdef readonly unsigned long long total, emitted
    cdef bytearray scratch
    cdef bint busy

    def __cinit__(self, unsigned int symbols, unsigned long long n_messages, unsigned long long seed, double zipf,
                  unsigned long long max_live, bytes names):
        if len(names) != 8 * symbols:
            raise ValueError("names must be 8 bytes per symbol")
        self.m = mg_new(symbols, n_messages, seed, zipf, max_live, <const uint8_t *>PyBytes_AS_STRING(names))
        if self.m == NULL:
            raise MemoryError("market day: out of memory or arguments out of range")
        self.total, self.emitted = n_messages, 0
        self.scratch = bytearray(1 << 20)

    def __dealloc__(self):
        mg_free(self.m)

    def chunk(self, size_t cap=1 << 20, unsigned long long max_msgs=1 << 62):
        """The next messages, NASDAQ framed, at most ``cap`` bytes (>= 64);
        b"" at the end of the day. Raises MemoryError if the state cannot grow."""
        cdef uint64_t msgs = 0
        cdef size_t used
        if cap < 64:
            raise ValueError("cap must be at least 64 bytes")
        if self.busy:
            raise RuntimeError("MarketDay.chunk is already running in another thread")
        if len(self.scratch) < cap:
            self.scratch = bytearray(cap)
        cdef uint8_t *p = <uint8_t *>PyByteArray_AS_STRING(self.scratch)
        self.busy = True
        try:
            with nogil:
                used = mg_fill(self.m, p, cap, max_msgs, &msgs)
        finally:
            self.busy = False
        self.emitted += msgs
        if msgs == 0 and self.emitted < self.total and max_msgs > 0:
            raise MemoryError("market day: the order state could not grow")
        return PyBytes_FromStringAndSize(<char *>p, used)

    def stats(self):
        """emitted, total, live, peak_live, levels, state_bytes and by_type (letter -> count)."""
        cdef mg_stats s
        mg_get_stats(self.m, &s)
        return {"emitted": s.emitted, "total": self.total, "live": s.live, "peak_live": s.peak_live,
                "levels": s.levels, "state_bytes": s.state_bytes,
                "by_type": {chr(65 + i): s.by_type[i] for i in range(26) if s.by_type[i]}}


def split_framed(const uint8_t[::1] chunk):
    """The messages of a NASDAQ-framed chunk, as a list of bytes."""
    cdef Py_ssize_t at = 0, n = chunk.shape[0], size
    out = []
    while at + 2 <= n:
        size = (chunk[at] << 8) | chunk[at + 1]
        if at + 2 + size > n:
            raise ValueError("a framed message runs past the chunk")
        out.append(PyBytes_FromStringAndSize(<char *>&chunk[at + 2], size))
        at += 2 + size
    if at != n:
        raise ValueError("trailing bytes after the last framed message")
    return out


cdef class MoldPacker:
    """Packs NASDAQ-framed chunks into MoldUDP64 datagrams in Ethernet/IPv4/UDP
    frames: the ``(capture_ns, frame)`` pairs ``frames_for(messages)`` yields,
    byte for byte, for ``write_pcap``/``write_pcapng``."""
    cdef mg_mold p

    def __cinit__(self, bytes frame_header, bytes session, unsigned long long epoch_ns):
        if len(frame_header) != 42 or len(session) != 10:
            raise ValueError("frame_header must be 42 bytes (Ethernet, IPv4, UDP) and session 10")
        memset(&self.p, 0, sizeof(self.p))
        for i in range(42):
            self.p.frame_hdr[i] = frame_header[i]
        for i in range(10):
            self.p.session[i] = session[i]
        self.p.epoch_ns = epoch_ns
        self.p.seq = 1

    @property
    def datagrams(self):
        return self.p.datagrams

    def frames(self, const uint8_t[::1] chunk, bint end=False):
        """The ``(capture_ns, frame)`` pairs completed by ``chunk``; ``end``
        flushes and adds the end-of-session datagram."""
        cdef size_t n = chunk.shape[0], cap = mg_mold_bound(n), used, at = 0, size
        cdef const uint8_t *src = &chunk[0] if n else <const uint8_t *>b""
        out = bytearray(cap)
        cdef uint8_t *dst = <uint8_t *>PyByteArray_AS_STRING(out)
        with nogil:
            used = mg_mold_pack(&self.p, src, n, dst, cap, end)
        if used == <size_t>-1:
            raise ValueError("chunk is not whole NASDAQ-framed messages of at most 1,436 bytes")
        frames = []
        while at < used:
            size = dst[at + 8] | (dst[at + 9] << 8) | (dst[at + 10] << 16) | (<size_t>dst[at + 11] << 24)
            ts = int.from_bytes(out[at:at + 8], "little")
            frames.append((ts, PyBytes_FromStringAndSize(<char *>dst + at + 12, size)))
            at += 12 + size
        return frames
