"""pcap/pcapng replay: formats, byte orders, link types, drops, filters, pacing,
loops, gzip, and corrupt files that give a clear error instead of a crash."""

from __future__ import annotations

import gzip
import struct
import time

import pytest

from rxfeed import Pipeline
from rxfeed.tools.generator import DAY_EPOCH_NS, frames_for, generate_messages, udp_frame, write_pcap, write_pcapng
from rxfeed.protocols.itch50.reference import encode

from .conftest import collect, mold, replay_fifo, replay_json, replay_piped

MSGS = list(generate_messages(3000, symbols=4, seed=9))


def run(path, **cfg):
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(path), **cfg})
    seen = []
    pipe.decoder.subscribe(lambda m, meta: seen.append((m, meta)), with_meta=True)
    s = pipe.run()
    pipe.close()
    return s, seen


def test_all_capture_formats_give_the_same_messages(day_dir):
    s0, base = collect("nasdaq_file", day_dir / "day.itch")
    for name in ("day.pcap", "day.pcapng", "day.pcap.gz"):
        s, got = collect("pcap_replay", day_dir / name)
        assert got == base, name
        assert s.gaps == 0 and s.errors == {} and s.drops == {}


def test_nanosecond_pcap_and_timestamps(tmp_path):
    frames = list(frames_for(MSGS))
    write_pcap(tmp_path / "ns.pcap", frames, nsec=True)
    write_pcap(tmp_path / "us.pcap", frames, nsec=False)
    write_pcapng(tmp_path / "ns.pcapng", frames, tsresol=9)
    write_pcapng(tmp_path / "us.pcapng", frames, tsresol=6)
    first_ts = frames[0][0]
    for name, ts in (("ns.pcap", first_ts), ("us.pcap", first_ts // 1000 * 1000),
                     ("ns.pcapng", first_ts), ("us.pcapng", first_ts // 1000 * 1000)):
        s, seen = run(tmp_path / name)
        assert s.messages == 3000, name
        assert seen[0][1][2] == ts, name
        assert ts > DAY_EPOCH_NS


def test_big_endian_pcap(tmp_path):
    frames = list(frames_for(MSGS))
    with open(tmp_path / "be.pcap", "wb") as f:
        f.write(struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, fr in frames:
            f.write(struct.pack(">IIII", ts // 10**9, (ts % 10**9) // 1000, len(fr), len(fr)) + fr)
    s, _ = run(tmp_path / "be.pcap")
    assert s.messages == 3000 and s.errors == {}


def _payloads():
    from rxfeed.tools.generator import moldudp64_datagrams

    return [p for _, p in moldudp64_datagrams(MSGS[:200])]


def test_link_types_vlan_sll_raw(tmp_path):
    pays = _payloads()
    eth = [udp_frame(p, vlans=(100,)) if i % 2 else udp_frame(p, vlans=(100, 200)) for i, p in enumerate(pays)]
    write_pcap(tmp_path / "vlan.pcap", [(DAY_EPOCH_NS, f) for f in eth])
    raw = [udp_frame(p)[14:] for p in pays]
    write_pcap(tmp_path / "raw.pcap", [(DAY_EPOCH_NS, f) for f in raw], linktype=101)
    sll = [b"\x00\x00\x00\x01\x00\x06" + bytes(8) + b"\x08\x00" + r for r in raw]
    write_pcap(tmp_path / "sll.pcap", [(DAY_EPOCH_NS, f) for f in sll], linktype=113)
    sll2 = [b"\x08\x00\x00\x00" + bytes(16) + r for r in raw]
    write_pcap(tmp_path / "sll2.pcap", [(DAY_EPOCH_NS, f) for f in sll2], linktype=276)
    for name in ("vlan.pcap", "raw.pcap", "sll.pcap", "sll2.pcap"):
        s, _ = run(tmp_path / name)
        assert s.messages == 200 and s.drops == {}, name


def _with_ip_options(frame: bytes) -> bytes:
    ip = bytearray(frame[14:34])
    ip[0] = 0x46  # IHL 6: one 4-byte option word
    total = struct.unpack("!H", ip[2:4])[0] + 4
    ip[2:4] = struct.pack("!H", total)
    return frame[:14] + bytes(ip) + b"\x01\x01\x01\x00" + frame[34:]


def test_ip_options_honoured_and_drops_counted(tmp_path):
    p = mold(1, [encode("D", order_reference_number=1)], session=b"RXFEED0001")
    good = udp_frame(p)
    frag = bytearray(good)
    frag[20:22] = b"\x20\x00"  # more-fragments
    tcp = bytearray(good)
    tcp[23] = 6
    arp = good[:12] + b"\x08\x06" + good[14:]
    truncated = good[:30]
    frames = [_with_ip_options(good), bytes(frag), bytes(tcp), arp, truncated]
    write_pcap(tmp_path / "mix.pcap", [(DAY_EPOCH_NS, f) for f in frames])
    s, seen = run(tmp_path / "mix.pcap")
    assert s.messages == 1
    assert s.drops == {"ip_fragment": 1, "not_udp": 1, "not_ipv4": 1, "truncated_frame": 1}


def test_destination_filter(tmp_path):
    pays = _payloads()
    frames = [(DAY_EPOCH_NS, udp_frame(p, group="233.54.12.111" if i % 2 == 0 else "233.54.12.112"))
              for i, p in enumerate(pays)]
    write_pcap(tmp_path / "two.pcap", frames)
    s, _ = run(tmp_path / "two.pcap", filters=["233.54.12.111:26477"])
    assert s.backend_stats["packets"] == (len(pays) + 1) // 2
    assert s.drops["filtered"] == len(pays) // 2
    s, _ = run(tmp_path / "two.pcap", filters=["*:26477"])
    assert s.drops == {}


def test_pcapng_several_interfaces_and_resolutions(tmp_path):
    pays = _payloads()[:4]
    blocks = [struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)]

    def idb(linktype, tsresol):
        opts = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
        blen = 20 + len(opts)
        return struct.pack("<IIHHI", 1, blen, linktype, 0, 65535) + opts + struct.pack("<I", blen)

    def epb(ifid, ts, fr):
        pad = (-len(fr)) % 4
        blen = 32 + len(fr) + pad
        return struct.pack("<IIIIIII", 6, blen, ifid, ts >> 32, ts & 0xFFFFFFFF, len(fr), len(fr)) + fr + \
            b"\0" * pad + struct.pack("<I", blen)

    def spb(fr):
        pad = (-len(fr)) % 4
        blen = 16 + len(fr) + pad
        return struct.pack("<III", 3, blen, len(fr)) + fr + b"\0" * pad + struct.pack("<I", blen)

    blocks += [idb(1, 6), idb(101, 0x80 | 10)]  # usec Ethernet; 2^-10 s raw IP
    blocks.append(struct.pack("<II", 0x99, 16) + b"skip" + struct.pack("<I", 16))  # unknown block: skipped
    blocks.append(epb(0, 1_000_000, udp_frame(pays[0])))
    blocks.append(epb(1, 3 * 1024, udp_frame(pays[1])[14:]))
    blocks.append(spb(udp_frame(pays[2])))
    (tmp_path / "multi.pcapng").write_bytes(b"".join(blocks))
    s, seen = run(tmp_path / "multi.pcapng")
    assert s.packets == 3 and s.errors == {}
    assert s.backend_stats["skipped_blocks"] == 1
    ts = sorted({meta[2] for _, meta in seen})
    assert ts == [0, 10**9, 3 * 10**9]


def test_corrupt_and_truncated_files(tmp_path):
    (tmp_path / "junk.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20) + struct.pack("<IIII", 0, 0, 1 << 30, 1 << 30))
    s, _ = run(tmp_path / "junk.pcap")
    assert s.error and "implausible" in s.error

    frames = list(frames_for(MSGS))
    write_pcap(tmp_path / "ok.pcap", frames)
    data = (tmp_path / "ok.pcap").read_bytes()
    (tmp_path / "cut.pcap").write_bytes(data[: len(data) - 30])
    s, _ = run(tmp_path / "cut.pcap")
    assert s.error is None and s.drops["truncated_record"] == 1
    assert s.packets == len(frames) - 1

    # a cut .gz: see test_truncated_gzip_delivers_everything_then_reports

    (tmp_path / "junk.bin").write_bytes(b"hello world" * 5)
    with pytest.raises(ValueError, match="not a pcap"):
        run(tmp_path / "junk.bin")
    with pytest.raises(ValueError, match="No such file"):
        run(tmp_path / "missing.pcap")


def test_loops_restart_the_session_without_duplicates(day_dir):
    s, _ = run(day_dir / "day.pcap", loops=3)
    assert s.messages == 3 * 20_000
    assert s.duplicates == 0 and s.gaps == 0
    assert s.decoder_stats["source_resets"] == 2


def test_paced_replay_follows_capture_time(tmp_path):
    pays = _payloads()[:5]
    frames = [(DAY_EPOCH_NS + i * 50_000_000, udp_frame(p)) for i, p in enumerate(pays)]  # 200 ms span
    write_pcap(tmp_path / "paced.pcap", frames)
    t0 = time.perf_counter()
    s, _ = run(tmp_path / "paced.pcap", speed=1.0)
    took = time.perf_counter() - t0
    assert s.packets == 5
    assert took >= 0.19
    t0 = time.perf_counter()
    run(tmp_path / "paced.pcap", speed=4.0)
    assert time.perf_counter() - t0 >= 0.045


def _pcap_records(frames) -> list[bytes]:
    """Classic-pcap record bytes (16-byte header + frame), little-endian, usec."""
    return [struct.pack("<IIII", ts // 10**9, (ts % 10**9) // 1000, len(fr), len(fr)) + fr for ts, fr in frames]


PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)

SHRINK_SCRIPT = r"""
import json, os, sys
from rxfeed import Pipeline
path, cut = sys.argv[1], int(sys.argv[2])
pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": path}, run={"max_packets": 50})
first = pipe.run()
os.truncate(path, cut)
pipe.run_config = pipe.run_config.model_copy(update={"max_packets": 0})
second = pipe.run()
print(json.dumps({"first": first.packets, "total": second.packets, "error": second.error}))
"""


def test_capture_shrinking_during_replay_is_a_clear_error(tmp_path):
    """The file is cut under a running replay: no SIGBUS, every record still
    in the file is delivered, then the run stops naming both sizes."""
    import json
    import subprocess
    import sys

    records = _pcap_records(frames_for(MSGS))
    body, sizes = [], [len(PCAP_HEADER)]
    while sizes[-1] < 32 << 20:  # well past the read window
        body += records
        for r in records:
            sizes.append(sizes[-1] + len(r))
    path = tmp_path / "shrinking.pcap"
    path.write_bytes(PCAP_HEADER + b"".join(body))
    full = path.stat().st_size
    cut = 20 << 20
    whole_records_left = sum(1 for end in sizes[1:] if end <= cut)
    out = subprocess.run([sys.executable, "-c", SHRINK_SCRIPT, str(path), str(cut)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    res = json.loads(out.stdout)
    assert res["first"] >= 50
    assert f"capture shrank from {full} to {cut} bytes during replay" in res["error"]
    assert res["total"] == whole_records_left


def _idb_with_tsoffset(offset_s: int) -> bytes:
    opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HHq", 14, 8, offset_s) + struct.pack("<HH", 0, 0)
    blen = 20 + len(opts)
    return struct.pack("<IIHHI", 1, blen, 1, 0, 65535) + opts + struct.pack("<I", blen)


def _epb(ifid: int, ts: int, fr: bytes) -> bytes:
    pad = (-len(fr)) % 4
    blen = 32 + len(fr) + pad
    return struct.pack("<IIIIIII", 6, blen, ifid, ts >> 32, ts & 0xFFFFFFFF, len(fr), len(fr)) + fr + \
        b"\0" * pad + struct.pack("<I", blen)


@pytest.mark.parametrize("offset_s, expected_ts", [(1 << 40, 2**64 - 1), (-(1 << 40), 0), (-5, 0)])
def test_pcapng_tsoffset_out_of_range_is_clamped_and_counted(tmp_path, offset_s, expected_ts):
    """if_tsoffset * 10^9 overflowing (or a negative time) never wraps: the
    timestamp is clamped, counted and reported; the packet is still delivered."""
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    pays = _payloads()[:2]
    data = shb + _idb_with_tsoffset(offset_s) + _epb(0, 1_000_000_000, udp_frame(pays[0])) + \
        _epb(0, 2_000_000_000, udp_frame(pays[1]))
    (tmp_path / "tsoff.pcapng").write_bytes(data)
    s, seen = run(tmp_path / "tsoff.pcapng")
    assert s.packets == 2 and s.error is None
    assert {meta[2] for _, meta in seen} == {expected_ts}
    assert s.backend_stats["timestamps_out_of_range"] == 2
    assert any("if_tsoffset" in w for w in s.warnings)


def test_pcapng_tsoffset_in_range_still_applies(tmp_path):
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    pays = _payloads()[:1]
    (tmp_path / "ok.pcapng").write_bytes(shb + _idb_with_tsoffset(-1) + _epb(0, 3_000_000_000, udp_frame(pays[0])))
    s, seen = run(tmp_path / "ok.pcapng")
    assert [meta[2] for _, meta in seen][0] == 2_000_000_000
    assert "timestamps_out_of_range" not in s.backend_stats or s.backend_stats["timestamps_out_of_range"] == 0


def _whole_pcap_records(data: bytes) -> int:
    """Complete classic-pcap records in ``data`` (a decompressed prefix)."""
    pos, n = 24, 0
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        if pos + 16 + incl > len(data):
            break
        pos += 16 + incl
        n += 1
    return n


def _big_day_pcap(tmp_path) -> bytes:
    """A plain pcap whose decompressed size is several read/inflate windows."""
    records = _pcap_records(frames_for(MSGS))
    body = records * (12 * (8 << 20) // sum(map(len, records)) // 10 + 1) * 2
    return PCAP_HEADER + b"".join(body)


def test_truncated_gzip_delivers_everything_then_reports(tmp_path):
    import zlib

    data = _big_day_pcap(tmp_path)
    gz = gzip.compress(data, compresslevel=6)
    cut = gz[: len(gz) * 95 // 100]
    (tmp_path / "cut.pcap.gz").write_bytes(cut)
    prefix = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut)
    s, _ = run(tmp_path / "cut.pcap.gz")
    assert s.packets == _whole_pcap_records(prefix)
    assert s.error and "truncated" in s.error
    # a small file is no different: it is opened, delivered, then reported
    small = gzip.compress(PCAP_HEADER + b"".join(_pcap_records(frames_for(MSGS))))
    (tmp_path / "small.pcap.gz").write_bytes(small[:-200])
    s, _ = run(tmp_path / "small.pcap.gz")
    assert s.packets == _whole_pcap_records(zlib.decompressobj(31).decompress(small[:-200]))
    assert s.error and "truncated" in s.error


def test_corrupt_gzip_tail_delivers_what_decompressed(tmp_path):
    import zlib

    data = _big_day_pcap(tmp_path)
    gz = bytearray(gzip.compress(data, compresslevel=6))
    at = len(gz) * 9 // 10
    gz[at:at + 64] = bytes(64)
    (tmp_path / "bad.pcap.gz").write_bytes(bytes(gz))
    d, good = zlib.decompressobj(31), []
    try:
        for i in range(0, len(gz), 256):
            good.append(d.decompress(bytes(gz[i:i + 256])))
    except zlib.error:
        pass
    s, _ = run(tmp_path / "bad.pcap.gz")
    assert s.packets >= _whole_pcap_records(b"".join(good)) > 0
    assert s.packets < _whole_pcap_records(data)
    assert s.error and "corrupt" in s.error


@pytest.mark.parametrize("junk", [b"\x1f\x8b", b"hello, trailing garbage\n", b"\x1f\x8b\x08\x00garbage"])
def test_trailing_bytes_after_a_complete_gzip_member_are_reported_not_refused(tmp_path, junk):
    frames = list(frames_for(MSGS))
    data = PCAP_HEADER + b"".join(_pcap_records(frames))
    (tmp_path / "t.pcap.gz").write_bytes(gzip.compress(data) + gzip.compress(b"") + junk)
    s, _ = run(tmp_path / "t.pcap.gz")
    assert s.error is None
    assert s.packets == len(frames) and s.messages == 3000
    assert s.backend_stats["gzip_trailing_bytes"] == len(junk)
    assert any(f"{len(junk)} trailing bytes" in w for w in s.warnings)


@pytest.mark.parametrize("name", ["day.pcap", "day.pcapng", "day.pcap.gz"])
def test_piped_capture_replays_like_the_file(day_dir, name):
    """``cat day | rxfeed replay /dev/stdin`` reads the same messages as the file."""
    rc, base, _ = replay_json([day_dir / name])
    assert rc == 0 and base["messages"] == 20_000
    rc, got, err = replay_piped(day_dir / name)
    assert rc == 0, err
    assert got["messages"] == base["messages"] and got["messages_per_type"] == base["messages_per_type"]
    assert got["packets"] == base["packets"] and got["error"] is None


def test_capture_through_a_fifo(day_dir, tmp_path):
    rc, got, err = replay_fifo(tmp_path, day_dir / "day.pcap")
    assert rc == 0, err
    assert got["messages"] == 20_000 and got["gaps"] == 0


def test_loops_over_a_pipe_are_refused_clearly(day_dir):
    rc, _, err = replay_piped(day_dir / "day.pcap", "--loop", "2")
    assert rc != 0 and "loop" in err and "pipe" in err


def test_trailing_garbage_in_a_held_open_pipe_does_not_hold_the_run(day_dir):
    """After trailing bytes behind the last gzip member of a pipe, the rest of
    the pipe is not drained: a writer that keeps it open cannot hold the run
    (review of issue 9: it used to read on past every limit)."""
    import json
    import subprocess
    import sys

    cmd = f"(cat '{day_dir / 'day.pcap.gz'}'; printf junkjunk; sleep 3) | '{sys.executable}' -m rxfeed.tools.cli " \
          "replay /dev/stdin --json"
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60)
    s = json.loads(out.stdout)
    assert out.returncode == 0 and s["messages"] == 20_000 and s["elapsed_s"] < 2.0
    assert any("the rest of the pipe was not read" in w for w in s["warnings"])
