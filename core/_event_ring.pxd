from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "rxfeed/events.h" nogil:
    ctypedef struct rxf_event:
        uint8_t version
        uint8_t kind
        uint64_t seq

cdef extern from "rxfeed/event_ring.h" nogil:
    ctypedef struct rxf_event_ring:
        pass
    ctypedef struct rxf_event_ring_stats:
        uint64_t offered, queued, dropped, loss_events, peak, waiting, capacity
    rxf_event_ring *rxf_event_ring_new(uint64_t capacity, const char **why)
    void rxf_event_ring_free(rxf_event_ring *r)
    int rxf_event_ring_push(rxf_event_ring *r, const rxf_event *e)
    int rxf_event_ring_flush_loss(rxf_event_ring *r)
    uint32_t rxf_event_ring_pop(rxf_event_ring *r, rxf_event *out, uint32_t max)
    void rxf_event_ring_stats_get(const rxf_event_ring *r, rxf_event_ring_stats *out)




cdef class EventRing:
    cdef rxf_event_ring *ring
    cdef readonly unsigned long long capacity
