"""rxfeed/igmp.h behind a small cffi harness (tests/c_harness.py) and
:class:`Responder`, its Python face. The frames its tests compare with are
built by tests/igmp_wire.py from RFC 2236 / RFC 3376 alone."""

from __future__ import annotations

import functools
from typing import Any

from tests.c_harness import build_harness
# tests/fuzz imports these from here
from tests.igmp_wire import ip, read_report, v2_frame  # noqa: F401
from tests.igmp_wire import querier_frame as query_frame  # noqa: F401

VERDICTS = ("ok", "not_igmp", "other", "bad")


_CDEF = """
typedef struct { uint64_t reports_sent, queries_seen, queries_answered, leaves_sent, tx_failed, bad_queries; }
    rxf_igmp_stats;
typedef struct { uint8_t mac[6]; uint32_t src_ip; uint32_t mtu; } rxf_igmp_port;
typedef struct { uint32_t robustness, querier_qrv, querier_qi_s; uint64_t next_due; rxf_igmp_stats stats; ...; }
    rxf_igmp_state;
typedef struct { uint8_t version; uint32_t group; uint32_t max_resp_ds; uint32_t nsrc; const uint8_t *src;
                 uint8_t qrv; uint32_t qqi_s; } rxf_igmp_query;
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
uint32_t rxf_igmp_robustness(const rxf_igmp_state *st);
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

    @property
    def robustness(self) -> int:
        """The Robustness Variable in force (a querier's QRV once heard)."""
        return self.h.rxf_igmp_robustness(self.st)
