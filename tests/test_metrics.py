"""Prometheus metrics (tools/metrics.py; ``replay``/``listen --metrics``):
the source contract, the native latency histogram as Prometheus buckets,
scrapes during and after a run compared with its summary, and a real
Prometheus server (Debian's ``prometheus``) scraping a paced replay."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from rxfeed import Pipeline, _runloop
from rxfeed.tools.cli import main
from rxfeed.tools.metrics import HistogramValue, MetricsServer, RunMetrics, latency_histogram

from .nats_fixtures import free_port

Labels = frozenset[tuple[str, str]]

OPERATIONS_MD = Path(__file__).resolve().parents[1] / "docs" / "operations.md"

#: How long the paced replays last (seconds); Prometheus scrapes every second.
PACED_S = 4.0


@pytest.fixture
def day(day_dir: Path) -> Path:
    """conftest's generated day: 20,000 messages in 455 MoldUDP64 datagrams, a pcap."""
    return day_dir / "day.pcap"


def pcap_span_s(path: Path) -> float:
    """Seconds from a classic pcap's first packet to its last."""
    data = path.read_bytes()
    off, stamps = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, off)
        stamps.append(sec + usec / 1e6)
        off += 16 + incl
    return stamps[-1] - stamps[0]


def scrape(port: int) -> dict[tuple[str, Labels], float]:
    """``/metrics`` parsed: (sample name, labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(m: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    return m[(name, frozenset(labels.items()))]


def assert_matches_summary(m: dict[tuple[str, Labels], float], s: dict[str, Any]) -> None:
    """Every value the metrics share with the summary is the summary's."""
    dec = {"decoder": s["decoder"]}
    assert value(m, "rxfeed_running") == 0
    for key, name in (("packets", "rxfeed_packets_total"), ("messages", "rxfeed_messages_total"),
                      ("gaps", "rxfeed_gaps_total"), ("gap_messages", "rxfeed_gap_messages_total"),
                      ("duplicates", "rxfeed_duplicate_messages_total")):
        assert value(m, name, **dec) == s[key], name
    for t, n in s["messages_per_type"].items():
        assert value(m, "rxfeed_messages_by_type_total", **dec, type=t) == n
    for r, n in s["errors"].items():
        assert value(m, "rxfeed_decode_errors_total", **dec, reason=r) == n
    for r, n in s["drops"].items():
        assert value(m, "rxfeed_drops_total", backend=s["backend"], reason=r) == n
    if s["latency"]:
        assert value(m, "rxfeed_burst_latency_seconds_count", **dec) == s["latency"]["bursts"] > 0
        assert value(m, "rxfeed_burst_latency_seconds_bucket", **dec, le="+Inf") == s["latency"]["bursts"]
    rec = s["recovery"]
    if rec:
        assert value(m, "rxfeed_recovery_gaps_opened_total", **dec) == rec["gaps_opened"]
        assert value(m, "rxfeed_recovery_gaps_filled_total", **dec) == rec["gaps_filled"]
        assert value(m, "rxfeed_recovery_lost_ranges_total", **dec) == rec["lost_ranges"]
        assert value(m, "rxfeed_recovery_redundant_copies_total", **dec) == rec["redundant_copies"]
        for why, n in rec["lost_by_reason"].items():
            assert value(m, "rxfeed_recovery_lost_messages_total", **dec, reason=why) == n
        rr = rec.get("rerequest")
        if rr:
            assert value(m, "rxfeed_rerequest_requests_total", **dec) == rr["requests_sent"]
            assert value(m, "rxfeed_rerequest_recovered_messages_total", **dec) == rr["recovered_messages"]
            assert value(m, "rxfeed_rerequest_given_up_ranges_total", **dec) == rr["given_up_ranges"]
        for ln in rec["lines"]:
            assert value(m, "rxfeed_line_first_arrivals_total", line=str(ln["line"])) == ln["first_arrivals"]
            assert value(m, "rxfeed_line_gaps_total", line=str(ln["line"])) == ln["line_gaps"]
    for i, ln in enumerate(s["backend_stats"].get("lines", [])):
        assert value(m, "rxfeed_line_packets_total", line=str(i)) == ln["packets"]
        assert value(m, "rxfeed_line_downs_total", line=str(i)) == ln["downs"]
        for r, n in ln["drops"].items():
            assert value(m, "rxfeed_line_drops_total", line=str(i), reason=r) == n
        assert value(m, "rxfeed_faults_injected_total", line=str(i), kind="dropped") == \
            ln["stats"]["faults"]["dropped"]
    if "faults" in s["backend_stats"]:
        assert value(m, "rxfeed_faults_injected_total", kind="dropped") == s["backend_stats"]["faults"]["dropped"]


def assert_documented(m: dict[tuple[str, Labels], float]) -> None:
    """Every rxfeed_* metric served has its row in docs/operations.md."""
    doc = OPERATIONS_MD.read_text()
    names = {re.sub(r"_(bucket|count|sum)$", "", n) if "latency_seconds" in n else n for n, _ in m}
    missing = sorted(n for n in names if n.startswith("rxfeed_") and f"| `{n}` |" not in doc)
    assert not missing, f"not in docs/operations.md: {missing}"


def doc_block(language: str) -> str:
    """The first ```LANGUAGE block of docs/operations.md after its heading of
    alerts (yaml) or dashboard (json)."""
    doc = OPERATIONS_MD.read_text()
    start = doc.index({"yaml": "## Alerts worth setting", "json": "## A dashboard"}[language])
    return doc[start:].split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_documented_alert_rules_and_dashboard_are_valid(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(doc_block("yaml"))
    promtool = shutil.which("promtool") or pytest.fail("promtool not found: apt-get install prometheus")
    out = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 11 rules found" in out.stdout
    dashboard = json.loads(doc_block("json"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 7 and all("rxfeed_" in e for e in exprs)


@pytest.fixture
def cli_run() -> Iterator[Any]:
    """Start ``rxfeed ARGS`` (with --metrics on a free port, lingering):
    returns (process, metrics port); the process is ended after the test."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: Any) -> tuple[subprocess.Popen[str], int]:
        p = subprocess.Popen([sys.executable, "-m", "rxfeed.tools.cli", *map(str, args), "--json",
                              "--metrics", "127.0.0.1:0", "--metrics-linger", "120"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        for line in p.stderr:  # the endpoint is announced before the run
            if "metrics on http://" in line:
                return p, int(line.rsplit(":", 1)[1].split("/")[0])
        raise AssertionError(f"no metrics endpoint announced; exit {p.wait()}")

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def read_summary(p: subprocess.Popen[str]) -> dict[str, Any]:
    """The --json summary (printed before the linger)."""
    line = p.stdout.readline()
    assert line, f"no summary; stderr: {p.stderr.read()}"
    return json.loads(line)


def end_linger(p: subprocess.Popen[str]) -> None:
    """SIGTERM ends --metrics-linger early; the command exits 0."""
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0


# --- the scrape, by hand -------------------------------------------------------------------------

def test_replay_metrics_equal_the_summary_two_lines_faults_latency(day: Path, cli_run: Any, tmp_path: Path) -> None:
    line_b = tmp_path / "b.pcap"  # line B: the same day and one frame too short for Ethernet (a drop)
    line_b.write_bytes(day.read_bytes() + struct.pack("<IIII", 1_577_735_726, 0, 10, 10) + bytes(10))
    p, port = cli_run("replay", day, "--line-b", line_b, "--faults", "drop=0.05,seed=3", "--faults-b",
                      "drop=0.05,seed=4", "--latency")
    s = read_summary(p)
    m = scrape(port)
    assert s["recovery"]["gaps_opened"] > 0 and s["backend_stats"]["lines"][0]["stats"]["faults"]["dropped"] > 0
    assert s["backend_stats"]["lines"][1]["drops"] == s["drops"] == {"truncated_frame": 1}
    assert_matches_summary(m, s)
    assert value(m, "rxfeed_line_up", line="0") == 0  # the capture ended
    assert value(m, "rxfeed_run_info", backend="lines", decoder="itch50", source=f"{day},{line_b}") == 1
    assert_documented(m)
    end_linger(p)


def test_rerequest_metrics_equal_the_summary(day: Path, cli_run: Any) -> None:
    from rxfeed.tools.rerequest import RerequestServer

    with RerequestServer(str(day)) as server:
        p, port = cli_run("replay", day, "--rerequest", "%s:%d" % server.address, "--faults", "drop=0.05,seed=2")
        s = read_summary(p)
        assert s["recovery"]["rerequest"]["recovered_messages"] > 0
        m = scrape(port)
        assert_matches_summary(m, s)
        assert_documented(m)
        end_linger(p)


def test_listen_metrics_equal_the_summary(day: Path, cli_run: Any) -> None:
    p, port = cli_run("listen", "-b", "pcap_replay", "-d", "itch50", "-o", f"path={day}",
                      "--faults", "drop=0.02,seed=1")
    s = read_summary(p)
    assert s["gaps"] > 0 and s["gap_messages"] > 0
    assert_matches_summary(scrape(port), s)
    end_linger(p)


def test_live_values_while_the_loop_runs(day: Path) -> None:
    """Scrapes during a paced run see the counters grow (read by the
    server's thread, the loop untouched); the last equals the summary."""
    speed = pcap_span_s(day) / 1.5
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day), "speed": speed},
                    run={"latency": True})
    seen: list[dict[tuple[str, Labels], float]] = []
    with MetricsServer("127.0.0.1", 0) as server:
        run = RunMetrics(server)
        port = server.address[1]
        done = threading.Event()

        def poll() -> None:
            while not done.wait(0.1):
                seen.append(scrape(port))

        t = threading.Thread(target=poll)
        t.start()
        try:
            with pipe, run.watching([pipe]):
                summary = pipe.run()
        finally:
            done.set()
            t.join()
        run.finish(summary)
        final = scrape(port)
    assert_matches_summary(final, summary.to_dict())
    live = [m for m in seen if value(m, "rxfeed_running") == 1]
    packets = [value(m, "rxfeed_packets_total", decoder="itch50") for m in live]
    assert len(live) >= 3 and packets == sorted(packets) and packets[-1] > packets[0]
    assert 0 < packets[len(packets) // 2] < summary.packets
    assert any(value(m, "rxfeed_burst_latency_seconds_count", decoder="itch50") > 0 for m in live)


def test_snapshot_and_the_loops_histogram_buffer(day: Path) -> None:
    """Pipeline.snapshot() before, after a run; run_native counts into the
    pipeline's histogram buffer (a wrong-sized one is refused)."""
    import array

    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day)}, run={"latency": True})
    with pipe:
        before = pipe.snapshot()
        summary = pipe.run()
        after = pipe.snapshot()
    assert before.stop_reason == "not_started" and before.packets == 0
    assert after.stop_reason == summary.stop_reason == "end_of_source"
    assert (after.packets, after.messages, after.gaps) == (summary.packets, summary.messages, summary.gaps)
    assert pipe.latency_histogram is not None and sum(pipe.latency_histogram) == summary.latency["bursts"] > 0
    other = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day)})
    with other, pytest.raises(ValueError, match="buckets"):
        _runloop.run_native(other.backend.native_capsule(), other.decoder.decoder_capsule(), latency={},
                            hist=array.array("Q", bytes(8)))


# --- the contract ------------------------------------------------------------------------------------

def test_sources_contract() -> None:
    state = {"n": 1}

    def good() -> list[Any]:
        return [("rxfeed_things", "things", "counter", {"reason": "x"}, state["n"]),
                ("rxfeed_level", "a level", "gauge", {}, 0.5),
                ("rxfeed_wait_seconds", "waits", "histogram", {}, HistogramValue([(0.1, 2), (float("inf"), 3)], 0.4))]

    def broken() -> list[Any]:
        raise RuntimeError("boom")

    def malformed() -> list[Any]:
        return [("bad name", "x", "gauge", {}, 1)]

    server = MetricsServer("127.0.0.1", 0).start()
    try:
        port = server.address[1]
        for src in (good, broken, malformed):
            server.add_source(src)
        m = scrape(port)
        assert value(m, "rxfeed_things_total", reason="x") == 1  # _total added to a counter
        assert value(m, "rxfeed_level") == 0.5
        assert value(m, "rxfeed_wait_seconds_bucket", le="0.1") == 2
        assert value(m, "rxfeed_wait_seconds_count") == 3 and value(m, "rxfeed_wait_seconds_sum") == 0.4
        assert value(m, "rxfeed_metrics_source_errors_total") == 2  # the others cost only their own samples
        assert any(name.startswith("process_") for name, _ in m)
        server.remove_source(broken)
        server.replace_source(malformed, lambda: [("rxfeed_level2", "another level", "gauge", {}, 2)])
        m = scrape(port)
        assert value(m, "rxfeed_level2") == 2 and value(m, "rxfeed_metrics_source_errors_total") == 2
        state["n"] = 5
        server.freeze()
        state["n"] = 9  # frozen: the value read at freeze() is served
        assert value(scrape(port), "rxfeed_things_total", reason="x") == 5
    finally:
        server.stop()
    with MetricsServer("127.0.0.1", port):  # stop() released the port
        pass


def test_sink_samples_served_and_documented(day: Path) -> None:
    """A sink's metrics_samples() is served live and read once more at the
    end; the JetStream sink's names are in docs/operations.md."""

    class Sink:
        waiting = 7

        def metrics_samples(self) -> list[Any]:
            return [("rxfeed_event_ring_waiting", "events waiting", "gauge", {"venue": "test"}, self.waiting)]

    sink = Sink()
    with MetricsServer("127.0.0.1", 0) as server:
        run = RunMetrics(server)
        run.add_sink(sink)
        run.add_sink(object())  # no metrics_samples: nothing to serve
        assert value(scrape(server.address[1]), "rxfeed_event_ring_waiting", venue="test") == 7
        sink.waiting = 0
        with Pipeline("pcap_replay", "itch50", backend_config={"path": str(day)}) as pipe:
            run.finish(pipe.snapshot())
        sink.waiting = 99  # after finish: the values read then
        assert value(scrape(server.address[1]), "rxfeed_event_ring_waiting", venue="test") == 0
    from rxfeed.sinks.nats_js import sink as nats_sink

    served = set(re.findall(r'"(rxfeed_[a-z_]+)"', Path(nats_sink.__file__).read_text()))
    doc = OPERATIONS_MD.read_text()
    assert served and not sorted(n for n in served if f"| `{n}` |" not in doc)


def test_native_histogram_as_prometheus_buckets() -> None:
    lower = _runloop.histogram_lower_bounds()
    counts = [0] * _runloop.HIST_BUCKETS
    counts[100] = 5  # [100, 101) cycles
    counts[next(i for i, b in enumerate(lower) if b >= 1500)] = 3  # ~1.5 us at 1 cycle/ns
    counts[-1] = 1  # beyond every bound
    h = latency_histogram(counts, cycles_per_ns=1.0)
    cum = dict(h.buckets)
    assert cum[100e-9] == 0 and cum[200e-9] == 5 and cum[1e-6] == 5 and cum[2e-6] == 8
    assert cum[1.0] == 8 and cum[float("inf")] == 9
    assert [c for _, c in h.buckets] == sorted(c for _, c in h.buckets)
    assert h.sum == pytest.approx(5 * 100.5e-9 + 3 * 1.5e-6 + lower[-1] * 1e-9, rel=0.02)


# --- the command line's errors -----------------------------------------------------------------------

@pytest.mark.parametrize("command", ["replay", "listen"])
def test_bad_metrics_address_is_a_usage_error(day: Path, command: str) -> None:
    base = ["replay", str(day)] if command == "replay" else ["listen", "-b", "pcap_replay", "-d", "itch50",
                                                             "-o", f"path={day}"]
    r = CliRunner().invoke(main, [*base, "--metrics", "127.0.0.1"])
    assert r.exit_code == 2 and "--metrics '127.0.0.1': expected ADDRESS:PORT" in r.output
    r = CliRunner().invoke(main, [*base, "--metrics-linger", "3"])
    assert r.exit_code == 2 and "--metrics-linger needs --metrics" in r.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = CliRunner().invoke(main, [*base, "--metrics", f"127.0.0.1:{port}"])
    assert r.exit_code == 2
    assert f"--metrics 127.0.0.1:{port}: cannot serve metrics on 127.0.0.1:{port}: the address is already in use" \
        in r.output


# --- a real Prometheus server ----------------------------------------------------------------------------

def prometheus_binary() -> str:
    """Debian's ``prometheus`` (scripts/dev.sh installs it); fails, never skips, without it."""
    found = shutil.which("prometheus") or shutil.which("prometheus", path="/usr/bin:/usr/local/bin")
    if not found:
        pytest.fail("prometheus not found: apt-get install prometheus (bash scripts/dev.sh setup does)")
    return found


def prom_query(port: int, query: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def prom_values(port: int, query: str) -> dict[tuple[str, Labels], float]:
    """An instant query's series as (name, labels without job/instance) -> value."""
    out = {}
    for series in prom_query(port, query):
        labels = {k: v for k, v in series["metric"].items() if k not in ("job", "instance", "__name__")}
        out[(series["metric"].get("__name__", ""), frozenset(labels.items()))] = float(series["value"][1])
    return out


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A real Prometheus server scraping 127.0.0.1:<metrics port> every second:
    yields (metrics port, Prometheus' port); killed after the test."""
    metrics_port, web_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                      "scrape_configs:\n  - job_name: rxfeed\n    static_configs:\n"
                      f"      - targets: ['127.0.0.1:{metrics_port}']\n")
    proc = subprocess.Popen([prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus not ready in 60 s"
            time.sleep(0.2)
        # its scrape loops start after target discovery settles (~5 s): wait for
        # the first scrape of the (still closed) endpoint, up == 0
        while not prom_query(web_port, 'up{job="rxfeed"}'):
            assert time.monotonic() < deadline, "prometheus did not scrape in 60 s"
            time.sleep(0.2)
        yield metrics_port, web_port
    finally:
        proc.kill()
        proc.wait()


def test_real_prometheus_scrapes_a_paced_replay(day: Path, prometheus: tuple[int, int]) -> None:
    """Prometheus scrapes during the run (it sees the counters partway) and
    after it (--metrics-linger): its last values equal the --json summary,
    gap and fault counters non-zero."""
    metrics_port, prom = prometheus
    p = subprocess.Popen([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(day), "--speed",
                          str(pcap_span_s(day) / PACED_S), "--faults", "drop=0.03,seed=11", "--latency", "--json",
                          "--metrics", f"127.0.0.1:{metrics_port}", "--metrics-linger", "120"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        s = read_summary(p)
        assert s["gaps"] > 0 and s["backend_stats"]["faults"]["dropped"] > 0
        deadline = time.monotonic() + 30
        while True:  # until Prometheus has scraped the final values
            last = prom_values(prom, '{__name__=~"rxfeed_.+", job="rxfeed"}')
            if last.get(("rxfeed_running", frozenset())) == 0:
                break
            assert time.monotonic() < deadline, f"no scrape after the run: {last.get(('rxfeed_running', frozenset()))}"
            time.sleep(0.5)
        assert_matches_summary({(n, lab): v for (n, lab), v in last.items()}, s)
        # scrapes while the loop ran: the run seen at 1 and partway through
        assert prom_values(prom, 'max_over_time(rxfeed_running{job="rxfeed"}[10m])')[("", frozenset())] == 1
        first = prom_values(prom, 'min_over_time(rxfeed_packets_total{job="rxfeed"}[10m])')
        assert first[("", frozenset({("decoder", "itch50")}))] < s["packets"]
        end_linger(p)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
