"""The ef_vi backend's efct (X3) receive loop, driven by the stand-in playing
an X3 (RXF_EFVI_STANDIN_ARCH=efct: NIC-owned superbuffers, RX_REF /
RX_REF_DISCARD events, per-packet timestamps, futures; see
tests/efvi_standin/efct_standin.c)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import pytest

from rxfeed import Packet, Pipeline, PluginConfig, PythonDecoder
from rxfeed.backends.efvi.backend import EfviBackend
from rxfeed.backends.efvi.config import EfviConfig
from rxfeed.interfaces import PKT_HW_TIMESTAMP
from rxfeed.tools.conformance import NativeBackendConformance
from rxfeed.tools.generator import DEFAULT_GROUP, DEFAULT_PORT, udp_frame, write_pcap

from .conftest import collect
from .test_efvi import FILTER, NO_JOIN, efvi_collect

EFCT = {"RXF_EFVI_STANDIN_ARCH": "efct"}
#: a small pool (2 superbuffers of 64 slots) that 20,000 frames must go round many times
SMALL_POOL = {**EFCT, "RXF_EFVI_STANDIN_SUPERBUFS": 2, "RXF_EFVI_STANDIN_SB_PKTS": 64}


def nic_stats(path: Path) -> dict[str, int]:
    """The stand-in NIC's counters, written when the VI was freed."""
    return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines())}


def efct_collect(monkeypatch, tmp_path, pcap, env=None, **cfg) -> tuple[Any, list, dict[str, int]]:
    """A run through the efct loop: summary, decoded messages, the NIC's counters."""
    stats = tmp_path / "nic.stats"
    s, got = efvi_collect(monkeypatch, pcap, {**SMALL_POOL, "RXF_EFVI_STANDIN_STATS": stats, **(env or {})}, **cfg)
    return s, got, nic_stats(stats)


def assert_every_pkt_id_released(nic: dict[str, int]) -> None:
    """Nothing left owned at close, no double release, no frame lost to a full pool."""
    assert nic["outstanding"] == 0 and nic["bad_releases"] == 0 and nic["exhausted_drops"] == 0
    assert nic["max_outstanding"] <= 64  # at most one burst held


@pytest.fixture(scope="module")
def base(day_dir):
    """pcap_replay's decoded output of the day."""
    return collect("pcap_replay", day_dir / "day.pcap")[1]


@pytest.mark.parametrize("future_peek", [False, True])
def test_identical_output_to_pcap_replay(monkeypatch, tmp_path, day_dir, base, future_peek):
    env = {"RXF_EFVI_STANDIN_FUTURE_DELAY": 3, "RXF_EFVI_STANDIN_FUTURE_MISS_EVERY": 7}
    s, got, nic = efct_collect(monkeypatch, tmp_path, day_dir / "day.pcap", env, timestamps=True,
                               future_peek=future_peek)
    assert got == base
    assert s.gaps == 0 and s.errors == {} and s.drops == {}
    st = s.backend_stats
    assert st["datapath"] == "efct" and st["nic_arch"] == 3  # EF_VI_ARCH_EFCT
    assert st["frames"] == st["rx_ref"] == st["packets"] == st["released"] == s.packets == nic["frames"]
    assert nic["frames"] > 128 * 3  # the 128 slots went round several times: every pkt_id came back
    assert_every_pkt_id_released(nic)
    fut = st["future"]
    if future_peek:  # every 7th frame completed before a peek saw it: an ordinary event
        assert fut["peeks"] == nic["futures"] and fut["peeks"] + st["frames"] // 7 == st["frames"]
        assert fut["mismatch"] == fut["timeouts"] == fut["undone"] == fut["early_rejects"] == 0
    else:
        assert fut["peeks"] == nic["futures"] == 0


@pytest.mark.parametrize("future_peek", [False, True])
def test_discards_counted_by_reason_and_released(monkeypatch, tmp_path, day_dir, future_peek):
    s, got, nic = efct_collect(monkeypatch, tmp_path, day_dir / "day.pcap", {"RXF_EFVI_STANDIN_DISCARD_EVERY": 10},
                               future_peek=future_peek)
    d = s.backend_stats["discards"]
    frames = s.backend_stats["frames"]
    # RX_REF_DISCARD flags -> reason: L4 checksum, FCS, length, L2 class "other"
    assert set(d) == {"csum_bad", "crc_bad", "trunc", "other"} and sum(d.values()) == frames // 10
    assert all(frames // 40 <= v <= frames // 40 + 1 for v in d.values())
    assert s.drops["discard_crc_bad"] == d["crc_bad"]
    assert len(got) + s.gap_messages == s.decoder_stats["next_sequence"] - 1 and s.gaps > 0
    assert_every_pkt_id_released(nic)
    if future_peek:  # a discard after a peek undoes the early look
        assert s.backend_stats["future"]["undone"] == sum(d.values())


def test_a_leaked_pkt_id_exhausts_the_superbuffers(monkeypatch, tmp_path, day_dir):
    # a pkt_id never released pins its whole superbuffer: the stand-in ignores
    # every 50th release (a leaking application); the pool runs dry and the
    # NIC drops everything from then on, counted
    env = {"RXF_EFVI_STANDIN_SUPERBUFS": 4, "RXF_EFVI_STANDIN_SB_PKTS": 32, "RXF_EFVI_STANDIN_LEAK_EVERY": 50}
    s, got, nic = efct_collect(monkeypatch, tmp_path, day_dir / "day.pcap", env)
    assert nic["leaked"] >= 4 and nic["exhausted_drops"] > 0
    assert nic["outstanding"] == nic["leaked"]  # everything else came back, on close too
    assert 0 < len(got) < 20_000 and len(got) + s.gap_messages == s.decoder_stats["next_sequence"] - 1


def test_bad_lengths_are_counted_drops(monkeypatch, tmp_path, day_dir):
    # every 100th RX_REF says 5000 bytes (past the 1982-byte slot) or 10 (less than
    # an Ethernet header): counted, released, never read
    s, got, nic = efct_collect(monkeypatch, tmp_path, day_dir / "day.pcap", {"RXF_EFVI_STANDIN_BAD_LEN_EVERY": 100})
    st = s.backend_stats
    assert st["bad_length"] == st["frames"] // 100 > 0 and s.drops["bad_length"] == st["bad_length"]
    assert st["packets"] == st["frames"] - st["bad_length"]
    assert len(got) + s.gap_messages == s.decoder_stats["next_sequence"] - 1 and s.gaps > 0
    assert_every_pkt_id_released(nic)


def test_reset_stops_with_a_clear_error(monkeypatch, tmp_path, day_dir):
    s, _, nic = efct_collect(monkeypatch, tmp_path, day_dir / "day.pcap", {"RXF_EFVI_STANDIN_RESET_AFTER": 100})
    assert s.stop_reason == "backend_error" and "VI was reset" in s.error
    assert s.backend_stats["resets"] == 1 and s.packets == 100
    assert nic["outstanding"] == 0


def test_datapath_must_match_the_vi(monkeypatch, day_dir):
    monkeypatch.setenv("RXF_EFVI_STANDIN_PCAP", str(day_dir / "day.pcap"))
    cfg = {"interface": "sfc0"}
    with pytest.raises(RuntimeError, match=r"datapath efct asked, but the VI on sfc0 is not efct"):
        Pipeline("efvi", "itch50", backend_config={**cfg, "datapath": "efct"})
    with pytest.raises(RuntimeError, match="future_peek needs the efct datapath"):
        Pipeline("efvi", "itch50", backend_config={**cfg, "future_peek": True})
    monkeypatch.setenv("RXF_EFVI_STANDIN_ARCH", "efct")
    with pytest.raises(RuntimeError, match=r"datapath ef10 asked, but the VI on sfc0 is efct \(X3\)"):
        Pipeline("efvi", "itch50", backend_config={**cfg, "datapath": "ef10"})
    pipe = Pipeline("efvi", "itch50", backend_config={**cfg, "datapath": "efct", "expected_frames": 1})
    assert pipe.run().backend_stats["datapath"] == "efct"
    pipe.close()


class _Stamps(PythonDecoder[PluginConfig]):
    """Keeps each packet's (rx_ts_ns, flags)."""

    name, Config = "stamps", PluginConfig

    def __init__(self) -> None:
        super().__init__(PluginConfig())
        self.kept: list[tuple[int, int]] = []

    def on_packets(self, packets: Sequence[Packet]) -> bool:
        self.kept.extend((p.rx_ts_ns, p.flags) for p in packets)
        return False

    def counters(self) -> dict[str, Any]:
        return {"messages": len(self.kept), "messages_per_type": {"datagram": len(self.kept)}}


def _stamps(monkeypatch, pcap: Path, arch: str, ts_flags: int, timestamps: bool = True) -> tuple[list, dict]:
    monkeypatch.setenv("RXF_EFVI_STANDIN_PCAP", str(pcap))
    monkeypatch.setenv("RXF_EFVI_STANDIN_ARCH", arch)
    monkeypatch.setenv("RXF_EFVI_STANDIN_TS_FLAGS", str(ts_flags))
    dec = _Stamps()
    pipe = Pipeline(EfviBackend(EfviConfig(interface="sfc0", idle_timeout_s=0.3, timestamps=timestamps)), dec)
    s = pipe.run()
    pipe.close()
    return dec.kept, s.backend_stats


@pytest.mark.parametrize("arch", ["ef10", "efct"])
def test_nic_timestamps_are_epoch_ns_flagged_and_their_clock_named(monkeypatch, tmp_path, arch):
    import time

    write_pcap(tmp_path / "t.pcap", [(1_700_000_000_123_456_789 + i * 1000, udp_frame(b"x%d" % i)) for i in range(50)],
               nsec=True)
    want = [1_700_000_000_123_456_789 + i * 1000 for i in range(50)]
    got, st = _stamps(monkeypatch, tmp_path / "t.pcap", arch, 3)  # clock set, in sync
    assert got == [(t, PKT_HW_TIMESTAMP) for t in want]
    assert st["clock_source"] == "nic (adapter clock, in sync)" and st["timestamps"]["in_sync"] == 50
    got, st = _stamps(monkeypatch, tmp_path / "t.pcap", arch, 1)  # set, not (yet) in sync with PTP
    assert got == [(t, PKT_HW_TIMESTAMP) for t in want]
    assert st["clock_source"] == "nic (adapter clock set, not in sync with its reference)"
    for flags, why in ((0, "0 without a NIC timestamp, 50 before the adapter clock was set"),
                       (-1, "50 without a NIC timestamp, 0 before")):
        t0 = time.time_ns()
        got, st = _stamps(monkeypatch, tmp_path / "t.pcap", arch, flags)  # never set / no stamp: wall clock
        assert all(t0 <= t <= time.time_ns() and f == 0 for t, f in got) and len(got) == 50
        assert st["clock_source"].startswith("CLOCK_REALTIME at hand-out for 50 frames") and why in st["clock_source"]
    _, st = _stamps(monkeypatch, tmp_path / "t.pcap", arch, 3, timestamps=False)
    assert st["clock_source"] == "CLOCK_REALTIME at hand-out"


class TestEfctConformance(NativeBackendConformance):
    """The efct loop passes the conformance kit too (the stand-in playing an X3)."""

    backend = "efvi"

    @pytest.fixture(autouse=True)
    def _standin_env_restored(self, monkeypatch):
        """The stand-in reads its personality and pcap from the environment when
        the VI opens; both are put back after each test."""
        monkeypatch.setenv("RXF_EFVI_STANDIN_ARCH", "efct")
        monkeypatch.setenv("RXF_EFVI_STANDIN_PCAP", "")  # records the variable's state, so that the
        monkeypatch.delenv("RXF_EFVI_STANDIN_PCAP")  # direct os.environ writes below are undone too

    def source_config(self, tmp_path, payloads):
        write_pcap(tmp_path / "nic.pcap", [(i * 1000, udp_frame(p)) for i, p in enumerate(payloads)])
        os.environ["RXF_EFVI_STANDIN_PCAP"] = str(tmp_path / "nic.pcap")
        return {"interface": "sfc0", "filters": [f"{DEFAULT_GROUP}:{DEFAULT_PORT}"],
                "expected_frames": len(payloads), "idle_timeout_s": 2.0, "future_peek": True, "igmp": NO_JOIN}

    def corrupt_configs(self, tmp_path):
        """No such interface; an X3 (the stand-in) fed random bytes, not a pcap."""
        (tmp_path / "noise.pcap").write_bytes(bytes(range(256)) * 16)
        os.environ["RXF_EFVI_STANDIN_PCAP"] = str(tmp_path / "noise.pcap")
        return [{"interface": "nosuch0", "idle_timeout_s": 0.3}, {"interface": "sfc0", "idle_timeout_s": 0.3}]


def test_live_veth_every_message_arrives_through_futures(rxfeed_day):
    from .netns import live_run, veth_pair

    with veth_pair("x") as net:
        env = {**os.environ, "RXF_EFVI_STANDIN_UDP": "1", "RXF_EFVI_STANDIN_ARCH": "efct"}
        env.pop("RXF_EFVI_STANDIN_PCAP", None)
        sent, s = live_run("efvi", {"interface": net["host_if"], "filters": [FILTER], "future_peek": True},
                           rxfeed_day(20_000, 4, 5, "nasdaq"), FILTER, 2000, net["peer_ip"], netns=net["ns"],
                           env=env)
    assert sent["messages"] == s["messages"] == 20_000
    assert s["gaps"] == 0 and s["stop_reason"] == "end_of_session"


def test_standin_future_shows_only_the_valid_bytes_before_its_completion(monkeypatch, tmp_path):
    # the stand-in's X3, driven directly (ctypes): a backend that read a peeked
    # frame past EFCT_FUTURE_VALID_BYTES before the completion would read poison
    import ctypes

    from rxfeed.backends.efvi import _efvi

    frame = udp_frame(bytes(range(256)) + b"P" * 44)
    write_pcap(tmp_path / "one.pcap", [(1_700_000_000_000_000_000, frame)], nsec=True)
    for k, v in {**EFCT, "RXF_EFVI_STANDIN_PCAP": tmp_path / "one.pcap", "RXF_EFVI_STANDIN_FUTURE_DELAY": 2}.items():
        monkeypatch.setenv(k, str(v))
    lib = ctypes.CDLL(_efvi.__file__)
    vp, u32 = ctypes.c_void_p, ctypes.c_uint32
    lib.efct_vi_rx_future_peek.restype = lib.efct_vi_rxpkt_get.restype = vp
    lib.efct_vi_rxpkt_get.argtypes = lib.efct_vi_rxpkt_release.argtypes = [vp, u32]
    dh, pd, vi = ctypes.c_int(), ctypes.create_string_buffer(256), ctypes.create_string_buffer(256)
    assert lib.ef_driver_open(ctypes.byref(dh)) == 0 and lib.ef_pd_alloc_by_name(pd, dh, b"sfc0", 0) == 0
    assert lib.ef_vi_alloc_from_pd(vi, dh, pd, dh, -1, 512, 0, None, -1, 0) == 0
    assert vi.raw[8] == 3  # nic_type.arch == EF_VI_ARCH_EFCT
    p = lib.efct_vi_rx_future_peek(vi)
    early = ctypes.string_at(p, len(frame))
    assert early[:62] == frame[:62] and set(early[62:]) == {0xA5}  # only 62 bytes before completion
    evs = (ctypes.c_uint64 * 2 * 4)()
    assert [lib.efct_vi_rx_future_poll(vi, evs, 4) for _ in range(3)] == [0, 0, 1]  # two "not yet", then done
    word = evs[0][0]
    ev_type, ev_len, pkt_id = word & 0xFFFF, (word >> 16) & 0xFFFF, word >> 32
    assert (ev_type, ev_len) == (14, len(frame))  # EF_EVENT_TYPE_RX_REF, the frame's length
    assert lib.efct_vi_rxpkt_get(vi, pkt_id) == p and ctypes.string_at(p, len(frame)) == frame
    lib.efct_vi_rxpkt_release(vi, pkt_id)
    assert lib.efct_vi_rxpkt_get(vi, pkt_id) is None  # released: no longer the application's
    assert lib.ef_vi_free(vi, dh) == 0


def _drive(exe: Path, pcap: Path, future_peek: bool, env: dict[str, Any]) -> dict[str, int]:
    """One run of tests/efvi_standin/drive.c: the counters it printed."""
    import subprocess

    from .c_harness import own_sanitizer_env

    run_env = {**own_sanitizer_env(), "RXF_EFVI_STANDIN_PCAP": str(pcap), **{k: str(v) for k, v in env.items()}}
    out = subprocess.run([exe, str(int(future_peek))], capture_output=True, text=True, timeout=120, env=run_env)
    assert out.returncode == 0 and not out.stderr, out.stdout + out.stderr
    return {k: int(v) for k, v in (line.split() for line in out.stdout.splitlines())}


def test_both_loops_under_sanitizers(tmp_path, day_dir):
    """efvi_rx.c, efct_rx.c and the stand-in alone (no Python), with
    AddressSanitizer, UBSan and leak checking, through every stand-in fault:
    no report, and the counters add up."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    exe = tmp_path / "efvi_drive"
    sources = ["tests/efvi_standin/ciul_standin.c", "tests/efvi_standin/efct_standin.c", "backends/efvi/efvi_rx.c",
               "backends/efvi/efct_rx.c", "tests/efvi_standin/drive.c"]
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-Wall", "-Wextra", "-Werror",
                    *(f"-I{root / d}" for d in ("tests/efvi_standin/include", "tests/efvi_standin", "core/include",
                                                "backends/efvi")),
                    *(str(root / s) for s in sources), "-o", str(exe)], check=True, capture_output=True)
    pcap = day_dir / "day.pcap"
    clean = _drive(exe, pcap, False, {})
    assert clean["efct"] == 0 and clean["frames"] == clean["packets"] > 0
    faults = [{"RXF_EFVI_STANDIN_DISCARD_EVERY": 10}, {"RXF_EFVI_STANDIN_BAD_LEN_EVERY": 7},
              {"RXF_EFVI_STANDIN_LEAK_EVERY": 20, "RXF_EFVI_STANDIN_SUPERBUFS": 2, "RXF_EFVI_STANDIN_SB_PKTS": 64},
              {"RXF_EFVI_STANDIN_RESET_AFTER": 50}, {"RXF_EFVI_STANDIN_TS_FLAGS": -1}]
    for future_peek in (False, True):
        c = _drive(exe, pcap, future_peek, EFCT)
        assert c["efct"] == 1 and c["checksum"] == clean["checksum"] and c["released"] == c["frames"]
        assert c["future_peeks"] == (c["frames"] if future_peek else 0)
        for env in faults:
            c = _drive(exe, pcap, future_peek, {**EFCT, "RXF_EFVI_STANDIN_FUTURE_MISS_EVERY": 3, **env})
            discarded = c["frames"] // 10 if "RXF_EFVI_STANDIN_DISCARD_EVERY" in env else 0
            assert c["released"] == c["frames"] > 0 and c["packets"] == c["frames"] - c["bad_len"] - discarded
    for env in faults:  # the EF10 loop through the faults its personality has
        c = _drive(exe, pcap, False, env)
        assert c["efct"] == 0 and c["frames"] > 0
