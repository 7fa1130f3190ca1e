"""The three ways out of the decoder agree with each other and with the
pure-Python reference decoder: C handlers, Python callbacks, numpy batches."""

from __future__ import annotations

import numpy as np
import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50 import reference
from rxfeed.protocols.itch50._handlers import ChecksumHandler
from rxfeed.protocols.itch50.dtypes import DTYPES
from rxfeed.protocols.itch50.spec import TYPES

from .conftest import ListBackend, collect, mold


def _reference_messages(path):
    data = open(path, "rb").read()
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(reference.decode(data[pos + 2:pos + 2 + n]))
        pos += 2 + n
    return out


def test_python_callbacks_equal_reference_decoder(day_dir):
    ref = _reference_messages(day_dir / "day.itch")
    s, got = collect("nasdaq_file", day_dir / "day.itch")
    assert s.messages == len(ref) == 20_000
    assert [m._asdict() for m in got] == ref


def test_subscription_per_type_filters_in_c(day_dir):
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")})
    seen = []
    pipe.decoder.subscribe(seen.append, types="EC")
    s = pipe.run()
    assert {m.type for m in seen} == {"E", "C"}
    assert len(seen) == s.messages_per_type["E"] + s.messages_per_type["C"]


def test_c_handlers_numpy_batches_and_counts_agree(day_dir):
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")},
                    decoder_config={"batch_size": 1000})
    h = ChecksumHandler()
    pipe.decoder.add_handlers(h)
    pipe.decoder.subscribe_batches()
    s = pipe.run()
    batches = pipe.decoder.take_batches()
    assert h.count == s.messages == sum(len(b) for b in batches.values())
    assert h.per_type() == s.messages_per_type == {t: len(b) for t, b in batches.items()}
    total = 0
    for t, b in batches.items():
        assert b.dtype == DTYPES[t]
        words = np.frombuffer(b.tobytes(), dtype="<u8")
        total += int(words.sum(dtype=np.uint64))
    assert h.checksum == total % (1 << 64)


def test_batch_callback_gets_bounded_batches(day_dir):
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(day_dir / "day.itch")},
                    decoder_config={"batch_size": 500})
    sizes = []
    pipe.decoder.subscribe_batches(lambda t, a: sizes.append((t, len(a))), types="A")
    s = pipe.run()
    assert all(n <= 500 for _, n in sizes)
    assert sum(n for _, n in sizes) == s.messages_per_type["A"]


def test_handler_table_must_be_a_handler_capsule():
    from rxfeed.protocols.itch50 import Itch50Decoder

    with pytest.raises(TypeError, match="handlers"):
        Itch50Decoder().add_handlers(object())


def test_callback_exception_stops_the_loop_and_is_raised():
    from rxfeed.protocols.itch50 import Itch50Decoder

    dec = Itch50Decoder()

    def boom(m):
        raise RuntimeError("strategy bug")

    dec.subscribe(boom, types="D")
    d = reference.encode("D", order_reference_number=1)
    pipe = Pipeline(ListBackend([mold(1, [d])] * 3), dec, run={"burst": 1})
    with pytest.raises(RuntimeError, match="strategy bug"):
        pipe.run()


def test_bad_subscription_type_is_an_error():
    from rxfeed.protocols.itch50 import Itch50Decoder

    with pytest.raises(ValueError, match="not an ITCH 5.0 message type"):
        Itch50Decoder().subscribe(print, types="AZ")


def test_all_types_reach_callbacks(day_dir):
    _, got = collect("pcap_replay", day_dir / "day.pcapng")
    assert {m.type for m in got} == set(TYPES)


def _two_session_capture(path):
    """Three datagrams of two sessions, distinct capture times, one burst."""
    from rxfeed.tools.generator import DAY_EPOCH_NS, udp_frame, write_pcap

    a = reference.encode("D", stock_locate=1, timestamp=1, order_reference_number=1)
    grams = [mold(1, [a, a]), mold(1, [a], session=b"TESTSESS02"), mold(2, [a], session=b"TESTSESS02")]
    write_pcap(path, [(DAY_EPOCH_NS + 1000 * i, udp_frame(g, ident=i)) for i, g in enumerate(grams)], nsec=True)
    return DAY_EPOCH_NS


def test_callback_meta_is_its_own_packets_in_a_burst(tmp_path):
    t0 = _two_session_capture(tmp_path / "two.pcap")
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(tmp_path / "two.pcap")}, run={"burst": 32})
    got = []
    pipe.decoder.subscribe(lambda m, meta: got.append(tuple(meta)), with_meta=True)
    pipe.run()
    assert got == [("TESTSESS01", 1, t0, "new"), ("TESTSESS01", 2, t0, "new"),
                   ("TESTSESS02", 1, t0 + 1000, "new"), ("TESTSESS02", 2, t0 + 2000, "new")]


def _outputs(payloads, **config):
    """(callback metas, batch records, checksum handler count, summary) of a run."""
    from rxfeed.protocols.itch50 import Itch50Config, Itch50Decoder

    dec = Itch50Decoder(Itch50Config(**config))
    metas, handler = [], ChecksumHandler()
    dec.subscribe(lambda m, meta: metas.append(meta), with_meta=True)
    dec.subscribe_batches(types="D")
    dec.add_handlers(handler)
    s = Pipeline(ListBackend(payloads), dec, run={"burst": 2}).run()
    return metas, dec.take_batches().get("D", []), handler.count, s


def test_dissect_mode_delivers_every_message_to_every_output_with_its_status():
    def D(ref):
        return reference.encode("D", stock_locate=1, timestamp=ref, order_reference_number=ref)

    top = (1 << 64) - 1
    payloads = [mold(1, [D(1), D(2)]), mold(2, [D(2), D(3)]), mold(1_000_000_000, [D(9)]), mold(4, [D(4)]),
                mold(top, [D(7), D(8)]), mold(6, [D(6)])]
    seq_metas, seq_batch, seq_handled, seq = _outputs(payloads)
    metas, batch, handled, dis = _outputs(payloads, sequenced=False)
    assert [(m.sequence, m.status) for m in seq_metas] == [(1, "new"), (2, "new"), (3, "new"), (4, "new"), (6, "new")]
    assert [(m.sequence, m.status) for m in metas] == [
        (1, "new"), (2, "new"), (2, "duplicate"), (3, "new"), (1_000_000_000, "implausible"), (4, "new"),
        (top, "overflow"), (0, "overflow"), (6, "new")]
    assert list(batch["order_reference_number"]) == [1, 2, 2, 3, 9, 4, 7, 8, 6] and handled == 9
    assert len(seq_batch) == seq_handled == 5
    # the session layer decides the same in both modes: only delivery differs
    assert dis.decoder_stats == seq.decoder_stats and (dis.gaps, dis.gap_messages, dis.duplicates) == (seq.gaps, seq.gap_messages,
                                                                                          seq.duplicates)
    assert dis.errors == seq.errors == {"implausible_sequence": 1, "sequence_overflow": 1}
