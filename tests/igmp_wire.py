"""IGMP on the wire, for tests: frames built and parsed from RFC 2236 (IGMPv2)
and RFC 3376 (IGMPv3) alone, independent of rxfeed's own code, and a capture
run inside a network namespace.

Addresses are dotted quads or host-order integers (as rxfeed's C takes
them), wherever a builder takes one.

Imports only the standard library: ``python igmp_wire.py capture ...`` runs
in a namespace (``ip netns exec``), where it records the IGMP frames an
interface receives (and sends queries at given times), then prints them as
JSON.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Union

ALL_HOSTS = "224.0.0.1"
ALL_ROUTERS = "224.0.0.2"
IGMPV3_ROUTERS = "224.0.0.22"
# message types
QUERY, V1_REPORT, V2_REPORT, V2_LEAVE, V3_REPORT = 0x11, 0x12, 0x16, 0x17, 0x22
# IGMPv3 group record types (RFC 3376 4.2.12)
MODE_IS_INCLUDE, MODE_IS_EXCLUDE, TO_INCLUDE, TO_EXCLUDE, ALLOW_NEW, BLOCK_OLD = 1, 2, 3, 4, 5, 6
IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6  # the same, short
ROUTER_ALERT = b"\x94\x04\x00\x00"  # RFC 2113
QUERIER_MAC = bytes.fromhex("020000000001")
QUERIER_IP = "10.0.0.1"
Address = Union[int, str]  # a dotted quad or a host-order integer


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(addr: Address) -> bytes:
    """The 4 bytes of an address (network order)."""
    return ipaddress.IPv4Address(addr).packed


def ip(addr: Address) -> int:
    """An address as a host-order integer."""
    return int(ipaddress.IPv4Address(addr))


def dotted(addr: Address) -> str:
    """An address as a dotted quad."""
    return str(ipaddress.IPv4Address(addr))


def multicast_mac(group: Address) -> bytes:
    """01:00:5e plus the low 23 bits of the group (RFC 1112 6.4)."""
    g = ip4(group)
    return bytes([0x01, 0x00, 0x5E, g[1] & 0x7F, g[2], g[3]])


def with_checksum(msg: bytes, at: int = 2) -> bytes:
    """``msg`` with its 16-bit checksum field at ``at`` filled in."""
    msg = msg[:at] + b"\0\0" + msg[at + 2:]
    return msg[:at] + struct.pack("!H", checksum(msg)) + msg[at + 2:]


def ipv4_header(src: Address, dst: Address, payload_len: int, ident: int, flags_frag: int = 0x4000,
                tos: int = 0xC0, router_alert: bool = True) -> bytes:
    """An IGMP datagram's IPv4 header: TTL 1, protocol 2, the Router Alert
    option (RFC 2236 2 and RFC 3376 4 require both), TOS 0xc0 (RFC 3376 4:
    Internetwork Control)."""
    opts = ROUTER_ALERT if router_alert else b""
    ihl = (20 + len(opts)) // 4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, 20 + len(opts) + payload_len, ident, flags_frag, 1, 2, 0,
                      ip4(src), ip4(dst)) + opts
    return with_checksum(hdr, 10)


def ethernet(dst_ip: Address, src_mac: bytes) -> bytes:
    return multicast_mac(dst_ip) + src_mac + b"\x08\x00"


def igmpv2(kind: int, group: Address, max_resp_ds: int = 0) -> bytes:
    """An IGMPv2 message (8 bytes): report, leave or v2 query."""
    return with_checksum(struct.pack("!BBH4s", kind, max_resp_ds, 0, ip4(group)))


@dataclass(frozen=True)
class Record:
    """One IGMPv3 group record."""

    kind: int
    group: Address
    sources: tuple[Address, ...] = ()

    def pack(self) -> bytes:
        return struct.pack("!BBH4s", self.kind, 0, len(self.sources), ip4(self.group)) + b"".join(
            ip4(s) for s in self.sources)


def igmpv3_report(records: list[Record]) -> bytes:
    return with_checksum(struct.pack("!BBHHH", V3_REPORT, 0, 0, 0, len(records)) + b"".join(r.pack() for r in records))


def igmpv3_query(group: Address = "0.0.0.0", max_resp_code: int = 10, sources: tuple[Address, ...] = (), qrv: int = 2,
                 qqic: int = 125) -> bytes:
    return with_checksum(struct.pack("!BB H 4s BBH", QUERY, max_resp_code, 0, ip4(group), qrv & 7, qqic,
                                     len(sources)) + b"".join(ip4(s) for s in sources))


def query_frame(src_mac: bytes, src_ip: Address, igmp: bytes, group: Address = "0.0.0.0") -> bytes:
    """A query from a querier: to all-hosts (general) or to the group."""
    dst = ALL_HOSTS if ip(group) == 0 else group
    return ethernet(dst, src_mac) + ipv4_header(src_ip, dst, len(igmp), 0x1234) + igmp


def query_message(version: int, group: Address = 0, max_resp_code: int = 100, sources: tuple[Address, ...] = ()) -> bytes:
    """A membership query: v1 (8 bytes, max resp 0), v2 (8 bytes) or v3 (RFC 3376 4.1)."""
    if version < 3:
        return igmpv2(QUERY, group, max_resp_code if version == 2 else 0)
    return igmpv3_query(group, max_resp_code, sources)


def querier_frame(version: int, group: Address = 0, max_resp_code: int = 100, sources: tuple[Address, ...] = (),
                  src_ip: Address = QUERIER_IP) -> bytes:
    """A query of ``version`` as a querier (QUERIER_MAC) sends it: general
    ones to 224.0.0.1, others to the group."""
    return query_frame(QUERIER_MAC, src_ip, query_message(version, group, max_resp_code, sources), group)


def igmp_frame(mac: bytes, src_ip: Address, dst: Address, igmp: bytes, ident: int = 0) -> bytes:
    """Ethernet + IPv4 (TTL 1, TOS 0xc0, DF, Router Alert) around an IGMP message."""
    return ethernet(dst, mac) + ipv4_header(src_ip, dst, len(igmp), ident) + igmp


def v2_frame(mac: bytes, src_ip: Address, kind: int, group: Address) -> bytes:
    """A v1/v2 report to the group, or a leave to 224.0.0.2."""
    return igmp_frame(mac, src_ip, ALL_ROUTERS if kind == V2_LEAVE else group, igmpv2(kind, group))


def v3_frame(mac: bytes, src_ip: Address, records: list[tuple[int, Address, tuple[Address, ...]]]) -> bytes:
    """An IGMPv3 membership report to 224.0.0.22 of ``(type, group, sources)`` records."""
    return igmp_frame(mac, src_ip, IGMPV3_ROUTERS, igmpv3_report([Record(*r) for r in records]))


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


def is_leave(p: Parsed) -> bool:
    """An IGMPv2 leave, or an IGMPv3 report leaving (TO_IN or BLOCK records first)."""
    return p.kind == V2_LEAVE or (p.kind == V3_REPORT and bool(p.records) and p.records[0].kind in (TO_IN, BLOCK))


def read_report(frame: bytes) -> dict[str, Any]:
    """The fields of a report frame (:func:`parse`), addresses as host-order
    integers, both checksums verified and the records filling the message
    (raises if not)."""
    p = parse(frame)
    assert checksum(frame[14:14 + 4 * (frame[14] & 15)]) == 0, "IP header checksum"
    assert checksum(p.igmp) == 0, "IGMP checksum"
    recs = [(r.kind, ip(r.group), tuple(map(ip, r.sources))) for r in p.records]
    if p.kind == V3_REPORT:
        assert 8 + sum(8 + 4 * len(s) for _, _, s in recs) == len(p.igmp), "records fill the message"
    return {"dst": ip(p.dst), "ttl": p.ttl, "tos": p.tos, "type": p.kind, "router_alert": p.options == ROUTER_ALERT,
            "group": ip(p.group) if p.group else None, "records": recs}


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


def is_igmp_from(frame: bytes, src_mac: bytes | None) -> bool:
    """An Ethernet/IPv4 frame carrying IGMP (from ``src_mac`` when given)."""
    return (len(frame) >= 34 and frame[12:14] == b"\x08\x00" and frame[23] == 2
            and (src_mac is None or frame[6:12] == src_mac))


def capture_in_namespace(interface: str, seconds: float, sends: list[tuple[float, str]], *,
                         src_mac: bytes | None = None, after_first: bool = False, max_frames: int = 0,
                         sent: list[float] | None = None) -> list[dict]:
    """Frames carrying IGMP that ``interface`` receives for ``seconds``
    (``{"t": seconds since start, "hex": frame}``), sending each ``(at, hex)``
    frame of ``sends`` at its time. Options: only frames from ``src_mac``;
    ``after_first``: the sends' times count from the first captured frame
    (nothing is sent before one); stop after ``max_frames`` frames (0: no
    limit); ``sent`` gets the time each send went out."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((interface, 0))
    s.settimeout(0.01)
    start = time.monotonic()
    print("ready", file=sys.stderr, flush=True)
    got: list[dict] = []
    pending = sorted(sends)
    while (now := time.monotonic() - start) < seconds and not (max_frames and len(got) >= max_frames):
        base = (got[0]["t"] if got else None) if after_first else 0.0
        while pending and base is not None and pending[0][0] + base <= now:
            s.send(bytes.fromhex(pending.pop(0)[1]))
            if sent is not None:
                sent.append(time.monotonic() - start)
        try:
            frame, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        if addr[2] != socket.PACKET_OUTGOING and is_igmp_from(frame, src_mac):
            got.append({"t": time.monotonic() - start, "hex": frame.hex()})
    return got


def main(argv: list[str]) -> None:
    """``capture IFACE SECONDS [--src-mac HEX] [--after-first] [--max-frames N]
    [--with-sent] [AT:HEX ...]``: the capture as JSON (with ``--with-sent``
    ``{"frames": [...], "sent": [times]}``, else the list of frames)."""
    ap = argparse.ArgumentParser(prog="igmp_wire.py")
    ap.add_argument("command", choices=["capture"])
    ap.add_argument("iface")
    ap.add_argument("seconds", type=float)
    ap.add_argument("sends", nargs="*", help="AT:HEX")
    ap.add_argument("--src-mac", default=None)
    ap.add_argument("--after-first", action="store_true")
    ap.add_argument("--max-frames", type=int, default=0)
    ap.add_argument("--with-sent", action="store_true")
    a = ap.parse_intermixed_args(argv)
    todo = [(float(at), h) for at, _, h in (r.partition(":") for r in a.sends)]
    sent: list[float] = []
    frames = capture_in_namespace(a.iface, a.seconds, todo, src_mac=bytes.fromhex(a.src_mac) if a.src_mac else None,
                                  after_first=a.after_first, max_frames=a.max_frames, sent=sent)
    print(json.dumps({"frames": frames, "sent": sent} if a.with_sent else frames))


if __name__ == "__main__":
    main(sys.argv[1:])
