"""pcap / pcapng replay backend: the same C path as a live NIC, from a file."""

from .backend import PcapReplayBackend
from .config import PcapReplayConfig

__all__ = ["PcapReplayBackend", "PcapReplayConfig"]
