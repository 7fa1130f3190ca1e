# cython: language_level=3, boundscheck=False, wraparound=False
"""Built-in C-level ITCH handlers, attached through the same handler-table
capsule any Cython/C consumer uses (see itch50_handlers.h).

``ChecksumHandler`` reads every field of every record (as the record's
64-bit words, padding is zeroed by the decoder) and sums them: the work of a
consumer that touches all fields, used by tests and by the decode benchmark."""
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memset
from cpython.pycapsule cimport PyCapsule_New
from _records cimport rxf_itch_record, rxf_itch_record_size, RXF_ITCH_NUM_TYPES
from itch50_handlers cimport (RXF_ITCH_HANDLERS_VERSION, RXF_ITCH_HANDLERS_CAPSULE, rxf_itch_meta,
                              rxf_itch_handlers)


cdef void _checksum(void *ctx, const rxf_itch_record *rec, const rxf_itch_meta *meta) noexcept nogil:
    cdef ChecksumState *s = <ChecksumState *>ctx
    cdef uint8_t t = <uint8_t>rec.hdr.type
    cdef const uint64_t *w = <const uint64_t *>rec
    cdef uint64_t acc = 0
    cdef unsigned int i, n = rxf_itch_record_size[t] // 8  # only decoded records reach handlers
    for i in range(n):
        acc += w[i]
    s.checksum += acc
    s.count += 1
    s.per_type[t] += 1


cdef class ChecksumHandler:
    """Sum of every 64-bit word of every record of ``types`` (None: all)."""

    def __cinit__(self, types=None):
        memset(&self.table, 0, sizeof(self.table))
        memset(&self.state, 0, sizeof(self.state))
        self.table.version = RXF_ITCH_HANDLERS_VERSION
        self.table.struct_size = sizeof(rxf_itch_handlers)
        self.table.ctx = &self.state
        from rxfeed.protocols.itch50.spec import TYPES
        for c in (TYPES if types is None else types):
            self.table.on[ord(c)] = _checksum

    def capsule(self):
        """Handler table for ``ItchDecoder.add_handlers`` (keeps this object alive)."""
        return PyCapsule_New(&self.table, RXF_ITCH_HANDLERS_CAPSULE, NULL)

    @property
    def count(self) -> int:
        return self.state.count

    @property
    def checksum(self) -> int:
        return self.state.checksum

    def per_type(self) -> dict:
        return {chr(t): self.state.per_type[t] for t in range(256) if self.state.per_type[t]}
