# cython: language_level=3, boundscheck=False, wraparound=False
"""Built-in C-level ITCH handlers, attached through the same handler-table
capsule any Cython/C consumer uses (see itch50_handlers.h).

``ChecksumHandler`` reads every field of every record (as the record's
64-bit words, padding is zeroed by the decoder) and sums them: the work of a
consumer that touches all fields, used by tests and by the decode benchmark.

``AddOrderTwoFields`` reads shares and price of every 'A', through the wire
overlay (``itch50_wire.h``, no decode) or the decoded record: the two
benchmarked ways for a handler that wants a few fields of one type.
``WireProbe`` is a wire handler of every type for the tests: it counts calls
whose length is not the type's and sums header fields read by the overlay."""
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memset
from cpython.pycapsule cimport PyCapsule_New
from _records cimport rxf_itch_record, rxf_itch_record_size, rxf_itch_wire_size, RXF_ITCH_NUM_TYPES
from itch50_handlers cimport (RXF_ITCH_HANDLERS_VERSION, RXF_ITCH_HANDLERS_CAPSULE, RXF_ITCH_HANDLERS_V1_SIZE,
                              rxf_itch_meta, rxf_itch_handlers)
from itch50_wire cimport *

include "_wire_fields.pxi"


def wire_fields(bytes msg not None) -> dict:
    """Every field of one message read through its generated wire accessor
    (text as bytes, padding kept). The message must hold its type's wire length."""
    if len(msg) < 1 or rxf_itch_wire_size[<uint8_t>msg[0]] == 0:
        raise ValueError(f"not an ITCH 5.0 message: {msg[:1]!r}")
    if len(msg) != rxf_itch_wire_size[<uint8_t>msg[0]]:
        raise ValueError(f"bad length {len(msg)} for ITCH 5.0 type {msg[:1]!r}")
    return _wire_fields(<const uint8_t *>msg)


cdef void _init_table(rxf_itch_handlers *table, void *ctx) noexcept:
    """An empty table of the current layout for ``ctx``."""
    memset(table, 0, sizeof(rxf_itch_handlers))
    table.version = RXF_ITCH_HANDLERS_VERSION
    table.struct_size = sizeof(rxf_itch_handlers)
    table.ctx = ctx


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


cdef void _poison(void *ctx, const uint8_t *msg, uint32_t n, const rxf_itch_meta *meta) noexcept nogil:
    (<ChecksumState *>ctx).wire_calls += 1


cdef class ChecksumHandler:
    """Sum of every 64-bit word of every record of ``types`` (None: all).
    ``first_layout``: the table says it ends after ``on[]`` (a consumer built
    before wire handlers existed); its ``wire[]`` is filled with a handler
    that counts calls (``wire_calls``), which the decoder must never make."""

    def __cinit__(self, types=None, *, bint first_layout=False):
        memset(&self.state, 0, sizeof(self.state))
        _init_table(&self.table, &self.state)
        from rxfeed.protocols.itch50.spec import TYPES
        for c in (TYPES if types is None else types):
            self.table.on[ord(c)] = _checksum
            if first_layout:
                self.table.wire[ord(c)] = _poison
        if first_layout:
            self.table.struct_size = RXF_ITCH_HANDLERS_V1_SIZE

    @property
    def wire_calls(self) -> int:
        return self.state.wire_calls

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


cdef void _two_fields_wire(void *ctx, const uint8_t *msg, uint32_t n, const rxf_itch_meta *meta) noexcept nogil:
    cdef TwoFieldsState *s = <TwoFieldsState *>ctx
    s.count += 1
    s.shares += itch_add_order_shares(msg)
    s.price += itch_add_order_price(msg)


cdef void _two_fields_record(void *ctx, const rxf_itch_record *rec, const rxf_itch_meta *meta) noexcept nogil:
    cdef TwoFieldsState *s = <TwoFieldsState *>ctx
    s.count += 1
    s.shares += rec.AddOrder.shares
    s.price += rec.AddOrder.price


cdef class AddOrderTwoFields:
    """Sum of shares and of price over every 'A', read through the wire
    overlay (``view="wire"``) or the decoded record (``view="record"``)."""

    def __cinit__(self, str view="wire"):
        if view not in ("wire", "record"):
            raise ValueError("view is 'wire' or 'record'")
        memset(&self.state, 0, sizeof(self.state))
        _init_table(&self.table, &self.state)
        if view == "wire":
            self.table.wire[ord("A")] = _two_fields_wire
        else:
            self.table.on[ord("A")] = _two_fields_record

    def capsule(self):
        """Handler table for ``ItchDecoder.add_handlers`` (keeps this object alive)."""
        return PyCapsule_New(&self.table, RXF_ITCH_HANDLERS_CAPSULE, NULL)

    @property
    def result(self) -> tuple:
        """(count, sum of shares, sum of price)."""
        return self.state.count, self.state.shares, self.state.price


cdef void _probe(void *ctx, const uint8_t *msg, uint32_t n, const rxf_itch_meta *meta) noexcept nogil:
    cdef WireProbeState *s = <WireProbeState *>ctx
    if n != rxf_itch_wire_size[msg[0]] or meta.raw != msg or meta.raw_len != n:
        s.wrong_length += 1
        return
    s.count += 1
    s.per_type[msg[0]] += 1
    s.header_sum += itch_header_stock_locate(msg) + itch_header_tracking_number(msg) + itch_header_timestamp(msg)


cdef class WireProbe:
    """A wire handler of ``types`` (None: all): counts calls, calls whose
    length is not the type's wire length, and sums header fields."""

    def __cinit__(self, types=None):
        memset(&self.state, 0, sizeof(self.state))
        _init_table(&self.table, &self.state)
        from rxfeed.protocols.itch50.spec import TYPES
        for c in (TYPES if types is None else types):
            self.table.wire[ord(c)] = _probe

    def capsule(self):
        """Handler table for ``ItchDecoder.add_handlers`` (keeps this object alive)."""
        return PyCapsule_New(&self.table, RXF_ITCH_HANDLERS_CAPSULE, NULL)

    @property
    def result(self) -> dict:
        """count, wrong_length, header_sum, per_type."""
        return {"count": self.state.count, "wrong_length": self.state.wrong_length,
                "header_sum": self.state.header_sum,
                "per_type": {chr(t): self.state.per_type[t] for t in range(256) if self.state.per_type[t]}}
