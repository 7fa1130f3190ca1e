"""Kernel UDP socket backend (the baseline)."""

from .backend import UdpSocketBackend
from .config import UdpSocketConfig

__all__ = ["UdpSocketBackend", "UdpSocketConfig"]
