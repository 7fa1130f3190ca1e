"""Issue 13: the decoder pays only for subscribers, and the zero-copy wire
overlay (itch50_wire.h, generated from spec.py) reads the same values as the
decoded record, behind the same length check."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50 import Itch50Config, Itch50Decoder, codegen, ffi, spec
from rxfeed.protocols.itch50._decoder import decode_one
from rxfeed.protocols.itch50._handlers import AddOrderTwoFields, ChecksumHandler, WireProbe, wire_fields

from .conftest import ListBackend, mold


def _framed_messages(path) -> list[bytes]:
    """The messages of a NASDAQ-file day, as bytes."""
    data, out, pos = open(path, "rb").read(), [], 0
    while pos + 2 <= len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def _run(path, *consumers, **subscriptions):
    """A day through the file backend with C handler tables attached; the summary."""
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path)})
    for c in consumers:
        pipe.decoder.add_handlers(c)
    for t, cb in subscriptions.items():
        pipe.decoder.subscribe(cb, types=t)
    s = pipe.run()
    pipe.close()
    return s


def _run_stream(chunks: list[bytes], *consumers):
    dec = Itch50Decoder(Itch50Config())
    for c in consumers:
        dec.add_handlers(c)
    pipe = Pipeline(ListBackend(chunks, stream=True), dec)
    return pipe.run(), dec


def _same_value(wire, decoded) -> bool:
    """A wire accessor's value against the decoded message's (alpha fields
    come right-stripped of their space padding, one-byte chars as they are)."""
    if isinstance(wire, bytes):
        text = wire.decode("latin-1")
        return (text if len(wire) == 1 else text.rstrip(" ")) == decoded
    return wire == decoded


def _random_message(rng: random.Random, m: spec.Message) -> bytes:
    return m.type.encode() + bytes(rng.randrange(256) for _ in range(m.wire_size - 1))


# --- the generated overlay ----------------------------------------------------------

def test_wire_header_asserts_every_size_and_offset_of_the_spec():
    """Offsets summed here from the spec table, independently of the generator."""
    text = codegen.generate_wire_header()
    assert text == (codegen.HERE / codegen.WIRE_HEADER).read_text()
    for m in spec.MESSAGES:
        s = f"rxf_itch_wire_{m.name}"
        assert f"_Static_assert(sizeof({s}) == {m.wire_size}," in text
        assert f"_Static_assert(_Alignof({s}) == 1," in text
        off = 0
        for f in spec.HEADER + m.fields:
            assert f"_Static_assert(offsetof({s}, {f.name}) == {off}," in text, (m.name, f.name)
            off += f.wire_size
        assert off == m.wire_size
    assert "static inline uint32_t itch_add_order_price(const uint8_t *p)" in text
    assert "static inline uint32_t itch_add_order_shares(const uint8_t *p)" in text


def test_wire_outputs_are_checked_like_the_records():
    """The overlay is one of codegen's outputs: --check (tests and the meson
    step) fails when it is stale, and meson lists it as an input of that step."""
    for name in ("itch50_wire.h", "itch50_wire.pxd", "_wire_fields.pxi"):
        assert name in codegen.OUTPUTS
    build = (Path(__file__).resolve().parents[1] / "meson.build").read_text()
    assert "'protocols/itch50/itch50_wire.h', 'protocols/itch50/itch50_wire.pxd'" in build


def test_accessors_equal_the_decoded_record_on_a_generated_day(day_dir):
    msgs = _framed_messages(day_dir / "day.itch")
    rng = random.Random(13)
    msgs += [_random_message(rng, m) for m in spec.MESSAGES for _ in range(20)]  # every type, any bytes
    seen = set()
    for raw in msgs:
        decoded = decode_one(raw)._asdict()
        wire = wire_fields(raw)
        assert wire.keys() == decoded.keys()
        bad = {k: (wire[k], decoded[k]) for k in wire if not _same_value(wire[k], decoded[k])}
        assert not bad, (raw[:1], bad)
        seen.add(raw[:1].decode())
    assert seen == set(spec.TYPES)


def test_wire_fields_refuses_a_message_of_the_wrong_length():
    with pytest.raises(ValueError, match="bad length"):
        wire_fields(b"A" + bytes(34))


# --- wire handlers --------------------------------------------------------------------

def test_wire_and_record_views_read_the_same_two_fields(day_dir):
    wire, record = AddOrderTwoFields("wire"), AddOrderTwoFields("record")
    s = _run(day_dir / "day.itch", wire, record)
    assert wire.result == record.result
    assert wire.result[0] == s.messages_per_type["A"] > 0
    adds = [decode_one(m) for m in _framed_messages(day_dir / "day.itch") if m[:1] == b"A"]
    assert wire.result == (len(adds), sum(a.shares for a in adds), sum(a.price for a in adds))


def test_a_wire_handler_sees_every_message_with_its_length(day_dir):
    probe = WireProbe()
    s = _run(day_dir / "day.itch", probe)
    r = probe.result
    assert r["wrong_length"] == 0 and r["count"] == s.messages and r["per_type"] == s.messages_per_type
    expect = sum(m.stock_locate + m.tracking_number + m.timestamp
                 for m in map(decode_one, _framed_messages(day_dir / "day.itch")))
    assert r["header_sum"] == expect % (1 << 64)


@pytest.mark.parametrize("delta", [-1, +1, -35])
def test_a_message_of_the_wrong_length_never_reaches_a_wire_handler(delta):
    good = b"A" + bytes(35)
    bad = b"A" + bytes(35 + delta)
    stream = b"".join(struct.pack(">H", len(m)) + m for m in (good, bad, good))
    probe, two = WireProbe(), AddOrderTwoFields("wire")
    s, _ = _run_stream([stream], probe, two)
    assert probe.result["count"] == 2 and probe.result["wrong_length"] == 0
    assert two.result[0] == 2
    assert s.messages == 2 and s.errors == {"bad_length": 1}


def test_unknown_types_and_short_datagram_blocks_stay_counted_only():
    """Counters keep their meaning with and without subscribers."""
    a = b"A" + bytes(35)
    payloads = [mold(1, [a, b"Z" + bytes(10), b"", b"D" + bytes(18), b"D" + bytes(17)])]
    for consumers in ((), (WireProbe(), ChecksumHandler())):
        dec = Itch50Decoder(Itch50Config())
        for c in consumers:
            dec.add_handlers(c)
        s = Pipeline(ListBackend(list(payloads)), dec).run()
        assert s.messages == 2 and s.messages_per_type == {"A": 1, "D": 1}
        assert s.errors == {"unknown_type": 1, "bad_length": 2}
        for c in consumers:
            assert (c.result["count"] if isinstance(c, WireProbe) else c.count) == 2


def test_first_layout_tables_still_work_and_their_wire_slots_are_never_read(day_dir):
    old, new = ChecksumHandler(first_layout=True), ChecksumHandler()
    _run(day_dir / "day.itch", old, new)
    assert old.count == new.count > 0 and old.checksum == new.checksum
    assert old.wire_calls == 0


def test_the_dispatch_table_follows_subscribe_and_unsubscribe(day_dir):
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(day_dir / "day.itch")})
    got = []
    pipe.decoder.subscribe(got.append, types="AD")
    pipe.decoder.unsubscribe("A")
    s = pipe.run()
    assert {m.type for m in got} == {"D"} and len(got) == s.messages_per_type["D"]


def test_the_cffi_cdef_declares_wire_handlers():
    assert "rxf_itch_wire_handler wire[256];" in ffi.HANDLERS_CDEF
    assert "typedef void (*rxf_itch_wire_handler)" in ffi.HANDLERS_CDEF


def _one_burst(n: int, batch_size: int | None = None):
    """``n`` generated messages as one stream chunk (one burst): the decoder,
    the messages, and what the callback saw (the message, and how many
    messages the decoder had counted when it was called)."""
    from rxfeed.tools.generator import generate_messages

    msgs = list(generate_messages(n, symbols=3, seed=5))
    chunk = b"".join(struct.pack(">H", len(m)) + m for m in msgs)
    dec = Itch50Decoder(Itch50Config(batch_size=batch_size or 65536))
    got: list = []
    dec.subscribe(lambda m: got.append((m, dec.counters()["messages"])))
    return dec, msgs, got, Pipeline(ListBackend([chunk], stream=True), dec)


def test_python_callbacks_are_handed_over_mid_burst_in_decode_order():
    """A burst of 2,000 messages: its callbacks start before it is decoded
    to the end (every 256 queued messages, while the records are in cache),
    in decode order."""
    dec, msgs, got, pipe = _one_burst(2000)
    s = pipe.run()
    assert s.messages == 2000 and [m.type for m, _ in got] == [chr(m[0]) for m in msgs]
    assert got[0][1] <= 257 and got[-1][1] == 2000  # the first 256 handed over when the 257th is queued


def test_a_full_numpy_batch_comes_after_the_callbacks_of_its_rows():
    dec, msgs, got, pipe = _one_burst(2000, batch_size=50)
    batches = []
    dec.subscribe_batches(lambda t, a: batches.append((len(a), sum(1 for m, _ in got if m.type == "A"))), types="A")
    s = pipe.run()
    rows = 0
    for n, seen in batches:  # every row of a batch was a callback before the batch
        rows += n
        assert seen >= rows
    assert rows == s.messages_per_type["A"] and len(batches) > 2
