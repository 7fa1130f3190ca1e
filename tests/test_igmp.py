"""rxfeed/igmp.h, the IGMP host side for fully bypassed ports (issue 15):
its frames byte for byte against frames built here from RFC 2236 / 3376,
its query parser on good and malformed queries, and the responder's
timing and merging rules (RFC 3376 5.2). Ticks are milliseconds here."""

from __future__ import annotations

import struct

import pytest

from tests import igmp_wire as w
from tests.igmp_harness import HOST_MAC, Responder, harness
from tests.igmp_wire import (ALLOW, BLOCK, IS_EX, IS_IN, QUERIER_IP, TO_EX, TO_IN, V1_REPORT, V2_LEAVE, V2_REPORT,
                             dotted, igmp_frame, ip, querier_frame, read_report, v2_frame, v3_frame)

ANY = "233.54.12.111"
SSM = "232.1.1.1"
SSM_SOURCES = ("10.1.1.1", "10.1.1.2")
SRC_IP = ip("10.77.0.1")


def srcs(*names: str) -> tuple[int, ...]:
    return tuple(ip(s) for s in names)


def test_v2_report_and_leave_are_the_rfc_2236_frames():
    r = Responder(2, {ANY: ()}, src_ip=SRC_IP)
    r.start(0)
    assert r.poll(0) == [v2_frame(HOST_MAC, SRC_IP, V2_REPORT, ip(ANY))]
    assert r.leave() == [v2_frame(HOST_MAC, SRC_IP, V2_LEAVE, ip(ANY))]
    f = read_report(v2_frame(HOST_MAC, SRC_IP, V2_LEAVE, ip(ANY)))
    assert f["dst"] == ip("224.0.0.2") and f["ttl"] == 1 and f["tos"] == 0xC0 and f["router_alert"]


def test_v2_frame_refuses_a_small_buffer():
    h = harness()
    port = h.ffi.new("rxf_igmp_port *")
    out = h.ffi.new("uint8_t[]", 45)
    assert h.lib.rxf_igmp_v2_frame(port, V2_REPORT, ip(ANY), out, 45) == 0
    assert h.lib.rxf_igmp_v2_frame(port, V2_REPORT, ip(ANY), h.ffi.new("uint8_t[]", 46), 46) == 46


def test_v3_join_is_one_report_to_224_0_0_22_with_to_ex_and_allow():
    r = Responder(3, {ANY: (), SSM: SSM_SOURCES})
    r.start(0)
    [frame] = r.poll(0)
    assert frame == v3_frame(HOST_MAC, 0, [(TO_EX, ip(ANY), ()), (ALLOW, ip(SSM), srcs(*SSM_SOURCES))])
    assert frame[:6] == bytes.fromhex("01005e000016")
    assert read_report(frame)["router_alert"]


def unsolicited_times(r: Responder, start: int, until: int) -> list[int]:
    r.start(start)
    return [t for t in range(start, until) if r.poll(t)]


def test_unsolicited_reports_robustness_times_at_random_within_the_interval():
    # RFC 3376 5.1: the first at once, the robustness - 1 others each after
    # a delay chosen at random from (0, Unsolicited Report Interval]
    gaps = []
    for seed in range(1, 31):
        r = Responder(3, {ANY: ()}, robustness=3, interval=1000, seed=seed)
        times = unsolicited_times(r, 5, 5000)
        assert len(times) == 3 and times[0] == 5 and r.stats["reports_sent"] == 3
        assert r.next_due == 2**64 - 1
        gaps += [b - a for a, b in zip(times, times[1:])]
    assert all(1 <= g <= 1000 for g in gaps)
    assert len(set(gaps)) > 40 and min(gaps) < 300 and max(gaps) > 700, gaps


def test_leave_v3_to_in_for_any_source_block_for_ssm():
    r = Responder(3, {ANY: (), SSM: SSM_SOURCES})
    r.start(0)
    r.poll(0)
    assert r.leave() == [v3_frame(HOST_MAC, 0, [(TO_IN, ip(ANY), ()), (BLOCK, ip(SSM), srcs(*SSM_SOURCES))])]
    assert r.stats["leaves_sent"] == 1 and r.next_due == 2**64 - 1  # nothing pending after a leave


def test_records_past_the_mtu_are_split_over_several_reports():
    groups = {f"232.1.2.{g}": tuple(f"10.9.{g}.{s}" for s in range(1, 33)) for g in range(1, 17)}
    r = Responder(3, groups)
    r.start(0)
    frames = r.poll(0)
    assert len(frames) == 2  # 16 records of 136 bytes; 10 fit in 1500 - 24 - 8
    records = [rec for f in frames for rec in read_report(f)["records"]]
    assert records == [(ALLOW, ip(g), srcs(*s)) for g, s in groups.items()]
    assert all(len(f) <= 1514 for f in frames)
    assert frames[0] == v3_frame(HOST_MAC, 0, records[:10])


def test_v2_host_refuses_ssm_sources_and_duplicates():
    with pytest.raises(ValueError):
        Responder(2, {SSM: SSM_SOURCES})
    with pytest.raises(ValueError):
        Responder(3, {"10.0.0.1": ()})  # not multicast


def answer_time(r: Responder, query: bytes, now: int, limit: int) -> tuple[int, list[bytes]]:
    """Receive ``query`` at ``now``; poll each ms until frames come (at most ``limit`` ms)."""
    assert r.receive(query, now) == "ok"
    for t in range(now, now + limit + 1):
        out = r.poll(t)
        if out:
            return t - now, out
    return -1, []


def started(version: int = 3, **groups) -> Responder:
    r = Responder(version, groups or {ANY: (), SSM: SSM_SOURCES}, robustness=1)
    r.start(0)
    r.poll(0)
    return r


@pytest.mark.parametrize("seed", range(5))
def test_general_query_v3_one_report_of_every_group_within_max_resp(seed):
    r = Responder(3, {ANY: (), SSM: SSM_SOURCES}, robustness=1, seed=seed + 1)
    r.start(0)
    r.poll(0)
    delay, frames = answer_time(r, querier_frame(3, 0, 20), 100, 2000)  # 2.0 s
    assert 0 <= delay < 2000
    assert frames == [v3_frame(HOST_MAC, 0, [(IS_EX, ip(ANY), ()), (IS_IN, ip(SSM), srcs(*SSM_SOURCES))])]
    assert r.stats["queries_seen"] == 1 and r.stats["queries_answered"] == 1


def test_answer_delays_are_spread_over_the_max_response_time():
    delays = []
    for seed in range(1, 41):
        r = Responder(3, {ANY: ()}, robustness=1, seed=seed)
        r.start(0)
        r.poll(0)
        delays.append(answer_time(r, querier_frame(3, 0, 100), 0, 10_000)[0])
    assert all(0 <= d < 10_000 for d in delays)
    assert len(set(delays)) > 30 and min(delays) < 3000 and max(delays) > 7000


def test_max_resp_code_floating_point():
    lib = harness().lib
    assert [lib.rxf_igmp_max_resp_ds(c) for c in (0, 1, 100, 127)] == [0, 1, 100, 127]
    # RFC 3376 4.1.1: 1 exp(3) mant(4); (mant | 0x10) << (exp + 3)
    assert lib.rxf_igmp_max_resp_ds(0x80) == 0x10 << 3
    assert lib.rxf_igmp_max_resp_ds(0x8F) == 0x1F << 3
    assert lib.rxf_igmp_max_resp_ds(0xFF) == 0x1F << 10 == 31744


def test_large_max_resp_code_v3_bounds_the_delay():
    r = started()
    delay, _ = answer_time(r, querier_frame(3, 0, 0x81), 0, 20_000)  # (1|16) << 3 = 136 ds
    assert 0 <= delay < 13_600


def test_group_specific_query_answers_that_group_only():
    r = started()
    delay, frames = answer_time(r, querier_frame(3, ip(SSM), 10), 0, 1000)
    assert 0 <= delay < 1000
    assert frames == [v3_frame(HOST_MAC, 0, [(IS_IN, ip(SSM), srcs(*SSM_SOURCES))])]
    assert answer_time(r, querier_frame(3, ip("239.9.9.9"), 10), 2000, 3000) == (-1, [])


def test_group_and_source_specific_query_rfc_3376_5_2():
    r = started()
    # INCLUDE(A) with A = {.1, .2}, queried B = {.2, .3}: IS_IN(A*B)
    _, frames = answer_time(r, querier_frame(3, ip(SSM), 10, srcs("10.1.1.2", "10.1.1.3")), 0, 1000)
    assert frames == [v3_frame(HOST_MAC, 0, [(IS_IN, ip(SSM), srcs("10.1.1.2"))])]
    # EXCLUDE({}) : IS_IN(B)
    _, frames = answer_time(r, querier_frame(3, ip(ANY), 10, srcs("10.5.5.5")), 2000, 1000)
    assert frames == [v3_frame(HOST_MAC, 0, [(IS_IN, ip(ANY), srcs("10.5.5.5"))])]
    # A*B empty: nothing is sent
    assert answer_time(r, querier_frame(3, ip(SSM), 10, srcs("10.7.7.7")), 4000, 1000) == (-1, [])


def test_pending_source_lists_merge_and_a_group_query_widens_them():
    r = started()
    r.receive(querier_frame(3, ip(ANY), 50, srcs("10.5.5.5")), 0)
    r.receive(querier_frame(3, ip(ANY), 50, srcs("10.5.5.6", "10.5.5.5")), 1)
    frames = r.poll(10_000)
    assert frames == [v3_frame(HOST_MAC, 0, [(IS_IN, ip(ANY), srcs("10.5.5.5", "10.5.5.6"))])]
    r.receive(querier_frame(3, ip(ANY), 50, srcs("10.5.5.5")), 20_000)
    r.receive(querier_frame(3, ip(ANY), 50), 20_001)
    assert r.poll(30_000) == [v3_frame(HOST_MAC, 0, [(IS_EX, ip(ANY), ())])]


def test_the_earlier_deadline_wins_when_queries_merge():
    r = started()
    r.receive(querier_frame(3, ip(ANY), 250), 0)
    first = r.next_due
    r.receive(querier_frame(3, ip(ANY), 1), 10)  # 0.1 s: due before 110
    assert r.next_due <= min(first, 110)


def test_a_sooner_general_answer_covers_group_queries():
    r = Responder(3, {ANY: ()}, robustness=1, seed=3)
    r.start(0)
    r.poll(0)
    r.receive(querier_frame(3, 0, 1), 0)  # general, due within 100 ms
    due = r.next_due
    r.receive(querier_frame(3, ip(ANY), 250), 0)  # a later group answer is not scheduled
    assert r.next_due == due
    assert len(r.poll(due)) == 1 and r.poll(30_000) == []


def test_v2_querier_gets_v2_reports_per_group_from_a_v3_host():
    r = started()
    delay, frames = answer_time(r, querier_frame(2, 0, 20), 0, 2000)
    got = sorted(frames + r.poll(2000))
    assert 0 <= delay < 2000
    assert got == sorted([v2_frame(HOST_MAC, 0, V2_REPORT, ip(ANY)), v2_frame(HOST_MAC, 0, V2_REPORT, ip(SSM))])


def test_v1_query_gets_v1_reports_within_ten_seconds():
    r = Responder(2, {ANY: ()}, robustness=1)
    r.start(0)
    r.poll(0)
    delay, frames = answer_time(r, querier_frame(1), 0, 10_000)
    assert 0 <= delay < 10_000 and frames == [v2_frame(HOST_MAC, 0, V1_REPORT, ip(ANY))]


def test_v2_host_answers_a_v3_query_in_v2():
    r = Responder(2, {ANY: ()}, robustness=1)
    r.start(0)
    r.poll(0)
    _, frames = answer_time(r, querier_frame(3, ip(ANY), 10), 0, 1000)
    assert frames == [v2_frame(HOST_MAC, 0, V2_REPORT, ip(ANY))]


def test_query_parser_fields():
    h = harness()
    q = h.ffi.new("rxf_igmp_query *")
    f = querier_frame(3, ip(SSM), 0x90, srcs("10.1.1.1", "10.1.1.9"))
    buf = h.ffi.new("uint8_t[]", f)
    assert h.lib.h_parse(buf, len(f), q) == 0
    assert (q.version, q.group, q.max_resp_ds, q.nsrc) == (3, ip(SSM), 0x10 << 4, 2)
    assert (q.qrv, q.qqi_s) == (2, 125)  # igmp_wire's defaults
    assert struct.unpack("!2I", bytes(h.ffi.buffer(q.src, 8))) == srcs("10.1.1.1", "10.1.1.9")


def _mangle_ip(frame: bytes, offset: int, value: bytes) -> bytes:
    return frame[:14 + offset] + value + frame[14 + offset + len(value):]


def _with_igmp(frame: bytes, msg: bytes) -> bytes:
    """The same addresses (lengths and checksums fixed) around another IGMP message."""
    return igmp_frame(frame[6:12], QUERIER_IP, dotted(struct.unpack("!I", frame[30:34])[0]), msg)


def malformed_queries() -> dict[str, bytes]:
    good = querier_frame(3, ip(SSM), 10, srcs("10.1.1.1"))
    v3 = good[38:]
    bad_count = v3[:10] + struct.pack("!H", 2) + v3[12:]  # two sources, one present
    return {
        "bad IGMP checksum": good[:-1] + bytes([good[-1] ^ 1]),
        "bad IP checksum": _mangle_ip(good, 10, b"\x12\x34"),
        "v3 source count past the end": _with_igmp(good, w.with_checksum(bad_count)),
        "length 10": _with_igmp(good, w.with_checksum(v3[:10])),
        "length 4": _with_igmp(good, w.with_checksum(v3[:4])),
        "IP total length past the frame": _mangle_ip(good, 2, b"\x05\x00"),
        "IHL 4": _mangle_ip(good, 0, b"\x44"),
        "group not multicast": _with_igmp(good, w.with_checksum(v3[:4] + b"\x0a\0\0\x01" + v3[8:])),
        "general with sources": _with_igmp(good, w.with_checksum(v3[:4] + b"\0\0\0\0" + v3[8:])),
        "fragment": _mangle_ip(good, 6, b"\x20\x00"),
    }


@pytest.mark.parametrize("name", sorted(malformed_queries()))
def test_malformed_queries_are_counted_never_answered(name):
    r = started()
    assert r.receive(malformed_queries()[name], 0) == "bad", name
    assert r.stats["bad_queries"] == 1 and r.stats["queries_seen"] == 0
    assert r.poll(100_000) == []


def test_every_truncation_of_a_query_is_refused_without_reading_past_it():
    r = started()
    good = querier_frame(3, ip(SSM), 10, srcs("10.1.1.1", "10.1.1.2"))
    verdicts = {r.receive(good[:n], 0) for n in range(len(good))}
    assert verdicts <= {"bad", "not_igmp"}
    assert r.stats["queries_seen"] == 0 and r.poll(100_000) == []
    assert r.receive(good, 200_000) == "ok"


def test_reports_of_other_hosts_and_udp_are_not_queries():
    r = started()
    assert r.receive(v2_frame(bytes(6), 0, V2_REPORT, ip(ANY)), 0) == "other"
    udp = querier_frame(3)[:23] + b"\x11" + querier_frame(3)[24:]
    assert r.receive(udp, 0) == "not_igmp"
    assert r.stats["bad_queries"] == 0


def test_query_behind_a_vlan_tag():
    r = started()
    f = querier_frame(3, ip(ANY), 10)
    tagged = f[:12] + b"\x81\x00\x00\x64" + f[12:]
    assert r.receive(tagged, 0) == "ok"
    assert r.poll(10_000) == [v3_frame(HOST_MAC, 0, [(IS_EX, ip(ANY), ())])]


def test_failed_sends_are_counted():
    r = Responder(3, {ANY: ()}, robustness=1)
    r.coll.fail = 1
    r.start(0)
    assert r.poll(0) == []
    assert r.stats["tx_failed"] == 1 and r.stats["reports_sent"] == 0


def test_a_v2_querier_puts_a_v3_host_in_v2_mode_reports_and_leaves_included():
    # RFC 3376 7.2.1: while an older querier is present (Older Version Querier
    # Present Timeout, 8.12: robustness x the Query Interval, 125 s by
    # default, + the query's Max Response Time, here 1 s), the host speaks its version.
    r = Responder(3, {ANY: ()}, robustness=2, interval=1000)
    r.start(0)
    r.poll(0)
    r.receive(querier_frame(2, 0, 10), 100)
    # the second unsolicited report (due at 1000) and the answer: both v2 now
    assert r.poll(5000) == [v2_frame(HOST_MAC, 0, V2_REPORT, ip(ANY))] * 2
    assert r.leave(6000) == [v2_frame(HOST_MAC, 0, V2_LEAVE, ip(ANY))]
    r.start(7000)  # rejoin: its unsolicited reports are v2 too
    assert r.poll(7000) == [v2_frame(HOST_MAC, 0, V2_REPORT, ip(ANY))]
    later = 100 + 2 * 125_000 + 1_000
    assert r.leave(later - 1) == [v2_frame(HOST_MAC, 0, V2_LEAVE, ip(ANY))]
    assert r.leave(later) == [v3_frame(HOST_MAC, 0, [(TO_IN, ip(ANY), ())])]  # the timeout passed: v3 again


def test_a_v1_querier_means_no_leave_and_v1_reports():
    r = Responder(3, {ANY: ()}, robustness=1)
    r.start(0)
    r.poll(0)
    r.receive(querier_frame(1), 100)
    assert r.poll(100 + 10_000) == [v2_frame(HOST_MAC, 0, V1_REPORT, ip(ANY))]
    assert r.leave(20_000) == []  # IGMPv1 has no leave


def test_an_empty_source_answer_is_not_counted_as_answered():
    r = started()
    r.receive(querier_frame(3, ip(SSM), 10, srcs("10.7.7.7")), 0)
    assert r.poll(10_000) == [] and r.stats["queries_answered"] == 0


def test_ethernet_padding_after_a_query_is_ignored():
    # a 46-byte v2 query arrives padded to the 60-byte Ethernet minimum: the IP total length bounds IGMP
    r = Responder(2, {ANY: ()}, robustness=1)
    r.start(0)
    r.poll(0)
    f = querier_frame(2, ip(ANY), 10)
    assert r.receive(f + bytes(60 - len(f)), 0) == "ok"
    assert r.poll(1000) == [v2_frame(HOST_MAC, 0, V2_REPORT, ip(ANY))]


def test_v1_and_v2_querier_present_timers_run_apart():
    # RFC 3376 7.2.1: one IGMPv1 and one IGMPv2 Querier Present timer. A v1
    # querier heard once, a v2 querier heard on: v1 until the v1 timer runs
    # out, then v2 (the v2 queries do not keep the host in v1), then v3.
    r = Responder(3, {ANY: ()}, robustness=1)
    r.start(0)
    r.poll(0)
    timeout = 125_000 + 10_000  # robustness 1: 1 x 125 s + IGMPv1's 10 s response time
    v2_timeout = 125_000 + 100  # + the v2 queries' 0.1 s
    r.receive(querier_frame(1), 0)
    for t in range(1000, timeout + 20_000, 30_000):
        r.receive(querier_frame(2, 0, 1), t)
    last_v2 = max(range(1000, timeout + 20_000, 30_000))
    assert r.leave(timeout - 1) == []  # v1: no leave
    assert r.leave(timeout) == [v2_frame(HOST_MAC, 0, V2_LEAVE, ip(ANY))]  # the v1 querier is gone, the v2 one is not
    assert r.leave(last_v2 + v2_timeout - 1) == [v2_frame(HOST_MAC, 0, V2_LEAVE, ip(ANY))]
    assert r.leave(last_v2 + v2_timeout) == [v3_frame(HOST_MAC, 0, [(TO_IN, ip(ANY), ())])]


@pytest.mark.parametrize("version", [1, 2])
def test_a_v1_v2_query_has_no_source_pointer_past_its_8_bytes(version):
    # g + 12 of an 8-byte message points past the frame (undefined behaviour in C even unread)
    h = harness()
    q = h.ffi.new("rxf_igmp_query *")
    f = querier_frame(version, 0 if version == 1 else ip(SSM), 10)
    buf = h.ffi.new("uint8_t[]", f)
    assert h.lib.h_parse(buf, len(f), q) == 0
    assert (q.version, q.nsrc, q.src) == (version, 0, h.ffi.NULL)


def v3_query_frame(group: str | int = 0, max_resp_code: int = 10, qrv: int = 2, qqic: int = 125) -> bytes:
    return w.query_frame(w.QUERIER_MAC, QUERIER_IP, w.igmpv3_query(group, max_resp_code, (), qrv=qrv, qqic=qqic), group)


def test_qrv_and_qqic_are_parsed_with_the_floating_point_form():
    # RFC 3376 4.1.6-4.1.7: QRV the low 3 bits of byte 8 (the S flag beside it
    # is not part of it), QQIC byte 9 in the same form as Max Resp Code
    h = harness()
    q = h.ffi.new("rxf_igmp_query *")
    for qrv_byte, qqic, want in [(0x0F, 60, (7, 60)), (0x08, 0x80 | (3 << 4) | 5, (0, (5 | 0x10) << 6)), (0, 0, (0, 0))]:
        f = bytearray(v3_query_frame(0, 10))
        f[38 + 8], f[38 + 9] = qrv_byte, qqic
        f = igmp_frame(f[6:12], QUERIER_IP, "224.0.0.1", w.with_checksum(bytes(f[38:40]) + b"\0\0" + bytes(f[42:])))
        buf = h.ffi.new("uint8_t[]", f)
        assert h.lib.h_parse(buf, len(f), q) == 0
        assert (q.qrv, q.qqi_s) == want
    for version in (1, 2):
        f = querier_frame(version, 0, 10)
        assert h.lib.h_parse(h.ffi.new("uint8_t[]", f), len(f), q) == 0 and (q.qrv, q.qqi_s) == (0, 0)


def test_a_querier_qrv_sets_the_robustness_and_qrv_0_gives_back_the_configured_one():
    # RFC 3376 4.1.6, 8.1: the last query's QRV is the Robustness Variable
    # (how many unsolicited reports a (re)join sends); a QRV of 0 (a querier
    # whose robustness is over 7) means the configured value again
    r = started()
    assert r.robustness == 1
    r.receive(v3_query_frame(qrv=0), 0)
    assert r.robustness == 1
    r.receive(v3_query_frame(qrv=4), 0)
    assert r.robustness == 4 and r.st.querier_qrv == 4
    r.poll(10_000)
    assert len(unsolicited_times(r, 20_000, 30_000)) == 4
    r.receive(querier_frame(2, 0, 10), 40_000)  # v1/v2 queries carry no QRV
    assert r.robustness == 4
    r.receive(v3_query_frame(qrv=0), 400_000)
    assert r.robustness == 1
    r.poll(500_000)
    assert len(unsolicited_times(r, 600_000, 610_000)) == 1


def test_qqic_0_means_the_default_query_interval():
    # RFC 3376 4.1.7: a QQIC of 0 is the default 125 s, not "keep the last one"
    r = started(3, **{ANY: ()})
    r.receive(v3_query_frame(qqic=20), 0)
    assert r.st.querier_qi_s == 20
    r.receive(v3_query_frame(qqic=0), 10)
    assert r.st.querier_qi_s == 125


def test_older_querier_timeout_uses_the_querier_interval_and_robustness_heard():
    # RFC 3376 8.12: robustness x the last Query Interval received + the Max
    # Response Time; here QRV 3 and QQIC 20 s from a v3 querier, then a v2
    # query with 2.5 s: v2 for 3 x 20 + 2.5 = 62.5 s
    r = started(3, **{ANY: ()})
    r.receive(v3_query_frame(qrv=3, qqic=20), 0)
    r.poll(10_000)
    r.receive(querier_frame(2, 0, 25), 20_000)
    r.poll(30_000)
    end = 20_000 + 62_500
    assert r.leave(end - 1) == [v2_frame(HOST_MAC, 0, V2_LEAVE, ip(ANY))]
    assert r.leave(end) == [v3_frame(HOST_MAC, 0, [(TO_IN, ip(ANY), ())])]


def test_an_answer_pending_for_a_v3_query_goes_out_in_v2_once_a_v2_querier_is_heard():
    # the v3 general answer and a v3 group answer are pending when a v2
    # querier appears: the host speaks IGMPv2 now, and the v2 querier ignores
    # IGMPv3 reports, so they go out as IGMPv2 reports, one per group
    r = Responder(3, {ANY: (), "233.54.12.112": ()}, robustness=1)
    r.start(0)
    r.poll(0)
    r.receive(querier_frame(3, 0, 100), 0)                      # general, 10 s
    r.receive(querier_frame(3, ip("233.54.12.112"), 100), 0)    # covered by the general answer when it is sooner
    r.receive(querier_frame(2, ip(ANY), 1), 1)                  # v2 querier: group query, 0.1 s
    frames = []
    for t in range(1, 11_000):
        frames += r.poll(t)
    v2 = {g: v2_frame(HOST_MAC, 0, V2_REPORT, ip(g)) for g in (ANY, "233.54.12.112")}
    assert frames and all(f in v2.values() for f in frames), "an IGMPv3 report reached a v2 querier"
    assert sorted(frames) == sorted(v2.values()), "each group reported once"
    assert r.stats["queries_answered"] == 2


def test_a_v2_host_hearing_a_v1_querier_stays_in_v1_for_400_s():
    # RFC 2236 8.11: the Version 1 Router Present Timeout of an IGMPv2 host is 400 s
    r = Responder(2, {ANY: ()}, robustness=1)
    r.start(0)
    r.poll(0)
    r.receive(querier_frame(1), 1000)
    assert r.leave(1000 + 400_000 - 1) == []  # IGMPv1: no leave
    assert r.leave(1000 + 400_000) == [v2_frame(HOST_MAC, 0, V2_LEAVE, ip(ANY))]


def test_older_querier_timeout_takes_the_query_response_interval_from_general_queries():
    # RFC 3376 8.12's "one Query Response Interval" is a general query's max
    # response time; a group-specific query's (the Last Member Query
    # Interval) does not change it
    r = started(3, **{ANY: ()})
    r.receive(querier_frame(2, 0, 50), 0)          # general, 5 s: QRI 5 s
    r.receive(querier_frame(2, ip(ANY), 10), 100)  # group-specific, 1 s: QRI still 5 s
    r.poll(20_000)
    end = 100 + 125_000 + 5_000  # robustness 1 x 125 s + 5 s, from the last v2 query
    assert r.leave(end - 1) == [v2_frame(HOST_MAC, 0, V2_LEAVE, ip(ANY))]
    assert r.leave(end) == [v3_frame(HOST_MAC, 0, [(TO_IN, ip(ANY), ())])]
