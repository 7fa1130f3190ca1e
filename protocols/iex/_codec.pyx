# cython: boundscheck=False, wraparound=False
"""The generated IEX C decoders (``_iex_records.h``), callable one message at a
time from Python: for tests and tools, not a hot path."""

from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memset

import numpy as np

from rxfeed.protocols.iex.dtypes import DTYPES
from rxfeed.protocols.iex.spec import FEEDS

from _iex_records cimport *
from _iex_decode cimport decode_feed, record_size_of

_FEED_ID = {"TOPS": 0, "DEEP": 1, "DEEP+": 2}


cdef int _feed_id(str feed) except -1:
    if feed not in _FEED_ID:
        raise ValueError(f"not an IEX feed: {feed!r} (one of {', '.join(_FEED_ID)})")
    return _FEED_ID[feed]


def decode_record(str feed, bytes raw):
    """``(status, record bytes)``: the C decoder's status (``"ok"``,
    ``"unknown_type"``, ``"bad_length"``) and, when ok, the record as the C
    struct holds it (its record size; padding zeroed)."""
    cdef int fid = _feed_id(feed)
    cdef rxf_iex_record rec
    cdef const uint8_t *p = raw
    memset(&rec, 0xA5, sizeof(rec))  # padding must come out zeroed, not left over
    cdef int status = decode_feed(fid, p, <uint32_t>len(raw), &rec)
    if status == RXF_IEX_UNKNOWN_TYPE:
        return "unknown_type", b""
    if status == RXF_IEX_BAD_LENGTH:
        return "bad_length", b""
    return "ok", (<const char *>&rec)[:record_size_of(fid, p[0])]


def decode_one(str feed, bytes raw):
    """One message decoded by the generated C decoder of ``feed``, as a dict:
    text fields as ``str`` (Strings without their right padding), numbers as
    integers in wire units. Raises ``ValueError`` for an unknown type or a
    message shorter than its type's spec length."""
    status, rec = decode_record(feed, raw)
    if status != "ok":
        raise ValueError(f"{feed}: {status.replace('_', ' ')} ({raw[:1]!r}, {len(raw)} bytes)")
    dt = DTYPES[feed][chr(raw[0])]
    row = np.frombuffer(rec, dtype=dt, count=1)[0]
    out = {}
    for f in FEEDS[feed].by_type[chr(raw[0])].fields:
        v = row[f.name]
        if isinstance(v, bytes):
            out[f.name] = v.decode("ascii").rstrip(" ") if f.kind == "alpha" else v.decode("ascii")
        else:
            out[f.name] = int(v)
    return out


def c_layout(str feed):
    """``[(type, field name, offset, size)]`` as the C compiler laid the records
    out; a row with an empty name gives the record's size as its offset."""
    cdef int fid = _feed_id(feed)
    cdef const rxf_iex_field_layout *rows
    cdef size_t n
    if fid == 0:
        rows = rxf_iex_tops_layout
        n = RXF_IEX_TOPS_LAYOUT_LEN
    elif fid == 1:
        rows = rxf_iex_deep_layout
        n = RXF_IEX_DEEP_LAYOUT_LEN
    else:
        rows = rxf_iex_deep_plus_layout
        n = RXF_IEX_DEEP_PLUS_LAYOUT_LEN
    return [(chr(<uint8_t>rows[i].type), rows[i].name.decode(), rows[i].offset, rows[i].size) for i in range(n)]
