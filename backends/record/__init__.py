"""Live capture around any backend: what the decoder saw, to pcapng files
(docs/recovery.md, "Live capture")."""

from .backend import RecordBackend
from .config import RecordConfig

__all__ = ["RecordBackend", "RecordConfig"]
