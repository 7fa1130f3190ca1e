# A decoder's arrival log (``log_arrivals`` / ``take_arrivals``): per packet,
# its first sequence number, message count and the CLOCK_REALTIME ns when its
# last message was handled, for one-way latency against a sender's records.
# Included by a decoder's .pyx whose DecoderState has ``arrivals``,
# ``n_arrivals`` and ``cap_arrivals``; it knows no protocol.

cdef extern from "<time.h>" nogil:
    ctypedef struct rxf_timespec "struct timespec":
        long tv_sec
        long tv_nsec
    int rxf_clock_gettime "clock_gettime"(int clk, rxf_timespec *ts)
    enum: CLOCK_REALTIME


cdef inline void _arrival(DecoderState *st, uint64_t seq, uint32_t count) noexcept nogil:
    """Log (first sequence, count, CLOCK_REALTIME ns when the packet's last
    message was handled) for one-way latency against a sender's records."""
    cdef rxf_timespec ts
    cdef uint64_t *a
    if st.n_arrivals == st.cap_arrivals:
        a = <uint64_t *>realloc(st.arrivals, (st.cap_arrivals * 2 + 4096) * 3 * sizeof(uint64_t))
        if a == NULL:
            return
        st.arrivals = a
        st.cap_arrivals = st.cap_arrivals * 2 + 4096
    rxf_clock_gettime(CLOCK_REALTIME, &ts)
    a = st.arrivals + st.n_arrivals * 3
    a[0] = seq
    a[1] = count
    a[2] = <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec
    st.n_arrivals += 1


cdef object _take_arrivals(DecoderState *st):
    """The log so far as numpy (sequence, count, done_ns); emptied."""
    cdef uint64_t n = st.n_arrivals
    dt = np.dtype([("sequence", "<u8"), ("count", "<u8"), ("done_ns", "<u8")])
    out = (np.frombuffer((<char *>st.arrivals)[:n * 24], dtype=dt).copy() if n else np.empty(0, dt))
    st.n_arrivals = 0
    return out
