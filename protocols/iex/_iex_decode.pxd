# The generated decoder of one IEX feed, chosen at run time: for tests and
# tools (the decoder proper dispatches once per feed, not per message).
from libc.stdint cimport uint8_t, uint32_t
from _iex_records cimport rxf_iex_record, rxf_iex_tops_decode, rxf_iex_deep_decode, rxf_iex_deep_plus_decode


cdef inline int decode_feed(int feed, const uint8_t *p, uint32_t n, rxf_iex_record *r) noexcept nogil:
    """Decode with feed 0 TOPS, 1 DEEP, 2 DEEP+'s decoder; its status."""
    if feed == 0:
        return rxf_iex_tops_decode(p, n, r)
    if feed == 1:
        return rxf_iex_deep_decode(p, n, r)
    return rxf_iex_deep_plus_decode(p, n, r)
