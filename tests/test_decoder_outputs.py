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
    pipe = Pipeline("pcap_replay", backend_config={"path": str(day_dir / "day.pcap")})
    seen = []
    pipe.decoder.subscribe(seen.append, types="EC")
    s = pipe.run()
    assert {m.type for m in seen} == {"E", "C"}
    assert len(seen) == s.messages_per_type["E"] + s.messages_per_type["C"]


def test_c_handlers_numpy_batches_and_counts_agree(day_dir):
    pipe = Pipeline("pcap_replay", backend_config={"path": str(day_dir / "day.pcap")},
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
    pipe = Pipeline("nasdaq_file", backend_config={"path": str(day_dir / "day.itch")},
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
