"""``rxfeed send``: replay any source as MoldUDP64 over UDP (multicast or
unicast), paced, recording when each datagram left."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .generator import DEFAULT_SESSION, moldudp64_datagrams

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

    def summary(self) -> dict[str, Any]:
        return {"datagrams": self.datagrams, "messages": self.messages, "seconds": round(self.seconds, 6),
                "datagrams_per_s": round(self.datagrams / self.seconds, 1) if self.seconds else 0.0,
                "messages_per_s": round(self.messages / self.seconds, 1) if self.seconds else 0.0,
                "send_retries": self.retries}


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
         ttl: int = 1, session: bytes = DEFAULT_SESSION, max_seconds: float = 0.0) -> SendResult:
    """Send messages as MoldUDP64 datagrams (<= 1,500-byte frames) and end the session."""
    from ._sender import send_paced

    grams = [p for _, p in moldudp64_datagrams(messages, session, end_of_session=False)]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if iface_ip:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(iface_ip))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
        s.connect((group, port))
        t0 = time.perf_counter()
        sent, times, retries = send_paced(s.fileno(), grams, rate_pps, max_seconds)
        seconds = time.perf_counter() - t0
        seqs = np.array([struct.unpack_from(">QH", g, 10) for g in grams[:sent]], dtype=np.uint64).reshape(-1, 2)
        rec = np.zeros(sent, RECORD_DTYPE)
        rec["sequence"], rec["count"], rec["send_ns"] = seqs[:, 0], seqs[:, 1], times
        next_seq = int(seqs[-1, 0] + seqs[-1, 1]) if sent else 1
        for _ in range(3):  # end of session, repeated so a lost one still ends it
            time.sleep(0.02)
            try:
                s.send(struct.pack(">10sQH", session, next_seq, 0xFFFF))
            except ConnectionRefusedError:  # no listener on a unicast destination: not the sender's error
                pass
    finally:
        s.close()
    return SendResult(sent, int(rec["count"].sum()), seconds, int(retries), rec)
