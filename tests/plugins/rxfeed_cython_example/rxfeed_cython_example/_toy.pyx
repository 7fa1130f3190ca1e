# cython: language_level=3, boundscheck=False, wraparound=False
"""The TOY protocol (``rxfeed_example.toy``) decoded in Cython through the
decoder ABI: a datagram is ``[u32 BE sequence][u8 count]`` then ``count``
messages ``[u8 type][u8 len][len bytes]``. Counts as the Python decoder
does: messages per type, gap events (gaps) and the datagrams they skipped
(gap_messages), messages of datagrams
already seen (duplicates) and datagrams cut short (malformed); every length
is checked before a byte is read."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memset
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport RXF_DECODER_CAPSULE, RXF_PKT_SOURCE_RESET, fill_decoder_ops, rxf_packet

cdef enum:
    TOY_HEADER = 5   # u32 sequence, u8 count
    MSG_HEADER = 2   # u8 type, u8 len


cdef void _datagram(ToyState *st, const uint8_t *d, uint32_t n) noexcept nogil:
    cdef uint64_t seq
    cdef uint32_t pos = TOY_HEADER, i, body
    cdef bint new
    if n < TOY_HEADER:
        st.malformed += 1
        return
    seq = (<uint64_t>d[0] << 24) | (<uint64_t>d[1] << 16) | (<uint64_t>d[2] << 8) | d[3]
    new = seq >= st.next_seq
    if new:
        if seq > st.next_seq:
            st.gaps += 1
            st.gap_messages += seq - st.next_seq
        st.next_seq = seq + 1
    for i in range(d[4]):
        if n - pos < MSG_HEADER:
            st.malformed += 1
            return
        body = d[pos + 1]
        if n - pos - MSG_HEADER < body:
            st.malformed += 1
            return
        if new:
            st.per_type[d[pos]] += 1
            st.messages += 1
        else:
            st.duplicates += 1
        pos += MSG_HEADER + body


cdef int _on_burst(void *ctx, const rxf_packet *pkts, uint32_t n) noexcept nogil:
    cdef ToyState *st = <ToyState *>ctx
    cdef uint32_t i
    for i in range(n):
        st.packets += 1
        if pkts[i].flags & RXF_PKT_SOURCE_RESET:
            st.next_seq = 1  # the source rewound: its sequences start again
        _datagram(st, pkts[i].data, pkts[i].len)
    return 0


cdef const char *_last_error(void *ctx) noexcept nogil:
    return (<ToyState *>ctx).error  # never stops the loop: always ""


cdef class ToyCounter:
    """The decoder state and its ``rxf_decoder_ops`` table."""

    def __cinit__(self):
        memset(&self.st, 0, sizeof(ToyState))
        self.st.next_seq = 1
        fill_decoder_ops(&self.ops, &self.st, _on_burst, NULL, _last_error)

    def capsule(self):
        """The decoder table, valid while this object lives."""
        return PyCapsule_New(&self.ops, RXF_DECODER_CAPSULE, NULL)

    def counters(self) -> dict:
        """The keys of the Python TOY decoder's counters."""
        st = &self.st
        return {"packets": st.packets, "messages": st.messages,
                "messages_per_type": {chr(t): st.per_type[t] for t in range(256) if st.per_type[t]},
                "gaps": st.gaps, "gap_messages": st.gap_messages, "duplicates": st.duplicates,
                "errors": {"malformed": st.malformed} if st.malformed else {}}
