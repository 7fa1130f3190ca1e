"""Per-message cost of the file backends, interleaved (a script, not a test).

For each day, every variant (interpreter x backend x mapped/read) runs in its
own process, one after the other, round after round, so the load of a shared
machine hits each alike; each process runs the whole file ``--inner`` times
through ``Pipeline(...).run()`` and reports its best CPU time
(``time.process_time``) and wall time. The best over all rounds is printed, as
ns per message, with the MoldUDP64-pcap / NASDAQ-file ratio of each
interpreter and mode. ``map-raw`` is nasdaq_file mapped with
``check_framing: false`` (no framing walk in the backend).

    python tests/bench/file_backends.py --day /tmp/b/day1000000 --rounds 5 \\
        --python after=.venv/bin/python --python before=/path/to/main/.venv/bin/python

``--day X`` means ``X.itch`` and ``X.pcap`` (``rxfeed.tools.generator.generate``,
16 symbols, seed 42, as the throughput benchmark makes them). An interpreter
whose backends have no ``mmap`` option (before this change) runs read() only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

HANDLERS = ("count", "checksum")


def worker(backend: str, path: str, mmap: str, handler: str, inner: int) -> dict:
    """Run the file ``inner`` times; best CPU and wall seconds, and the message count."""
    from rxfeed import Pipeline
    from rxfeed.protocols.itch50._handlers import ChecksumHandler

    cfg: dict = {"path": path}
    if mmap != "default":
        cfg["mmap"] = mmap != "read"
    if mmap == "map-raw":  # no framing walk in the backend: the decoder alone frames
        cfg["check_framing"] = False
    best_cpu = best_wall = float("inf")
    messages = 0
    for _ in range(inner):
        pipe = Pipeline(backend, "itch50", backend_config=cfg)
        if handler == "checksum":
            pipe.decoder.add_handlers(ChecksumHandler())
        c0, w0 = time.process_time(), time.perf_counter()
        s = pipe.run()
        c1, w1 = time.process_time(), time.perf_counter()
        mapped = bool(getattr(pipe.backend.reader, "mapped", False))
        pipe.close()
        messages = s.messages
        best_cpu, best_wall = min(best_cpu, c1 - c0), min(best_wall, w1 - w0)
    return {"cpu": best_cpu, "wall": best_wall, "messages": messages, "mapped": mapped}


def _variants(pythons: list[tuple[str, str]], day: str, handler: str) -> list[tuple]:
    out = []
    for label, exe in pythons:
        has_mmap = subprocess.run([exe, "-c", "from rxfeed.backends.nasdaq_file.config import NasdaqFileConfig as C;"
                                   "import sys; sys.exit(0 if 'mmap' in C.model_fields else 1)"]).returncode == 0
        for mode in (("map", "read", "map-raw") if has_mmap else ("default",)):
            for backend, ext in (("nasdaq_file", "itch"), ("pcap_replay", "pcap")):
                if mode != "map-raw" or backend == "nasdaq_file":
                    out.append((label, exe, backend, f"{day}.{ext}", mode, handler))
    return out


def drive(args: argparse.Namespace) -> None:
    pythons = [tuple(p.split("=", 1)) for p in args.python]
    for day in args.day:
        for handler in args.handler:
            variants = _variants(pythons, day, handler)
            best: dict[tuple, dict] = {}
            for _ in range(args.rounds):
                for label, exe, backend, path, mode, h in variants:
                    res = subprocess.run([exe, __file__, "worker", backend, path, mode, h, str(args.inner)],
                                         capture_output=True, text=True, check=True)
                    r = json.loads(res.stdout)
                    key = (label, mode, backend)
                    prev = best.get(key)
                    best[key] = {"cpu": min(r["cpu"], prev["cpu"]) if prev else r["cpu"],
                                 "wall": min(r["wall"], prev["wall"]) if prev else r["wall"],
                                 "messages": r["messages"], "mapped": r["mapped"]}
            _report(day, handler, best)


def _report(day: str, handler: str, best: dict) -> None:
    print(f"\n{day}  handler={handler}  (best CPU / wall ns per message)")
    for (label, mode, backend), r in sorted(best.items()):
        n = r["messages"]
        print(f"  {label:>8} {mode:>7} {backend:<12} mapped={r['mapped']!s:<5} {n:>9} msgs "
              f"cpu {1e9 * r['cpu'] / n:6.2f} ns  wall {1e9 * r['wall'] / n:6.2f} ns")
    for (label, mode, backend), r in sorted(best.items()):
        for file_mode in (mode, "map-raw"):
            f = best.get((label, file_mode, "nasdaq_file"))
            if backend == "pcap_replay" and f and (file_mode == mode or mode == "map"):
                print(f"  {label:>8} pcap {mode} / file {file_mode} cost per message: "
                      f"cpu {r['cpu'] / f['cpu']:.2f}x wall {r['wall'] / f['wall']:.2f}x")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        backend, path, mode, handler, inner = sys.argv[2:7]
        print(json.dumps(worker(backend, path, mode, handler, int(inner))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--day", action="append", required=True, help="path stem: STEM.itch and STEM.pcap")
    ap.add_argument("--python", action="append", default=[f"this={sys.executable}"], help="LABEL=interpreter")
    ap.add_argument("--handler", action="append", choices=HANDLERS, help="count (no consumer) and/or checksum")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--inner", type=int, default=2)
    args = ap.parse_args()
    args.handler = args.handler or ["count"]
    if len(args.python) > 1:
        args.python = args.python[1:]
    drive(args)


if __name__ == "__main__":
    main()
