"""What the books of every protocol share on the Python side: the record of
lost ranges that makes books ``suspect``, and a native event buffer taken
as numpy. Protocol-neutral: each protocol plugin's books use it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: Lost ranges a book keeps (the count of lost messages is kept whole).
MAX_LOST_RANGES = 1000


def record_loss(ranges: list, event: Mapping[str, Any]) -> int:
    """Keep ``(session, first, count)`` of a ``gap`` event in ``ranges``
    (up to :data:`MAX_LOST_RANGES` of them); the number of messages lost."""
    if len(ranges) < MAX_LOST_RANGES:
        ranges.append((event.get("session", ""), event["first"], event["count"]))
    return event["count"]


def take_records(raw: bytes, dtype: np.dtype) -> np.ndarray:
    """The records of a native buffer (``raw``, whole records) as a numpy array of ``dtype``, copied."""
    return np.frombuffer(raw, dtype=dtype).copy() if raw else np.empty(0, dtype)
