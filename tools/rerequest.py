"""rxfeed's own MoldUDP64 re-request server (``rxfeed serve rerequest``).

A client that lost messages sends a *request packet* by UDP unicast:
session (10 bytes) + sequence number (u64 BE) + requested message count (u16
BE), 20 bytes. The server answers with ordinary MoldUDP64 downstream packets
(session, sequence of the first message, count, then ``count`` x [u16 BE
length][message]) starting at that sequence, back to the request's source
address.

What it answers from is a :class:`MessageStore`: every message of one
session, in sequence order, as wire blocks ([u16 length][message]) in one
bytes buffer, indexed by a numpy offsets array. A run of consecutive
messages is one slice of that buffer, so an answer costs O(its size), not
O(store). Stores come from a capture of MoldUDP64 datagrams (pcap/pcapng,
plain or gzip: first copy of each sequence number wins), a NASDAQ ITCH file
(sequence numbers 1..N in file order) or a list of messages; ``rxfeed send
--rerequest-listen`` serves its own journal (:mod:`rxfeed.tools.sender`).

Every request is counted in exactly one outcome (see :data:`OUTCOMES` and
docs/recovery.md); nothing a client sends can crash the server or grow its
memory without bound: per-client state (a token bucket) lives in an LRU
table of at most ``max_clients`` entries.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rxfeed.config import PluginConfig
from rxfeed.interfaces import PythonDecoder

#: Downstream packet header / request packet: session, sequence, count.
MOLD_HEADER = struct.Struct(">10sQH")
REQUEST_SIZE = MOLD_HEADER.size  # 20
END_OF_SESSION = 0xFFFF

#: Where each request ends up (``stats()["requests_by_outcome"]``): answered
#: in full, answered in part (truncated at the end of what exists, at a hole
#: in a capture, by the per-request cap or by the rate limit), or ignored.
OUTCOMES = ("answered", "answered_partly", "malformed", "wrong_session", "zero_count", "before_start",
            "expired", "beyond_end", "missing", "rate_limited")


class MessageStore:
    """Messages ``first_seq .. first_seq + len - 1`` of one session.

    ``buffer[offsets[i]:offsets[i + 1]]`` is message ``first_seq + i`` as a
    wire block (u16 length, big endian for MoldUDP64, little for IEX-TP, +
    bytes). ``present`` (None: all present) marks holes: sequence numbers a
    capture never carried (empty blocks). ``session``: MoldUDP64's 10 bytes,
    or IEX-TP's session id as 4 little-endian bytes.
    """

    def __init__(self, session: bytes, buffer: bytes, offsets: np.ndarray, first_seq: int = 1,
                 present: np.ndarray | None = None) -> None:
        if len(session) not in (4, 10):
            raise ValueError(f"a MoldUDP64 session is 10 bytes (an IEX-TP session id 4), got {session!r}")
        if len(offsets) < 1 or int(offsets[-1]) != len(buffer):
            raise ValueError("offsets must end at the buffer's length")
        self.session, self.buffer, self.first_seq = session, buffer, first_seq
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.present = None if present is None or bool(present.all()) else present
        #: messages of a capture left out for implausible sequence numbers
        self.implausible = 0

    @classmethod
    def from_messages(cls, messages: Iterable[bytes], session: bytes, first_seq: int = 1) -> MessageStore:
        """A store of ``messages`` numbered from ``first_seq``."""
        msgs = list(messages)
        lengths = np.fromiter((len(m) for m in msgs), dtype=np.int64, count=len(msgs))
        if len(msgs) and int(lengths.max()) > 0xFFFF:
            raise ValueError("a MoldUDP64 message is at most 65,535 bytes")
        buffer = b"".join(len(m).to_bytes(2, "big") + m for m in msgs)
        return cls(session, buffer, _offsets(lengths + 2), first_seq)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def end_seq(self) -> int:
        """One past the last sequence number."""
        return self.first_seq + len(self)

    @property
    def holes(self) -> int:
        """Sequence numbers inside the store that it does not have."""
        return 0 if self.present is None else int(len(self) - self.present.sum())

    def message(self, seq: int) -> bytes | None:
        """The message with sequence number ``seq`` (no length prefix), or None."""
        i = seq - self.first_seq
        if not 0 <= i < len(self) or (self.present is not None and not self.present[i]):
            return None
        return self.buffer[int(self.offsets[i]) + 2:int(self.offsets[i + 1])]

    def run_length(self, seq: int, limit: int, budget: int) -> int:
        """How many messages from ``seq`` (all present, at most ``limit``) fit in
        ``budget`` bytes of blocks; at least one if ``seq`` is present."""
        i = seq - self.first_seq
        end = min(i + limit, len(self))
        if self.present is not None:
            gap = np.flatnonzero(~self.present[i:end])
            end = i + int(gap[0]) if len(gap) else end
        if end <= i:
            return 0
        fit = int(np.searchsorted(self.offsets[i:end + 1], self.offsets[i] + budget, side="right")) - 1
        return max(1, fit)

    def blocks(self, seq: int, count: int) -> memoryview:
        """The wire blocks of messages ``seq .. seq + count - 1`` (no copy)."""
        i = seq - self.first_seq
        return memoryview(self.buffer)[int(self.offsets[i]):int(self.offsets[i + count])]


def _offsets(block_lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(block_lengths) + 1, dtype=np.int64)
    np.cumsum(block_lengths, out=out[1:])
    return out


def session_bytes(session: str | bytes) -> bytes:
    """A session id as its 10 wire bytes (ASCII, right-padded with spaces)."""
    raw = session.encode("ascii") if isinstance(session, str) else bytes(session)
    if len(raw) > 10:
        raise ValueError(f"session {session!r}: at most 10 characters")
    return raw.ljust(10, b" ")


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up (rate 0: unlimited)."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, burst, now

    def take(self, wanted: int, now: float) -> int:
        """Grant up to ``wanted`` whole tokens now; returns how many."""
        if self.rate <= 0:
            return wanted
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted

    def refund(self, unused: int) -> None:
        """Give back tokens granted but not spent."""
        if self.rate > 0:
            self.tokens = min(self.burst, self.tokens + unused)


class ClientTable:
    """Per-client token buckets, keyed by source IP address, in an LRU table
    of at most ``max_clients`` entries (the least recently seen is forgotten)."""

    def __init__(self, rate: float, burst: float, max_clients: int) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max(1, max_clients)
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.evicted = 0

    def bucket(self, address: str, now: float) -> TokenBucket:
        b = self.buckets.get(address)
        if b is not None:
            self.buckets.move_to_end(address)
            return b
        if len(self.buckets) >= self.max_clients:
            self.buckets.popitem(last=False)
            self.evicted += 1
        b = self.buckets[address] = TokenBucket(self.rate, self.burst, now)
        return b


@dataclass
class ServerLimits:
    """What the server will do for one request and one client.

    ``max_count``: a requested count above it is answered as if it were
    ``max_count`` (counted ``capped``). ``max_payload``: UDP payload bytes of
    one answer datagram, header included (1400: fits any 1500-byte-MTU path
    with room for tunnels). ``packets_per_request``: answer datagrams per
    request (1, as NASDAQ's servers: the client asks again for the rest).
    ``rate``/``burst``: messages per second per client address and the most
    saved up (rate 0: no limit; burst None: one second's worth). ``max_clients``: per-client entries kept.
    """

    max_count: int = 10_000
    max_payload: int = 1400
    packets_per_request: int = 1
    rate: float = 100_000.0
    burst: float | None = None
    max_clients: int = 4096

    def __post_init__(self) -> None:
        if self.burst is None:
            self.burst = max(self.rate, 1.0)  # one second's worth
        if self.max_payload < REQUEST_SIZE + 3 or self.max_payload > 65507:
            raise ValueError(f"max_payload {self.max_payload}: expected 23..65507 bytes")
        if self.max_count < 1 or self.packets_per_request < 1 or self.max_clients < 1:
            raise ValueError("max_count, packets_per_request and max_clients must be at least 1")
        if self.rate < 0 or self.burst < 0 or (self.rate > 0 and self.burst < 1):
            raise ValueError("rate and burst must be >= 0 (burst >= 1 with a rate)")


#: ``() -> (lowest, end)``: sequence numbers a server may answer now,
#: ``lowest .. end - 1`` (a journal's window moves; a file's does not).
Window = Callable[[], tuple[int, int]]


class RerequestServer:
    """A MoldUDP64 re-request server on one UDP socket and one thread.

    ``source``: a :class:`MessageStore`, a path (capture or NASDAQ file, see
    :func:`load_store`) or a sequence of messages (numbered 1..N).
    ``window``: what may be answered now (default: the whole store).
    Use as a context manager or ``start()`` / ``stop()``; ``address`` is the
    bound (host, port); ``stats()`` the counters.
    """

    def __init__(self, source: MessageStore | str | Sequence[bytes], session: str | bytes | None = None,
                 listen: tuple[str, int] = ("127.0.0.1", 0), limits: ServerLimits | None = None,
                 window: Window | None = None) -> None:
        self.store = _as_store(source, session)
        self.limits = limits or ServerLimits()
        self.window: Window = window or (lambda: (self.store.first_seq, self.store.end_seq))
        self.clients = ClientTable(self.limits.rate, float(self.limits.burst or 0), self.limits.max_clients)
        self.counters: dict[str, int] = dict.fromkeys(
            ("requests", "packets_sent", "messages_sent", "bytes_sent", "capped", "send_errors",
             "kernel_drops", "internal_errors"), 0)
        self.last_error = ""
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.sock = _bind(listen)
        self.address: tuple[str, int] = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._budget = self.limits.max_payload - self.header_size
        self._started = self._stopped = 0.0

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> RerequestServer:
        """Serve on a daemon thread until :meth:`stop`."""
        if self._thread is None:
            self._started = time.monotonic()
            self._thread = threading.Thread(target=self._serve, name="rxfeed-rerequest", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        """Stop serving, close the socket; returns :meth:`stats`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.sock.fileno() >= 0:
            self._stopped = time.monotonic()
            self.sock.close()
        return self.stats()

    def __enter__(self) -> RerequestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop ----------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if ready:
                self._drain()

    #: bytes read of one request: one more than the largest valid request (a longer one is malformed)
    request_cap = REQUEST_SIZE + 1
    #: bytes of an answer datagram's header (the rest of max_payload is message blocks)
    header_size = MOLD_HEADER.size

    def _drain(self, max_batch: int = 256) -> None:
        """Handle what is queued on the socket (at most ``max_batch``)."""
        for _ in range(max_batch):
            try:
                data, anc, _, addr = self.sock.recvmsg(self.request_cap, socket.CMSG_SPACE(4))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable from an earlier answer: not this request's fault
                continue
            self._note_kernel_drops(anc)
            try:
                self.handle(data, addr)
            except Exception as exc:  # a bug of the server's own: counted and kept, the server stays up
                self.counters["internal_errors"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"

    def _note_kernel_drops(self, ancillary: list[tuple[int, int, bytes]]) -> None:
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                self.counters["kernel_drops"] = int.from_bytes(value[:4], "little")

    def handle(self, request: bytes, addr: tuple[str, int]) -> str:
        """Validate one request packet, answer it to ``addr``; returns its outcome."""
        self.counters["requests"] += 1
        outcome, seq, asked, allowed = self._check(request)
        if outcome is None:
            outcome = self._answer(seq, asked, allowed, addr)
        self.outcomes[outcome] += 1
        return outcome

    def _check(self, request: bytes) -> tuple[str | None, int, int, int]:
        """(outcome if the request is refused, else None; first sequence;
        count asked; count it may have: capped, cut at the end of what exists)."""
        if len(request) != REQUEST_SIZE:
            return "malformed", 0, 0, 0
        session, seq, count = MOLD_HEADER.unpack(request)
        refused = self._refusal(session, seq, count)
        if refused:
            return refused, seq, count, 0
        if count > self.limits.max_count:
            self.counters["capped"] += 1
        return None, seq, count, min(count, self.limits.max_count, self.window()[1] - seq)

    def _refusal(self, session: bytes, seq: int, count: int) -> str | None:
        """Why a well-formed request gets no answer at all, or None."""
        if session != self.store.session:
            return "wrong_session"
        if count == 0:
            return "zero_count"
        lowest, end = self.window()
        if seq >= end:
            return "beyond_end"
        if seq < self.store.first_seq:
            return "before_start"
        if seq < lowest:
            return "expired"
        return None

    def _answer(self, seq: int, asked: int, allowed: int, addr: tuple[str, int]) -> str:
        """Send up to ``packets_per_request`` datagrams of messages from ``seq``."""
        now = time.monotonic()
        bucket = self.clients.bucket(addr[0], now)
        granted = bucket.take(allowed, now)
        if granted == 0:
            return "rate_limited"
        sent = 0
        for _ in range(self.limits.packets_per_request):
            n = self.store.run_length(seq + sent, granted - sent, self._budget) if sent < granted else 0
            if n == 0 or not self._send(seq + sent, n, addr):
                break
            sent += n
        bucket.refund(granted - sent)
        if sent == 0:
            return "missing"
        return "answered" if sent == asked else "answered_partly"

    def _send(self, seq: int, n: int, addr: tuple[str, int]) -> bool:
        return self._send_datagram(MOLD_HEADER.pack(self.store.session, seq, n), self.store.blocks(seq, n), n, addr)

    def _send_datagram(self, header: bytes, blocks: memoryview, n: int, addr: tuple[str, int]) -> bool:
        """One answer datagram (``n`` messages), counted; False if it could not be sent."""
        try:
            self.sock.sendmsg([header, blocks], [], 0, addr)
        except OSError:
            self.counters["send_errors"] += 1
            return False
        self.counters["packets_sent"] += 1
        self.counters["messages_sent"] += n
        self.counters["bytes_sent"] += len(header) + len(blocks)
        return True

    def stats(self) -> dict[str, Any]:
        """Counters: requests and their outcomes, what was sent, clients."""
        ended = self._stopped or time.monotonic()
        lowest, end = self.window()
        return {"listen": f"{self.address[0]}:{self.address[1]}",
                "session": self.store.session.decode("ascii", "replace").rstrip(),
                "first_sequence": self.store.first_seq, "available": [lowest, end - 1],
                "holes": self.store.holes, "implausible_at_load": self.store.implausible, **self.counters,
                "ignored": self.counters["requests"] - self.outcomes["answered"] - self.outcomes["answered_partly"],
                "requests_by_outcome": dict(self.outcomes),
                "clients": len(self.clients.buckets), "clients_evicted": self.clients.evicted,
                **({"last_error": self.last_error} if self.last_error else {}),
                "seconds": round(ended - self._started, 3) if self._started else 0.0}


#: Linux: ancillary data with the socket's count of datagrams dropped for a full receive buffer.
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)


def _bind(listen: tuple[str, int]) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:  # above net.core.rmem_max when allowed (CAP_NET_ADMIN), to absorb bursts of requests
            s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 1 << 22)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        s.bind(listen)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def _as_store(source: MessageStore | str | Sequence[bytes], session: str | bytes | None) -> MessageStore:
    if isinstance(source, MessageStore):
        return source
    if isinstance(source, str):
        return load_store(source, session)
    from .generator import DEFAULT_SESSION

    return MessageStore.from_messages(source, session_bytes(session) if session else DEFAULT_SESSION)


# -- loading a store from a file -------------------------------------------------

class PayloadCollector(PythonDecoder[PluginConfig]):
    """A decoder that keeps a copy of every payload (or stream chunk) it is handed."""

    name, Config = "payload_collector", PluginConfig

    def __init__(self) -> None:
        super().__init__(PluginConfig())
        self.payloads: list[bytes] = []

    def on_packets(self, packets: Any) -> bool:
        self.payloads += [bytes(p.data) for p in packets]
        return False

    def counters(self) -> dict[str, Any]:
        return {"packets": len(self.payloads)}


def load_store(path: str, session: str | bytes | None = None, filters: Sequence[str] = ()) -> MessageStore:
    """The messages of a capture of MoldUDP64 datagrams (pcap/pcapng, ``filters``
    as the backend's ``group:port``) or of a NASDAQ ITCH file (numbered 1..N in
    file order, session ``session`` or rxfeed's default). Of a capture, one
    session is kept: ``session`` or the first that carries messages."""
    from .generator import DEFAULT_SESSION

    try:
        payloads, stream = _read_payloads(path, filters)
        if stream:
            return _store_from_stream(payloads, session_bytes(session) if session else DEFAULT_SESSION)
        return store_from_datagrams(payloads, session_bytes(session) if session else None)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _read_payloads(path: str, filters: Sequence[str]) -> tuple[list[bytes], bool]:
    """Every UDP payload (or stream chunk) of ``path`` as read by the backend
    rxfeed detects for it; and whether they are stream chunks."""
    from rxfeed import sources
    from rxfeed.pipeline import Pipeline
    from rxfeed.plugins import get_plugins

    plugins = get_plugins()
    found = plugins.detect(path, sources.head(path))
    if not found:
        raise ValueError("neither a capture nor a NASDAQ ITCH file")
    bcls = plugins.backends.get(found[0])
    bconf = bcls.config_for_source(path, {"filters": list(filters)} if filters else {})
    collector = PayloadCollector()
    summary = Pipeline(found[0], collector, backend_config=bconf, plugins=plugins,
                       run={"handle_signals": False}).run()
    if summary.error:
        raise ValueError(summary.error)
    return collector.payloads, bool(getattr(bcls, "stream", False))


def store_from_datagrams(payloads: Iterable[bytes], session: bytes | None = None) -> MessageStore:
    """A store from MoldUDP64 downstream datagrams in any order, duplicates
    included (the first copy of a sequence number wins). Datagrams of other
    sessions, heartbeats and end-of-session packets carry nothing to keep; a
    datagram cut short keeps the messages before the cut."""
    seqs: list[int] = []
    blocks: list[bytes] = []
    for p in payloads:
        if len(p) < REQUEST_SIZE:
            continue
        sess, seq, count = MOLD_HEADER.unpack_from(p)
        if count == 0 or count == END_OF_SESSION or (session is not None and sess != session):
            continue
        if seq == 0 or seq + count > 2**64 - 1:  # no such sequence numbers
            continue
        session = sess if session is None else session
        _split_blocks(p, seq, count, seqs, blocks)
    if session is None:
        raise ValueError("no MoldUDP64 datagram with messages in the capture")
    return _store_from_numbered(seqs, blocks, session)


def _split_blocks(payload: bytes, seq: int, count: int, seqs: list[int], blocks: list[bytes]) -> None:
    """Append the (sequence, wire block) pairs of one datagram."""
    pos, end = REQUEST_SIZE, len(payload)
    for k in range(count):
        if pos + 2 > end:
            return
        size = 2 + int.from_bytes(payload[pos:pos + 2], "big")
        if pos + size > end:
            return
        seqs.append(seq + k)
        blocks.append(payload[pos:pos + size])
        pos += size


def _store_from_numbered(seqs: list[int], blocks: list[bytes], session: bytes) -> MessageStore:
    """Sort by sequence, keep the first copy of each, mark holes. Sequence
    numbers implausibly far from the rest (a corrupt or forged datagram: more
    than twice the message count plus 2^20 from the median) are left out and
    counted (``MessageStore.implausible``) rather than indexed."""
    unique, first_index = np.unique(np.array(seqs, dtype=np.uint64), return_index=True)  # first copy of each
    median, reach = int(unique[len(unique) // 2]), 2 * len(unique) + (1 << 20)
    keep = (unique >= np.uint64(max(1, median - reach))) & (unique < np.uint64(min(2**64 - 1, median + reach)))
    unique, first_index = unique[keep], first_index[keep]
    first_seq = int(unique[0])
    n = int(unique[-1]) - first_seq + 1
    slot = (unique - np.uint64(first_seq)).astype(np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    lengths[slot] = [len(blocks[i]) for i in first_index]
    present = np.zeros(n, dtype=bool)
    present[slot] = True
    buffer = b"".join(blocks[i] for i in first_index)
    store = MessageStore(session, buffer, _offsets(lengths), first_seq, present)
    store.implausible = int(len(keep) - keep.sum())
    return store


def _store_from_stream(chunks: list[bytes], session: bytes) -> MessageStore:
    """A store from NASDAQ file chunks of whole length-prefixed messages. A
    zero prefix (as in NASDAQ's extracts) is resolved from the ITCH 5.0 type
    table and written as the real length."""
    from rxfeed.protocols.itch50.spec import BY_TYPE

    data = b"".join(chunks)
    lengths: list[int] = []
    pos, end, fixed = 0, len(data), False
    while pos + 2 < end:
        size = int.from_bytes(data[pos:pos + 2], "big")
        if size == 0:
            known = BY_TYPE.get(chr(data[pos + 2]))
            if known is None:
                raise ValueError(f"a zero length prefix before unknown message type {data[pos + 2]:#04x}")
            size, fixed = known.wire_size, True
        lengths.append(size)
        pos += 2 + size
    if pos != end:
        raise ValueError("a NASDAQ file chunk does not end on a message boundary")
    sizes = np.array(lengths, dtype=np.int64)
    offsets = _offsets(sizes + 2)
    if fixed:
        data = b"".join(s.to_bytes(2, "big") + data[o + 2:o + 2 + s] for s, o in zip(lengths, offsets[:-1].tolist()))
    return MessageStore(session, data, offsets, 1)
