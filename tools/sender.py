"""``rxfeed send``: replay a source over UDP (multicast or unicast), paced,
recording when each datagram left: ITCH 5.0 as MoldUDP64 (optionally keeping
a journal of what was sent and answering MoldUDP64 re-requests for it), an
IEX capture's IEX-TP segments as captured."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .generator import DEFAULT_SESSION, moldudp64_datagrams
from .rerequest import MessageStore, RerequestServer, ServerLimits

#: One row per datagram sent (``--record``): MoldUDP64 sequence of its first
#: message, message count, and send time (CLOCK_REALTIME ns).
RECORD_DTYPE = np.dtype([("sequence", "<u8"), ("count", "<u2"), ("send_ns", "<u8")])


@dataclass
class SendResult:
    datagrams: int
    messages: int
    seconds: float
    retries: int
    records: np.ndarray
    #: the re-request server's stats (RerequestServer.stats()), when a journal was kept
    rerequest: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "datagrams": self.datagrams, "messages": self.messages, "seconds": round(self.seconds, 6),
            "datagrams_per_s": round(self.datagrams / self.seconds, 1) if self.seconds else 0.0,
            "messages_per_s": round(self.messages / self.seconds, 1) if self.seconds else 0.0,
            "send_retries": self.retries}
        if self.rerequest is not None:
            out["rerequest"] = self.rerequest
        return out


@dataclass
class JournalOptions:
    """``send``'s journal and re-request server: answer on ``listen`` for the
    last ``size`` messages sent (older ones are 'expired'), within
    ``limits``, and keep answering ``linger`` seconds after the last
    datagram (sending an end-of-session packet every ``eos_interval`` s)."""

    listen: tuple[str, int]
    size: int = 1_000_000
    linger: float = 1.0
    limits: ServerLimits | None = None
    eos_interval: float = 0.25

    def __post_init__(self) -> None:
        if self.size < 1 or self.linger < 0 or self.eos_interval <= 0:
            raise ValueError("journal size must be >= 1, linger >= 0 and eos_interval > 0")


class SendJournal:
    """What the paced loop has sent so far, as a re-request window: the loop
    writes the datagrams sent into ``progress[0]`` (no GIL, no lock); the
    server thread turns it into sequence numbers through the cumulative
    message counts of the datagrams. The messages themselves are the
    server's store (built once, before sending); ``size`` bounds what is
    answered: the last ``size`` messages sent."""

    def __init__(self, datagram_counts: np.ndarray, size: int) -> None:
        self.progress = np.zeros(1, dtype=np.uint64)
        self.sent_through = np.cumsum(datagram_counts, dtype=np.int64)
        self.size = size

    def window(self) -> tuple[int, int]:
        """(lowest sequence still journalled, one past the last sent)."""
        sent = int(self.progress[0])
        end = 1 + (int(self.sent_through[sent - 1]) if sent else 0)
        return max(1, end - self.size), end


def source_messages(path: str) -> list[bytes]:
    """Every ITCH 5.0 message of a source (a capture of MoldUDP64 datagrams or
    a NASDAQ file), re-encoded to wire bytes. ``rxfeed send`` speaks ITCH 5.0
    over MoldUDP64 only; anything else is a ValueError saying so."""
    from rxfeed import Pipeline, sources
    from rxfeed.plugins import get_plugins
    from rxfeed.protocols.itch50.reference import encode

    plugins = get_plugins()
    found = plugins.detect(path, sources.head(path))
    if found is None or found[1] not in (None, "itch50"):
        raise ValueError(f"{path}: not an ITCH 5.0 capture or NASDAQ file (rxfeed send replays ITCH 5.0 "
                         f"over MoldUDP64 only)")
    backend = found[0]
    out: list[bytes] = []
    pipe = Pipeline(backend, "itch50", backend_config={"path": path})
    pipe.decoder.subscribe(lambda m: out.append(encode(m.type, **{k: v for k, v in zip(m._fields[1:], m[1:])})))
    pipe.run()
    pipe.close()
    return out


def send(messages: list[bytes], group: str, port: int, rate_pps: float = 0.0, iface_ip: str | None = None,
         ttl: int = 1, session: bytes = DEFAULT_SESSION, max_seconds: float = 0.0,
         journal: JournalOptions | None = None) -> SendResult:
    """Send messages as MoldUDP64 datagrams (<= 1,500-byte frames) and end the
    session; with ``journal``, answer re-requests for what was sent meanwhile
    (on its own thread: the paced loop holds no GIL) and for ``linger`` s after."""
    from ._sender import send_paced

    grams = [p for _, p in moldudp64_datagrams(messages, session, end_of_session=False)]
    seqs = np.array([struct.unpack_from(">QH", g, 10) for g in grams], dtype=np.uint64).reshape(-1, 2)
    kept = SendJournal(seqs[:, 1], journal.size) if journal else None
    server = (RerequestServer(MessageStore.from_messages(messages, session), listen=journal.listen,
                              limits=journal.limits, window=kept.window).start() if journal and kept else None)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        _prepare(s, group, port, iface_ip, ttl)
        t0 = time.perf_counter()
        sent, times, retries = send_paced(s.fileno(), grams, rate_pps, max_seconds,
                                          kept.progress if kept else None)
        seconds = time.perf_counter() - t0
        rec = np.zeros(sent, RECORD_DTYPE)
        rec["sequence"], rec["count"], rec["send_ns"] = seqs[:sent, 0], seqs[:sent, 1], times
        next_seq = int(seqs[sent - 1, 0] + seqs[sent - 1, 1]) if sent else 1
        _end_session(s, session, next_seq, journal.linger if journal else 0.0,
                     journal.eos_interval if journal else 1.0)
    finally:
        s.close()
        stats = server.stop() if server else None
    return SendResult(sent, int(rec["count"].sum()), seconds, int(retries), rec, stats)


def _prepare(s: socket.socket, group: str, port: int, iface_ip: str | None, ttl: int) -> None:
    if iface_ip:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface_ip))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    s.connect((group, port))


def _end_session(s: socket.socket, session: bytes, next_seq: int, linger: float, interval: float) -> None:
    """End-of-session packets: three, 20 ms apart (a lost one still ends it),
    then one every ``interval`` s for ``linger`` s (while they persist, a
    receiver may still re-request)."""
    eos = struct.pack(">10sQH", session, next_seq, 0xFFFF)
    deadline = time.monotonic() + linger
    for k in range(3 + int(linger / interval)):
        time.sleep(0.02 if k < 3 else max(0.0, min(interval, deadline - time.monotonic())))
        try:
            s.send(eos)
        except ConnectionRefusedError:  # no listener on a unicast destination: not the sender's error
            pass


def captured_segments(path: str, decoder: str) -> list[bytes]:
    """The UDP payloads of a capture that ``decoder`` reads and that is sent
    as captured (IEX-TP, decoder ``iex``), in capture order; [] for any other
    (ITCH 5.0 is re-framed as MoldUDP64 by :func:`send`)."""
    if decoder != "iex":
        return []
    from rxfeed.protocols.iex.plugin import is_iextp_segment

    from .rerequest import _read_payloads

    payloads, _ = _read_payloads(path, ())
    return [p for p in payloads if is_iextp_segment(p)]


def send_as_captured(payloads: list[bytes], group: str, port: int, rate_pps: float = 0.0,
                     iface_ip: str | None = None, ttl: int = 1, max_seconds: float = 0.0) -> SendResult:
    """Send IEX-TP segments as they were captured (their own sequence numbers,
    sessions and heartbeats), paced; the record holds each segment's first
    sequence number and message count."""
    from ._sender import send_paced

    seqs = np.array([(struct.unpack_from("<q", p, 24)[0], struct.unpack_from("<H", p, 14)[0]) for p in payloads],
                    dtype=np.uint64).reshape(-1, 2)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        _prepare(s, group, port, iface_ip, ttl)
        t0 = time.perf_counter()
        sent, times, retries = send_paced(s.fileno(), payloads, rate_pps, max_seconds, None)
        seconds = time.perf_counter() - t0
    finally:
        s.close()
    rec = np.zeros(sent, RECORD_DTYPE)
    rec["sequence"], rec["count"], rec["send_ns"] = seqs[:sent, 0], seqs[:sent, 1], times
    return SendResult(sent, int(rec["count"].sum()), seconds, int(retries), rec, None)
