"""The ef_vi backend, built in CI against rxfeed's ef_vi stand-in
(tests/efvi_standin: the documented API subset, playing the NIC). The same
backend source builds against real Onload (see docs/backends/efvi.md); these
tests exercise every line of its receive logic without a Solarflare card."""

from __future__ import annotations

import os

import pytest

from rxfeed import Pipeline
from rxfeed.backends.efvi.backend import EfviBackend
from rxfeed.backends.efvi.config import EfviConfig
from rxfeed.tools.conformance import NativeBackendConformance
from rxfeed.tools.generator import DEFAULT_GROUP, DEFAULT_PORT, udp_frame, write_pcap

from .conftest import collect

FILTER = "233.54.12.111:26477"
#: the stand-in's NIC "sfc0" has no kernel netdev to join groups on (the
#: kernel joins are tested over veth in tests/test_multicast.py)
NO_JOIN = {"mode": "off"}


def efvi_collect(monkeypatch, pcap, env=None, **cfg):
    monkeypatch.setenv("RXF_EFVI_STANDIN_PCAP", str(pcap))
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, str(v))
    base = {"interface": "sfc0", "filters": [FILTER], "idle_timeout_s": 0.3, "igmp": NO_JOIN}
    backend = EfviBackend(EfviConfig(**{**base, **cfg}))
    pipe = Pipeline(backend, "itch50")
    got = []
    pipe.decoder.subscribe(got.append)
    s = pipe.run()
    pipe.close()
    return s, got


def test_built_against_the_stand_in():
    from rxfeed.backends.efvi import _efvi

    assert "stand-in" in _efvi.BUILT_AGAINST


def test_identical_output_to_pcap_replay(monkeypatch, day_dir):
    _, base = collect("pcap_replay", day_dir / "day.pcap")
    s, got = efvi_collect(monkeypatch, day_dir / "day.pcap", timestamps=True)
    assert got == base
    assert s.gaps == 0 and s.errors == {} and s.drops == {}
    st = s.backend_stats
    assert st["rx_prefix_len"] == 14 and st["frames"] == st["packets"] == s.packets
    assert st["datapath"] == "ef10" and st["clock_source"] == "nic (adapter clock, in sync)"


def test_ring_refill_under_a_burst_larger_than_the_ring(monkeypatch, day_dir):
    env = {"RXF_EFVI_STANDIN_BURST": 100000, "RXF_EFVI_STANDIN_RING_FULL": "wait"}
    s, got = efvi_collect(monkeypatch, day_dir / "day.pcap", env, rx_ring=64, refill_batch=8)
    assert len(got) == 20_000 and s.gaps == 0
    assert s.backend_stats["frames"] > 64 * 5  # every buffer went round several times
    assert s.backend_stats["buffers"] == 64 + 64


def test_ring_overflow_drops_show_as_gaps(monkeypatch, day_dir):
    # the "NIC" drops frames that find no posted buffer, as hardware does:
    # with refills held back to big batches the ring runs dry; losses are gaps
    env = {"RXF_EFVI_STANDIN_BURST": 200}
    s, got = efvi_collect(monkeypatch, day_dir / "day.pcap", env, rx_ring=64, refill_batch=64)
    # every loss before the last datagram that arrived is a gap (a lost tail
    # shows only when a later packet or heartbeat comes, as on a real feed)
    last_seen = s.decoder_stats["next_sequence"] - 1
    assert s.gaps > 0 and len(got) + s.gap_messages == last_seen
    assert s.backend_stats["ring_empty"] > 0


def test_discards_counted_by_reason(monkeypatch, day_dir):
    s, got = efvi_collect(monkeypatch, day_dir / "day.pcap", {"RXF_EFVI_STANDIN_DISCARD_EVERY": 10})
    d = s.backend_stats["discards"]
    frames = s.backend_stats["frames"]
    assert sum(d.values()) == frames // 10
    assert set(d) == {"csum_bad", "mcast_mismatch", "crc_bad", "trunc"}
    assert s.drops["discard_crc_bad"] == d["crc_bad"]
    assert len(got) + s.gap_messages == 20_000 and s.gaps > 0


def test_reset_stops_with_a_clear_error(monkeypatch, day_dir):
    s, got = efvi_collect(monkeypatch, day_dir / "day.pcap", {"RXF_EFVI_STANDIN_RESET_AFTER": 100})
    assert s.stop_reason == "backend_error" and "VI was reset" in s.error
    assert s.backend_stats["resets"] == 1 and s.packets == 100


def test_bad_config_and_unknown_interface(monkeypatch, day_dir):
    from rxfeed import ConfigError

    with pytest.raises(ConfigError, match="exact group and port"):
        Pipeline("efvi", "itch50", backend_config={"interface": "sfc0", "filters": ["*:26477"]})
    with pytest.raises(ConfigError, match="power of two"):
        Pipeline("efvi", "itch50", backend_config={"interface": "sfc0", "rx_ring": 600})
    monkeypatch.setenv("RXF_EFVI_STANDIN_PCAP", str(day_dir / "day.pcap"))
    with pytest.raises(RuntimeError, match=r"ef_pd_alloc_by_name\(nosuch0\).*not a Solarflare"):
        Pipeline("efvi", "itch50", backend_config={"interface": "nosuch0"})


def test_live_veth_every_message_arrives(rxfeed_day):
    import os

    from .netns import live_run, veth_pair

    with veth_pair("e") as net:
        env = {**os.environ, "RXF_EFVI_STANDIN_UDP": "1"}
        env.pop("RXF_EFVI_STANDIN_PCAP", None)
        sent, s = live_run("efvi", {"interface": net["host_if"], "filters": [FILTER]},
                           rxfeed_day(20_000, 4, 5, "nasdaq"), FILTER, 2000, net["peer_ip"], netns=net["ns"],
                           env=env)
    assert sent["messages"] == s["messages"] == 20_000
    assert s["gaps"] == 0 and s["stop_reason"] == "end_of_session"
    assert s["backend_stats"]["igmp"] == {"mode": "kernel", "interface": net["host_if"], "groups": [FILTER[:-6]],
                                          "joined": 1, "version": "kernel's choice"}


def _efvi_stamps(monkeypatch, pcap, **cfg) -> tuple[dict[int, int], float, float]:
    """rx_ts_ns per message sequence through the stand-in, and the run's wall-clock bounds."""
    import time

    monkeypatch.setenv("RXF_EFVI_STANDIN_PCAP", str(pcap))
    pipe = Pipeline(EfviBackend(EfviConfig(interface="sfc0", filters=[FILTER], idle_timeout_s=0.3, igmp=NO_JOIN, **cfg)), "itch50")
    stamps: dict[int, int] = {}
    pipe.decoder.subscribe(lambda m, meta: stamps.setdefault(meta[1], meta[2]), with_meta=True)
    t0 = time.time()
    pipe.run()
    t1 = time.time()
    pipe.close()
    return stamps, t0, t1


def test_rx_ts_ns_is_unix_epoch_with_and_without_nic_timestamps(monkeypatch, day_dir):
    # abi.h: ns since the Unix epoch. Software stamps are CLOCK_REALTIME at hand-out;
    # the stand-in's "NIC" stamps are the capture's, as pcap_replay gives them.
    soft, t0, t1 = _efvi_stamps(monkeypatch, day_dir / "day.pcap")
    assert len(soft) == 20_000 and t0 - 2 < min(soft.values()) / 1e9 <= max(soft.values()) / 1e9 < t1 + 2
    hard, _, _ = _efvi_stamps(monkeypatch, day_dir / "day.pcap", timestamps=True)
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")})
    want: dict[int, int] = {}
    pipe.decoder.subscribe(lambda m, meta: want.setdefault(meta[1], meta[2]), with_meta=True)
    pipe.run()
    pipe.close()
    assert hard == want


class TestEfviConformance(NativeBackendConformance):
    """The ef_vi backend (built against the stand-in, which plays the NIC from
    a pcap) passes the conformance kit like every other native backend."""

    backend = "efvi"

    @pytest.fixture(autouse=True)
    def _standin_env_restored(self, monkeypatch):
        """source_config points the stand-in at a pcap through the environment;
        this puts the environment back after each test (a live test later in
        the session must not find the pcap)."""
        monkeypatch.setenv("RXF_EFVI_STANDIN_PCAP", "")  # records the variable's state, so that the
        monkeypatch.delenv("RXF_EFVI_STANDIN_PCAP")  # direct os.environ writes below are undone too

    def source_config(self, tmp_path, payloads):
        write_pcap(tmp_path / "nic.pcap", [(i * 1000, udp_frame(p)) for i, p in enumerate(payloads)])
        os.environ["RXF_EFVI_STANDIN_PCAP"] = str(tmp_path / "nic.pcap")  # read when the VI opens
        return {"interface": "sfc0", "filters": [f"{DEFAULT_GROUP}:{DEFAULT_PORT}"],
                "expected_frames": len(payloads), "idle_timeout_s": 2.0, "igmp": NO_JOIN}

    def corrupt_configs(self, tmp_path):
        """No such interface; a NIC (the stand-in) fed random bytes, not a pcap."""
        (tmp_path / "noise.pcap").write_bytes(bytes(range(256)) * 16)
        os.environ["RXF_EFVI_STANDIN_PCAP"] = str(tmp_path / "noise.pcap")
        return [{"interface": "nosuch0", "idle_timeout_s": 0.3}, {"interface": "sfc0", "idle_timeout_s": 0.3}]
