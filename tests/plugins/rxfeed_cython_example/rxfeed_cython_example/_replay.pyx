# cython: language_level=3, boundscheck=False, wraparound=False
"""The ``example_cython`` backend's reader: replays a record file (see
``records.py``) through the backend ABI. ``rx_burst`` and ``release`` run
without the GIL and hand out pointers into the file's bytes, which this
object keeps alive. Every length is checked before it is used: a record that
does not fit the file ends the run with ``RXF_ERROR`` and a text saying where."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdio cimport snprintf
from libc.string cimport memcpy, memset
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport RXF_BACKEND_CAPSULE, RXF_EOF, RXF_ERROR, RXF_PKT_SOURCE_RESET, fill_backend_ops, rxf_packet

from .records import MAGIC

cdef enum:
    HEADER_SIZE = 24      # records.HEADER: <IQIIHH
    MAX_PAYLOAD = 65507   # the largest UDP payload over IPv4


cdef inline uint32_t _u32(const uint8_t *p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)  # the file is little-endian, as x86 and ARM64 are
    return v


cdef inline uint64_t _u64(const uint8_t *p) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, p, 8)
    return v


cdef inline uint16_t _u16(const uint8_t *p) noexcept nogil:
    cdef uint16_t v
    memcpy(&v, p, 2)
    return v


cdef int _fail(ReplayState *st, const char *what, uint64_t value) noexcept nogil:
    snprintf(st.error, sizeof(st.error), "record %llu at byte %llu: %s (%llu)",
             <unsigned long long>st.records, <unsigned long long>st.pos, what, <unsigned long long>value)
    st.failed = 1
    return RXF_ERROR


cdef int _next_record(ReplayState *st, rxf_packet *pkt) noexcept nogil:
    """Fill ``pkt`` from the record at ``st.pos``: 1; 0 at the end of the
    pass; RXF_ERROR when the record does not fit the file."""
    cdef size_t left = st.size - st.pos
    cdef const uint8_t *h = st.base + st.pos
    cdef uint32_t n
    if left == 0:
        return 0
    if left < HEADER_SIZE:
        return _fail(st, "header cut short by the end of the file; bytes left", left)
    n = _u32(h)
    if n > MAX_PAYLOAD:
        return _fail(st, "payload length larger than a UDP payload can be", n)
    if n > left - HEADER_SIZE:
        return _fail(st, "payload runs past the end of the file; payload length", n)
    memset(pkt, 0, sizeof(rxf_packet))
    pkt.data = h + HEADER_SIZE
    pkt.len = n
    pkt.rx_ts_ns = _u64(h + 4)
    pkt.src_ip = _u32(h + 12)
    pkt.dst_ip = _u32(h + 16)
    pkt.src_port = _u16(h + 20)
    pkt.dst_port = _u16(h + 22)
    if st.pending_reset:
        pkt.flags = RXF_PKT_SOURCE_RESET
        st.pending_reset = 0
    st.pos += HEADER_SIZE + n
    st.records += 1
    st.packets += 1
    st.bytes += n
    return 1


cdef bint _another_pass(ReplayState *st) noexcept nogil:
    """The pass ended: start the next one if any is left."""
    st.loops_done += 1
    if st.loops_done >= st.loops:
        return False
    st.pos = st.start
    st.records = 0
    st.pending_reset = 1
    return True


cdef int _rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil:
    cdef ReplayState *st = <ReplayState *>ctx
    cdef uint32_t n = 0
    cdef int rc
    if st.failed:
        return RXF_ERROR
    if st.ended:
        return RXF_EOF
    while n < max:
        rc = _next_record(st, &pkts[n])
        if rc == 1:
            n += 1
            continue
        if rc == RXF_ERROR:
            break  # the packets already in the burst first; the error on the next call
        if n:
            break  # a pass ends with its own burst
        if not _another_pass(st):
            st.ended = 1
            return RXF_EOF
    if n == 0 and st.failed:
        return RXF_ERROR
    st.outstanding = n
    return <int>n


cdef void _release(void *ctx, rxf_packet *pkts, uint32_t n) noexcept nogil:
    cdef ReplayState *st = <ReplayState *>ctx
    if n != st.outstanding:
        st.release_mismatches += 1
    st.released += n
    st.outstanding = 0


cdef const char *_last_error(void *ctx) noexcept nogil:
    return (<ReplayState *>ctx).error


cdef class ReplayReader:
    """Replay the record file ``path`` ``loops`` times (read into memory at once)."""

    def __cinit__(self, str path, unsigned long long loops=1):
        with open(path, "rb") as f:
            self.data = f.read()
        if self.data[:len(MAGIC)] != MAGIC:
            raise ValueError(f"{path}: not an example_cython record file (it does not start with {MAGIC!r})")
        memset(&self.st, 0, sizeof(ReplayState))
        self.st.base = <const uint8_t *><const char *>self.data
        self.st.size = len(self.data)
        self.st.start = self.st.pos = len(MAGIC)
        self.st.loops = max(loops, 1)
        fill_backend_ops(&self.ops, &self.st, _rx_burst, _release, _last_error)

    def capsule(self):
        """The backend table, valid while this object lives."""
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    def stats(self) -> dict:
        """Packets and bytes handed out, passes played, releases."""
        st = &self.st
        out = {"packets": st.packets, "bytes": st.bytes, "loops": st.loops_done, "released": st.released,
               "drops": {}}
        if st.release_mismatches:
            out["warnings"] = [f"{st.release_mismatches} releases did not match the burst handed out"]
        return out

    def progress(self):
        """(bytes read, file size) of the current pass."""
        return self.st.pos, self.st.size

    def close(self):
        """Nothing more is handed out (the bytes stay until this object goes)."""
        self.st.ended = 1
