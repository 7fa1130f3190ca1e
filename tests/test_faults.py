"""The faults backend: seeded fault injection around any backend (issue 11, item 5).

Most tests replay a generated day (rxfeed.tools.generator) through
pcap_replay, wrap it, and record what comes out with a Python decoder; the
payload of each MoldUDP64 datagram is unique within a pass, so a packet's
original index is found from its bytes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Packet, Pipeline, PluginConfig, PythonDecoder, RxBackend
from rxfeed.backends.faults import FaultsBackend, FaultsConfig, parse_spec
from rxfeed.backends.faults._faults import prng_sequence
from rxfeed.backends.pcap_replay import PcapReplayBackend, PcapReplayConfig
from rxfeed.config import ConfigError, validate
from rxfeed.tools.generator import generate

from .c_harness import own_sanitizer_env

#: every kind at once, for determinism and accounting
ALL = "drop=0.05,duplicate=0.05,reorder=0.05,delay=0.05,truncate=0.05,corrupt=0.05,delay_ms=30000"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated day: 200,000 messages in 4,548 MoldUDP64 datagrams over ~16 hours."""
    path = tmp_path_factory.mktemp("faults") / "day.pcap"
    generate(path, 200_000, symbols=6, seed=3)
    return path


class Recorder(PythonDecoder[PluginConfig]):
    """Keeps (bytes, rx_ts_ns, flags) of every packet."""

    name = "faults_recorder"
    Config = PluginConfig

    def __init__(self) -> None:
        super().__init__(PluginConfig())
        self.packets: list[tuple[bytes, int, int]] = []

    def on_packets(self, packets: Any) -> bool:
        self.packets.extend((bytes(p.data), p.rx_ts_ns, p.flags) for p in packets)
        return False

    def counters(self) -> dict[str, Any]:
        return {"packets": len(self.packets)}


def pcap(path: Path, **cfg: Any) -> PcapReplayBackend:
    return PcapReplayBackend(PcapReplayConfig(path=str(path), **cfg))


def record(backend: RxBackend[Any], burst: int = 32) -> tuple[list[tuple[bytes, int, int]], Any, dict[str, Any]]:
    """Run ``backend`` to its end; (packets, summary, backend stats)."""
    rec = Recorder()
    with backend:
        summary = Pipeline(backend, rec, run={"burst": burst}).run()
        stats = backend.stats()
    assert summary.stop_reason == "end_of_source", summary.error
    return rec.packets, summary, stats


def faulty(day: Path, spec: str, burst: int = 32, **pcap_cfg: Any) -> tuple[list[tuple[bytes, int, int]], dict]:
    packets, _, stats = record(FaultsBackend.wrap(pcap(day, **pcap_cfg), spec), burst)
    return packets, stats["faults"]


@pytest.fixture(scope="module")
def clean(day: Path) -> list[tuple[bytes, int, int]]:
    """The day without faults (pcap_replay alone)."""
    return record(pcap(day))[0]


def within(count: int, n: int, rate: float, sigmas: float = 5.0) -> bool:
    """``count`` is within ``sigmas`` standard deviations of Binomial(n, rate)."""
    return abs(count - n * rate) <= sigmas * math.sqrt(n * rate * (1 - rate)) + 1


def adds_up(f: dict[str, Any], delivered: int) -> bool:
    """delivered = inner - dropped - killed + duplicated (nothing held at the end)."""
    return f["held"] == 0 and delivered == f["delivered"] == \
        f["inner_packets"] - f["dropped"] - f["killed_after"] + f["duplicated"]


# --- the PRNG and determinism ----------------------------------------------------------

def test_the_prng_is_splitmix64():
    """The C generator gives splitmix64's published first outputs for seed 0."""
    assert prng_sequence(0, 3) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_all_rates_zero_is_the_inner_backend(day, clean):
    """No fault: the same packets, timestamps and flags as pcap_replay alone."""
    packets, f = faulty(day, "seed=1")
    assert packets == clean
    assert f["inner_packets"] == f["delivered"] == len(clean) and f["dropped"] == f["held_peak"] == 0


def test_same_seed_same_faults_another_seed_other_faults(day):
    a, fa = faulty(day, ALL + ",seed=7")
    b, fb = faulty(day, ALL + ",seed=7")
    c, fc = faulty(day, ALL + ",seed=8")
    assert a == b and fa == fb
    assert a != c and fa != fc


@pytest.mark.parametrize("burst", [1, 7, 256])
def test_burst_size_does_not_change_the_faults(day, burst):
    """Decisions are per inner packet and the output order is kept across
    bursts, so the loop's burst size changes nothing."""
    assert faulty(day, ALL + ",seed=5", burst) == faulty(day, ALL + ",seed=5", 32)


def test_a_rate_does_not_shift_another_kinds_faults(day):
    """One PRNG stream per kind: adding duplicates leaves the drops where they were."""
    drop_only, _ = faulty(day, "drop=0.1,seed=4")
    with_dups, _ = faulty(day, "drop=0.1,duplicate=0.2,seed=4")
    deduped = [p for i, p in enumerate(with_dups) if i == 0 or p[0] != with_dups[i - 1][0]]
    assert deduped == drop_only


# --- each kind --------------------------------------------------------------------------

def test_drop_rate_and_which_were_dropped(day, clean):
    packets, f = faulty(day, "drop=0.05,seed=11", loops=3)
    n = 3 * len(clean)
    assert within(f["dropped"], n, 0.05)
    assert len(packets) == n - f["dropped"]
    # what is left is in order: a subsequence of the three passes
    it = iter(clean * 3)
    assert all(any(p[0] == q[0] for q in it) for p in packets)


def test_duplicate_rate_copies_right_after(day, clean):
    packets, f = faulty(day, "duplicate=0.05,seed=12", loops=3)
    assert within(f["duplicated"], 3 * len(clean), 0.05)
    repeats = sum(packets[i] == packets[i - 1] for i in range(1, len(packets)))
    assert repeats == f["duplicated"]
    assert [p for i, p in enumerate(packets) if i == 0 or p != packets[i - 1]] == record(pcap(day, loops=3))[0]


def _late(order: list[int]) -> list[int]:
    """For each packet, how many packets with a higher original index came before it."""
    out = []
    for i, k in enumerate(order):
        out.append(sum(1 for j in order[:i] if j > k))
    return out


def test_reorder_rate_and_distance_bound(day, clean):
    index = {p[0]: i for i, p in enumerate(clean)}
    packets, f = faulty(day, "reorder=0.2,reorder_distance=3,seed=13")
    assert within(f["reordered"], len(clean), 0.2)
    assert sorted(p[0] for p in packets) == sorted(p[0] for p in clean)  # nothing lost, nothing added
    late = _late([index[p[0]] for p in packets])
    assert max(late) == 3  # the bound, reached
    # a reordered packet overtaken by packets that were themselves reordered may come out in place
    assert 0.8 * f["reordered"] <= sum(1 for x in late if x) <= f["reordered"]


def test_delayed_packets_arrive_later_by_their_time(day, clean):
    """A delayed packet comes out stamped ``ts + delay`` after every packet
    older than that and before every one newer."""
    delay_ns = 60_000 * 1_000_000
    orig_ts = {p[0]: p[1] for p in clean}
    packets, f = faulty(day, "delay=0.05,delay_ms=60000,seed=14")
    assert within(f["delayed"], len(clean), 0.05) and f["delayed"] > 0
    assert sorted(p[0] for p in packets) == sorted(p[0] for p in clean)
    delayed = [i for i, p in enumerate(packets) if p[1] != orig_ts[p[0]]]
    assert len(delayed) == f["delayed"]
    for i in delayed:
        due = packets[i][1]
        assert due == orig_ts[packets[i][0]] + delay_ns
        assert all(orig_ts[p[0]] < due for p in packets[:i] if p[1] == orig_ts[p[0]])
        assert all(orig_ts[p[0]] >= due for p in packets[i + 1:] if p[1] == orig_ts[p[0]])
    # at least one arrived behind packets that were sent after it
    index = {p[0]: i for i, p in enumerate(clean)}
    assert max(_late([index[p[0]] for p in packets])) > 0


def test_truncate_rate_cuts_to_a_shorter_prefix(day, clean):
    packets, f = faulty(day, "truncate=0.1,seed=15")
    assert within(f["truncated"], len(clean), 0.1)
    cut = [(p, q) for p, q in zip(packets, clean) if p[0] != q[0]]
    assert len(packets) == len(clean) and len(cut) == f["truncated"]
    assert all(len(p[0]) < len(q[0]) and q[0].startswith(p[0]) for p, q in cut)


def test_corrupt_rate_flips_bytes_of_a_copy(day, clean):
    packets, f = faulty(day, "corrupt=0.1,seed=16")
    assert within(f["corrupted"], len(clean), 0.1)
    bad = [(p, q) for p, q in zip(packets, clean) if p[0] != q[0]]
    assert len(packets) == len(clean) and len(bad) == f["corrupted"]
    for p, q in bad:
        assert len(p[0]) == len(q[0])
        assert 1 <= sum(a != b for a, b in zip(p[0], q[0])) <= 3


def test_corrupt_and_truncate_never_touch_the_inner_backends_memory():
    """Over a Python backend handing out bytearrays: every packet corrupted
    and truncated, the bytearrays unchanged."""
    payloads = [bytearray(range(i % 200, i % 200 + 50)) for i in range(500)]
    before = [bytes(p) for p in payloads]
    packets, _, stats = record(FaultsBackend.wrap(ListBackend(payloads), "corrupt=1,truncate=1,seed=3"))
    assert [bytes(p) for p in payloads] == before
    assert stats["faults"]["truncated"] == 500  # then corrupted unless cut to nothing
    assert stats["faults"]["corrupted"] == sum(1 for p in packets if p[0]) > 400


def test_a_replays_restart_is_kept(day, clean):
    """loops=2: the packet flagged PKT_SOURCE_RESET is never dropped or moved,
    and everything held from the first pass comes out before it."""
    packets, f = faulty(day, "drop=0.2,reorder=0.2,delay=0.2,delay_ms=600000,reorder_distance=50,seed=25",
                        loops=2)
    resets = [i for i, p in enumerate(packets) if p[2] & 0x2]
    assert len(resets) == 1 and packets[resets[0]][0] == clean[0][0]
    first_pass = {p[0] for p in clean}
    assert all(p[0] in first_pass for p in packets[:resets[0]])
    assert len(packets[:resets[0]]) == len({p[0] for p in packets[:resets[0]]})  # nothing of pass 2 before it
    assert f["reordered"] > 0 and adds_up(f, len(packets))


# --- kill -----------------------------------------------------------------------------

def test_kill_after_n_packets_stops_that_line(day, clean):
    packets, f = faulty(day, "kill_after=1000")
    assert packets == clean[:1000]
    assert f["killed"] and f["killed_after"] == len(clean) - 1000


def test_kill_at_time_stops_the_line_at_t(day, clean):
    t0 = clean[0][1]
    half = (clean[-1][1] - t0) / 2e9
    packets, f = faulty(day, f"kill_at={half}")
    assert packets == [p for p in clean if p[1] - t0 < half * 1e9]
    assert 0 < len(packets) < len(clean) and f["killed_after"] == len(clean) - len(packets)


def test_two_lines_wrapped_independently(day, clean):
    """A/B: each line wrapped with its own seed; the kill of line A ends
    only A's stream (what A delivered is its unkilled stream, cut), and B's
    faults are its own."""
    a, fa = faulty(day, "drop=0.05,kill_after=2000,seed=1")
    a_whole, _ = faulty(day, "drop=0.05,seed=1")
    b, fb = faulty(day, "drop=0.05,seed=2")
    assert fa["killed"] and not fb["killed"]
    assert a == a_whole[:len(a)] and len(a) == 2000 - fa["dropped"]
    assert len(b) == len(clean) - fb["dropped"]
    lost_a = {p[0] for p in clean[:2000]} - {p[0] for p in a}
    lost_b = {p[0] for p in clean[:2000]} - {p[0] for p in b}
    assert lost_a and lost_b and lost_a != lost_b


# --- end of source, accounting, storage -----------------------------------------------------

def test_held_packets_are_flushed_before_the_end(day, clean):
    """Reordered far beyond the end and delayed past the last packet: all
    delivered before RXF_EOF, nothing left held."""
    packets, f = faulty(day, "reorder=0.3,reorder_distance=100000,delay=0.3,delay_ms=3600000,seed=17")
    assert f["reordered"] > 0 and f["delayed"] > 0 and f["held"] == 0
    assert Counter(p[0] for p in packets) == Counter(p[0] for p in clean)
    assert packets[-1][0] != clean[-1][0]  # the tail came out of the wrapper's storage


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counters_add_up_against_the_inner_backend(day, seed):
    inner = pcap(day)
    packets, summary, stats = record(FaultsBackend.wrap(inner, ALL + f",kill_after=3000,seed={seed}"))
    f = stats["faults"]
    assert f["inner_packets"] == stats["packets"] == 4548  # the inner backend's own count
    assert adds_up(f, len(packets)) and summary.packets == len(packets)
    for kind in ("dropped", "duplicated", "reordered", "delayed", "truncated", "corrupted"):
        assert f[kind] > 0, kind


def test_storage_full_is_counted_not_lost(day, clean):
    """hold_max=2: reorders that do not fit are not injected, counted as no_room."""
    packets, f = faulty(day, "reorder=0.5,reorder_distance=50,hold_max=2,seed=18")
    assert f["no_room"] > 0 and f["held_peak"] <= 2
    assert Counter(p[0] for p in packets) == Counter(p[0] for p in clean)
    assert adds_up(f, len(packets))


def test_corrupt_and_truncate_never_crash_the_itch50_decoder(day):
    """Every kind at high rates into the native ITCH decoder: the run ends
    normally; the damage is counted as errors, gaps and duplicates."""
    backend = FaultsBackend.wrap(pcap(day), "corrupt=0.3,truncate=0.3,duplicate=0.2,reorder=0.2,drop=0.1,seed=19")
    with backend:
        summary = Pipeline(backend, "itch50").run()
    assert summary.stop_reason == "end_of_source", summary.error
    assert sum(summary.errors.values()) > 0 and summary.gaps > 0 and summary.duplicates > 0
    assert summary.backend_stats["faults"]["corrupted"] > 0


def test_poison_mode_changes_nothing(day, monkeypatch):
    """With the loop poisoning released buffers, the same faulty stream: the
    wrapper's copies live until its release, the inner burst until then too."""
    plain = faulty(day, ALL + ",seed=21", 7)
    monkeypatch.setenv("RXFEED_POISON_RELEASED", "1")
    assert faulty(day, ALL + ",seed=21", 7) == plain


def test_close_after_a_limit_gives_the_inner_burst_back_first(day):
    """A run stopped by a packet limit while output still waits in the
    wrapper: close() releases the inner backend's burst before closing it."""
    inner = _ShimmedInner(day)
    backend = FaultsBackend.wrap(inner, "reorder=0.5,reorder_distance=1,seed=0")
    summary = Pipeline(backend, Recorder(), run={"max_packets": 10, "burst": 8}).run()
    assert summary.stop_reason == "packet_limit" and inner.shim.outstanding is not None
    backend.close()
    assert inner.shim.outstanding is None and inner.shim.errors == []
    assert inner.shim.handed == inner.shim.released


# --- a Python inner backend --------------------------------------------------------------

class ListBackend(RxBackend[PluginConfig]):
    """A pure-Python backend over a list of payloads or Packets."""

    name, Config = "faults_list", PluginConfig

    def __init__(self, items: list[Any], fail_at: int | None = None) -> None:
        super().__init__(PluginConfig())
        self.items, self.fail_at, self.served = list(items), fail_at, 0

    def read_burst(self, n: int) -> list[Any] | None:
        if self.fail_at is not None and self.served >= self.fail_at:
            raise RuntimeError("the feed went away")
        if not self.items:
            return None
        out, self.items = self.items[:n], self.items[n:]
        self.served += len(out)
        return out


def test_a_python_backend_gets_the_same_faults_as_a_native_one(day, clean):
    """The same packets from a Python backend (through the C table over
    read_burst) and from pcap_replay: the same faults, byte for byte."""
    items = [Packet(p[0], rx_ts_ns=p[1], flags=p[2]) for p in clean]
    py, fpy = record(FaultsBackend.wrap(ListBackend(items), ALL + ",seed=9"))[::2]
    native, fnative = faulty(day, ALL + ",seed=9")
    assert py == native and fpy["faults"] == fnative


def test_a_python_backends_error_ends_the_run_with_its_text():
    backend = FaultsBackend.wrap(ListBackend([b"x" * 20] * 100, fail_at=40), "reorder=0.5,seed=1")
    rec = Recorder()
    with backend:
        summary = Pipeline(backend, rec, run={"burst": 8}).run()
    assert summary.stop_reason == "backend_error" and "the feed went away" in summary.error
    assert len(rec.packets) == 40  # held packets flushed before the error


# --- building it -------------------------------------------------------------------------

def test_built_by_name_through_the_registry(day):
    pipe = Pipeline("faults", "itch50", backend_config={
        "backend": "pcap_replay", "backend_config": {"path": str(day)}, "drop": 0.05, "seed": 7})
    with pipe:
        summary = pipe.run()
    f = summary.backend_stats["faults"]
    assert summary.backend == "faults" and summary.backend_stats["inner_backend"] == "pcap_replay"
    assert summary.source == str(day) and summary.gaps > 0 and f["dropped"] > 0
    assert summary.packets == f["inner_packets"] - f["dropped"]


@pytest.mark.parametrize("config", [
    {"drop": 1.5}, {"reorder_distance": 0}, {"seed": -1}, {}, {"backend": "no_such"}, {"backend": "faults"},
    {"backend": "pcap_replay", "backend_config": {"nope": 1}},
])
def test_bad_settings_are_clear_errors(config):
    """Out-of-range values, no inner backend, an unknown one, itself, or a bad inner config."""
    with pytest.raises(ConfigError):
        FaultsBackend(validate(FaultsConfig, config, "backend.faults"))


@pytest.mark.parametrize("spec, error", [
    ("", "empty spec"), ("drop", "not KEY=VALUE"), ("drop=", "not KEY=VALUE"),
    ("bogus=1", "unknown fault setting 'bogus'"), ("drop=0.1,drop=0.2", "given twice"),
])
def test_spec_errors(spec, error):
    with pytest.raises(ConfigError, match=error):
        parse_spec(spec)


def test_spec_parses_into_the_config():
    c = FaultsConfig.model_validate(parse_spec(" drop=0.01, reorder=0.02,seed=7,kill_at=2.5,reorder_distance=4 "))
    assert (c.drop, c.reorder, c.seed, c.kill_at, c.reorder_distance) == (0.01, 0.02, 7, 2.5, 4)


# --- CLI ----------------------------------------------------------------------------------

def _cli(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_cli_replay_with_faults(day):
    out = _cli("replay", day, "--faults", "drop=0.05,reorder=0.05,seed=7", "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    f = s["backend_stats"]["faults"]
    assert s["backend"] == "faults" and s["backend_stats"]["inner_backend"] == "pcap_replay"
    assert s["packets"] == f["inner_packets"] - f["dropped"] and f["reordered"] > 0 and s["gaps"] > 0
    again = json.loads(_cli("replay", day, "--faults", "drop=0.05,reorder=0.05,seed=7", "--json").stdout)
    assert (again["gaps"], again["gap_messages"], again["backend_stats"]) == (s["gaps"], s["gap_messages"],
                                                                           s["backend_stats"])
    text = _cli("replay", day, "--faults", "drop=0.05,seed=7")
    assert text.returncode == 0 and "faults injected" in text.stdout and "dropped=" in text.stdout


def test_cli_faults_by_name_names_its_inner_backend(day):
    out = _cli("replay", day, "-b", "faults", "-d", "itch50", "-o", "backend=pcap_replay", "-o", "drop=0.05",
               "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["backend"] == "faults" and s["backend_stats"]["faults"]["dropped"] > 0
    out = _cli("replay", day, "-b", "faults", "-d", "itch50")
    assert out.returncode == 2 and "name the backend to wrap" in out.stderr


def test_cli_listen_with_faults_kills_the_line(day):
    out = _cli("listen", "-b", "pcap_replay", "-d", "itch50", "-o", f"path={day}", "--faults", "kill_after=100", "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["packets"] == 100 and s["backend_stats"]["faults"]["killed"]


@pytest.mark.parametrize("spec, words", [("drop=2", "--faults.drop"), ("bogus=1", "unknown fault setting"),
                                          ("drop", "not KEY=VALUE"), ("seed=x", "--faults.seed")])
def test_cli_bad_spec_is_one_clear_error(day, spec, words):
    out = _cli("replay", day, "--faults", spec)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("rxfeed: error: ") and words in out.stderr and "Traceback" not in out.stderr


# --- buffer lifetime through the C tables ------------------------------------------------------

class _ShimmedInner(RxBackend[PluginConfig]):
    """pcap_replay's table behind the conformance kit's recording shim."""

    name, Config = "faults_shimmed", PluginConfig

    def __init__(self, day: Path) -> None:
        from rxfeed.tools.conformance import _ReleaseShim

        super().__init__(PluginConfig())
        self.real = pcap(day)
        self.shim = _ReleaseShim(self.real.native_capsule())

    def native_capsule(self) -> Any:
        return self.shim.capsule()

    def close(self) -> None:
        self.real.close()


@pytest.mark.parametrize("burst", [1, 32])
def test_every_burst_is_released_once_on_both_sides(day, burst):
    """With every fault on: the inner backend gets each of its bursts back
    once, with its own packets, before its next rx_burst; the wrapper's own
    bursts (checked by the same shim around it, in poison mode) are released
    once, never share bytes (duplicates are copies), and nothing follows RXF_EOF."""
    from rxfeed import _runloop
    from rxfeed.tools.conformance import _ReleaseShim

    inner = _ShimmedInner(day)
    with FaultsBackend.wrap(inner, ALL.replace("duplicate=0.05", "duplicate=0.3") + ",seed=23") as backend:
        outer = _ReleaseShim(backend.native_capsule())
        packets, reason, _ = _runloop.run_native(outer.capsule(), _runloop.null_decoder(), burst, poison=True)
        f = backend.stats()["faults"]
    assert reason == "end_of_source"
    assert inner.shim.errors == [] and inner.shim.handed == inner.shim.released == f["inner_packets"] == 4548
    assert outer.errors == [] and outer.handed == outer.released == packets and adds_up(f, packets)
    assert outer.poll_after_end() < 0


def test_a_small_arena_wraps_and_fills_without_damage(day, clean):
    """1 MiB for copies, many long holds freed out of order: the ring wraps
    and fills (no_room counted), and every packet that comes out has its own
    bytes (a block reused while still handed out would show here)."""
    spec = "reorder=0.5,reorder_distance=5000,delay=0.3,delay_ms=3600000,duplicate=0.3,arena_mb=1,seed=24"
    packets, f = faulty(day, spec, loops=2)
    assert f["no_room"] > 0 and f["reordered"] > 0 and f["delayed"] > 0 and f["duplicated"] > 0
    seen = Counter(p[0] for p in packets)
    twice = Counter(p[0] for p in clean * 2)
    assert set(seen) == set(twice)
    assert sum(seen.values()) - sum(twice.values()) == f["duplicated"] and adds_up(f, len(packets))


class IdleBackend(RxBackend[PluginConfig]):
    """A live-like Python source without timestamps: a few packets, then
    nothing ready (``[]``) for ever."""

    name, Config = "faults_idle", PluginConfig

    def __init__(self) -> None:
        super().__init__(PluginConfig())
        self.items = [bytes([i]) * 30 for i in range(5)]

    def read_burst(self, n: int) -> list[bytes]:
        out, self.items = self.items[:n], self.items[n:]
        return out


def test_delayed_packets_come_out_while_the_line_is_idle():
    """No timestamps and no later packet: the fault clock runs on the
    monotonic clock during idle polls, so delayed packets still come out."""
    backend = FaultsBackend.wrap(IdleBackend(), "delay=1,delay_ms=50")
    rec = Recorder()
    with backend:
        summary = Pipeline(backend, rec, run={"max_seconds": 0.5}).run()
    assert summary.stop_reason == "time_limit"
    assert sorted(p[0] for p in rec.packets) == [bytes([i]) * 30 for i in range(5)]
    assert backend.stats()["faults"]["delayed"] == 5


def test_the_c_injector_under_sanitizers(tmp_path):
    """tests/faults_stress.c: faults.c alone, with AddressSanitizer and UBSan,
    against a fake inner backend that reuses and poisons its window (random
    configs, sizes, bursts): no shared or released bytes handed out, every
    inner burst released once, the counters add up, nothing held at the end."""
    root = Path(__file__).resolve().parents[1]
    exe = tmp_path / "faults_stress"
    subprocess.run(["gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-I", root / "core/include", "-I", root / "backends/faults", root / "tests/faults_stress.c",
                    root / "backends/faults/faults.c", "-o", exe], check=True, capture_output=True)
    out = subprocess.run([exe, "40"], capture_output=True, text=True, timeout=300, env=own_sanitizer_env())
    assert out.returncode == 0 and out.stdout.strip() == "ok 40 rounds", out.stdout + out.stderr


def test_two_faulty_lines_through_the_lines_backend(day, clean):
    """A/B as issue 11 tests it: two copies of the day, each line wrapped with
    its own seed and line A killed after 2,000 packets, read as one by
    rxfeed.lines.LinesBackend: each line's packets are its own faulty stream,
    and only what both lines lost is missing from the union."""
    from rxfeed.lines import LinesBackend

    class ByLine(Recorder):
        def on_packets(self, packets: Any) -> bool:
            self.packets.extend((bytes(p.data), p.line, p.flags) for p in packets)
            return False

    spec_a, spec_b = "drop=0.05,duplicate=0.02,reorder=0.05,kill_after=2000,seed=1", \
        "drop=0.05,duplicate=0.02,reorder=0.05,seed=2"
    a, _ = faulty(day, spec_a)
    b, fb = faulty(day, spec_b)
    lines = LinesBackend([FaultsBackend.wrap(pcap(day), spec_a), FaultsBackend.wrap(pcap(day), spec_b)])
    rec = ByLine()
    with lines:
        summary = Pipeline(lines, rec).run()
    assert summary.stop_reason == "end_of_source", summary.error
    assert [p[0] for p in rec.packets if p[1] == 0] == [p[0] for p in a]
    assert [p[0] for p in rec.packets if p[1] == 1] == [p[0] for p in b]
    lost_both = {p[0] for p in clean} - {p[0] for p in a} - {p[0] for p in b}
    assert {p[0] for p in rec.packets} == {p[0] for p in clean} - lost_both
    assert 0 < len(lost_both) < fb["dropped"]
