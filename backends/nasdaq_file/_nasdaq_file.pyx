# cython: language_level=3, boundscheck=False, wraparound=False
"""NASDAQ historical ITCH file (2-byte length-prefixed messages, plain or gzip)
handed to the decoder as stream chunks (RXF_PKT_STREAM): zero copy for plain
files (pointers into the mapping), one inflate for gzip."""
from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport strncpy
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport (RXF_ABI_VERSION, RXF_BACKEND_CAPSULE, RXF_EOF, RXF_ERROR, RXF_PKT_STREAM,
                         RXF_PKT_SOURCE_RESET)

cdef extern from "rxfeed/bytesource.h" nogil:
    int rxf_src_open(rxf_src *src, const char *path, size_t window)
    void rxf_src_close(rxf_src *src)
    const uint8_t *rxf_src_peek(rxf_src *src, size_t want, size_t *avail, int may_refill)
    void rxf_src_advance(rxf_src *src, size_t n)
    int rxf_src_rewind(rxf_src *src)
    int rxf_src_at_end(rxf_src *src)
    void rxf_src_progress(const rxf_src *src, uint64_t *done, uint64_t *total)


cdef int _rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil:
    cdef NasdaqFileState *st = <NasdaqFileState *>ctx
    cdef uint32_t n = 0
    cdef size_t avail
    cdef const uint8_t *p
    while n < max:
        p = rxf_src_peek(&st.src, st.chunk, &avail, n == 0)
        if p == NULL:
            if st.src.error[0]:
                strncpy(st.error, st.src.error, 199)
                return n if n else RXF_ERROR
            if avail == 0:
                if not rxf_src_at_end(&st.src):
                    break  # a refill is needed: next burst
                if st.loops_done >= st.loops:
                    return n if n else RXF_EOF
                st.loops_done += 1
                if st.loops_done >= st.loops:
                    return n if n else RXF_EOF
                if rxf_src_rewind(&st.src) != 0:
                    strncpy(st.error, st.src.error, 199)
                    return n if n else RXF_ERROR
                st.pending_reset = 1
                if n:
                    break
                continue
            if n and not rxf_src_at_end(&st.src) and st.src.gzip:
                break
            p = rxf_src_peek(&st.src, avail, &avail, 0)
        else:
            avail = st.chunk
        pkts[n].data = p
        pkts[n].len = <uint32_t>avail
        pkts[n].flags = RXF_PKT_STREAM | (RXF_PKT_SOURCE_RESET if st.pending_reset else 0)
        pkts[n].rx_ts_ns = 0
        pkts[n].src_ip = 0
        pkts[n].dst_ip = 0
        pkts[n].src_port = 0
        pkts[n].dst_port = 0
        pkts[n].reserved = 0
        st.pending_reset = 0
        rxf_src_advance(&st.src, avail)
        st.chunks += 1
        st.bytes += avail
        n += 1
        if st.src.gzip:
            break  # the next chunk may need the window to slide
    return n


cdef const char *_last_error(void *ctx) noexcept nogil:
    return (<NasdaqFileState *>ctx).error


cdef class NasdaqFileReader:
    """Open a NASDAQ ITCH file (``MMDDYYYY.NASDAQ_ITCH50``, plain or ``.gz``)."""

    def __cinit__(self, str path, unsigned int chunk_size=1 << 18, unsigned long long loops=1):
        if chunk_size < 4096:
            raise ValueError("chunk_size must be at least 4096 bytes")
        self.st = <NasdaqFileState *>calloc(1, sizeof(NasdaqFileState))
        if self.st == NULL:
            raise MemoryError()
        if rxf_src_open(&self.st.src, path.encode(), max(4 * chunk_size, 1 << 22)) != 0:
            msg = self.st.src.error.decode(errors="replace")
            free(self.st)
            self.st = NULL
            raise ValueError(msg)
        self.is_open = True
        self.st.chunk = chunk_size
        self.st.loops = max(loops, 1)
        self.ops.abi_version = RXF_ABI_VERSION
        self.ops.struct_size = sizeof(rxf_backend_ops)
        self.ops.ctx = self.st
        self.ops.rx_burst = _rx_burst
        self.ops.release = NULL
        self.ops.last_error = _last_error

    def __dealloc__(self):
        if self.st != NULL:
            if self.is_open:
                rxf_src_close(&self.st.src)
            free(self.st)

    def capsule(self):
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    def stats(self) -> dict:
        return {"chunks": self.st.chunks, "bytes": self.st.bytes, "loops": self.st.loops_done,
                "gzip": bool(self.st.src.gzip), "drops": {}}

    def progress(self):
        """(bytes done, bytes total) of the file (compressed bytes for gzip)."""
        cdef uint64_t done = 0, total = 0
        if self.is_open:
            rxf_src_progress(&self.st.src, &done, &total)
        return done, total

    def close(self):
        if self.is_open:
            rxf_src_close(&self.st.src)
            self.is_open = False
