"""Golden bytes for all 23 TotalView-ITCH 5.0 message types, written by hand
from NASDAQ's published specification, not from ``spec.py``.

Source of the layouts: *Nasdaq TotalView-ITCH 5.0* (NQTVITCHSpecification.pdf
on nasdaqtrader.com, the revision whose change log ends with April 28, 2023:
"Introduction of Direct Listing with Capital Raise Message"), section
"Message Formats" (1.1 to 1.8): the Name/Offset/Length/Value table of each
message; section "Data Types": integers big-endian unsigned, alpha fields
left-justified and padded on the right with spaces, Price(4)/Price(8)
integers with 4/8 implied decimals, timestamps nanoseconds since midnight in
6 bytes. The tables were read in a public text transcription of that
document, and every offset and length was checked against a second,
independent one (the Open Markets Initiative's "Nasdaq NsmEquities TotalView
Itch 5.0.2026" Wireshark dissector, generated from NQTVITCHSpecification.pdf
of February 19, 2026): the two agree on every field of all 23 messages, and
rxfeed's ``spec.py`` agrees with both (only spelling differs: the PDF's
"Canceled"/"Cancelled Shares", H's "Reason", Q's "Shares").

Each message is packed field by field with ``struct.pack('>...')`` at the
spec's offsets; the builder refuses a table whose offsets do not follow each
other, and the message length must be the spec's (offset + length of the last
field). Values are distinct per field, so two fields of one size swapped in
rxfeed's table (e.g. J's upper/lower collar) change what is decoded. Where a
field's allowed codes would repeat another one-byte field's value in the same
message, a letter outside the allowed set is used; the decoder does not
validate codes.

Checked: the Python callback path and the numpy batch path of the decoder,
MoldUDP64 datagrams end to end through a hand-built pcap, and NASDAQ's file
framing (2-byte length prefix) through the nasdaq_file backend.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50 import Itch50Decoder

from .conftest import ListBackend, mold

ALPHA, INT, PRICE4, PRICE8 = "alpha", "int", "price4", "price8"


@dataclass(frozen=True)
class F:
    """One row of a spec table: name, offset, length, type, the value sent.

    :param spec_name: the field's name in NASDAQ's table.
    :param attr: rxfeed's name for it (message attribute, dtype field).
    :param value: alpha: the text before padding; numbers: the integer on the wire.
    """

    spec_name: str
    attr: str
    offset: int
    length: int
    kind: str
    value: object


@dataclass(frozen=True)
class Golden:
    """One message: its type, the spec's total length, every field after the header."""

    type: str
    length: int
    locate: int
    tracking: int
    timestamp: int
    fields: tuple[F, ...]

    def header(self) -> tuple[F, ...]:
        """Message Type (0,1), Stock Locate (1,2), Tracking Number (3,2), Timestamp (5,6): every message."""
        return (F("Message Type", "type", 0, 1, ALPHA, self.type),
                F("Stock Locate", "stock_locate", 1, 2, INT, self.locate),
                F("Tracking Number", "tracking_number", 3, 2, INT, self.tracking),
                F("Timestamp", "timestamp", 5, 6, INT, self.timestamp))

    def all_fields(self) -> tuple[F, ...]:
        return self.header() + self.fields


def _pack(f: F) -> bytes:
    """One field in its wire form, with struct's big-endian codes."""
    if f.kind == ALPHA:
        text = str(f.value).encode("ascii")
        assert len(text) <= f.length, f.spec_name
        return struct.pack(f">{f.length}s", text.ljust(f.length, b" "))
    if f.length == 6:  # 48-bit timestamp: high 16 bits, low 32 bits
        v = int(f.value)  # type: ignore[call-overload]
        assert v < 1 << 48
        return struct.pack(">HI", v >> 32, v & 0xFFFFFFFF)
    return struct.pack(">" + {1: "B", 2: "H", 4: "I", 8: "Q"}[f.length], f.value)


def wire_bytes(g: Golden) -> bytes:
    """The message, built field by field at the spec's offsets."""
    out = b""
    for f in g.all_fields():
        assert f.offset == len(out), f"{g.type}: {f.spec_name} at {f.offset}, table gives {len(out)}"
        out += _pack(f)
        assert len(out) == f.offset + f.length
    return out


def decoded_value(f: F) -> object:
    """What rxfeed's Python messages hold: alpha without right padding (a
    one-byte alpha as is), integers and prices as wire integers."""
    if f.kind == ALPHA:
        return str(f.value) if f.length == 1 else str(f.value).rstrip(" ")
    return f.value


def batch_value(f: F) -> object:
    """What a numpy record holds: alpha as the padded wire bytes."""
    if f.kind == ALPHA:
        return str(f.value).encode("ascii").ljust(f.length, b" ")
    return f.value


GOLDEN: tuple[Golden, ...] = (
    # 1.1 System Event Message
    Golden("S", 12, 0, 0x0102, 10_800_000_000_007, (
        F("Event Code", "event_code", 11, 1, ALPHA, "Q"),
    )),
    # 1.2.1 Stock Directory
    Golden("R", 39, 0x0A0B, 0x0203, 11_000_000_000_011, (
        F("Stock", "stock", 11, 8, ALPHA, "ZVZZT"),
        F("Market Category", "market_category", 19, 1, ALPHA, "G"),
        F("Financial Status Indicator", "financial_status_indicator", 20, 1, ALPHA, "D"),
        F("Round Lot Size", "round_lot_size", 21, 4, INT, 100),
        F("Round Lots Only", "round_lots_only", 25, 1, ALPHA, "Y"),
        F("Issue Classification", "issue_classification", 26, 1, ALPHA, "C"),
        F("Issue Sub-Type", "issue_sub_type", 27, 2, ALPHA, "EN"),
        F("Authenticity", "authenticity", 29, 1, ALPHA, "P"),
        F("Short Sale Threshold Indicator", "short_sale_threshold_indicator", 30, 1, ALPHA, "N"),
        F("IPO Flag", "ipo_flag", 31, 1, ALPHA, " "),
        F("LULD Reference Price Tier", "luld_reference_price_tier", 32, 1, ALPHA, "1"),
        F("ETP Flag", "etp_flag", 33, 1, ALPHA, "E"),  # Y/N/space taken above
        F("ETP Leverage Factor", "etp_leverage_factor", 34, 4, INT, 3),
        F("Inverse Indicator", "inverse_indicator", 38, 1, ALPHA, "I"),  # Y/N taken above
    )),
    # 1.2.2 Stock Trading Action
    Golden("H", 25, 0x0C0D, 0x0304, 12_000_000_000_013, (
        F("Stock", "stock", 11, 8, ALPHA, "AAPL"),
        F("Trading State", "trading_state", 19, 1, ALPHA, "P"),
        F("Reserved", "reserved", 20, 1, ALPHA, "X"),
        F("Reason", "reason", 21, 4, ALPHA, "T12"),
    )),
    # 1.2.3 Reg SHO Short Sale Price Test Restricted Indicator
    Golden("Y", 20, 0x0E0F, 0x0405, 13_000_000_000_017, (
        F("Stock", "stock", 11, 8, ALPHA, "QQQ"),
        F("Reg SHO Action", "reg_sho_action", 19, 1, ALPHA, "1"),
    )),
    # 1.2.4 Market Participant Position
    Golden("L", 26, 0x1011, 0x0506, 14_000_000_000_019, (
        F("MPID", "mpid", 11, 4, ALPHA, "GSCO"),
        F("Stock", "stock", 15, 8, ALPHA, "MSFT"),
        F("Primary Market Maker", "primary_market_maker", 23, 1, ALPHA, "Y"),
        F("Market Maker Mode", "market_maker_mode", 24, 1, ALPHA, "S"),
        F("Market Participant State", "market_participant_state", 25, 1, ALPHA, "A"),
    )),
    # 1.2.5.1 MWCB Decline Level Message (Price(8))
    Golden("V", 35, 0, 0x0607, 15_000_000_000_023, (
        F("Level 1", "level_1", 11, 8, PRICE8, 388_012_000_000),  # 3,880.12
        F("Level 2", "level_2", 19, 8, PRICE8, 360_934_500_000),  # 3,609.345
        F("Level 3", "level_3", 27, 8, PRICE8, 321_819_870_000),  # 3,218.1987
    )),
    # 1.2.5.2 MWCB Status Message
    Golden("W", 12, 0, 0x0708, 16_000_000_000_029, (
        F("Breached Level", "breached_level", 11, 1, ALPHA, "2"),
    )),
    # 1.2.6 IPO Quoting Period Update
    Golden("K", 28, 0x1213, 0x0809, 17_000_000_000_031, (
        F("Stock", "stock", 11, 8, ALPHA, "NEWCOIPO"),
        F("IPO Quotation Release Time", "ipo_quotation_release_time", 19, 4, INT, 41_400),  # 11:30:00
        F("IPO Quotation Release Qualifier", "ipo_quotation_release_qualifier", 23, 1, ALPHA, "A"),
        F("IPO Price", "ipo_price", 24, 4, PRICE4, 250_000),  # 25.0000
    )),
    # 1.2.7 LULD Auction Collar
    Golden("J", 35, 0x1415, 0x090A, 18_000_000_000_037, (
        F("Stock", "stock", 11, 8, ALPHA, "ZJZZT"),
        F("Auction Collar Reference Price", "auction_collar_reference_price", 19, 4, PRICE4, 1_500_000),
        F("Upper Auction Collar Price", "upper_auction_collar_price", 23, 4, PRICE4, 1_650_000),
        F("Lower Auction Collar Price", "lower_auction_collar_price", 27, 4, PRICE4, 1_350_000),
        F("Auction Collar Extension", "auction_collar_extension", 31, 4, INT, 2),
    )),
    # 1.2.8 Operational Halt
    Golden("h", 21, 0x1617, 0x0A0B, 19_000_000_000_041, (
        F("Stock", "stock", 11, 8, ALPHA, "ZBZZT"),
        F("Market Code", "market_code", 19, 1, ALPHA, "B"),
        F("Operational Halt Action", "operational_halt_action", 20, 1, ALPHA, "H"),
    )),
    # 1.3.1 Add Order - No MPID Attribution
    Golden("A", 36, 0x1819, 0x0B0C, 34_200_000_000_043, (
        F("Order Reference Number", "order_reference_number", 11, 8, INT, 0x0102030405060708),
        F("Buy/Sell Indicator", "buy_sell_indicator", 19, 1, ALPHA, "S"),
        F("Shares", "shares", 20, 4, INT, 500),
        F("Stock", "stock", 24, 8, ALPHA, "AAPL"),
        F("Price", "price", 32, 4, PRICE4, 1_753_900),  # 175.39
    )),
    # 1.3.2 Add Order with MPID Attribution
    Golden("F", 40, 0x1A1B, 0x0C0D, 34_200_000_000_047, (
        F("Order Reference Number", "order_reference_number", 11, 8, INT, 987_654_321_012),
        F("Buy/Sell Indicator", "buy_sell_indicator", 19, 1, ALPHA, "B"),
        F("Shares", "shares", 20, 4, INT, 300),
        F("Stock", "stock", 24, 8, ALPHA, "BRK.B"),
        F("Price", "price", 32, 4, PRICE4, 4_012_300),
        F("Attribution", "attribution", 36, 4, ALPHA, "NITE"),
    )),
    # 1.4.1 Order Executed Message
    Golden("E", 31, 0x1C1D, 0x0D0E, 34_200_000_000_053, (
        F("Order Reference Number", "order_reference_number", 11, 8, INT, 555_555_000_001),
        F("Executed Shares", "executed_shares", 19, 4, INT, 75),
        F("Match Number", "match_number", 23, 8, INT, 4_000_000_017),
    )),
    # 1.4.2 Order Executed With Price Message
    Golden("C", 36, 0x1E1F, 0x0E0F, 34_200_000_000_059, (
        F("Order Reference Number", "order_reference_number", 11, 8, INT, 555_555_000_002),
        F("Executed Shares", "executed_shares", 19, 4, INT, 40),
        F("Match Number", "match_number", 23, 8, INT, 4_000_000_018),
        F("Printable", "printable", 31, 1, ALPHA, "Y"),
        F("Execution Price", "execution_price", 32, 4, PRICE4, 1_753_800),
    )),
    # 1.4.3 Order Cancel Message
    Golden("X", 23, 0x2021, 0x0F10, 34_200_000_000_061, (
        F("Order Reference Number", "order_reference_number", 11, 8, INT, 555_555_000_003),
        F("Cancelled Shares", "cancelled_shares", 19, 4, INT, 125),
    )),
    # 1.4.4 Order Delete Message
    Golden("D", 19, 0x2223, 0x1011, 34_200_000_000_067, (
        F("Order Reference Number", "order_reference_number", 11, 8, INT, 555_555_000_004),
    )),
    # 1.4.5 Order Replace Message
    Golden("U", 35, 0x2425, 0x1112, 34_200_000_000_071, (
        F("Original Order Reference Number", "original_order_reference_number", 11, 8, INT, 1_000_000_001),
        F("New Order Reference Number", "new_order_reference_number", 19, 8, INT, 1_000_000_002),
        F("Shares", "shares", 27, 4, INT, 900),
        F("Price", "price", 31, 4, PRICE4, 995_000),
    )),
    # 1.5.1 Trade Message (Non-Cross); NASDAQ sends order reference 0, a
    # non-zero value here pins the field's place
    Golden("P", 44, 0x2627, 0x1213, 34_200_000_000_073, (
        F("Order Reference Number", "order_reference_number", 11, 8, INT, 7),
        F("Buy/Sell Indicator", "buy_sell_indicator", 19, 1, ALPHA, "B"),
        F("Shares", "shares", 20, 4, INT, 200),
        F("Stock", "stock", 24, 8, ALPHA, "NVDA"),
        F("Price", "price", 32, 4, PRICE4, 4_500_100),
        F("Match Number", "match_number", 36, 8, INT, 4_000_000_019),
    )),
    # 1.5.2 Cross Trade Message (Shares is 8 bytes here)
    Golden("Q", 40, 0x2829, 0x1314, 34_200_000_000_079, (
        F("Shares", "shares", 11, 8, INT, 1_234_567),
        F("Stock", "stock", 19, 8, ALPHA, "SPY"),
        F("Cross Price", "cross_price", 27, 4, PRICE4, 4_300_000),
        F("Match Number", "match_number", 31, 8, INT, 4_000_000_020),
        F("Cross Type", "cross_type", 39, 1, ALPHA, "C"),
    )),
    # 1.5.3 Broken Trade / Order Execution Message
    Golden("B", 19, 0x2A2B, 0x1415, 34_200_000_000_083, (
        F("Match Number", "match_number", 11, 8, INT, 4_000_000_021),
    )),
    # 1.6 Net Order Imbalance Indicator (NOII) Message
    Golden("I", 50, 0x2C2D, 0x1516, 34_200_000_000_089, (
        F("Paired Shares", "paired_shares", 11, 8, INT, 2_000_000),
        F("Imbalance Shares", "imbalance_shares", 19, 8, INT, 350_000),
        F("Imbalance Direction", "imbalance_direction", 27, 1, ALPHA, "B"),
        F("Stock", "stock", 28, 8, ALPHA, "AMZN"),
        F("Far Price", "far_price", 36, 4, PRICE4, 1_300_000),
        F("Near Price", "near_price", 40, 4, PRICE4, 1_310_000),
        F("Current Reference Price", "current_reference_price", 44, 4, PRICE4, 1_305_000),
        F("Cross Type", "cross_type", 48, 1, ALPHA, "O"),
        F("Price Variation Indicator", "price_variation_indicator", 49, 1, ALPHA, "1"),
    )),
    # 1.7 Retail Price Improvement Indicator (RPII)
    Golden("N", 20, 0x2E2F, 0x1617, 34_200_000_000_097, (
        F("Stock", "stock", 11, 8, ALPHA, "ZXZZT"),
        F("Interest Flag", "interest_flag", 19, 1, ALPHA, "A"),
    )),
    # 1.8 Direct Listing with Capital Raise Price Discovery Message
    Golden("O", 48, 0x3031, 0x1718, 34_200_000_000_101, (
        F("Stock", "stock", 11, 8, ALPHA, "DLCRX"),
        F("Open Eligibility Status", "open_eligibility_status", 19, 1, ALPHA, "Y"),
        F("Minimum Allowable Price", "minimum_allowable_price", 20, 4, PRICE4, 800_000),
        F("Maximum Allowable Price", "maximum_allowable_price", 24, 4, PRICE4, 2_700_000),
        F("Near Execution Price", "near_execution_price", 28, 4, PRICE4, 1_250_000),
        F("Near Execution Time", "near_execution_time", 32, 8, INT, 34_200_500_000_000),
        F("Lower Price Range Collar", "lower_price_range_collar", 40, 4, PRICE4, 1_125_000),
        F("Upper Price Range Collar", "upper_price_range_collar", 44, 4, PRICE4, 1_375_000),
    )),
)

BY_TYPE = {g.type: g for g in GOLDEN}
TYPES = [g.type for g in GOLDEN]


def test_the_table_covers_every_itch50_type_once():
    assert sorted(TYPES) == sorted("SRHYLVWKJhAFECXDUPQBINO") and len(TYPES) == 23


def test_values_are_distinct_within_each_message():
    """A swap of two equal-size fields can only pass if their values are equal."""
    for g in GOLDEN:
        by_size: dict[tuple[str, int], list[object]] = {}
        for f in g.all_fields():
            by_size.setdefault((f.kind == ALPHA, f.length), []).append(f.value)
        for (_alpha, _size), values in by_size.items():
            assert len(values) == len(set(values)), (g.type, values)


@pytest.mark.parametrize("t", TYPES)
def test_message_length_is_the_specs(t):
    g = BY_TYPE[t]
    raw = wire_bytes(g)
    assert len(raw) == g.length
    last = g.all_fields()[-1]
    assert last.offset + last.length == g.length


def _decode_all(payloads: list[bytes]) -> tuple[list, dict, object]:
    """Python messages and numpy batches of every payload (MoldUDP64 datagrams)."""
    dec = Itch50Decoder()
    got: list = []
    dec.subscribe(got.append)
    dec.subscribe_batches()
    summary = Pipeline(ListBackend(payloads), dec).run()
    return got, dec.take_batches(), summary


@pytest.fixture(scope="module")
def decoded():
    raws = [wire_bytes(g) for g in GOLDEN]
    got, batches, summary = _decode_all([mold(1, raws)])
    assert summary.errors == {} and summary.messages == 23
    return {m.type: m for m in got}, batches


@pytest.mark.parametrize("t", TYPES)
def test_python_callback_gives_every_field_by_spec_name(decoded, t):
    g = BY_TYPE[t]
    msg = decoded[0][t]
    want = {f.attr: decoded_value(f) for f in g.all_fields()}
    assert msg._asdict() == want


@pytest.mark.parametrize("t", TYPES)
def test_numpy_batch_gives_every_field_by_spec_name(decoded, t):
    g = BY_TYPE[t]
    batch = decoded[1][t]
    assert len(batch) == 1
    row = batch[0]
    assert set(batch.dtype.names) == {f.attr for f in g.all_fields()}
    for f in g.all_fields():
        cell = row[f.attr]
        cell = cell if isinstance(cell, bytes) else int(cell)
        assert cell == batch_value(f), (t, f.spec_name)


# --- end to end: MoldUDP64 in UDP/IPv4/Ethernet in a classic pcap, by hand ---

def _ipv4_checksum(header: bytes) -> int:
    s = sum(struct.unpack(">10H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _udp_frame(payload: bytes, dst_ip: bytes, dst_port: int) -> bytes:
    """Ethernet II + IPv4 (20 bytes, DF) + UDP (checksum 0) around payload."""
    udp = struct.pack(">HHHH", 40000, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0, bytes([10, 0, 0, 1]), dst_ip)
    ip = ip[:10] + struct.pack(">H", _ipv4_checksum(ip)) + ip[12:]
    eth = bytes.fromhex("01005e360c6f") + bytes.fromhex("020000000001") + struct.pack(">H", 0x0800)
    return eth + ip + udp


def _pcap(frames: list[bytes]) -> bytes:
    """Classic little-endian microsecond pcap, LINKTYPE_ETHERNET."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, fr in enumerate(frames):
        out += struct.pack("<IIII", 1_600_000_000 + i, i, len(fr), len(fr)) + fr
    return out


def test_pcap_moldudp64_end_to_end(tmp_path):
    """Two datagrams (sequences 1..12 and 13..23) carry the 23 golden messages."""
    raws = [wire_bytes(g) for g in GOLDEN]
    dst = bytes([233, 54, 12, 111])
    frames = [_udp_frame(mold(1, raws[:12], b"GOLDEN0001"), dst, 26477),
              _udp_frame(mold(13, raws[12:], b"GOLDEN0001"), dst, 26477)]
    path = tmp_path / "golden.pcap"
    path.write_bytes(_pcap(frames))
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(path), "filters": ["233.54.12.111:26477"]})
    got = []
    pipe.decoder.subscribe(lambda m, meta: got.append((m, meta)), with_meta=True)
    s = pipe.run()
    pipe.close()
    assert s.packets == 2 and s.messages == 23 and s.errors == {} and s.drops == {} and s.gaps == 0
    assert [meta[1] for _, meta in got] == list(range(1, 24))
    assert {meta[0] for _, meta in got} == {"GOLDEN0001"}
    for (msg, _), g in zip(got, GOLDEN):
        assert msg._asdict() == {f.attr: decoded_value(f) for f in g.all_fields()}


def test_nasdaq_file_framing_end_to_end(tmp_path):
    """NASDAQ's file format: each message behind a 2-byte big-endian length."""
    path = tmp_path / "golden.itch"
    path.write_bytes(b"".join(struct.pack(">H", len(r)) + r for r in (wire_bytes(g) for g in GOLDEN)))
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path)})
    got = []
    pipe.decoder.subscribe(got.append)
    s = pipe.run()
    pipe.close()
    assert s.messages == 23 and s.errors == {}
    assert [m._asdict() for m in got] == [{f.attr: decoded_value(f) for f in g.all_fields()} for g in GOLDEN]
