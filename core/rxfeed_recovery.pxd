# Cython declarations of the recovery unit (include/rxfeed/recovery.h):
# sequencer + re-request client + request socket, for a session layer.
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "rxfeed/recovery.h" nogil:
    enum: RXF_SEQ_MAX_LINES, RXF_SEQ_LOST_TIMEOUT, RXF_SEQ_LOST_FULL, RXF_SEQ_LOST_END
    enum: RXF_REC_LINE_REREQUEST, RXF_REC_RECV_PER_TICK, RXF_HIST_BUCKETS
    ctypedef struct rxf_seq_block:
        uint64_t first
        uint32_t count
        uint32_t len
        const uint8_t *data
        uint64_t rx_ns
        uint32_t line
    ctypedef void (*rxf_seq_deliver_fn)(void *user, const rxf_seq_block *b, uint32_t skip) noexcept nogil
    ctypedef void (*rxf_seq_lost_fn)(void *user, uint64_t first, uint64_t count, int why, uint64_t now_ns) noexcept nogil
    ctypedef void (*rxf_seq_gap_fn)(void *user, uint64_t first, uint64_t count, uint64_t now_ns) noexcept nogil
    ctypedef struct rxf_seq_callbacks:
        void *user
        rxf_seq_deliver_fn deliver
        rxf_seq_lost_fn lost
        rxf_seq_gap_fn gap
    ctypedef struct rxf_seq_line_stats:
        uint64_t packets, first_arrivals, copies, gaps, gap_messages
        uint64_t last_rx_ns, next_seq
    ctypedef struct rxf_seq_held:
        uint64_t first
        uint32_t count
    ctypedef struct rxf_sequencer:
        uint64_t next
        rxf_seq_held *held
        uint32_t n_held
        uint64_t held_bytes
        uint32_t gap_open
        uint64_t max_wait_ns
        uint64_t blocks, delivered_blocks, delivered_messages, duplicates, redundant
        uint64_t duplicate_messages, redundant_messages, overlap_messages
        uint64_t held_total, held_peak_blocks, held_peak_bytes, too_large
        uint64_t gaps_opened, gaps_filled, lost_ranges, lost_messages
        uint64_t lost_by_why[4]
        rxf_seq_line_stats lines[16]
    ctypedef struct rxf_rr:
        uint64_t requests_sent, messages_requested, retries, given_up_ranges, given_up_messages
        uint64_t dropped_wants, send_errors
        uint32_t n
    ctypedef uint32_t (*rxf_rec_build_fn)(void *user, uint8_t *out, uint32_t cap, uint64_t first,
                                          uint64_t count) noexcept nogil
    ctypedef struct rxf_recovery:
        rxf_sequencer seq
        rxf_rr rr
        int fd
        uint64_t *latency_hist
        uint64_t latency_max_ns
        uint64_t responses, response_bytes, send_errors_errno, recv_errors
        uint64_t filled_by_rerequest
        int last_errno
    uint64_t rxf_rec_now()
    int rxf_rec_init(rxf_recovery *r, const rxf_seq_callbacks *cb, uint32_t max_blocks, uint32_t slot_size,
                     uint64_t max_bytes, uint64_t max_wait_ns)
    int rxf_rec_connect(rxf_recovery *r, uint32_t ip_be, uint16_t port_be, rxf_rec_build_fn build,
                        uint64_t max_count, uint64_t timeout_ns, uint32_t max_attempts, uint32_t max_in_flight,
                        uint64_t request_delay_ns)
    void rxf_rec_destroy(rxf_recovery *r)
    void rxf_rec_offer(rxf_recovery *r, const rxf_seq_block *b, uint64_t now_ns)
    int rxf_rec_wanted(const rxf_recovery *r, uint64_t first, uint64_t count)
    void rxf_rec_tick(rxf_recovery *r, uint64_t now_ns)
    int rxf_rec_expecting(const rxf_recovery *r, uint64_t now_ns)
    int32_t rxf_rec_recv(rxf_recovery *r, uint8_t *buf, uint32_t cap)
    void rxf_rec_flush(rxf_recovery *r, uint64_t now_ns)
    uint64_t rxf_hist_value(uint32_t i)
