# cython: language_level=3, boundscheck=False, wraparound=False
"""The SPSC event ring (``rxfeed/event_ring.h``) for Python: a producer in C
(a protocol's books, given :meth:`EventRing.capsule`) pushes events from the
loop; one consumer thread pops them as numpy records (:data:`EVENT_DTYPE`)."""
from cpython.pycapsule cimport PyCapsule_New

import numpy as np

from rxfeed.events import EVENT_DTYPE, EVENT_SIZE, check_events

RXF_EVENT_RING_CAPSULE = b"rxfeed.event_ring"
cdef const char *RXF_EVENT_RING_CAPSULE_C = "rxfeed.event_ring"


cdef class EventRing:
    """A bounded single-producer / single-consumer ring of event records.

    The producer (C, on the loop thread) never waits: a full ring drops the
    event, counts it and reports the drops in order as one ``LOSS`` (reason
    ``RING``) event. One consumer thread calls :meth:`pop`.

    :param capacity: records, a power of two (2 .. 2**30); 64 bytes each.
    """

    def __cinit__(self, unsigned long long capacity):
        cdef const char *why = NULL
        self.ring = rxf_event_ring_new(capacity, &why)
        if self.ring == NULL:
            if why != NULL:
                raise ValueError(f"event ring capacity {capacity}: {why.decode()}")
            raise MemoryError(f"event ring of {capacity} records")
        self.capacity = capacity

    def __dealloc__(self):
        if self.ring != NULL:
            rxf_event_ring_free(self.ring)
            self.ring = NULL

    def capsule(self):
        """The ring's ``rxf_event_ring *`` for a C producer (capsule name
        ``rxfeed.event_ring``); keep this object alive while it pushes."""
        return PyCapsule_New(<void *>self.ring, RXF_EVENT_RING_CAPSULE_C, NULL)

    def pop(self, unsigned int max_events=65536):
        """Up to ``max_events`` waiting records, in order (a new array of
        :data:`~rxfeed.events.EVENT_DTYPE`, empty when none). Consumer thread only."""
        out = np.empty(max_events, dtype=EVENT_DTYPE)
        cdef uint8_t[::1] raw = out.view(np.uint8) if max_events else None
        cdef uint32_t n = 0
        if max_events:
            with nogil:
                n = rxf_event_ring_pop(self.ring, <rxf_event *>&raw[0], max_events)
        return out[:n]

    def push(self, events) -> int:
        """Offer records from Python (tools and tests; the loop pushes from C):
        checked first (:class:`~rxfeed.events.EventError`), then each pushed
        as ``rxf_event_ring_push`` does; how many were queued. Producer thread only."""
        arr = np.ascontiguousarray(events, dtype=EVENT_DTYPE)
        check_events(arr)
        cdef const uint8_t[::1] raw = arr.view(np.uint8) if len(arr) else None
        cdef Py_ssize_t i, n = len(arr)
        cdef unsigned long long queued = 0
        with nogil:
            for i in range(n):
                queued += rxf_event_ring_push(self.ring, <const rxf_event *>&raw[i * sizeof(rxf_event)])
        return queued

    def flush_loss(self) -> bool:
        """Write the LOSS event of drops not reported yet (the producer's
        side: call it when the producer has stopped). False while still full."""
        return bool(rxf_event_ring_flush_loss(self.ring))

    def stats(self) -> dict:
        """Counters, readable from any thread: offered, queued, dropped,
        loss_events, peak (most waiting at once, an upper bound), waiting, capacity."""
        cdef rxf_event_ring_stats s
        rxf_event_ring_stats_get(self.ring, &s)
        return {"offered": s.offered, "queued": s.queued, "dropped": s.dropped, "loss_events": s.loss_events,
                "peak": s.peak, "waiting": s.waiting, "capacity": s.capacity}
