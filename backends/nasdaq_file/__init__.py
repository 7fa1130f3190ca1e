"""NASDAQ historical ITCH file backend (2-byte length prefixes, plain or gzip)."""

from .backend import NasdaqFileBackend
from .config import NasdaqFileConfig

__all__ = ["NasdaqFileBackend", "NasdaqFileConfig"]
