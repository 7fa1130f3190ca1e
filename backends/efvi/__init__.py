"""Solarflare/AMD ef_vi backend (Onload's user-level NIC API)."""

from .backend import EfviBackend
from .config import EfviConfig

__all__ = ["EfviBackend", "EfviConfig"]
