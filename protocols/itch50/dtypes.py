"""numpy structured dtypes of the decoded ITCH records, built from :mod:`.spec`.

A dtype has exactly the layout of the C record struct in ``_records.h``
(explicit offsets and itemsize; both come from the shared generator
:mod:`rxfeed.specgen`), so a batch of records *is* a numpy array:
the decoder copies records into a buffer and ``numpy.frombuffer`` views it.
Alpha fields are ``S<n>`` (bytes, right-padded with spaces as on the wire).
"""

from __future__ import annotations

import numpy as np

from rxfeed import specgen

from .codegen import WIRE_BY_TYPE
from .spec import Message


def dtype_for(msg: Message) -> np.dtype:
    """The record dtype of one message type."""
    return specgen.dtype_for(WIRE_BY_TYPE[msg.type])


#: Message type character -> record dtype.
DTYPES: dict[str, np.dtype] = {t: specgen.dtype_for(m) for t, m in WIRE_BY_TYPE.items()}
