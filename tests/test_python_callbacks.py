"""Python callbacks of the ITCH decoder (issue 13): the namedtuple form with
its objects reused when a callback keeps none, the opt-in view form
(``subscribe(callback, view=True)``), and the direct call of callable
objects. Every form hands over the same values in the same order."""

from __future__ import annotations

import copy
import functools
import pickle
import random
import struct
import sys

import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50 import Itch50Config, Itch50Decoder, messages, reference, spec
from rxfeed.protocols.itch50._decoder import VIEW_BY_TYPE, MessageView

from .conftest import ListBackend, mold

#: Message objects are reused only where a reference count of 1 proves nobody holds them.
REUSE = sys.version_info < (3, 14) and getattr(sys, "_is_gil_enabled", lambda: True)()


def _stream(msgs: list[bytes]) -> bytes:
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


def _random_messages(seed: int, per_type: int = 40) -> list[bytes]:
    """Every type, every body byte random (alpha fields not ASCII either), shuffled."""
    rng = random.Random(seed)
    out = [m.type.encode() + bytes(rng.randrange(256) for _ in range(m.wire_size - 1))
           for m in spec.MESSAGES for _ in range(per_type)]
    rng.shuffle(out)
    return out


def _decode(chunks: list[bytes], callback, *, stream: bool = True, burst: int = 64, **subscribe) -> object:
    """``chunks`` through the real run loop to ``callback``; the summary."""
    dec = Itch50Decoder(Itch50Config())
    dec.subscribe(callback, **subscribe)
    return Pipeline(ListBackend(chunks, stream=stream), dec, run={"burst": burst}).run()


def _both_forms(chunks: list[bytes], **kw) -> tuple[list, list]:
    """(namedtuples, views) of the same input, every object kept."""
    tuples: list = []
    views: list = []
    _decode(chunks, tuples.append, **kw)
    _decode(chunks, views.append, view=True, **kw)
    return tuples, views


def _assert_view_is(v: MessageView, m: tuple) -> None:
    assert type(v) is VIEW_BY_TYPE[m.type] and type(v).__name__ == type(m).__name__ + "View"
    assert v._fields == m._fields
    for f in m._fields:
        assert getattr(v, f) == getattr(m, f), (m.type, f)
        assert type(getattr(v, f)) is type(getattr(m, f)), (m.type, f)
    assert v.to_message() == m and type(v.to_message()) is type(m)
    assert v == m and not (v != m) and tuple(v) == tuple(m) and len(v) == len(m) and v[-1] == m[-1]
    assert v._asdict() == m._asdict() and hash(v) == hash(m)


# --- the view form --------------------------------------------------------------------

def test_views_equal_the_namedtuples_of_a_generated_day(day_dir):
    """Every field of every message of a day holding every type, read through
    the view, equals the namedtuple's (the namedtuples equal the reference
    decoder's: test_decoder_outputs)."""
    tuples, views = [], []
    for out, kw in ((tuples, {}), (views, {"view": True})):
        pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcapng")})
        pipe.decoder.subscribe(out.append, **kw)
        pipe.run()
        pipe.close()
    assert len(tuples) == len(views) == 20_000 and {m.type for m in tuples} == set(spec.TYPES)
    for v, m in zip(views, tuples):
        _assert_view_is(v, m)
    assert repr(views[0]) == type(views[0]).__name__ + repr(tuples[0])[len(type(tuples[0]).__name__):]


def test_views_of_random_messages_equal_the_namedtuples():
    """Any bytes in every field of every type (prices and references at full
    width, alpha fields outside ASCII) read the same through both forms."""
    msgs = _random_messages(21)
    tuples, views = _both_forms([_stream(msgs)])
    assert len(tuples) == len(views) == len(msgs)
    for raw, v, m in zip(msgs, views, tuples):
        assert m.type == chr(raw[0])
        _assert_view_is(v, m)


def test_views_and_namedtuples_keep_decode_order_with_events_and_batches():
    """Gaps (events), numpy batches and callbacks interleave the same way
    whichever form the callback takes: events of a burst first, a full batch
    after the callbacks of its rows."""
    def D(ref):
        return reference.encode("D", stock_locate=1, timestamp=ref, order_reference_number=ref)

    def A(ref):
        return reference.encode("A", stock_locate=2, timestamp=ref, order_reference_number=ref, buy_sell_indicator="B",
                                shares=100, stock="AAPL", price=1_500_000)

    payloads = [mold(1, [A(1), D(2), A(3)]), mold(6, [A(6), A(7)]), mold(8, [D(8)] * 3), mold(20, [A(20), D(21)]),
                mold(22, [A(22)] * 300)]

    def run(view: bool) -> list:
        dec = Itch50Decoder(Itch50Config(batch_size=4))
        log: list = []
        dec.on_event(lambda e: log.append(("event", e["kind"], e["first"], e["count"])))
        dec.subscribe_batches(lambda t, a: log.append(("batch", t, [int(r) for r in a["order_reference_number"]])),
                              types="A")
        dec.subscribe(lambda m, meta: log.append(("msg", m.type, m.order_reference_number, meta.sequence)),
                      with_meta=True, view=view)
        Pipeline(ListBackend(payloads), dec, run={"burst": 2}).run()
        return log

    tuples, views = run(False), run(True)
    assert views == tuples
    kinds = [e[0] for e in tuples]
    assert kinds.count("event") == 2 and kinds.count("msg") == 310 and kinds.count("batch") == 77
    assert tuples.index(("event", "gap", 4, 2)) < tuples.index(("msg", "A", 6, 6))


def test_a_view_owns_its_record_after_the_callback():
    """Views kept by the callback (every third) still read their own message
    at the end; the ones not kept were reused for later messages."""
    msgs = _random_messages(5, per_type=20)
    tuples, _ = _both_forms([_stream(msgs)])
    kept, ids = {}, []

    def every_third(v):
        ids.append(id(v))
        if len(ids) % 3 == 0:
            kept[len(ids) - 1] = v

    _decode([_stream(msgs)], every_third, view=True)
    assert len(ids) == len(msgs) and kept
    for i, v in kept.items():
        _assert_view_is(v, tuples[i])
    assert len(set(ids)) < len(msgs) if REUSE else True


def test_bad_use_of_the_view_form_is_a_clear_error():
    with pytest.raises(TypeError, match="made by the decoder"):
        VIEW_BY_TYPE["A"]()
    with pytest.raises(TypeError, match="made by the decoder"):
        MessageView()
    views: list = []
    _decode([_stream(_random_messages(1, per_type=1))], views.append, view=True)
    v = views[0]
    with pytest.raises(AttributeError):
        v.timestamp = 1
    with pytest.raises(AttributeError):
        v.not_a_field  # noqa: B018
    with pytest.raises(TypeError, match="pickle view.to_message"):
        pickle.dumps(v)
    assert pickle.loads(pickle.dumps(v.to_message())) == v
    assert copy.copy(v) is v and copy.deepcopy(v) is v
    assert (v == object()) is False and v != 1


def test_subscribe_refuses_what_is_not_callable():
    dec = Itch50Decoder()
    with pytest.raises(TypeError, match="callback must be callable, not int"):
        dec.subscribe(1)
    with pytest.raises(TypeError, match="callback must be callable"):
        dec.subscribe(None, view=True)


def test_the_iex_decoder_has_no_view_form():
    with pytest.raises(TypeError, match="view"):
        Pipeline(ListBackend([]), "iex").decoder.subscribe(print, view=True)


def test_a_view_callback_exception_stops_the_loop_and_is_raised():
    def boom(v):
        if v.type == "D":
            raise RuntimeError("strategy bug")

    with pytest.raises(RuntimeError, match="strategy bug"):
        _decode([_stream(_random_messages(2, per_type=3))], boom, view=True)


# --- namedtuples reused when not kept ---------------------------------------------------

def test_namedtuples_kept_by_the_callback_stay_unchanged():
    """Some messages kept, most not: the kept ones still hold their own
    values at the end (a reused object is only one nobody else held)."""
    msgs = _random_messages(8, per_type=30)
    every: list = []
    _decode([_stream(msgs)], every.append)
    kept, values, ids = {}, [], []

    def some(m, meta):
        ids.append(id(m))
        values.append(tuple(m))
        if m.stock_locate % 5 == 0:
            kept[len(values) - 1] = (m, meta)

    _decode([_stream(msgs)], some, with_meta=True)
    assert values == [tuple(m) for m in every] and 0 < len(kept) < len(msgs)
    for i, (m, meta) in kept.items():
        assert m == every[i] and type(m) is type(every[i])
        assert meta == messages.MessageMeta(None, None, 0, None)
    if REUSE:
        assert len(set(ids)) < len(msgs) // 2


def test_field_values_kept_without_their_message_stay_unchanged():
    """A callback keeping only some integer fields (a timestamp, the last
    field) and not the message: each kept int still has its own value (the
    ints of a reused message are rewritten in place only when nobody else
    holds them)."""
    msgs = _random_messages(11, per_type=30)
    every: list = []
    _decode([_stream(msgs)], every.append)
    kept: list = []
    _decode([_stream(msgs)], lambda m: kept.append((m.timestamp, m[-1])))
    assert kept == [(m.timestamp, m[-1]) for m in every]
    assert all(type(t) is int for t, _ in kept)


def test_a_kept_namedtuple_is_a_proper_tuple_object():
    """A message first reused then kept is an ordinary, hashable, picklable namedtuple."""
    msgs = _random_messages(3, per_type=5)
    last: list = []

    def keep_last(m):
        last[:] = [m]

    _decode([_stream(msgs)], keep_last)
    m = last[0]
    assert pickle.loads(pickle.dumps(m)) == m and hash(m) == hash(tuple(m)) and {m: 1}[m] == 1


# --- how the callback is called ---------------------------------------------------------

class _Counter:
    def __init__(self) -> None:
        self.seen: list = []

    def __call__(self, m, meta=None) -> None:
        self.seen.append((m.type, m.timestamp, meta is not None))


def _expected(msgs: list[bytes], meta: bool = False) -> list:
    return [(chr(m[0]), reference.decode(m)["timestamp"], meta) for m in msgs]


@pytest.mark.parametrize("view", [False, True])
@pytest.mark.parametrize("with_meta", [False, True])
def test_every_kind_of_callable_gets_every_message(view, with_meta):
    """Functions, bound methods, callable instances (called through their
    class's __call__), subclasses of C callables, partials."""
    msgs = _random_messages(4, per_type=4)

    class StaticCall:
        seen: list = []

        @staticmethod
        def __call__(m, meta=None):
            StaticCall.seen.append((m.type, m.timestamp, meta is not None))

    class Partial(functools.partial):
        pass

    plain, counter, static, part = [], _Counter(), StaticCall(), []
    for cb, out in ((lambda m, meta=None: plain.append((m.type, m.timestamp, meta is not None)), plain),
                    (counter, counter.seen), (counter.__call__, counter.seen), (static, StaticCall.seen),
                    (Partial(lambda out, m, meta=None: out.append((m.type, m.timestamp, meta is not None)), part),
                     part)):
        out.clear()
        _decode([_stream(msgs)], cb, view=view, with_meta=with_meta)
        assert out == _expected(msgs, with_meta), cb


def test_a_callable_instance_sees_its_class_change_mid_run():
    """``cb(m)`` looks __call__ up on the type for each message, as CPython does."""
    msgs = _random_messages(6, per_type=2)
    calls: list = []

    class Switch:
        def __call__(self, m):
            calls.append("first")
            if len(calls) == 10:
                type(self).__call__ = lambda self, m: calls.append("second")

    _decode([_stream(msgs)], Switch())
    assert calls == ["first"] * 10 + ["second"] * (len(msgs) - 10)


def test_a_callback_may_unsubscribe_itself_mid_burst():
    msgs = _random_messages(7, per_type=20)
    dec = Itch50Decoder(Itch50Config())
    seen: list = []

    class Once:
        def __call__(self, m):
            seen.append(m.type)
            if len(seen) == 100:
                dec.unsubscribe()

    dec.subscribe(Once())
    s = Pipeline(ListBackend([_stream(msgs)], stream=True), dec).run()
    assert s.messages == len(msgs) and len(seen) == 100
