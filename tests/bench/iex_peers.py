"""The IEX parsers rxfeed's DEEP decoder and books are measured against (issue 12),
each driven through its fastest documented end-to-end path on a pcap (the
``bench`` extra installs both: ``pip install -e .[bench]``).

- **iex-parser 1.7.0** (pure Python, reads with scapy): ``Parser(path, DEEP_1_0)``,
  its documented API. A reader thread reads each packet with scapy's
  ``PcapReader`` (Ethernet/IPv4/UDP dissected by scapy) and queues one dict per
  message, every DEEP type; the iterator is drained by ``deque(maxlen=0)`` with
  a counting callable. It reads ``.pcap`` and ``.pcap.gz``; it is given the
  uncompressed pcap, its faster input. Its command-line tools (``iex-to-csv``,
  ``iex-to-json``) consume the same iterator and write files on top.
- **iex-cppparser 1.0.3** (C++ behind a shell pipe): ``iex_cppparser.parse_file(
  path.pcap.gz, folder, symbols, split)``, its documented API. It runs
  ``gunzip -d -c FILE | tcpdump -r - -w - -s 0 | <C++ binary> /dev/stdin PREFIX SYMBOLS``
  and writes CSV: trade reports ('T') and price level updates ('8', '5') only;
  every other message is walked over, not reported. The input must be a
  ``.pcap.gz`` (``gunzip -c`` refuses anything else). One function, three
  binaries, all measured, the best taken: ``"ALL"`` (``iex_parser_all_threaded``,
  the price-level CSV formatted in a second thread), a symbols file listing every
  symbol of the day (``iex_parser_threaded``, same work plus a symbol filter) and
  ``split=True`` (``iex_parser_split``, single-threaded, one CSV per first letter).
  The threaded binaries end by polling their writer thread with
  ``sleep_for(5 s)`` (``ALL``) or ``sleep_for(1 s)`` (symbols file): on a day of a
  few hundred thousand messages that sleep is most of their wall-clock time.
  Set-up it needs: its documented compile step (``compile_cpp.compile()``, g++:
  the wheel's prebuilt binaries are not executable), ``tcpdump``
  (``apt-get install -y tcpdump``) and ``gunzip`` on the PATH.

Every peer function returns the number of messages the peer reported having
handled; :data:`IEX_PEERS` says which message types each one reports, so a
benchmark can check it against :func:`deep_census` (an independent reader of
the pcap, no rxfeed code) and know the peer took the whole file.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gzip
import os
import shutil
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .peers import PeerMissing, _Counted

#: Message types iex-cppparser writes out (trade report, price level update buy / sell).
CPPPARSER_REPORTS = frozenset("T85")
_PCAP_RECORD = struct.Struct("<IIII")
_IEXTP_HEADER = struct.Struct("<BBHIIHHqqq")


@dataclass(frozen=True)
class DeepCensus:
    """What a DEEP pcap holds, by an independent reader: message types, symbols, packets."""

    types: collections.Counter[str]
    symbols: tuple[str, ...]
    packets: int
    heartbeats: int

    def messages(self, reports: frozenset[str] | None = None) -> int:
        """Messages of the types in ``reports`` (None: every type)."""
        return sum(n for t, n in self.types.items() if reports is None or t in reports)


@functools.lru_cache(maxsize=8)
def deep_census(path: Path) -> DeepCensus:
    """Count the messages of a classic little-endian pcap (``.gz`` too) of Ethernet
    / IPv4 / UDP / IEX-TP frames, checking every length on the way; counted once
    per path, outside any clock."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, linktype = struct.unpack_from("<I", data, 0)[0], struct.unpack_from("<I", data, 20)[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D) or linktype != 1:
        raise ValueError(f"{path}: not a little-endian Ethernet pcap (magic {magic:#x}, link type {linktype})")
    types: collections.Counter[str] = collections.Counter()
    symbols: set[str] = set()
    off, packets, heartbeats = 24, 0, 0
    while off < len(data):
        _, _, incl, _ = _PCAP_RECORD.unpack_from(data, off)
        frame = data[off + 16:off + 16 + incl]
        if len(frame) != incl:
            raise ValueError(f"{path}: truncated record at byte {off}")
        off += 16 + incl
        packets += 1
        heartbeats += _count_segment(_udp_payload(frame), types, symbols) == 0
    return DeepCensus(types, tuple(sorted(symbols)), packets, heartbeats)


def _udp_payload(frame: bytes) -> bytes:
    """The UDP payload of an Ethernet II / IPv4 / UDP frame (no VLAN tag)."""
    if frame[12:14] != b"\x08\x00" or frame[23] != 17:
        raise ValueError("not an IPv4/UDP frame")
    udp = 14 + (frame[14] & 0x0F) * 4
    (udp_length,) = struct.unpack_from("!H", frame, udp + 4)
    return frame[udp + 8:udp + udp_length]


def _count_segment(segment: bytes, types: collections.Counter[str], symbols: set[str]) -> int:
    """Count one IEX-TP segment's messages into ``types`` (Security Directory
    symbols into ``symbols``); returns its message count."""
    header = _IEXTP_HEADER.unpack_from(segment, 0)
    payload_length, count = header[5], header[6]
    if len(segment) != _IEXTP_HEADER.size + payload_length:
        raise ValueError(f"IEX-TP payload length {payload_length} but {len(segment) - _IEXTP_HEADER.size} bytes")
    at = _IEXTP_HEADER.size
    for _ in range(count):
        (length,) = struct.unpack_from("<H", segment, at)
        message = segment[at + 2:at + 2 + length]
        if len(message) != length or not length:
            raise ValueError("IEX-TP message runs past its segment")
        types[chr(message[0])] += 1
        if message[:1] == b"D":
            symbols.add(message[10:18].decode("ascii").rstrip())
        at += 2 + length
    if at != len(segment):
        raise ValueError(f"IEX-TP segment has {len(segment) - at} bytes after its {count} messages")
    return count


def iex_parser_deep(path: Path) -> int:
    """iex-parser: ``Parser(path, DEEP_1_0)`` drained, one dict per message counted."""
    try:
        from iex_parser import DEEP_1_0, Parser
    except ImportError as e:
        raise PeerMissing("iex-parser is not installed: pip install -e '.[bench]'") from e
    counted = _Counted()
    with Parser(str(path), DEEP_1_0) as reader, _reader_thread_failures(reader) as failures:
        collections.deque(map(counted, reader), maxlen=0)
    if failures:
        raise AssertionError(f"iex-parser's reader thread failed on {path}: {failures[0]!r}")
    return counted.n


@contextlib.contextmanager
def _reader_thread_failures(reader: Any) -> Iterator[list[BaseException]]:
    """Collects an exception of iex-parser's reader thread and then ends the
    iteration (the thread dies without its end-of-file sentinel and the
    iterator would wait for it forever): a rejected pcap fails, not hangs."""
    failures: list[BaseException] = []
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is not reader.fill_thread:
            return previous(args)
        failures.append(args.exc_value or RuntimeError(str(args.exc_type)))
        reader.messages.put(reader.sentinal)

    threading.excepthook = hook
    try:
        yield failures
    finally:
        threading.excepthook = previous


def require_iex_cppparser() -> Any:
    """``iex_cppparser``, with its binaries built (its documented compile step,
    once) and the tools its pipe runs on the PATH; raises :class:`PeerMissing`."""
    try:
        import iex_cppparser
        from iex_cppparser import compile_cpp
    except ImportError as e:
        raise PeerMissing("iex-cppparser is not installed: pip install -e '.[bench]'") from e
    missing = [tool for tool in ("gunzip", "tcpdump") if shutil.which(tool) is None]
    if missing:
        raise PeerMissing(f"iex-cppparser's pipe needs {' and '.join(missing)}: apt-get install -y tcpdump gzip")
    binaries = [Path(iex_cppparser.dir_path, "bin", f"iex_parser_{v}.out") for v in ("all_threaded", "threaded", "split")]
    if not all(os.access(b, os.X_OK) for b in binaries):
        if shutil.which("g++") is None:
            raise PeerMissing("iex-cppparser's binaries must be compiled first (compile_cpp.compile()) and g++ is missing")
        compile_cpp.compile()
        if not all(os.access(b, os.X_OK) for b in binaries):
            raise PeerMissing(f"iex-cppparser's compile_cpp.compile() did not build {binaries}")
    return iex_cppparser


def _cppparser_run(path_gz: Path, symbols: str, split: bool) -> int:
    """One ``parse_file`` into a fresh folder; returns the CSV rows it wrote."""
    cpp = require_iex_cppparser()
    if not str(path_gz).endswith(".pcap.gz"):
        raise ValueError(f"iex-cppparser's parse_file reads IEX's .pcap.gz files only, not {path_gz}")
    with tempfile.TemporaryDirectory(prefix="iex-cppparser-") as out:
        cpp.parse_file(str(path_gz), out, symbols, split=split)
        return sum(_csv_rows(p) for p in Path(out).glob("*.csv"))


def _csv_rows(path: Path) -> int:
    """Data rows of one of iex-cppparser's CSV files (one header line, one line a row)."""
    with open(path, "rb") as f:
        return f.read().count(b"\n") - 1


def iex_cppparser_all(path_gz: Path) -> int:
    """iex-cppparser: ``parse_file(path_gz, folder, "ALL")`` (all_threaded binary)."""
    return _cppparser_run(path_gz, "ALL", split=False)


def iex_cppparser_symbols_file(path_gz: Path) -> int:
    """iex-cppparser: ``parse_file(path_gz, folder, "symbols.txt")`` listing every
    symbol of the day's Security Directory (threaded binary, symbol filter)."""
    with tempfile.TemporaryDirectory(prefix="iex-cppparser-symbols-") as d:
        listing = Path(d, "symbols.txt")
        listing.write_text("".join(f"{s}\n" for s in deep_census(Path(path_gz)).symbols))
        return _cppparser_run(path_gz, str(listing), split=False)


def iex_cppparser_split(path_gz: Path) -> int:
    """iex-cppparser: ``parse_file(path_gz, folder, "ALL", split=True)`` (split binary, one thread)."""
    return _cppparser_run(path_gz, "ALL", split=True)


@dataclass(frozen=True)
class Contender:
    """One way to run a DEEP day: ``run(path) -> messages reported``, the input it
    takes (``.pcap`` or IEX's ``.pcap.gz``), the message types it reports (None:
    all), and whether its work runs in child processes (then their CPU time counts)."""

    run: Callable[[Path], int]
    gzip_input: bool = False
    reports: frozenset[str] | None = None
    children: bool = False


#: The IEX peers' paths; each peer's number is the best of its paths.
IEX_PEERS: dict[str, Contender] = {
    "iex_parser": Contender(iex_parser_deep),
    "iex_cppparser_all": Contender(iex_cppparser_all, True, CPPPARSER_REPORTS, True),
    "iex_cppparser_symbols_file": Contender(iex_cppparser_symbols_file, True, CPPPARSER_REPORTS, True),
    "iex_cppparser_split": Contender(iex_cppparser_split, True, CPPPARSER_REPORTS, True),
}
