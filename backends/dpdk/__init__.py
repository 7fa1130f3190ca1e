"""DPDK backend: busy-polls a DPDK port (real NIC or virtual device) with zero-copy mbufs."""

from .backend import DpdkBackend
from .config import DpdkConfig

__all__ = ["DpdkBackend", "DpdkConfig"]
