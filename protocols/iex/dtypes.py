"""numpy structured dtypes of the decoded IEX records, per feed, from :mod:`.spec`.

Each dtype has exactly the layout of its C record struct in ``_iex_records.h``
(offsets and itemsize from the shared generator :mod:`rxfeed.specgen`, which
wrote the struct), so an array of records is a numpy array. Text fields are
``S<n>``: ``char`` fields ``S1``, Strings space padded as on the wire.
"""

from __future__ import annotations

import numpy as np

from rxfeed import specgen

from .codegen import WIRE

#: Feed name ("TOPS", "DEEP", "DEEP+") -> message type character -> record dtype.
DTYPES: dict[str, dict[str, np.dtype]] = {
    feed: {t: specgen.dtype_for(m) for t, m in messages.items()} for feed, messages in WIRE.items()}
