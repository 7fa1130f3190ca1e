"""The DPDK backend on real DPDK (Debian's libdpdk, installed by scripts/dev.sh),
no NIC needed: the net_pcap virtual device replays a generated capture.
EAL starts once per process, so every DPDK run here is its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rxfeed.backends.dpdk.backend import hugepages_free


def rx(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"rxfeed {' '.join(map(str, args))} failed:\n{p.stdout}\n{p.stderr}")
    return p


def test_extension_is_built():
    from rxfeed.backends.dpdk import _dpdk

    assert _dpdk.version().startswith("DPDK ")


def test_net_pcap_replay_equals_pcap_replay(day_dir):
    via_dpdk = rx("inspect", day_dir / "day.pcap", "--backend", "dpdk", "-n", "0", "--format", "jsonl").stdout
    via_file = rx("inspect", day_dir / "day.pcap", "-n", "0", "--format", "jsonl").stdout
    rows = [json.loads(line) for line in via_dpdk.splitlines()]
    assert sum("event" not in r for r in rows) == 20_000  # inspect also prints events (end of session)
    assert via_dpdk == via_file


def test_replay_summary_has_nic_counters(day_dir):
    s = json.loads(rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--json").stdout)
    assert s["backend"] == "dpdk" and s["stop_reason"] == "end_of_source"
    assert s["messages"] == 20_000 and s["gaps"] == 0
    nic = s["backend_stats"]["nic"]
    assert nic["ipackets"] == s["packets"] and nic["imissed"] == 0 and nic["rx_nombuf"] == 0
    assert s["backend_stats"]["nic_timestamps"] is True


def test_hugepages_when_reserved(day_dir, tmp_path):
    cfg = tmp_path / "huge.toml"
    want = hugepages_free() >= 128
    cfg.write_text(f"[backend.dpdk]\nhugepages = {'true' if want else 'false'}\n")
    s = json.loads(rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--config", cfg, "--json").stdout)
    assert s["messages"] == 20_000
    assert ("--in-memory" if want else "--no-huge") in s["backend_stats"]["eal_args"]


def _hugepage_files() -> set[str]:
    d = Path("/dev/hugepages")
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


def test_bad_configs_fail_clearly_and_leave_nothing(day_dir, tmp_path):
    before = _hugepage_files()
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[backend.dpdk]\nport = "net_nosuch0"\n')
    p = rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--config", cfg, check=False)
    assert p.returncode == 2 and "no DPDK port named 'net_nosuch0'" in p.stderr
    cfg.write_text('[backend.dpdk]\nlcores = "4096"\n')
    p = rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--config", cfg, check=False)
    assert p.returncode == 2 and "backend.dpdk.lcores" in p.stderr and "not CPUs this process may use" in p.stderr
    cfg.write_text('[backend.dpdk]\npool_size = 300\n')
    p = rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--config", cfg, check=False)
    assert p.returncode == 2 and "pool_size" in p.stderr
    if hugepages_free() < 128:
        cfg.write_text("[backend.dpdk]\nhugepages = true\nmemory_mb = 64\n")
        p = rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--config", cfg, check=False)
        assert p.returncode == 2 and "rte_eal_init failed" in p.stderr
    p = rx("replay", str(day_dir / "day.pcap.gz"), "--backend", "dpdk", check=False)
    assert p.returncode == 2 and "plain pcap only" in p.stderr
    assert _hugepage_files() == before


def test_eal_is_once_per_process(day_dir):
    code = f"""
import sys
from rxfeed import Pipeline
from rxfeed.backends.dpdk.backend import DpdkBackend
cfg = DpdkBackend.config_for_source({str(day_dir / 'day.pcap')!r}, {{}})
Pipeline("dpdk", "itch50", backend_config=cfg).run()
try:
    Pipeline("dpdk", "itch50", backend_config={{**cfg, "memory_mb": 128}})
except RuntimeError as e:
    print("REFUSED:", e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "REFUSED: DPDK's EAL is already running in this process" in out.stdout, out.stderr
    assert "can start only once per process" in out.stdout


GROUP = "233.54.12.111:26477"


@pytest.mark.parametrize("pmd", ["net_af_packet", "net_af_xdp"])
def test_live_veth_every_message_arrives(pmd, rxfeed_day):
    from .netns import live_run, veth_pair

    with veth_pair("a" if pmd == "net_af_packet" else "c") as net:
        opts = {"port": f"{pmd}0", "vdevs": [f"{pmd}0,iface={net['host_if']}"], "no_pci": True, "filters": [GROUP]}
        sent, s = live_run("dpdk", opts, rxfeed_day(20_000, 4, 5, "nasdaq"), GROUP, 2000, net["peer_ip"],
                           netns=net["ns"])
    assert s["stop_reason"] == "end_of_session"
    assert s["messages"] == sent["messages"] == 20_000
    assert s["gaps"] == 0 and s["errors"] == {}
    assert s["backend_stats"]["nic"]["imissed"] == 0


def test_live_veth_overload_losses_are_counted(rxfeed_day):
    from .netns import live_run, veth_pair

    with veth_pair("b") as net:
        # Past what the VM holds: the sender shares the poller's CPU and the
        # kernel ring feeding DPDK is tiny, so the ring overflows while the
        # poller is descheduled.
        opts = {"port": "net_af_packet0", "lcores": "0", "no_pci": True, "rx_desc": 64, "pool_size": 1023,
                "pool_cache": 32,
                "vdevs": [f"net_af_packet0,iface={net['host_if']},framecnt=16,blocksz=4096,framesz=2048"]}
        sent, s = live_run("dpdk", opts, rxfeed_day(400_000, 4, 5, "nasdaq"), GROUP, 0, net["peer_ip"],
                           netns=net["ns"], same_cpu=True)
    nic = s["backend_stats"]["nic"]
    # Whatever was lost is accounted for: delivered + reported gaps == sent.
    assert s["messages"] + s["gap_messages"] == sent["messages"], (s, sent)
    assert s["gaps"] > 0, "the overload produced no loss: nothing was shown"
    print(f"\noverload: sent {sent['messages']} messages in {sent['datagrams']} datagrams over "
          f"{sent['seconds']:.2f} s; delivered {s['messages']}, gaps {s['gaps']} ({s['gap_messages']} messages), "
          f"NIC imissed {nic['imissed']}, rx_nombuf {nic['rx_nombuf']}")


def test_two_rx_queues_two_pollers_each_with_its_own_decoder(day_dir, tmp_path):
    from rxfeed.tools.generator import generate

    other = tmp_path / "other.pcap"
    generate(other, 5000, symbols=2, seed=11)
    p = rx("listen", "--decoder", "itch50", "--backend", "dpdk", "--json", "-o", "port=net_pcap0", "-o", "no_pci=true",
           "-o", "lcores=0-1", "-o", "rx_queues=2", "-o", "idle_timeout_s=1.5",
           "-o", f'vdevs=["net_pcap0,rx_pcap={day_dir / "day.pcap"},rx_pcap={other}"]')
    s = json.loads(p.stdout)
    queues = s["backend_stats"]["queues"]
    assert [q["queue"] for q in queues] == [0, 1]
    assert s["messages"] == 25_000 and s["gaps"] == 0 and s["errors"] == {}
    assert [q["next_sequence"] for q in s["decoder_stats"]["queues"]] == [20_001, 5_001]


_STAMPS = """
import json, sys, time
from rxfeed import Pipeline
from rxfeed.backends.dpdk.backend import DpdkBackend
path, vdev_extra = sys.argv[1], sys.argv[2]
cfg = DpdkBackend.config_for_source(path, {})
cfg["vdevs"] = [cfg["vdevs"][0] + vdev_extra]
pipe = Pipeline("dpdk", "itch50", backend_config=cfg)
stamps = {}
pipe.decoder.subscribe(lambda m, meta: stamps.setdefault(meta[1], meta[2]), with_meta=True)
t0 = time.time()
s = pipe.run()
print(json.dumps({"t0": t0, "t1": time.time(), "stamps": stamps, "nic_stamped": s.backend_stats.get("nic_stamped")}))
"""


def _dpdk_stamps(path: Path, vdev_extra: str = "") -> dict:
    """rx_ts_ns per message sequence of one DPDK replay (own process: EAL once per process)."""
    p = subprocess.run([sys.executable, "-c", _STAMPS, str(path), vdev_extra], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_rx_ts_ns_is_unix_epoch_when_the_nic_gives_none(day_dir):
    # net_pcap's infinite_rx mode hands out copies without the capture's
    # timestamps: rx_ts_ns comes from the TSC and must be wall-clock ns since
    # the epoch (abi.h), not TSC ticks since boot.
    run = _dpdk_stamps(day_dir / "day.pcap", ",infinite_rx=1")
    stamps = [ts / 1e9 for ts in run["stamps"].values()]
    assert len(stamps) == 20_000
    assert run["t0"] - 2 < min(stamps) <= max(stamps) < run["t1"] + 2
    assert run["nic_stamped"] == 0  # the TSC path was taken


def test_net_pcap_gives_the_captures_own_timestamps_exactly(day_dir):
    from rxfeed import Pipeline

    run = _dpdk_stamps(day_dir / "day.pcap")
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")})
    want: dict[int, int] = {}
    pipe.decoder.subscribe(lambda m, meta: want.setdefault(meta[1], meta[2]), with_meta=True)
    pipe.run()
    pipe.close()
    assert {int(k): v for k, v in run["stamps"].items()} == want  # to the ns (µs x 1000, no float rounding)
    assert run["nic_stamped"] == 456  # every frame (the NIC-stamp path was taken)


@pytest.mark.parametrize("backend, config", [
    ("pcap_replay", {"path": "x.pcap"}),
    ("dpdk", {"port": "net_pcap0"}),
    ("efvi", {"interface": "sfc0"}),
    ("udp_socket", {}),
])
def test_the_filter_limit_is_one_config_error_for_every_backend(backend, config):
    import importlib

    from rxfeed import ConfigError, Pipeline

    key = "groups" if backend == "udp_socket" else "filters"
    ok = [f"233.54.12.{i}:26477" for i in range(1, 17)]
    with pytest.raises(ConfigError, match=rf"backend\.{backend}\.{key}: Value error, at most 16 filters; got 17"):
        Pipeline(backend, "itch50", backend_config={**config, key: ok + ["233.54.12.111:26477"]})
    backend_cls = next(c for c in vars(importlib.import_module(f"rxfeed.backends.{backend}")).values()
                       if getattr(c, "name", None) == backend)
    assert getattr(backend_cls.Config(**config, **{key: ok}), key) == tuple(ok)  # 16 is fine


def test_the_native_filter_array_is_the_checked_limit():
    from rxfeed.backend_base import FILTER_MAX
    from rxfeed.backends.dpdk import _dpdk

    assert _dpdk.FILTER_MAX == FILTER_MAX == 16
