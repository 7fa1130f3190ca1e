"""IGMP for the tests, written from RFC 2236 / RFC 3376 / RFC 2113 and
independent of rxfeed's C: reference frames (reports, leaves, queries with
their checksums and the Router Alert option), a reader of reports, and the
C code of rxfeed/igmp.h behind a small cffi harness (tests/c_harness.py)."""

from __future__ import annotations

import functools
import ipaddress
import struct
from typing import Any

from tests.c_harness import build_harness

QUERY, V1_REPORT, V2_REPORT, V2_LEAVE, V3_REPORT = 0x11, 0x12, 0x16, 0x17, 0x22
IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6
VERDICTS = ("ok", "not_igmp", "other", "bad")


def ip(text: str) -> int:
    """Dotted quad -> host-order integer."""
    return int(ipaddress.IPv4Address(text))


def checksum(data: bytes) -> int:
    """RFC 1071: the one's complement of the one's complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_checksum(msg: bytes, at: int) -> bytes:
    """``msg`` with the checksum of the whole of it written at offset ``at``."""
    msg = msg[:at] + b"\0\0" + msg[at + 2:]
    return msg[:at] + struct.pack("!H", checksum(msg)) + msg[at + 2:]


def multicast_mac(dst: int) -> bytes:
    """RFC 1112 6.4: 01:00:5e and the low 23 bits of the group."""
    return bytes([0x01, 0x00, 0x5E, (dst >> 16) & 0x7F, (dst >> 8) & 0xFF, dst & 0xFF])


def ipv4_frame(src_mac: bytes, src_ip: int, dst_ip: int, igmp: bytes, *, router_alert: bool = True,
               tos: int = 0xC0, ttl: int = 1, dst_mac: bytes | None = None) -> bytes:
    """Ethernet II + IPv4 (DF, protocol 2, optional Router Alert) around an IGMP message."""
    options = b"\x94\x04\x00\x00" if router_alert else b""
    ihl = (20 + len(options)) // 4
    hdr = struct.pack("!BBHHHBBHII", 0x40 | ihl, tos, 4 * ihl + len(igmp), 0, 0x4000, ttl, 2, 0,
                      src_ip, dst_ip) + options
    eth = (dst_mac or multicast_mac(dst_ip)) + src_mac + b"\x08\x00"
    return eth + with_checksum(hdr, 10) + igmp


def v2_message(kind: int, group: int, max_resp: int = 0) -> bytes:
    """An IGMPv1/v2 message (RFC 2236 2): type, max resp, checksum, group."""
    return with_checksum(struct.pack("!BBHI", kind, max_resp, 0, group), 2)


def v2_frame(mac: bytes, src_ip: int, kind: int, group: int) -> bytes:
    """A v1/v2 report to the group, or a leave to 224.0.0.2."""
    dst = ip("224.0.0.2") if kind == V2_LEAVE else group
    return ipv4_frame(mac, src_ip, dst, v2_message(kind, group))


def v3_record(rtype: int, group: int, sources: tuple[int, ...] = ()) -> bytes:
    """RFC 3376 4.2.4: record type, aux data len 0, number of sources, group, sources."""
    return struct.pack(f"!BBHI{len(sources)}I", rtype, 0, len(sources), group, *sources)


def v3_frame(mac: bytes, src_ip: int, records: list[tuple[int, int, tuple[int, ...]]]) -> bytes:
    """An IGMPv3 membership report to 224.0.0.22 (RFC 3376 4.2)."""
    body = b"".join(v3_record(*r) for r in records)
    msg = with_checksum(struct.pack("!BBHHH", V3_REPORT, 0, 0, 0, len(records)) + body, 2)
    return ipv4_frame(mac, src_ip, ip("224.0.0.22"), msg)


def query_message(version: int, group: int = 0, max_resp_code: int = 100, sources: tuple[int, ...] = (),
                  qrv: int = 2, qqic: int = 125) -> bytes:
    """A membership query: v1 (8 bytes, max resp 0), v2 (8 bytes) or v3 (RFC 3376 4.1)."""
    if version == 1:
        return v2_message(QUERY, group, 0)
    if version == 2:
        return v2_message(QUERY, group, max_resp_code)
    msg = struct.pack(f"!BBHIBBH{len(sources)}I", QUERY, max_resp_code, 0, group, qrv & 7, qqic, len(sources),
                      *sources)
    return with_checksum(msg, 2)


QUERIER_MAC = bytes.fromhex("020000000001")


def query_frame(version: int, group: int = 0, max_resp_code: int = 100, sources: tuple[int, ...] = (),
                src_ip: int = 0x0A000001) -> bytes:
    """A query as a querier sends it: general ones to 224.0.0.1, others to the group."""
    dst = group or ip("224.0.0.1")
    return ipv4_frame(QUERIER_MAC, src_ip, dst, query_message(version, group, max_resp_code, sources))


def read_report(frame: bytes) -> dict[str, Any]:
    """The fields of a report frame, every checksum verified (raises if wrong)."""
    assert frame[12:14] == b"\x08\x00"
    iph = frame[14:14 + 4 * (frame[14] & 15)]
    assert checksum(iph) == 0, "IP header checksum"
    total = struct.unpack("!H", iph[2:4])[0]
    msg = frame[14 + len(iph):14 + total]
    assert checksum(msg) == 0, "IGMP checksum"
    out = {"dst": struct.unpack("!I", iph[16:20])[0], "ttl": iph[8], "tos": iph[1], "type": msg[0],
           "router_alert": iph[20:24] == b"\x94\x04\x00\x00", "records": []}
    if msg[0] != V3_REPORT:
        out["group"] = struct.unpack("!I", msg[4:8])[0]
        return out
    pos = 8
    for _ in range(struct.unpack("!H", msg[6:8])[0]):
        rtype, _aux, n, group = struct.unpack("!BBHI", msg[pos:pos + 8])
        out["records"].append((rtype, group, struct.unpack(f"!{n}I", msg[pos + 8:pos + 8 + 4 * n])))
        pos += 8 + 4 * n
    assert pos == len(msg), "records fill the message"
    return out


_CDEF = """
typedef struct { uint64_t reports_sent, queries_seen, queries_answered, leaves_sent, tx_failed, bad_queries; }
    rxf_igmp_stats;
typedef struct { uint8_t mac[6]; uint32_t src_ip; uint32_t mtu; } rxf_igmp_port;
typedef struct { uint64_t next_due; rxf_igmp_stats stats; ...; } rxf_igmp_state;
typedef struct { uint8_t version; uint32_t group; uint32_t max_resp_ds; uint32_t nsrc; const uint8_t *src; }
    rxf_igmp_query;
typedef struct { uint32_t n; uint32_t len[64]; uint8_t buf[64][1514]; int fail; } collector;
int rxf_igmp_init(rxf_igmp_state *st, const rxf_igmp_port *port, uint8_t version, uint32_t robustness,
                  uint64_t interval, uint64_t ticks_per_s, uint64_t seed);
int rxf_igmp_add_group(rxf_igmp_state *st, uint32_t group, const uint32_t *src, uint32_t nsrc);
void rxf_igmp_start(rxf_igmp_state *st, uint64_t now);
int h_handle(rxf_igmp_state *st, const uint8_t *f, uint32_t len, uint64_t now);
int h_parse(const uint8_t *f, uint32_t len, rxf_igmp_query *q);
uint32_t rxf_igmp_v2_frame(const rxf_igmp_port *port, uint8_t type, uint32_t group, uint8_t *out, uint32_t cap);
uint32_t rxf_igmp_max_resp_ds(uint8_t code);
void h_poll(rxf_igmp_state *st, uint64_t now, collector *c);
void h_leave(rxf_igmp_state *st, collector *c);
"""

_SOURCE = r"""
#include "rxfeed/igmp.h"
typedef struct { uint32_t n; uint32_t len[64]; uint8_t buf[64][RXF_IGMP_FRAME_MAX]; int fail; } collector;
static int collect(void *ctx, const uint8_t *f, uint32_t len) {
    collector *c = ctx;
    if (c->fail || c->n >= 64 || len > RXF_IGMP_FRAME_MAX) return -1;
    memcpy(c->buf[c->n], f, len);
    c->len[c->n++] = len;
    return 0;
}
int h_handle(rxf_igmp_state *st, const uint8_t *f, uint32_t len, uint64_t now) {
    return (int)rxf_igmp_handle_frame(st, f, len, now);
}
int h_parse(const uint8_t *f, uint32_t len, rxf_igmp_query *q) { return (int)rxf_igmp_parse_query(f, len, q); }
void h_poll(rxf_igmp_state *st, uint64_t now, collector *c) { rxf_igmp_poll(st, now, collect, c); }
void h_leave(rxf_igmp_state *st, collector *c) { rxf_igmp_leave(st, collect, c); }
"""


@functools.lru_cache(maxsize=None)
def harness() -> Any:
    """rxfeed/igmp.h compiled into a cffi module (once per process)."""
    return build_harness("_rxf_igmp_harness", _CDEF, _SOURCE)


HOST_MAC = bytes.fromhex("02aabbccddee")


class Responder:
    """rxfeed's C responder (ticks are milliseconds here) and what it sent."""

    def __init__(self, version: int = 3, groups: dict[str, tuple[str, ...]] | None = None, *,
                 robustness: int = 2, interval: int = 1000, src_ip: int = 0, mtu: int = 1500, seed: int = 7):
        h = harness()
        self.h, self.ffi = h.lib, h.ffi
        self.port = self.ffi.new("rxf_igmp_port *")
        self.port.mac = list(HOST_MAC)
        self.port.src_ip, self.port.mtu = src_ip, mtu
        self.st = self.ffi.new("rxf_igmp_state *")
        self.coll = self.ffi.new("collector *")
        if self.h.rxf_igmp_init(self.st, self.port, version, robustness, interval, 1000, seed) != 0:
            raise ValueError("rxf_igmp_init refused its arguments")
        for group, sources in (groups or {}).items():
            src = self.ffi.new("uint32_t[]", [ip(s) for s in sources] or [0])
            if self.h.rxf_igmp_add_group(self.st, ip(group), src, len(sources)) != 0:
                raise ValueError(f"rxf_igmp_add_group refused {group} {sources}")

    def start(self, now: int = 0) -> None:
        self.h.rxf_igmp_start(self.st, now)

    def frames(self) -> list[bytes]:
        """Frames sent since the last call."""
        out = [bytes(self.ffi.buffer(self.coll.buf[i], self.coll.len[i])) for i in range(self.coll.n)]
        self.coll.n = 0
        return out

    def poll(self, now: int) -> list[bytes]:
        self.h.h_poll(self.st, now, self.coll)
        return self.frames()

    def leave(self) -> list[bytes]:
        self.h.h_leave(self.st, self.coll)
        return self.frames()

    def receive(self, frame: bytes, now: int) -> str:
        buf = self.ffi.new("uint8_t[]", frame)
        return VERDICTS[self.h.h_handle(self.st, buf, len(frame), now)]

    @property
    def stats(self) -> dict[str, int]:
        s = self.st.stats
        return {k: getattr(s, k) for k in ("reports_sent", "queries_seen", "queries_answered", "leaves_sent",
                                           "tx_failed", "bad_queries")}

    @property
    def next_due(self) -> int:
        return self.st.next_due
