"""Write the committed seed corpus (tests/fuzz/corpus/<harness>/) with
rxfeed's own generator: small, valid inputs of every framing the harnesses
read, from which libFuzzer mutates. Deterministic; re-run after changing it:

    .venv/bin/python -m tests.fuzz.make_corpus
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path

from rxfeed.tools.generator import (DAY_EPOCH_NS, DEFAULT_SESSION, generate_messages, moldudp64_datagrams, udp_frame,
                              write_nasdaq, write_pcap, write_pcapng)
from rxfeed.tools.iex_generator import IEXTP_HEADER, iex_messages, iextp_segments
from tests.fuzz._harness import CORPUS_DIR


def nasdaq_bytes(records: list[bytes]) -> bytes:
    """NASDAQ file framing: u16 big-endian length + record."""
    return b"".join(len(r).to_bytes(2, "big") + r for r in records)


def zeroed_prefixes(records: list[bytes]) -> bytes:
    """File framing with every length prefix zero (as in NASDAQ's public extract)."""
    return b"".join(b"\0\0" + r for r in records)


def small_frames(msgs: list[bytes], vlans: tuple[int, ...] = ()) -> list[tuple[int, bytes]]:
    """MoldUDP64 in UDP frames of at most 300 bytes: several frames from few messages."""
    grams = moldudp64_datagrams(msgs, max_frame=300)
    return [(DAY_EPOCH_NS + ts, udp_frame(p, ident=i, vlans=vlans)) for i, (ts, p) in enumerate(grams)]


def with_tsoffset(pcapng: bytes, seconds: int, tsresol: int) -> bytes:
    """A generated pcapng whose interface block also carries ``if_tsoffset``
    (option 14), so the fuzzer mutates that field too."""
    shb_len = struct.unpack_from("<I", pcapng, 4)[0]
    idb_len = struct.unpack_from("<I", pcapng, shb_len + 4)[0]
    head = pcapng[shb_len + 8:shb_len + 16]  # linktype, reserved, snaplen
    opts = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HHq", 14, 8, seconds) + struct.pack("<HH", 0, 0)
    blen = 12 + len(head) + len(opts)
    idb = struct.pack("<II", 1, blen) + head + opts + struct.pack("<I", blen)
    return pcapng[:shb_len] + idb + pcapng[shb_len + idb_len:]


def pcap_seeds(out: Path) -> None:
    msgs = list(generate_messages(64, symbols=2, seed=11))[:30]
    frames = small_frames(msgs)
    write_pcap(out / "usec.pcap", frames)
    write_pcap(out / "nsec.pcap", frames[:3], nsec=True)
    write_pcapng(out / "ns.pcapng", frames)
    write_pcapng(out / "us.pcapng", frames[:3], tsresol=6)
    write_pcap(out / "qinq.pcap", small_frames(msgs[:8], vlans=(7, 100)))
    (out / "nsec.pcap.gz").write_bytes(gzip.compress((out / "nsec.pcap").read_bytes(), mtime=0))
    (out / "tsoffset.pcapng").write_bytes(with_tsoffset((out / "us.pcapng").read_bytes(), 3600, 6))


def stream_seeds(out: Path) -> None:
    msgs = list(generate_messages(64, symbols=2, seed=12))
    write_nasdaq(out / "day.itch", msgs[:60])
    (out / "zeroed.itch").write_bytes(zeroed_prefixes(msgs[:30]))
    (out / "cut.itch").write_bytes(nasdaq_bytes(msgs[:10])[:-5])


def moldudp64_seeds(out: Path) -> None:
    msgs = list(generate_messages(64, symbols=2, seed=13))[:40]
    grams = [p for _, p in moldudp64_datagrams(msgs, max_frame=300)]
    (out / "in_order.bin").write_bytes(nasdaq_bytes(grams))
    hdr = struct.Struct(">10sQH")
    heartbeat = hdr.pack(DEFAULT_SESSION, 5, 0)
    other = hdr.pack(b"OTHERSESS1", 1, 1) + nasdaq_bytes(msgs[:1])
    # reordered, duplicated, a gap, a heartbeat, another session, end of session last
    mixed = [grams[1], grams[0], grams[0], grams[3], heartbeat, grams[2], other, grams[-1]]
    (out / "mixed.bin").write_bytes(nasdaq_bytes(mixed))
    # sequence numbers close to 2^64 (no wrap in the seed itself), then a stale datagram
    top = (1 << 64) - 64
    high = [hdr.pack(DEFAULT_SESSION, top + 3 * i, 3) + nasdaq_bytes(msgs[3 * i:3 * i + 3]) for i in range(4)]
    high.append(hdr.pack(DEFAULT_SESSION, 64, 1) + nasdaq_bytes(msgs[:1]))  # stale: a duplicate
    (out / "high_sequence.bin").write_bytes(nasdaq_bytes(high))


def books_seeds(out: Path) -> None:
    write_nasdaq(out / "day.itch", list(generate_messages(120, symbols=2, seed=5)))
    write_nasdaq(out / "three.itch", list(generate_messages(80, symbols=3, seed=6)))


def iex_books_seeds(out: Path) -> None:
    from rxfeed.tools.iex_generator import iex_messages

    for code, feed in enumerate(("tops", "deep", "deep+")):
        msgs = list(iex_messages(feed, 120, 2, 5 + code))
        (out / f"{feed.replace('+', '_plus')}.bin").write_bytes(
            bytes([code]) + b"".join(len(m).to_bytes(2, "little") + m for m in msgs))


def iex_segments(feed: str, n: int, seed: int, **kw: object) -> list[bytes]:
    """IEX-TP segments of a small generated day (frames of at most 300 bytes, no heartbeats)."""
    msgs = iex_messages(feed, n, 1, seed)
    return [s for _, s in iextp_segments(msgs, feed, max_frame=300, heartbeat_ns=None, **kw)]


def iex_seeds(out: Path) -> None:
    """One options byte (tests/fuzz/fuzz_iex.py), then segments in NASDAQ file framing."""
    (out / "tops.bin").write_bytes(b"\x00" + nasdaq_bytes(iex_segments("tops", 45, 21)[:8]))
    deep = iex_segments("deep", 50, 22, reset_at=40)
    heartbeat = IEXTP_HEADER.pack(1, 0, 0x8004, 1, 7, 0, 0, 0, 1, 0)
    other = iex_segments("deep", 45, 23, session_id=7)[:2]
    # reordered, duplicated, a gap, another session and its heartbeat, the restart at 1 last
    mixed = [deep[1], deep[0], deep[0], deep[3], other[0], heartbeat, other[1], deep[2]] + deep[4:]
    (out / "deep_mixed.bin").write_bytes(b"\x05" + nasdaq_bytes(mixed))
    one = iex_segments("deep+", 45, 24)[:4]
    two = iex_segments("deep+", 45, 25, channel=2)[:4]
    (out / "deep_plus_channels.bin").write_bytes(b"\x1e" + nasdaq_bytes([s for p in zip(one, two) for s in p]))


def igmp_seeds(out: Path) -> None:
    """IGMP queries of every version and kind, one frame per file (tests/fuzz/fuzz_igmp.py)."""
    from tests.igmp_harness import ip, query_frame, v2_frame

    ssm, sources = ip("232.1.1.1"), (ip("10.1.1.1"), ip("10.1.1.3"))
    (out / "v1_general.bin").write_bytes(query_frame(1))
    (out / "v2_group.bin").write_bytes(query_frame(2, ip("233.54.12.111"), 10))
    (out / "v3_general.bin").write_bytes(query_frame(3, 0, 0x8A))
    (out / "v3_group_sources.bin").write_bytes(query_frame(3, ssm, 20, sources))
    vlan = query_frame(3, ssm, 20)
    (out / "v3_vlan.bin").write_bytes(vlan[:12] + b"\x81\x00\x00\x64" + vlan[12:])
    (out / "v2_report.bin").write_bytes(v2_frame(bytes(6), 0, 0x16, ssm))
    many = tuple(ip("10.1.1.1") + i for i in range(70))  # more than a pending answer keeps (RXF_IGMP_MAX_QSRC)
    (out / "v3_group_many_sources.bin").write_bytes(query_frame(3, ip("233.54.12.111"), 20, many))


SEEDS: dict[str, Callable[[Path], None]] = {
    "pcap": pcap_seeds, "stream": stream_seeds, "moldudp64": moldudp64_seeds, "books": books_seeds,
    "iex_books": iex_books_seeds, "iex": iex_seeds, "igmp": igmp_seeds}


def main() -> None:
    for name, make in SEEDS.items():
        out = CORPUS_DIR / name
        for f in out.glob("*") if out.exists() else []:
            if not f.name.startswith("regression-"):  # fuzzer finds, kept as seeds by hand
                f.unlink()
        out.mkdir(parents=True, exist_ok=True)
        make(out)
        files = sorted(out.iterdir())
        print(f"{name}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
