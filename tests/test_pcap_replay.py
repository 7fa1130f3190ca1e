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

from .conftest import collect, mold

MSGS = list(generate_messages(3000, symbols=4, seed=9))


def run(path, **cfg):
    pipe = Pipeline("pcap_replay", backend_config={"path": str(path), **cfg})
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

    (tmp_path / "cut.pcap.gz").write_bytes(gzip.compress(data)[:-200])
    with pytest.raises(ValueError, match="gzip: file ends inside the compressed stream"):
        run(tmp_path / "cut.pcap.gz")  # small file: found while filling the first window

    (tmp_path / "junk.bin").write_bytes(b"hello world" * 5)
    with pytest.raises(ValueError, match="not a pcap"):
        run(tmp_path / "junk.bin")
    with pytest.raises(ValueError, match="No such file"):
        run(tmp_path / "missing.pcap")


def test_loops_restart_the_session_without_duplicates(day_dir):
    s, _ = run(day_dir / "day.pcap", loops=3)
    assert s.messages == 3 * 20_000
    assert s.duplicates == 0 and s.gaps == 0
    assert s.session["source_resets"] == 2


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
