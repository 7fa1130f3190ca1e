"""Outputs: Parquet conversion, the plot, and the ZeroMQ fan-out sink with a
real subscriber over loopback TCP and IPC."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import zmq
from click.testing import CliRunner

from rxfeed import Pipeline
from rxfeed.tools.cli import main
from rxfeed.sinks.zmq_pub import ZmqPubConfig, ZmqPubSink, decode_message

from .conftest import collect

CLI = [sys.executable, "-m", "rxfeed.tools.cli"]


def test_convert_to_parquet(day_dir, tmp_path):
    r = CliRunner().invoke(main, ["convert", str(day_dir / "day.pcap"), "-o", str(tmp_path / "pq")])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    s, msgs = collect("pcap_replay", day_dir / "day.pcap")
    assert info["messages"] == 20_000
    adds = pq.read_table(tmp_path / "pq" / "messages_A.parquet").to_pydict()
    ref = [m for m in msgs if m.type == "A"]
    assert adds["order_reference_number"] == [m.order_reference_number for m in ref]
    assert adds["stock"] == [m.stock for m in ref] and adds["price"] == [m.price for m in ref]
    trades = pq.read_table(tmp_path / "pq" / "trades.parquet")
    assert trades.num_rows == sum(1 for m in msgs if m.type in "ECPQ")
    assert pq.read_table(tmp_path / "pq" / "bbo.parquet").num_rows > 100
    depth = pq.read_table(tmp_path / "pq" / "depth.parquet").to_pydict()
    assert len(depth["bid_price"][0]) == 10 and "ask_shares" in depth and "_pad" not in depth


def test_plot_png(day_dir, tmp_path):
    out = tmp_path / "aapl.png"
    r = CliRunner().invoke(main, ["plot", str(day_dir / "day.pcap"), "-s", "AAPL", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    r = CliRunner().invoke(main, ["plot", str(day_dir / "day.pcap"), "-s", "NOPE"])
    assert r.exit_code == 2 and "NOPE" in r.output


def _published(pipe, endpoint: str, topics: list[bytes]) -> list:
    """Run ``pipe`` with a zmq_pub sink bound to ``endpoint`` and a real
    subscriber of ``topics`` on a thread: what it received, decoded."""
    sink = ZmqPubSink(ZmqPubConfig(endpoints=[endpoint]))
    bound = sink._sock.getsockopt(zmq.LAST_ENDPOINT).decode()
    sink.attach(pipe.decoder)
    got: list = []
    ready = threading.Event()
    done = threading.Event()

    def subscriber():
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.connect(bound)
        for topic in topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        ready.set()
        while not done.is_set() or sub.poll(200):
            if sub.poll(100):
                got.append(decode_message(sub.recv_multipart()))
        sub.close()

    t = threading.Thread(target=subscriber)
    t.start()
    ready.wait(5)
    time.sleep(0.5)  # ZeroMQ's slow joiner: the subscription must reach the publisher
    pipe.run()
    time.sleep(0.3)
    done.set()
    t.join(10)
    sink.close()
    return got


@pytest.mark.parametrize("kind", ["tcp", "ipc"])
def test_zmq_fan_out_to_a_real_subscriber(day_dir, tmp_path, kind):
    endpoint = "tcp://127.0.0.1:*" if kind == "tcp" else f"ipc://{tmp_path}/itch.sock"
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")},
                    decoder_config={"batch_size": 512})
    got = _published(pipe, endpoint, [b"AAPL", b"MSFT"])
    _, msgs = collect("pcap_replay", day_dir / "day.pcap")
    want = Counter((m.stock_locate, m.type) for m in msgs if m.type in "AFECXDUPQ" and m.stock_locate in (1, 2))
    have = Counter()
    for sym, typ, arr in got:
        assert sym in ("AAPL", "MSFT")
        assert set(np.unique(arr["stock_locate"])) == {1 if sym == "AAPL" else 2}
        have[(int(arr["stock_locate"][0]), typ)] += len(arr)
    assert have == want


def test_zmq_fan_out_of_an_iex_deep_plus_day(tmp_path):
    """IEX records carry their symbol: one topic per symbol, the feed in the
    header, records decoded with the feed's dtypes; System Events on ``*``."""
    from rxfeed.tools.iex_generator import generate_iex, iex_messages

    path = tmp_path / "dp.pcap"
    generate_iex(path, "deep+", 4000, 3, 2, session_change_at=None)
    pipe = Pipeline("pcap_replay", "iex", backend_config={"path": str(path)}, decoder_config={"batch_size": 256})
    got = _published(pipe, "tcp://127.0.0.1:*", [b"AAPL", b"*"])
    from rxfeed.protocols.iex.spec import FEEDS

    at = {t: next((f.offset for f in m.fields if f.name == "symbol"), None) for t, m in FEEDS["DEEP+"].by_type.items()}
    want = Counter(chr(m[0]) for m in iex_messages("deep+", 4000, 3, 2)
                   if at[chr(m[0])] is None or m[at[chr(m[0])]:at[chr(m[0])] + 8] == b"AAPL    ")
    have = Counter()
    for sym, typ, arr in got:
        assert (sym, at[typ]) == ("*", None) or (sym == "AAPL" and set(arr["symbol"].tolist()) == {b"AAPL    "})
        have[typ] += len(arr)
    assert have == want


def test_convert_drains_the_books_whatever_types_are_written(day_dir, tmp_path, monkeypatch):
    """``convert --types S`` (one S batch at the very end): the books' trade,
    BBO and depth buffers are still drained on their own schedule, so what
    they hold at once stays bounded, and the Parquet files are complete."""
    from rxfeed.protocols.itch50 import _book

    batch = 64
    monkeypatch.setenv("RXFEED_DECODER__ITCH50__BATCH_SIZE", str(batch))
    held: dict[str, list[int]] = {"trades": [], "bbo": [], "depth": []}
    made = []

    class MeasuredBooks(_book.OrderBooks):
        """OrderBooks that remember how many events each take_*() found buffered."""

        def take_trades(self):
            arr = super().take_trades()
            held["trades"].append(len(arr))
            return arr

        def take_bbo(self):
            arr = super().take_bbo()
            held["bbo"].append(len(arr))
            return arr

        def take_depth(self):
            arr = super().take_depth()
            held["depth"].append(len(arr))
            return arr

    def make_books(*args, **kwargs):
        made.append(MeasuredBooks(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(_book, "OrderBooks", make_books)
    out = tmp_path / "pq"
    r = CliRunner().invoke(main, ["convert", str(day_dir / "day.pcap"), "-o", str(out), "--types", "S"])
    assert r.exit_code == 0, r.output
    counters = made[0].counters()
    _, msgs = collect("pcap_replay", day_dir / "day.pcap")
    # at most one batch of each book-changing type passes between two drains; a
    # message adds at most one trade, one BBO change and one depth snapshot
    bound = len("AFECXDUPQ") * batch
    ref = [m for m in msgs if m.type in "ECPQ"]
    totals = {"trades": len(ref), "bbo": counters["bbo_changes"], "depth": counters["depth_snapshots"]}
    for name, sizes in held.items():
        assert sum(sizes) == totals[name] > 5 * bound, name  # a real day, much larger than the bound
        assert max(sizes) <= bound, (name, max(sizes))
    assert sorted(p.name for p in out.iterdir()) == ["bbo.parquet", "depth.parquet", "messages_S.parquet",
                                                     "trades.parquet"]
    assert pq.read_table(out / "messages_S.parquet").num_rows == sum(1 for m in msgs if m.type == "S")
    trades = pq.read_table(out / "trades.parquet").to_pydict()
    assert trades["match_number"] == [m.match_number for m in ref]
    assert pq.read_table(out / "bbo.parquet").num_rows == counters["bbo_changes"]
    assert pq.read_table(out / "depth.parquet").num_rows == counters["depth_snapshots"]


def test_convert_and_plot_an_iex_day(tmp_path):
    """Parquet per message type, trades and BBO from the books (no depth
    snapshots for IEX: said on stderr), and the PNG of one symbol."""
    from rxfeed.tools.iex_generator import generate_iex, iex_messages

    path = tmp_path / "dp.pcap"
    msgs = list(iex_messages("deep+", 3000, 2, 6))
    generate_iex(path, "deep+", 3000, 2, 6)
    out = subprocess.run(CLI + ["convert", str(path), "-o", str(tmp_path / "pq")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "no depth.parquet" in out.stderr, out.stderr
    files = json.loads(out.stdout)["files"]
    for t, n in Counter(chr(m[0]) for m in msgs).items():
        assert files[f"messages_{t}.parquet"] == n == pq.read_table(tmp_path / "pq" / f"messages_{t}.parquet").num_rows
    trades = pq.read_table(tmp_path / "pq" / "trades.parquet").to_pydict()
    assert len(trades["price"]) == files["trades.parquet"] > 0 and min(trades["price"]) > 0
    assert files["bbo.parquet"] > 0
    png = tmp_path / "aapl.png"
    out = subprocess.run(CLI + ["plot", str(path), "-s", "AAPL", "-o", str(png)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
