"""IGMP on the wire, for tests: frames built and parsed from RFC 2236 (IGMPv2)
and RFC 3376 (IGMPv3) alone, independent of rxfeed's own code, and a capture
run inside a network namespace.

Imports only the standard library: ``python igmp_wire.py capture ...`` runs
in a namespace (``ip netns exec``), where it records the IGMP frames an
interface receives (and sends queries at given times), then prints them as
JSON.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

ALL_HOSTS = "224.0.0.1"
ALL_ROUTERS = "224.0.0.2"
IGMPV3_ROUTERS = "224.0.0.22"
# message types
QUERY, V1_REPORT, V2_REPORT, V2_LEAVE, V3_REPORT = 0x11, 0x12, 0x16, 0x17, 0x22
# IGMPv3 group record types (RFC 3376 4.2.12)
MODE_IS_INCLUDE, MODE_IS_EXCLUDE, TO_INCLUDE, TO_EXCLUDE, ALLOW_NEW, BLOCK_OLD = 1, 2, 3, 4, 5, 6
ROUTER_ALERT = b"\x94\x04\x00\x00"  # RFC 2113


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def multicast_mac(group: str) -> bytes:
    """01:00:5e plus the low 23 bits of the group (RFC 1112 6.4)."""
    g = ip4(group)
    return bytes([0x01, 0x00, 0x5E, g[1] & 0x7F, g[2], g[3]])


def with_checksum(msg: bytes, at: int = 2) -> bytes:
    """``msg`` with its 16-bit checksum field at ``at`` filled in."""
    msg = msg[:at] + b"\0\0" + msg[at + 2:]
    return msg[:at] + struct.pack("!H", checksum(msg)) + msg[at + 2:]


def ipv4_header(src: str, dst: str, payload_len: int, ident: int, flags_frag: int = 0x4000,
                tos: int = 0xC0, router_alert: bool = True) -> bytes:
    """An IGMP datagram's IPv4 header: TTL 1, protocol 2, the Router Alert
    option (RFC 2236 2 and RFC 3376 4 require both), TOS 0xc0 (RFC 3376 4:
    Internetwork Control)."""
    opts = ROUTER_ALERT if router_alert else b""
    ihl = (20 + len(opts)) // 4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, 20 + len(opts) + payload_len, ident, flags_frag, 1, 2, 0,
                      ip4(src), ip4(dst)) + opts
    return with_checksum(hdr, 10)


def ethernet(dst_ip: str, src_mac: bytes) -> bytes:
    return multicast_mac(dst_ip) + src_mac + b"\x08\x00"


def igmpv2(kind: int, group: str, max_resp_ds: int = 0) -> bytes:
    """An IGMPv2 message (8 bytes): report, leave or v2 query."""
    return with_checksum(struct.pack("!BBH4s", kind, max_resp_ds, 0, ip4(group)))


@dataclass(frozen=True)
class Record:
    """One IGMPv3 group record."""

    kind: int
    group: str
    sources: tuple[str, ...] = ()

    def pack(self) -> bytes:
        return struct.pack("!BBH4s", self.kind, 0, len(self.sources), ip4(self.group)) + b"".join(
            ip4(s) for s in self.sources)


def igmpv3_report(records: list[Record]) -> bytes:
    return with_checksum(struct.pack("!BBHHH", V3_REPORT, 0, 0, 0, len(records)) + b"".join(r.pack() for r in records))


def igmpv3_query(group: str = "0.0.0.0", max_resp_code: int = 10, sources: tuple[str, ...] = (), qrv: int = 2,
                 qqic: int = 125) -> bytes:
    return with_checksum(struct.pack("!BB H 4s BBH", QUERY, max_resp_code, 0, ip4(group), qrv & 7, qqic,
                                     len(sources)) + b"".join(ip4(s) for s in sources))


def query_frame(src_mac: bytes, src_ip: str, igmp: bytes, group: str = "0.0.0.0") -> bytes:
    """A query from a querier: to all-hosts (general) or to the group."""
    dst = ALL_HOSTS if group == "0.0.0.0" else group
    return ethernet(dst, src_mac) + ipv4_header(src_ip, dst, len(igmp), 0x1234) + igmp


def max_resp_time_s(code: int) -> float:
    """RFC 3376 4.1.1: the Max Resp Code in tenths of a second, with the
    floating-point form from 128 on."""
    if code < 128:
        return code / 10
    return (((code & 0x0F) | 0x10) << (((code >> 4) & 0x07) + 3)) / 10


@dataclass
class Parsed:
    """An IGMP frame taken apart."""

    dst_mac: bytes
    src_mac: bytes
    tos: int
    ident: int
    flags_frag: int
    ttl: int
    src: str
    dst: str
    options: bytes
    kind: int
    igmp: bytes
    group: str = ""
    records: list[Record] = field(default_factory=list)


def parse(frame: bytes) -> Parsed:
    """Take an Ethernet/IPv4/IGMP frame apart (asserts on anything malformed)."""
    assert frame[12:14] == b"\x08\x00", "not IPv4"
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    assert ip[9] == 2, "not IGMP"
    igmp = ip[ihl:total]
    p = Parsed(frame[0:6], frame[6:12], ip[1], struct.unpack("!H", ip[4:6])[0], struct.unpack("!H", ip[6:8])[0],
               ip[8], str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20])), bytes(ip[20:ihl]),
               igmp[0], bytes(igmp))
    if p.kind == V3_REPORT:
        n = struct.unpack("!H", igmp[6:8])[0]
        off = 8
        for _ in range(n):
            kind, aux, ns = struct.unpack("!BBH", igmp[off:off + 4])
            group = str(ipaddress.IPv4Address(igmp[off + 4:off + 8]))
            srcs = tuple(str(ipaddress.IPv4Address(igmp[off + 8 + 4 * i:off + 12 + 4 * i])) for i in range(ns))
            p.records.append(Record(kind, group, srcs))
            off += 8 + 4 * ns + 4 * aux
    else:
        p.group = str(ipaddress.IPv4Address(igmp[4:8]))
    return p


def rebuild(p: Parsed) -> bytes:
    """The frame RFC 2236 / RFC 3376 say a host sends for what ``p`` carries
    (its IP identification and DF bit taken from ``p``, everything else
    from the RFCs): byte-for-byte equal to a correct frame."""
    if p.kind == V3_REPORT:
        igmp, dst = igmpv3_report(p.records), IGMPV3_ROUTERS
    elif p.kind == V2_LEAVE:
        igmp, dst = igmpv2(V2_LEAVE, p.group), ALL_ROUTERS
    else:
        igmp, dst = igmpv2(p.kind, p.group), p.group
    return ethernet(dst, p.src_mac) + ipv4_header(p.src, dst, len(igmp), p.ident, p.flags_frag & 0x4000) + igmp


def capture_in_namespace(interface: str, seconds: float, sends: list[tuple[float, str]]) -> list[dict]:
    """Frames carrying IGMP that ``interface`` receives for ``seconds``
    (``{"t": seconds since start, "hex": frame}``), sending each ``(at, hex)``
    frame of ``sends`` at its time."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((interface, 0))
    s.settimeout(0.01)
    start = time.monotonic()
    print("ready", file=sys.stderr, flush=True)
    got: list[dict] = []
    pending = sorted(sends)
    while (now := time.monotonic() - start) < seconds:
        while pending and pending[0][0] <= now:
            s.send(bytes.fromhex(pending.pop(0)[1]))
        try:
            frame, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING or len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 2:
            continue
        got.append({"t": time.monotonic() - start, "hex": frame.hex()})
    return got


if __name__ == "__main__":  # python igmp_wire.py capture IFACE SECONDS [AT:HEX ...]
    _, _, iface, secs, *rest = sys.argv
    todo = [(float(a), h) for a, _, h in (r.partition(":") for r in rest)]
    print(json.dumps(capture_in_namespace(iface, float(secs), todo)))
