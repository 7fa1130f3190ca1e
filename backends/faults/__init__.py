"""Seeded fault injection around any backend: drop, duplicate, reorder, delay,
truncate, corrupt, kill a line (docs/recovery.md, "Fault injection")."""

from .backend import FaultsBackend
from .config import FaultsConfig, parse_spec

__all__ = ["FaultsBackend", "FaultsConfig", "parse_spec"]
