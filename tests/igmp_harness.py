"""rxfeed/igmp.h behind a small cffi harness (tests/c_harness.py), and the
frames its tests compare with, built by tests/igmp_wire.py from RFC 2236 /
RFC 3376 alone (addresses here are host-order integers, as the C takes them)."""

from __future__ import annotations

import functools
import ipaddress
import struct
from typing import Any

from tests import igmp_wire as w
from tests.c_harness import build_harness

QUERY, V1_REPORT, V2_REPORT, V2_LEAVE, V3_REPORT = w.QUERY, w.V1_REPORT, w.V2_REPORT, w.V2_LEAVE, w.V3_REPORT
IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6
VERDICTS = ("ok", "not_igmp", "other", "bad")
QUERIER_MAC = bytes.fromhex("020000000001")
QUERIER_IP = "10.0.0.1"


def ip(text: str) -> int:
    """Dotted quad -> host-order integer."""
    return int(ipaddress.IPv4Address(text))


def dotted(addr: int) -> str:
    return str(ipaddress.IPv4Address(addr))


def igmp_frame(mac: bytes, src_ip: int | str, dst: str, igmp: bytes, ident: int = 0) -> bytes:
    """Ethernet + IPv4 (TTL 1, TOS 0xc0, DF, Router Alert) around an IGMP message."""
    src = src_ip if isinstance(src_ip, str) else dotted(src_ip)
    return w.ethernet(dst, mac) + w.ipv4_header(src, dst, len(igmp), ident) + igmp


def v2_frame(mac: bytes, src_ip: int, kind: int, group: int) -> bytes:
    """A v1/v2 report to the group, or a leave to 224.0.0.2."""
    dst = w.ALL_ROUTERS if kind == V2_LEAVE else dotted(group)
    return igmp_frame(mac, src_ip, dst, w.igmpv2(kind, dotted(group)))


def v3_frame(mac: bytes, src_ip: int, records: list[tuple[int, int, tuple[int, ...]]]) -> bytes:
    """An IGMPv3 membership report to 224.0.0.22 of ``(type, group, sources)`` records."""
    recs = [w.Record(k, dotted(g), tuple(map(dotted, s))) for k, g, s in records]
    return igmp_frame(mac, src_ip, w.IGMPV3_ROUTERS, w.igmpv3_report(recs))


def query_message(version: int, group: int = 0, max_resp_code: int = 100, sources: tuple[int, ...] = ()) -> bytes:
    """A membership query: v1 (8 bytes, max resp 0), v2 (8 bytes) or v3 (RFC 3376 4.1)."""
    if version < 3:
        return w.igmpv2(QUERY, dotted(group), max_resp_code if version == 2 else 0)
    return w.igmpv3_query(dotted(group), max_resp_code, tuple(map(dotted, sources)))


def query_frame(version: int, group: int = 0, max_resp_code: int = 100, sources: tuple[int, ...] = (),
                src_ip: str = QUERIER_IP) -> bytes:
    """A query as a querier sends it: general ones to 224.0.0.1, others to the group."""
    return w.query_frame(QUERIER_MAC, src_ip, query_message(version, group, max_resp_code, sources), dotted(group))


def read_report(frame: bytes) -> dict[str, Any]:
    """The fields of a report frame (tests/igmp_wire.parse), both checksums
    verified and the records filling the message (raises if not)."""
    p = w.parse(frame)
    assert w.checksum(frame[14:14 + 4 * (frame[14] & 15)]) == 0, "IP header checksum"
    assert w.checksum(p.igmp) == 0, "IGMP checksum"
    recs = [(r.kind, ip(r.group), tuple(map(ip, r.sources))) for r in p.records]
    if p.kind == V3_REPORT:
        assert 8 + sum(8 + 4 * len(s) for _, _, s in recs) == len(p.igmp), "records fill the message"
    return {"dst": ip(p.dst), "ttl": p.ttl, "tos": p.tos, "type": p.kind, "router_alert": p.options == w.ROUTER_ALERT,
            "group": ip(p.group) if p.group else None, "records": recs}


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
int rxf_igmp_peek_type(const uint8_t *f, uint32_t len);
uint32_t rxf_igmp_v2_frame(const rxf_igmp_port *port, uint8_t type, uint32_t group, uint8_t *out, uint32_t cap);
uint32_t rxf_igmp_max_resp_ds(uint8_t code);
void h_poll(rxf_igmp_state *st, uint64_t now, collector *c);
void h_leave(rxf_igmp_state *st, uint64_t now, collector *c);
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
void h_leave(rxf_igmp_state *st, uint64_t now, collector *c) { rxf_igmp_leave(st, now, collect, c); }
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

    def leave(self, now: int = 0) -> list[bytes]:
        self.h.h_leave(self.st, now, self.coll)
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
