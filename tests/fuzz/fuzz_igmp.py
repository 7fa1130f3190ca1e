"""Fuzz the IGMP query parser and responder of rxfeed/igmp.h (issue 15).

The input is one Ethernet frame, in a heap block of exactly its size.
Properties:
- the parser's verdict is one of ok / not_igmp / other / bad, and a query it
  accepts lies inside the frame: its source list ends within the IGMP
  message, which ends within the frame; v1/v2 queries are 8 bytes and carry
  no QRV / QQIC; a v3 QRV is 3 bits, its QQIC at most 31744 s;
- the cheap type peek (the DPDK pollers' hand-over test) agrees with the
  parser: the IGMP type of whatever the parser found to be IGMP;
- a responder (IGMPv3 and IGMPv2 hosts, an any-source and an SSM group)
  given the frame twice (the second merging into what the first scheduled)
  counts both alike: two queries seen, two bad queries, or neither;
- whatever it then sends (once every max response time has passed, and the
  leaves after) is a well-formed report: IP and IGMP checksums right,
  records filling the message, no frame over 1514 bytes, answers only for
  groups it joined.
"""

from __future__ import annotations

from tests.fuzz._harness import fuzz_main
from tests.igmp_harness import VERDICTS, Responder, harness, ip, read_report

GROUPS = {"233.54.12.111": (), "232.1.1.1": ("10.1.1.1", "10.1.1.2")}
LATER = 10**8  # ms: past the largest max response time (31744 tenths of a second)


def check_parse(data: bytes) -> None:
    """The parser's verdict and the bounds of what it accepted."""
    h = harness()
    buf = h.ffi.new("uint8_t[]", max(len(data), 1))
    h.ffi.memmove(buf, data, len(data))
    q = h.ffi.new("rxf_igmp_query *")
    verdict = VERDICTS[h.lib.h_parse(buf, len(data), q)]
    peek = h.lib.rxf_igmp_peek_type(buf, len(data))
    expected_peek = {"not_igmp": peek == -1, "ok": peek == 0x11, "other": 0 <= peek <= 255 and peek != 0x11}
    assert expected_peek.get(verdict, True), (verdict, peek)
    if verdict != "ok":
        return
    assert q.version in (1, 2, 3) and q.qrv <= 7 and q.qqi_s <= 31744
    if q.version < 3:
        assert q.nsrc == 0 and q.qrv == 0 and q.qqi_s == 0
        return
    start = int(h.ffi.cast("uintptr_t", q.src)) - int(h.ffi.cast("uintptr_t", buf))
    assert 14 + 20 + 12 <= start and start + 4 * q.nsrc <= len(data), (start, q.nsrc, len(data))


def check_responder(data: bytes, version: int) -> None:
    """The frame twice into a started responder; what it sends afterwards, and its leaves."""
    groups = GROUPS if version == 3 else {g: () for g in GROUPS}
    r = Responder(version, groups, robustness=1)
    r.start(0)
    r.poll(0)
    r.receive(data, 1)
    r.receive(data, 2)
    s = r.stats
    assert s["queries_seen"] in (0, 2) and s["bad_queries"] in (0, 2) and s["queries_seen"] + s["bad_queries"] <= 2, s
    frames = r.poll(LATER)
    assert len(frames) <= len(groups) and r.stats["queries_answered"] <= len(groups)
    leaves = r.leave(LATER + 1)
    assert len(leaves) <= len(groups)
    joined = {ip(g) for g in groups}
    for f in frames + leaves:
        assert len(f) <= 1514
        rep = read_report(f)
        assert rep["ttl"] == 1 and rep["router_alert"]
        assert {g for _, g, _ in rep["records"]} <= joined and (rep["group"] is None or rep["group"] in joined)


def check(data: bytes) -> None:
    """The module's properties for one frame (``data``)."""
    check_parse(data)
    for version in (3, 2):
        check_responder(data, version)


if __name__ == "__main__":
    harness()  # compiled (and its coverage counters registered) before libFuzzer starts
    fuzz_main(check)
