"""Shared fixtures: small synthetic days written by rxfeed's own generator."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from rxfeed import Pipeline
from rxfeed.tools.generator import generate

REAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
REAL_ITCH = REAL_DIR / "ex20101224.TEST_ITCH_50"


@pytest.fixture(scope="session")
def day_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("days")
    for name in ("day.itch", "day.itch.gz", "day.pcap", "day.pcapng", "day.pcap.gz"):
        generate(d / name, 20_000, symbols=6, seed=3)
    return d


def mold(seq: int, msgs: list[bytes], session: bytes = b"TESTSESS01", count: int | None = None) -> bytes:
    """A MoldUDP64 datagram."""
    n = len(msgs) if count is None else count
    return struct.pack(">10sQH", session, seq, n) + b"".join(struct.pack(">H", len(m)) + m for m in msgs)


class ListBackend:
    """A pure-Python backend over a list of payloads (for session-layer tests)."""

    name = "list"

    def __init__(self, payloads, stream=False):
        self.payloads = list(payloads)
        self.stream = stream
        self.config = type("C", (), {"path": None})()

    def native_capsule(self):
        return None

    def read_burst(self, n):
        if not self.payloads:
            return None
        out, self.payloads = self.payloads[:n], self.payloads[n:]
        return out

    def stats(self):
        return {"drops": {}}

    def close(self):
        pass


def run_payloads(payloads, stream=False, **decoder_config):
    """Decode payloads through the real run loop; return (pipeline, summary, messages)."""
    from rxfeed.protocols.itch50 import Itch50Config, Itch50Decoder

    dec = Itch50Decoder(Itch50Config(**decoder_config))
    got = []
    dec.subscribe(lambda m, meta: got.append((m, meta)), with_meta=True)
    pipe = Pipeline(ListBackend(payloads, stream), dec, run={"burst": 4})
    return pipe, pipe.run(), got


def collect(source_backend: str, path, **cfg):
    """All messages of a source as dicts, in order."""
    pipe = Pipeline(source_backend, "itch50", backend_config={"path": str(path), **cfg})
    out = []
    pipe.decoder.subscribe(lambda m: out.append(m))
    summary = pipe.run()
    pipe.close()
    return summary, out


def replay_json(args, **popen_kw) -> tuple[int, dict | None, str]:
    """``rxfeed replay ARGS --json`` in a subprocess: (exit code, summary, stderr)."""
    out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", *map(str, args), "--json"],
                         capture_output=True, text=True, timeout=120, **popen_kw)
    return out.returncode, (json.loads(out.stdout) if out.stdout.strip() else None), out.stderr


def replay_piped(path, *args) -> tuple[int, dict | None, str]:
    """``cat PATH | rxfeed replay /dev/stdin ARGS --json``: a real pipe on stdin."""
    with open(path, "rb") as f:
        cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
        try:
            return replay_json(["/dev/stdin", *args], stdin=cat.stdout)
        finally:
            cat.stdout.close()
            cat.wait()


def replay_fifo(tmp_path, path) -> tuple[int, dict | None, str]:
    """Replay PATH written into a named FIFO by another process (``cat > fifo``)."""
    import os

    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat '{path}' > '{fifo}'"])
    try:
        res = replay_json([fifo])
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0, "the FIFO's writer died (its reader went away?)"
    return res
