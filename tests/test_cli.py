"""The command line, run as a user would (a subprocess for the real entry point)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
        pipe = Pipeline(backend, backend_config={"path": str(day_dir / name)})
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
