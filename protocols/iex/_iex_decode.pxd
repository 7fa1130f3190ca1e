# The generated decoder of one IEX feed, chosen at run time by the feed's
# index (0 TOPS, 1 DEEP, 2 DEEP+): the decoder, the books' test path, tools.
from libc.stdint cimport uint8_t, uint32_t
from _iex_records cimport (rxf_iex_record, rxf_iex_tops_decode, rxf_iex_deep_decode, rxf_iex_deep_plus_decode,
                           rxf_iex_tops_record_size, rxf_iex_deep_record_size, rxf_iex_deep_plus_record_size)


cdef inline int decode_feed(int feed, const uint8_t *p, uint32_t n, rxf_iex_record *r) noexcept nogil:
    """Decode with feed 0 TOPS, 1 DEEP, 2 DEEP+'s decoder; its status."""
    if feed == 0:
        return rxf_iex_tops_decode(p, n, r)
    if feed == 1:
        return rxf_iex_deep_decode(p, n, r)
    return rxf_iex_deep_plus_decode(p, n, r)


cdef inline uint32_t record_size_of(int feed, uint8_t t) noexcept nogil:
    """The decoded record's size of type ``t`` in the feed (0: not a type of it)."""
    if feed == 0:
        return rxf_iex_tops_record_size[t]
    if feed == 1:
        return rxf_iex_deep_record_size[t]
    return rxf_iex_deep_plus_record_size[t]
