"""The command line, run as a user would (a subprocess for the real entry point)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rxfeed.tools.cli import main

from .conftest import REAL_ITCH

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return r


def test_replay_json_summary(day_dir):
    r = cli("replay", day_dir / "day.pcap", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    for key in ("packets", "messages", "messages_per_type", "gaps", "duplicates", "errors", "drops", "elapsed_s",
                "messages_per_s"):
        assert key in s
    assert s["messages"] == 20_000 and s["backend"] == "pcap_replay" and s["stop_reason"] == "end_of_source"


def test_replay_text_and_limits(day_dir):
    r = cli("replay", day_dir / "day.itch.gz", "--max-packets", "1", "--json")
    s = json.loads(r.output)
    assert s["stop_reason"] == "packet_limit" and s["backend"] == "nasdaq_file"
    r = cli("replay", day_dir / "day.pcapng")
    assert r.exit_code == 0 and "messages" in r.output and "20,000" in r.output


def test_inspect_jsonl_keys(day_dir):
    r = cli("inspect", day_dir / "day.pcap", "--format", "jsonl", "-n", "5", "--types", "A")
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert len(rows) == 5
    row = rows[0]
    assert row["type"] == "A"
    assert set(row) == {"type", "stock_locate", "tracking_number", "timestamp", "order_reference_number",
                        "buy_sell_indicator", "shares", "stock", "price", "session", "sequence", "status"}
    assert row["session"] == "RXFEED0001" and isinstance(row["price"], int) and row["stock"] == row["stock"].strip()
    assert row["status"] == "new"
    r = cli("inspect", day_dir / "day.pcap", "--format", "jsonl", "-n", "5", "--types", "A", "--sequenced")
    assert [{k: v for k, v in json.loads(line).items()} for line in r.output.splitlines()] == \
        [{k: v for k, v in row.items() if k != "status"} for row in rows]


def test_inspect_nasdaq_file_has_no_sequence():
    r = cli("inspect", REAL_ITCH, "--format", "jsonl", "-n", "2")
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert len(rows) == 2 and "sequence" not in rows[0] and rows[0]["type"] == "S"


def test_generate_and_errors(tmp_path):
    r = cli("generate", tmp_path / "g.pcapng", "-n", "1000")
    assert r.exit_code == 0 and "1,000 messages" in r.output
    r = CliRunner().invoke(main, ["replay", str(tmp_path / "nope.pcap")])
    assert r.exit_code == 2 and "No such file" in r.output
    (tmp_path / "x.txt").write_text("hello")
    r = CliRunner().invoke(main, ["replay", str(tmp_path / "x.txt")])
    assert r.exit_code == 2 and "no plugin recognises" in r.output
    r = CliRunner().invoke(main, ["replay", str(tmp_path / "g.pcapng"), "--filter", "nonsense:1"])
    assert r.exit_code == 2 and "bad destination" in r.output


def test_plugins_command_and_console_script(tmp_path):
    out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "plugins", "--json"], capture_output=True, text=True,
                         check=True).stdout
    info = json.loads(out)
    assert info["backends"]["pcap_replay"]["native"] is True
    assert info["backends"]["example_py"]["native"] is False
    assert {"plugin": "example_broken", "error": "ImportError: rxfeed_example.broken is broken on purpose"} in info["failures"]


def test_sigint_stops_a_paced_replay(tmp_path):
    import signal
    import time

    from rxfeed.tools.generator import generate

    generate(tmp_path / "slow.pcap", 2000)
    p = subprocess.Popen([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(tmp_path / "slow.pcap"), "--speed", "1",
                          "--json"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=20)
    s = json.loads(out)
    assert s["stop_reason"] == "signal" and p.returncode == 0


def test_progress_reporting(day_dir, monkeypatch):
    from rxfeed import Pipeline
    from rxfeed.tools import cli as climod

    for name in ("day.pcap", "day.itch.gz"):
        backend = "pcap_replay" if "pcap" in name else "nasdaq_file"
        pipe = Pipeline(backend, "itch50", backend_config={"path": str(day_dir / name)})
        done, total = pipe.backend.progress()
        assert done <= 24 and total == (day_dir / name).stat().st_size  # pcap: global header read at open
        monkeypatch.setattr(climod, "PROGRESS_MIN_BYTES", 0)
        s = climod._run_with_progress(pipe, show=True)
        assert s.messages == 20_000
        assert pipe.backend.progress() == (total, total)


# --- inspect is a dissector (issue 9, finding 13) ------------------------------

def _capture(path, datagrams):
    """A pcap of MoldUDP64 payloads (as given) in UDP frames."""
    from rxfeed.tools.generator import DAY_EPOCH_NS, udp_frame, write_pcap

    write_pcap(path, [(DAY_EPOCH_NS + i, udp_frame(p, ident=i)) for i, p in enumerate(datagrams)])
    return path


def _generated_datagrams(n):
    """(payload, message count) of a generated day's MoldUDP64 datagrams (no end of session)."""
    from rxfeed.tools.generator import generate_messages, moldudp64_datagrams

    return [p for _, p in moldudp64_datagrams(generate_messages(n, 4, 5), end_of_session=False)]


def _count(payload):
    return int.from_bytes(payload[18:20], "big")


def _rows(r):
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.output.splitlines()]
    return [x for x in lines if "event" not in x], [x for x in lines if "event" in x]


def test_inspect_shows_every_message_of_a_capture_with_zeroed_sequences(tmp_path):
    grams = [p[:10] + bytes(8) + p[18:] for p in _generated_datagrams(400)]  # anonymised: every sequence 0
    path = _capture(tmp_path / "zero.pcap", grams)
    msgs, _ = _rows(cli("inspect", path, "-n", "0", "--format", "jsonl"))
    assert len(msgs) == 400
    assert [m["sequence"] for m in msgs] == [i for p in grams for i in range(_count(p))]  # as on the wire
    assert {m["status"] for m in msgs} == {"new", "duplicate"}
    sequenced, _ = _rows(cli("inspect", path, "-n", "0", "--format", "jsonl", "--sequenced"))
    assert len(sequenced) == sum(m["status"] == "new" for m in msgs) < 400  # the session layer drops repeats
    text = cli("inspect", path, "-n", "0").output.splitlines()
    assert len(text) == 400 and "sequence=0 status=duplicate" in text[-_count(grams[-1])]


def test_inspect_marks_duplicates_and_gaps(tmp_path):
    grams = _generated_datagrams(300)
    lost = grams[3]
    sent = [g for i, g in enumerate(grams) if i != 3 for g in (g, g)]  # every datagram twice, the 4th lost
    path = _capture(tmp_path / "dups.pcap", sent)
    total = 300 - _count(lost)
    msgs, events = _rows(cli("inspect", path, "-n", "0", "--format", "jsonl"))
    assert len(msgs) == 2 * total
    assert [m["status"] for m in msgs].count("duplicate") == total
    first = [m for m in msgs if m["status"] == "new"]
    assert [m["sequence"] for m in first] == [s for s in range(1, 301) if not
                                             int.from_bytes(lost[10:18], "big") <= s < int.from_bytes(lost[10:18], "big") + _count(lost)]
    assert events == [{"event": "gap", "session": "RXFEED0001", "first": int.from_bytes(lost[10:18], "big"),
                       "count": _count(lost), "rx_ts_ns": events[0]["rx_ts_ns"]}]
    sequenced, events = _rows(cli("inspect", path, "-n", "0", "--format", "jsonl", "--sequenced"))
    assert [m["sequence"] for m in sequenced] == [m["sequence"] for m in first] and events == []
    text = cli("inspect", path, "-n", "0").output
    assert "# gap session=RXFEED0001 first=" in text and text.count("status=duplicate") == total


# --- every misuse is one line, `rxfeed: error: ...`, with a usage (2) or runtime (1) exit code ----------------

U64_PLUS_ONE = 1 << 64
WITH_CONFIG = ["replay", "{day}", "--config", "{tmp}/c.toml"]

#: (id, arguments, config file text or None, Python run before the CLI, exit code, regex the error line matches).
#: ``{day}`` is a generated pcap, ``{tmp}`` a fresh directory holding ``afile`` (a regular file) and ``c.toml``.
MISUSES = [
    ("toml-invalid", WITH_CONFIG, "[run\n", "", 2,
     r"c\.toml: not valid TOML"),
    ("toml-unknown-table", WITH_CONFIG, "[nonsense]\n", "", 2,
     r"unknown top-level table.*nonsense"),
    ("toml-run-not-a-table", WITH_CONFIG, "run = 5\n", "", 2,
     r"\[run\] must be a table \(got 5\)"),
    ("toml-backend-not-a-table", WITH_CONFIG, "[backend]\npcap_replay = 5\n",
     "", 2, r"\[backend\.pcap_replay\] must be a table \(got 5\)"),
    ("toml-listen-run-not-a-table", ["listen", "-b", "udp_socket", "--config", "{tmp}/c.toml"], "run = 5\n", "", 2,
     r"\[run\] must be a table"),
    ("toml-wrong-value-type", WITH_CONFIG, '[run]\nburst = "many"\n', "", 2,
     r"run\.burst: Input should be a valid integer"),
    ("initial-sequence-2**64", WITH_CONFIG,
     f"[decoder.itch50]\ninitial_sequence = {U64_PLUS_ONE}\n", "", 2,
     r"decoder\.itch50\.initial_sequence: Input should be less than or equal to 18446744073709551615"),
    ("convert-depth-negative", ["convert", "{day}", "-o", "{tmp}/out", "--depth", "-1"], None, "", 2,
     r"Invalid value for '--depth': -1 is not in the range 0<=x<=1000"),
    ("convert-depth-5000", ["convert", "{day}", "-o", "{tmp}/out", "--depth", "5000"], None, "", 2,
     r"'--depth': 5000 is not in the range"),
    ("convert-output-is-a-file", ["convert", "{day}", "-o", "{tmp}/afile"], None, "", 2,
     r"'-o'.*afile'?: exists and is not a directory"),
    ("convert-output-under-a-file", ["convert", "{day}", "-o", "{tmp}/afile/out"], None, "", 2,
     r"afile is not a directory"),
    ("generate-output-under-a-file", ["generate", "{tmp}/afile/day.pcap"], None, "", 2,
     r"'OUTPUT'.*afile is not a directory"),
    ("generate-output-no-directory", ["generate", "{tmp}/nodir/day.pcap"], None, "", 2,
     r"directory .*nodir does not exist"),
    ("plot-output-no-directory", ["plot", "{day}", "-s", "AAPL", "-o", "{tmp}/nodir/a.png"], None, "", 2,
     r"'-o'.*nodir does not exist"),
    ("publish-not-an-endpoint", ["replay", "{day}", "--publish", "notanendpoint"], None, "", 2,
     r"--publish 'notanendpoint': .*expected tcp://HOST:PORT"),
    ("bench-without-matplotlib", ["bench", "latency"], None, "sys.modules['matplotlib'] = None", 1,
     r"needs matplotlib.*pip install 'rxfeed\[outputs\]'"),
    ("convert-without-pyarrow", ["convert", "{day}", "-o", "{tmp}/out"], None, "sys.modules['pyarrow'] = None", 1,
     r"needs pyarrow"),
    ("quote-kept-backend", ["replay", "{day}", "--backend", "nic0"], None, "", 2, r"no backend named 'nic0' "),
    ("quote-kept-symbol", ["plot", "{day}", "-s", "NOPE", "-o", "{tmp}/n.png"], None, "", 2,
     r"no stock directory \(R\) message named 'NOPE'$"),
    ("inspect-n-negative", ["inspect", "{day}", "-n", "-1"], None, "", 2,
     r"Invalid value for '-n': -1 is not in the range x>=0"),
    ("loop-0", ["replay", "{day}", "--loop", "0"], None, "", 2,
     r"Invalid value for '--loop': 0 is not in the range x>=1"),
    ("unknown-command", ["replya", "{day}"], None, "", 2, r"No such command 'replya'"),
    ("generate-disk-full", ["generate", "/dev/full", "--format", "pcap"], None, "", 1,
     r"/dev/full: No space left on device"),
    ("send-port-out-of-range", ["send", "{day}", "--group", "239.1.1.1:99999"], None, "", 2,
     r"--group '239\.1\.1\.1:99999': expected ADDRESS:PORT \(port 1\.\.65535\)"),
    ("send-iface-not-an-address", ["send", "{day}", "--group", "239.1.1.1:5000", "--iface", "eth0"], None, "", 2,
     r"--iface 'eth0': expected the IPv4 address"),
    ("send-nothing", ["send", "{tmp}/afile", "--group", "239.1.1.1:5000"], None, "", 2,
     r"afile: not an ITCH 5.0 capture or NASDAQ file"),
    ("bench-too-few-messages", ["bench", "latency", "-n", "0"], None, "", 2,
     r"'--messages' / '-n': 0 is not in the range x>=64"),
]


@pytest.fixture(scope="module")
def small_day(tmp_path_factory):
    from rxfeed.tools.generator import generate

    path = tmp_path_factory.mktemp("misuse") / "day.pcap"
    generate(path, 2000, symbols=4, seed=2)
    return path


@pytest.mark.parametrize("args,config,prelude,code,message", [m[1:] for m in MISUSES], ids=[m[0] for m in MISUSES])
def test_misuse_is_one_clear_error_line(small_day, tmp_path, args, config, prelude, code, message):
    """As a user sees it (a real process): the exit code, no traceback, one
    ``rxfeed: error:`` line saying what is wrong, its quotes intact."""
    (tmp_path / "afile").write_text("x")
    if config is not None:
        (tmp_path / "c.toml").write_text(config)
    argv = [a.format(day=small_day, tmp=tmp_path) for a in args]
    script = f"import sys\n{prelude}\nfrom rxfeed.tools.cli import main\nsys.argv = ['rxfeed'] + {argv!r}\nmain()\n"
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, p.stderr
    assert p.stderr.startswith("rxfeed: error: "), p.stderr
    assert re.search(message, p.stderr, re.MULTILINE), p.stderr


def test_error_path_keeps_a_traceback_on_request(small_day, tmp_path, monkeypatch):
    """RXFEED_TRACEBACK=1 shows the traceback of an expected failure (for bug reports)."""
    (tmp_path / "c.toml").write_text("run = 5\n")
    env = {**os.environ, "RXFEED_TRACEBACK": "1"}
    p = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(small_day), "--config",
                        str(tmp_path / "c.toml")], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and "Traceback" in p.stderr and "rxfeed: error: " in p.stderr
