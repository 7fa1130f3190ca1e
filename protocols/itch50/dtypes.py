"""numpy structured dtypes of the decoded ITCH records, built from :mod:`.spec`.

A dtype has exactly the layout of the C record struct in ``_records.h``
(explicit offsets and itemsize), so a batch of records *is* a numpy array:
the decoder copies records into a buffer and ``numpy.frombuffer`` views it.
Alpha fields are ``S<n>`` (bytes, right-padded with spaces as on the wire).
"""

from __future__ import annotations

import numpy as np

from .spec import MESSAGES, RECORD_HEADER, Message, record_layout

_NUMPY_KIND = {"char": "S1", "u8": "u1", "u16": "<u2", "u32": "<u4", "u64": "<u8",
               "price4": "<u4", "price8": "<u8"}
_HEADER_NUMPY = {"type": "S1", "stock_locate": "<u2", "tracking_number": "<u2", "timestamp": "<u8"}


def dtype_for(msg: Message) -> np.dtype:
    """The record dtype of one message type."""
    fields, size = record_layout(msg)
    names, formats, offsets = [], [], []
    for name, _ctype, off, _size in RECORD_HEADER:
        names.append(name)
        formats.append(_HEADER_NUMPY[name])
        offsets.append(off)
    for f in fields:
        names.append(f.name)
        formats.append(f"S{f.size}" if f.kind == "alpha" else _NUMPY_KIND[f.kind])
        offsets.append(f.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size})


#: Message type character -> record dtype.
DTYPES: dict[str, np.dtype] = {m.type: dtype_for(m) for m in MESSAGES}
