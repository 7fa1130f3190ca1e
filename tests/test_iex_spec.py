"""The IEX spec tables (``protocols/iex/spec.py``): consistent in themselves,
and right about golden bytes written by hand from IEX's published specs.

Sources of the golden bytes, read independently of ``spec.py``: the
"Field Name / Offset / Length / Type" table of every message section and the
"Example" under it in *Investors Exchange TOPS Specification* 1.66 (October
19, 2021), *DEEP Specification* 1.08 (October 19, 2021) and *DEEP+
Specification* 1.04 (June 4, 2026); "Data Types": little endian, Byte 1
unsigned, Integer 4 unsigned, Long 8 signed, Price 8 signed with 4 implied
decimals, Timestamp 8 signed ns since the epoch (UTC), Event Time 4 unsigned
s since the epoch, String fixed-length ASCII padded with spaces.

Two sets of bytes, both decoded by :func:`unpack`, a small reference
unpacker driven by the table (``struct`` formats built from each field's
kind and the feed's byte order):

* :data:`EXAMPLES`: the spec's own example of every message type, its hex as
  printed, against the values its comments give (converted here from the
  comment text: "$99.05" -> 990500, clock readings -> ns).
* :data:`GOLDEN`: one message per layout, packed field by field with
  ``struct.pack('<...')`` at the offsets of the spec's table; values are
  distinct per field size, so two equal-size fields swapped in the table
  change what is decoded (the spec's examples reuse 99.05 and 429974). The
  rows are a second transcription of the spec tables, and are compared with
  ``spec.py`` row by row (name, offset, length, data type).

Errata found in the specs, pinned below: DEEP 1.08's Auction Information
example prints Paired Shares as ``a0 86 10 00`` (1,083,040) under a
"100,000 shares" comment (TOPS 1.66 prints ``a0 86 01 00``); the examples'
timestamp comments are New York time for the 2016 examples and the UTC
reading for the 2017 ones (``00 f0 30 2a 5b 25 b6 14`` is 09:30:00 UTC).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from rxfeed.protocols.iex import spec

# --- the reference unpacker, driven by the table -----------------------------

_INT_CODES = {(1, False): "B", (4, False): "I", (8, False): "Q", (8, True): "q"}


def struct_format(feed: spec.Feed, msg: spec.Message) -> str:
    """The ``struct`` format of a whole message, from its fields' kinds."""
    codes = []
    for f in msg.fields:
        kind = feed.kind(f)
        if kind.name == "alpha":
            codes.append(f"{f.size}s")
        elif kind.name == "char":
            codes.append("c")
        else:
            codes.append(_INT_CODES[(f.size, kind.signed)])
    return ("<" if feed.byte_order == "little" else ">") + "".join(codes)


def unpack(feed: spec.Feed, raw: bytes) -> dict[str, object]:
    """Decode one message: text fields as ``str`` (alpha without its right
    padding), numbers as wire integers. A longer message's known prefix is
    read (IEX may grow messages); a shorter one or an unknown type is refused."""
    msg = feed.by_type.get(chr(raw[0])) if raw else None
    if msg is None:
        raise ValueError(f"{feed.name}: unknown message type {raw[:1]!r}")
    if len(raw) < msg.length:
        raise ValueError(f"{feed.name}: {msg.name} needs {msg.length} bytes, got {len(raw)}")
    fmt = struct_format(feed, msg)
    assert struct.calcsize(fmt) == msg.length
    out: dict[str, object] = {}
    for f, v in zip(msg.fields, struct.unpack_from(fmt, raw)):
        if isinstance(v, bytes):
            v = v.decode("ascii")
            v = v.rstrip(" ") if f.kind == "alpha" else v
        out[f.name] = v
    return out


# --- golden messages, written from the spec tables ---------------------------

BYTE, INTEGER, LONG, PRICE, TIMESTAMP, EVENT_TIME, STRING = (
    "Byte", "Integer", "Long", "Price", "Timestamp", "Event Time", "String")
_PACK = {INTEGER: "<I", LONG: "<q", PRICE: "<q", TIMESTAMP: "<q", EVENT_TIME: "<I"}


@dataclass(frozen=True)
class F:
    """One row of a spec table, and the value sent.

    :param value: Byte: a one-character ``str`` (an ASCII code) or an ``int``;
        String: the text before padding; the rest: the integer on the wire.
    """

    spec_name: str
    attr: str
    offset: int
    length: int
    type: str
    value: object


@dataclass(frozen=True)
class Golden:
    """One message layout: its type byte, the spec's total length, the feeds that carry it."""

    type: str
    length: int
    feeds: tuple[str, ...]
    fields: tuple[F, ...]


def _pack(f: F) -> bytes:
    """One field in its wire form, with struct's little-endian codes."""
    if f.type == STRING:
        text = str(f.value).encode("ascii")
        assert len(text) <= f.length, f.spec_name
        return struct.pack(f"<{f.length}s", text.ljust(f.length, b" "))
    if f.type == BYTE:
        return struct.pack("<B", ord(f.value) if isinstance(f.value, str) else f.value)
    return struct.pack(_PACK[f.type], f.value)


def wire_bytes(g: Golden) -> bytes:
    """The message, built field by field at the spec's offsets."""
    out = b""
    for f in g.fields:
        assert f.offset == len(out), f"{g.type}: {f.spec_name} at {f.offset}, table gives {len(out)}"
        out += _pack(f)
        assert len(out) == f.offset + f.length, f.spec_name
    return out


def wanted(f: F) -> object:
    """What :func:`unpack` gives for a golden row."""
    return str(f.value).rstrip(" ") if f.type == STRING else f.value


ALL, TOPS_DEEP, DEEP_ONLY, PLUS_ONLY = ("TOPS", "DEEP", "DEEP+"), ("TOPS", "DEEP"), ("DEEP",), ("DEEP+",)
DEEPS = ("DEEP", "DEEP+")


def _mt(code: str) -> F:
    return F("Message Type", "message_type", 0, 1, BYTE, code)


def _ts(ns: int) -> F:
    return F("Timestamp", "timestamp", 2, 8, TIMESTAMP, ns)


def _sym(text: str) -> F:
    return F("Symbol", "symbol", 10, 8, STRING, text)


GOLDEN: tuple[Golden, ...] = (
    # Administrative Message Formats
    Golden("S", 10, ALL, (_mt("S"), F("System Event", "system_event", 1, 1, BYTE, "R"),
                          _ts(1_764_081_000_000_000_001))),
    Golden("D", 31, ALL, (
        _mt("D"), F("Flags", "flags", 1, 1, BYTE, 0xA0),  # test security, ETP
        _ts(1_764_064_800_000_000_003), _sym("ZIEXT"),
        F("Round Lot Size", "round_lot_size", 18, 4, INTEGER, 100),
        F("Adjusted POC Price", "adjusted_poc_price", 22, 8, PRICE, 1_234_500),  # $123.45
        F("LULD Tier", "luld_tier", 30, 1, BYTE, 2),
    )),
    Golden("H", 22, ALL, (
        _mt("H"), F("Trading Status", "trading_status", 1, 1, BYTE, "P"), _ts(1_764_081_600_123_456_789),
        _sym("IEXG"), F("Reason", "reason", 18, 4, STRING, "MCB2"),
    )),
    Golden("I", 18, ALL, (_mt("I"), F("Retail Liquidity Indicator", "retail_liquidity_indicator", 1, 1, BYTE, "C"),
                          _ts(1_764_081_601_000_000_007), _sym("BRK.A"))),
    Golden("O", 18, ALL, (_mt("O"), F("Operational Halt Status", "operational_halt_status", 1, 1, BYTE, "N"),
                          _ts(1_764_064_800_000_000_011), _sym("SPY"))),
    Golden("P", 19, ALL, (
        _mt("P"), F("Short Sale Price Test Status", "short_sale_price_test_status", 1, 1, BYTE, 1),
        _ts(1_764_082_000_000_000_013), _sym("QQQ"), F("Detail", "detail", 18, 1, BYTE, "C"),
    )),
    Golden("E", 18, DEEPS, (_mt("E"), F("Security Event", "security_event", 1, 1, BYTE, "C"),
                            _ts(1_764_104_400_000_000_017), _sym("AAPL"))),
    # Trading Message Formats
    Golden("Q", 42, ("TOPS",), (
        _mt("Q"), F("Flags", "flags", 1, 1, BYTE, 0xC0), _ts(1_764_081_000_250_000_019), _sym("MSFT"),
        F("Bid Size", "bid_size", 18, 4, INTEGER, 9_700),
        F("Bid Price", "bid_price", 22, 8, PRICE, 3_981_200),  # $398.12
        F("Ask Price", "ask_price", 30, 8, PRICE, 3_981_500),
        F("Ask Size", "ask_size", 38, 4, INTEGER, 1_250),
    )),
    Golden("8", 30, DEEP_ONLY, (
        _mt("8"), F("Event Flags", "event_flags", 1, 1, BYTE, 0x00), _ts(1_764_081_000_500_000_023), _sym("ZIEXT"),
        F("Size", "size", 18, 4, INTEGER, 300), F("Price", "price", 22, 8, PRICE, 990_500),
    )),
    Golden("5", 30, DEEP_ONLY, (
        _mt("5"), F("Event Flags", "event_flags", 1, 1, BYTE, 0x01), _ts(1_764_081_000_500_000_029), _sym("ZIEXT"),
        F("Size", "size", 18, 4, INTEGER, 0),  # a removed level
        F("Price", "price", 22, 8, PRICE, 991_000),
    )),
    # Trade Report (TOPS, DEEP) and DEEP+'s Trade Message: the same table
    Golden("T", 38, ALL, (
        _mt("T"), F("Sale Condition Flags", "sale_condition_flags", 1, 1, BYTE, 0x28),  # odd lot, single-price cross
        _ts(1_764_081_002_000_000_031), _sym("NVDA"),
        F("Size", "size", 18, 4, INTEGER, 37), F("Price", "price", 22, 8, PRICE, 1_450_100),
        F("Trade ID", "trade_id", 30, 8, LONG, 2_000_000_017),
    )),
    Golden("X", 26, TOPS_DEEP, (
        _mt("X"), F("Price Type", "price_type", 1, 1, BYTE, "M"), _ts(1_764_104_400_000_000_037), _sym("BRK.A"),
        F("Official Price", "official_price", 18, 8, PRICE, 7_000_001_200),  # $700,000.12: past 32 bits
    )),
    Golden("B", 38, ALL, (
        _mt("B"), F("Sale Condition Flags", "sale_condition_flags", 1, 1, BYTE, 0x90),  # ISO, trade through exempt
        _ts(1_764_081_003_000_000_041), _sym("NVDA"),
        F("Size", "size", 18, 4, INTEGER, 40), F("Price", "price", 22, 8, PRICE, 1_450_000),
        F("Trade ID", "trade_id", 30, 8, LONG, 2_000_000_016),
    )),
    # DEEP+ order-by-order messages
    Golden("a", 38, PLUS_ONLY, (
        _mt("a"), F("Side", "side", 1, 1, BYTE, "5"), _ts(1_764_081_004_000_000_043), _sym("AMD"),
        F("Order ID", "order_id", 18, 8, LONG, 429_974_000_123),
        F("Size", "size", 26, 4, INTEGER, 200), F("Price", "price", 30, 8, PRICE, 1_623_400),
    )),
    Golden("M", 38, PLUS_ONLY, (
        _mt("M"), F("Modify Flags", "modify_flags", 1, 1, BYTE, 0x01),  # maintain priority
        _ts(1_764_081_005_000_000_047), _sym("AMD"),
        F("Order ID Reference", "order_id_reference", 18, 8, LONG, 429_974_000_123),
        F("Size", "size", 26, 4, INTEGER, 150), F("Price", "price", 30, 8, PRICE, 1_623_300),
    )),
    Golden("R", 26, PLUS_ONLY, (
        _mt("R"), F("Reserved", "reserved", 1, 1, BYTE, 0), _ts(1_764_081_006_000_000_053), _sym("AMD"),
        F("Order ID Reference", "order_id_reference", 18, 8, LONG, 429_974_000_124),
    )),
    Golden("L", 46, PLUS_ONLY, (
        _mt("L"), F("Sale Condition Flags", "sale_condition_flags", 1, 1, BYTE, 0x40),  # extended hours
        _ts(1_764_081_007_000_000_059), _sym("AMD"),
        F("Order ID Reference", "order_id_reference", 18, 8, LONG, 429_974_000_125),
        F("Size", "size", 26, 4, INTEGER, 75), F("Price", "price", 30, 8, PRICE, 1_623_500),
        F("Trade ID", "trade_id", 38, 8, LONG, 3_000_000_001),
    )),
    Golden("C", 18, PLUS_ONLY, (_mt("C"), F("Reserved", "reserved", 1, 1, BYTE, 0),
                                _ts(1_764_081_008_000_000_061), _sym("AMD"))),
    # Auction Message Formats
    Golden("A", 80, TOPS_DEEP, (
        _mt("A"), F("Auction Type", "auction_type", 1, 1, BYTE, "H"), _ts(1_764_082_500_000_000_067), _sym("ZXIET"),
        F("Paired Shares", "paired_shares", 18, 4, INTEGER, 250_000),
        F("Reference Price", "reference_price", 22, 8, PRICE, 1_005_000),
        F("Indicative Clearing Price", "indicative_clearing_price", 30, 8, PRICE, 1_010_000),
        F("Imbalance Shares", "imbalance_shares", 38, 4, INTEGER, 12_345),
        F("Imbalance Side", "imbalance_side", 42, 1, BYTE, "S"),
        F("Extension Number", "extension_number", 43, 1, BYTE, 3),
        F("Scheduled Auction Time", "scheduled_auction_time", 44, 4, EVENT_TIME, 1_764_082_800),
        F("Auction Book Clearing Price", "auction_book_clearing_price", 48, 8, PRICE, 1_012_500),
        F("Collar Reference Price", "collar_reference_price", 56, 8, PRICE, 1_000_000),
        F("Lower Auction Collar", "lower_auction_collar", 64, 8, PRICE, 900_000),
        F("Upper Auction Collar", "upper_auction_collar", 72, 8, PRICE, 1_100_000),
    )),
)

#: (feed name, type) of every golden message.
GOLDEN_CASES = [(feed, g.type) for g in GOLDEN for feed in g.feeds]
GOLDEN_BY = {(feed, g.type): g for g in GOLDEN for feed in g.feeds}

#: Every feed's types and lengths, from the spec documents' tables of contents
#: and "Total Message Data length" lines.
SPEC_LENGTHS = {
    "TOPS": {"S": 10, "D": 31, "H": 22, "I": 18, "O": 18, "P": 19, "Q": 42, "T": 38, "X": 26, "B": 38, "A": 80},
    "DEEP": {"S": 10, "D": 31, "H": 22, "I": 18, "O": 18, "P": 19, "E": 18, "8": 30, "5": 30, "T": 38, "X": 26,
             "B": 38, "A": 80},
    "DEEP+": {"S": 10, "D": 31, "H": 22, "I": 18, "O": 18, "P": 19, "E": 18, "a": 38, "M": 38, "R": 26, "L": 46,
              "T": 38, "B": 38, "C": 18},
}

# --- the spec's own examples ---------------------------------------------------


def _ns(reading: str, utc_offset_hours: int) -> int:
    """A comment's clock reading ("2016-08-23 15:30:32.572715948") in ns since the epoch."""
    whole, _, frac = reading.partition(".")
    tz = timezone(timedelta(hours=utc_offset_hours))
    seconds = int(datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz).timestamp())
    return seconds * 1_000_000_000 + int(frac.ljust(9, "0"))


def _px(dollars: str) -> int:
    """A comment's price ("$99.05") as the wire's fixed point, 4 decimals."""
    return int(Decimal(dollars.lstrip("$").replace(",", "")) * 10_000)


EDT, AS_UTC = -4, 0
ZIEXT = "5a 49 45 58 54 20 20 20"
P9905 = "24 1d 0f 00 00 00 00 00"
TS_2016_A = ("ac 63 c0 20 96 86 6d 14", _ns("2016-08-23 15:30:32.572715948", EDT))
TS_2016_B = ("b2 8f a5 a0 ab 86 6d 14", _ns("2016-08-23 15:32:04.912754610", EDT))
TS_0930 = ("00 f0 30 2a 5b 25 b6 14", _ns("2017-04-17 09:30:00.000000000", AS_UTC))

#: (feeds, type, hex as printed field by field, values from the comments)
EXAMPLES: tuple[tuple[tuple[str, ...], str, tuple[str, ...], dict[str, object]], ...] = (
    (ALL, "S", ("53", "45", "00 a0 99 97 e9 3d b6 14"),
     {"system_event": "E", "timestamp": _ns("2017-04-17 17:00:00.000000000", AS_UTC)}),
    (ALL, "D", ("44", "80", "00 20 89 7b 5a 1f b6 14", ZIEXT, "64 00 00 00", P9905, "01"),
     {"flags": 0x80, "timestamp": _ns("2017-04-17 07:40:00.000000000", AS_UTC), "symbol": "ZIEXT",
      "round_lot_size": 100, "adjusted_poc_price": _px("$99.05"), "luld_tier": 1}),
    (ALL, "H", ("48", "48", TS_2016_A[0], ZIEXT, "54 31 20 20"),
     {"trading_status": "H", "timestamp": TS_2016_A[1], "symbol": "ZIEXT", "reason": "T1"}),
    (ALL, "I", ("49", "41", TS_2016_A[0], ZIEXT),
     {"retail_liquidity_indicator": "A", "timestamp": TS_2016_A[1], "symbol": "ZIEXT"}),
    (ALL, "O", ("4f", "4f", TS_2016_A[0], ZIEXT),
     {"operational_halt_status": "O", "timestamp": TS_2016_A[1], "symbol": "ZIEXT"}),
    (ALL, "P", ("50", "01", TS_2016_A[0], ZIEXT, "41"),
     {"short_sale_price_test_status": 1, "timestamp": TS_2016_A[1], "symbol": "ZIEXT", "detail": "A"}),
    (DEEPS, "E", ("45", "4f", TS_0930[0], ZIEXT), {"security_event": "O", "timestamp": TS_0930[1], "symbol": "ZIEXT"}),
    (("TOPS",), "Q", ("51", "00", TS_2016_A[0], ZIEXT, "e4 25 00 00", P9905, "ec 1d 0f 00 00 00 00 00", "e8 03 00 00"),
     {"flags": 0, "timestamp": TS_2016_A[1], "symbol": "ZIEXT", "bid_size": 9_700, "bid_price": _px("$99.05"),
      "ask_price": _px("$99.07"), "ask_size": 1_000}),
    (DEEP_ONLY, "8", ("38", "01", TS_2016_A[0], ZIEXT, "e4 25 00 00", P9905),
     {"event_flags": 1, "timestamp": TS_2016_A[1], "symbol": "ZIEXT", "size": 9_700, "price": _px("$99.05")}),
    (TOPS_DEEP, "T", ("54", "00", "c3 df f7 05 a2 86 6d 14", ZIEXT, "64 00 00 00", P9905, "96 8f 06 00 00 00 00 00"),
     {"sale_condition_flags": 0, "timestamp": _ns("2016-08-23 15:31:23.662974915", EDT), "symbol": "ZIEXT",
      "size": 100, "price": _px("$99.05"), "trade_id": 429_974}),
    (PLUS_ONLY, "T", ("54", "00", TS_2016_B[0], ZIEXT, "64 00 00 00", P9905, "96 8f 02 00 00 00 00 00"),
     {"sale_condition_flags": 0, "timestamp": TS_2016_B[1], "symbol": "ZIEXT", "size": 100,
      "price": _px("$99.05"), "trade_id": 167_830}),
    (TOPS_DEEP, "X", ("58", "51", TS_0930[0], ZIEXT, P9905),
     {"price_type": "Q", "timestamp": TS_0930[1], "symbol": "ZIEXT", "official_price": _px("$99.05")}),
    (ALL, "B", ("42", "00", TS_2016_B[0], ZIEXT, "64 00 00 00", P9905, "96 8f 06 00 00 00 00 00"),
     {"sale_condition_flags": 0, "timestamp": TS_2016_B[1], "symbol": "ZIEXT", "size": 100,
      "price": _px("$99.05"), "trade_id": 429_974}),
    (("TOPS",), "A", ("41", "43", "dd c7 f0 9a 1a 3a b6 14", ZIEXT, "a0 86 01 00", P9905, "18 1f 0f 00 00 00 00 00",
                      "10 27 00 00", "42", "00", "80 e6 f4 58", "0c 21 0f 00 00 00 00 00", "c0 1c 0f 00 00 00 00 00",
                      "a4 99 0d 00 00 00 00 00", "dc 9f 10 00 00 00 00 00"),
     {"auction_type": "C", "timestamp": _ns("2017-04-17 15:50:12.462929885", AS_UTC), "symbol": "ZIEXT",
      "paired_shares": 100_000, "reference_price": _px("$99.05"), "indicative_clearing_price": _px("$99.10"),
      "imbalance_shares": 10_000, "imbalance_side": "B", "extension_number": 0,
      "scheduled_auction_time": _ns("2017-04-17 16:00:00", AS_UTC) // 1_000_000_000,
      "auction_book_clearing_price": _px("$99.15"), "collar_reference_price": _px("$99.04"),
      "lower_auction_collar": _px("$89.13"), "upper_auction_collar": _px("$108.95")}),
    (PLUS_ONLY, "a", ("61", "38", TS_2016_B[0], ZIEXT, "96 8f 06 00 00 00 00 00", "64 00 00 00", P9905),
     {"side": "8", "timestamp": TS_2016_B[1], "symbol": "ZIEXT", "order_id": 429_974, "size": 100,
      "price": _px("$99.05")}),
    (PLUS_ONLY, "M", ("4D", "00", TS_2016_B[0], ZIEXT, "96 8f 06 00 00 00 00 00", "64 00 00 00", P9905),
     {"modify_flags": 0, "timestamp": TS_2016_B[1], "symbol": "ZIEXT", "order_id_reference": 429_974, "size": 100,
      "price": _px("$99.05")}),
    (PLUS_ONLY, "R", ("52", "00", TS_2016_B[0], ZIEXT, "96 8f 06 00 00 00 00 00"),
     {"reserved": 0, "timestamp": TS_2016_B[1], "symbol": "ZIEXT", "order_id_reference": 429_974}),
    (PLUS_ONLY, "L", ("4C", "00", TS_2016_B[0], ZIEXT, "96 8f 06 00 00 00 00 00", "64 00 00 00", P9905,
                      "96 8f 02 00 00 00 00 00"),
     {"sale_condition_flags": 0, "timestamp": TS_2016_B[1], "symbol": "ZIEXT", "order_id_reference": 429_974,
      "size": 100, "price": _px("$99.05"), "trade_id": 167_830}),
    (PLUS_ONLY, "C", ("43", "00", TS_2016_B[0], ZIEXT), {"reserved": 0, "timestamp": TS_2016_B[1], "symbol": "ZIEXT"}),
)

EXAMPLE_CASES = [(feed, i) for i, (feeds, *_rest) in enumerate(EXAMPLES) for feed in feeds]


# --- the table, in itself --------------------------------------------------------

@pytest.mark.parametrize("feed", list(SPEC_LENGTHS))
def test_every_type_of_each_spec_is_in_its_table(feed):
    f = spec.FEEDS[feed]
    assert {m.type: m.length for m in f.messages} == SPEC_LENGTHS[feed]
    assert len(f.types) == len(set(f.types)) == len(f.messages)


def test_feed_identity_and_byte_order():
    assert [(f.name, f.version, f.message_protocol_id, f.byte_order) for f in spec.FEEDS.values()] == [
        ("TOPS", "1.6", 0x8003, "little"), ("DEEP", "1.0", 0x8004, "little"), ("DEEP+", "1.0", 0x8005, "little")]


@pytest.mark.parametrize("feed", list(SPEC_LENGTHS))
def test_offsets_are_contiguous_and_sizes_sum_to_the_length(feed):
    for m in spec.FEEDS[feed].messages:
        ends = [0] + [f.offset + f.size for f in m.fields]
        assert [f.offset for f in m.fields] == ends[:-1], m.name
        assert sum(f.size for f in m.fields) == ends[-1] == m.length, m.name
        assert struct.calcsize(struct_format(spec.FEEDS[feed], m)) == m.length
        assert len({f.name for f in m.fields}) == len(m.fields)


@pytest.mark.parametrize("feed", list(SPEC_LENGTHS))
def test_every_message_shares_the_spec_prefix(feed):
    """Message Type at 0, a Byte at 1, Timestamp at 2; Symbol at 10 except in System Event."""
    for m in spec.FEEDS[feed].messages:
        mtype, byte, ts = m.fields[:3]
        assert (mtype.offset, mtype.size, mtype.kind, mtype.values[0][0]) == (0, 1, "char", m.type)
        assert (byte.offset, byte.size) == (1, 1)
        assert (ts.name, ts.offset, ts.size, ts.kind) == ("timestamp", 2, 8, "timestamp")
        if m.type != "S":
            sym = m.fields[3]
            assert (sym.name, sym.offset, sym.size, sym.kind) == ("symbol", 10, 8, "alpha")


def test_kinds_are_the_spec_data_types():
    k = spec.KINDS
    assert (k["price"].size, k["price"].signed, k["price"].decimals, k["price"].spec_type) == (8, True, 4, "Price")
    assert (k["timestamp"].size, k["timestamp"].signed) == (8, True)
    assert k["timestamp"].unit == "ns since the POSIX epoch, UTC"
    assert (k["event_time"].size, k["event_time"].signed) == (4, False)
    assert (k["i64"].size, k["i64"].signed, k["u32"].size, k["u32"].signed) == (8, True, 4, False)
    assert {k[n].spec_type for n in ("char", "u8", "flags")} == {"Byte"}
    for feed in spec.FEEDS.values():
        for m in feed.messages:
            for f in m.fields:
                assert feed.kind(f) is k[f.kind]


def test_documented_values_fit_their_fields():
    for feed in spec.FEEDS.values():
        for m in feed.messages:
            for f in m.fields:
                codes = [c for c, _ in f.values]
                assert len(codes) == len(set(codes)), (m.name, f.name)
                for c in codes:
                    if f.kind == "char":
                        assert isinstance(c, str) and len(c) == 1
                    elif f.kind == "alpha":
                        assert isinstance(c, str) and len(c) <= f.size
                    elif f.kind == "flags":
                        assert isinstance(c, int) and bin(c).count("1") == 1 and c < 256
                    else:
                        assert f.kind == "u8" and isinstance(c, int) and 0 <= c < 256


def test_types_belong_to_their_feeds_only():
    tops, deep, plus = (set(spec.FEEDS[n].types) for n in ("TOPS", "DEEP", "DEEP+"))
    assert tops & deep & plus == set("SDHIOPTB")
    assert tops - deep - plus == {"Q"} and deep - tops - plus == {"8", "5"} and plus - tops - deep == set("aMRLC")
    assert (tops & deep) - plus == {"X", "A"} and (deep & plus) - tops == {"E"}
    assert spec.DEEP_PLUS.by_type["T"].name == "Trade" and spec.DEEP.by_type["T"].name == "TradeReport"


def test_a_table_that_disagrees_with_itself_is_refused():
    mt = spec.Field(0, 1, "char", "message_type", "Message Type")
    with pytest.raises(ValueError, match="offset 3"):
        spec.Message("Z", "Bad", "Bad", "trading", 11, (mt, spec.Field(3, 8, "i64", "x", "X")))
    with pytest.raises(ValueError, match="spec says 12"):
        spec.Message("Z", "Bad", "Bad", "trading", 12, (mt, spec.Field(1, 8, "i64", "x", "X")))
    with pytest.raises(ValueError, match="not 4 bytes"):
        spec.Field(1, 4, "price", "p", "Price")
    with pytest.raises(ValueError, match="repeats a message type"):
        spec.Feed("X", "1", 1, "doc", (spec.SYSTEM_EVENT, spec.SYSTEM_EVENT))


# --- golden bytes ------------------------------------------------------------------

def test_golden_covers_every_type_of_every_feed():
    assert {feed: {t for f, t in GOLDEN_CASES if f == feed} for feed in SPEC_LENGTHS} == {
        feed: set(lengths) for feed, lengths in SPEC_LENGTHS.items()}
    examples = {(feed, EXAMPLES[i][1]) for feed, i in EXAMPLE_CASES}
    # DEEP prints no sell-side Price Level Update example; its Auction Information one is misprinted (below)
    assert examples < set(GOLDEN_CASES) and set(GOLDEN_CASES) - examples == {("DEEP", "5"), ("DEEP", "A")}


def test_values_are_distinct_within_each_message():
    """A swap of two equal-size fields can only pass if their values are equal."""
    for g in GOLDEN:
        by_size: dict[tuple[bool, int], list[object]] = {}
        for f in g.fields:
            value = ord(f.value) if f.type == BYTE and isinstance(f.value, str) else f.value
            by_size.setdefault((f.type == STRING, f.length), []).append(value)
        for values in by_size.values():
            assert len(values) == len(set(values)), (g.type, values)


@pytest.mark.parametrize("feed,t", GOLDEN_CASES)
def test_table_rows_are_the_spec_rows(feed, t):
    """spec.py against the second transcription: names, offsets, lengths, data types."""
    g, m = GOLDEN_BY[(feed, t)], spec.FEEDS[feed].by_type[t]
    assert m.length == g.length == len(wire_bytes(g))
    assert [(f.spec_name, f.name, f.offset, f.size) for f in m.fields] == [
        (f.spec_name, f.attr, f.offset, f.length) for f in g.fields]
    assert [spec.KINDS[f.kind].spec_type for f in m.fields] == [f.type for f in g.fields]


@pytest.mark.parametrize("feed,t", GOLDEN_CASES)
def test_golden_bytes_decode_field_by_field(feed, t):
    g = GOLDEN_BY[(feed, t)]
    got = unpack(spec.FEEDS[feed], wire_bytes(g))
    assert list(got) == [f.attr for f in g.fields]
    for f in g.fields:
        assert got[f.attr] == wanted(f), (feed, t, f.spec_name)


@pytest.mark.parametrize("feed,i", EXAMPLE_CASES)
def test_spec_examples_decode_to_their_comments(feed, i):
    _feeds, t, hex_fields, values = EXAMPLES[i]
    raw = bytes.fromhex(" ".join(hex_fields))
    msg = spec.FEEDS[feed].by_type[t]
    assert len(raw) == msg.length
    assert [len(bytes.fromhex(h)) for h in hex_fields] == [f.size for f in msg.fields]
    assert unpack(spec.FEEDS[feed], raw) == {"message_type": t, **values}


def test_deep_auction_example_misprints_paired_shares():
    """DEEP 1.08 prints 'a0 86 10 00 // 100,000 shares' (TOPS 1.66: 'a0 86 01 00')."""
    tops_example = next(e for e in EXAMPLES if e[1] == "A")[2]
    deep_example = (tops_example[:4] + ("a0 86 10 00",) + tops_example[5:])
    got = unpack(spec.DEEP, bytes.fromhex(" ".join(deep_example)))
    assert got["paired_shares"] == 1_083_040 != 100_000
    assert {k: v for k, v in got.items() if k != "paired_shares"} == {
        k: v for k, v in unpack(spec.TOPS, bytes.fromhex(" ".join(tops_example))).items() if k != "paired_shares"}


def test_prices_and_order_ids_are_signed():
    raw = bytes.fromhex("51 00" + "00" * 8 + ZIEXT.replace(" ", "") + "01000000" + "ff" * 8 + "feffffffffffffff"
                        + "02000000")
    got = unpack(spec.TOPS, raw)
    assert (got["bid_price"], got["ask_price"]) == (-1, -2)
    assert unpack(spec.DEEP_PLUS, b"R\x00" + bytes(8) + b"ABC     " + b"\xff" * 8)["order_id_reference"] == -1


@pytest.mark.parametrize("feed,t", GOLDEN_CASES)
def test_a_grown_message_keeps_its_known_fields(feed, t):
    """IEX may append fields: the known prefix decodes the same; a short message is refused."""
    raw = wire_bytes(GOLDEN_BY[(feed, t)])
    assert unpack(spec.FEEDS[feed], raw + b"\x01\x02\x03") == unpack(spec.FEEDS[feed], raw)
    with pytest.raises(ValueError, match="needs"):
        unpack(spec.FEEDS[feed], raw[:-1])


def test_other_feeds_types_are_unknown():
    with pytest.raises(ValueError, match="unknown message type"):
        unpack(spec.DEEP, wire_bytes(GOLDEN_BY[("TOPS", "Q")]))
    with pytest.raises(ValueError, match="unknown message type"):
        unpack(spec.TOPS, wire_bytes(GOLDEN_BY[("DEEP+", "a")]))
    with pytest.raises(ValueError, match="unknown message type"):
        unpack(spec.DEEP_PLUS, wire_bytes(GOLDEN_BY[("DEEP", "8")]))
