# The C state machine of the full-market day generator (_market_gen_engine.h).
from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef extern from "_market_gen_engine.h" nogil:
    ctypedef struct mg_market:
        pass

    ctypedef struct mg_stats:
        uint64_t emitted
        uint64_t live
        uint64_t peak_live
        uint64_t levels
        uint64_t state_bytes
        uint64_t by_type[26]

    ctypedef struct mg_mold:
        uint8_t frame_hdr[42]
        uint8_t session[10]
        uint64_t epoch_ns
        uint64_t seq
        uint64_t datagrams

    uint64_t mg_min_messages(uint32_t symbols)
    mg_market *mg_new(uint32_t symbols, uint64_t n_messages, uint64_t seed, double zipf, uint64_t max_live,
                      const uint8_t *names)
    void mg_free(mg_market *m)
    size_t mg_fill(mg_market *m, uint8_t *out, size_t cap, uint64_t max_msgs, uint64_t *msgs)
    void mg_get_stats(const mg_market *m, mg_stats *s)
    size_t mg_mold_bound(size_t length)
    size_t mg_mold_pack(mg_mold *p, const uint8_t *inp, size_t length, uint8_t *out, size_t cap, int end)
