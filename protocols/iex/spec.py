"""The IEX message spec tables: TOPS 1.6, DEEP 1.0 and DEEP+ 1.0, one per feed.

Everything about IEX messages in rxfeed is to be derived from :data:`TOPS`,
:data:`DEEP` and :data:`DEEP_PLUS` (C records, numpy dtypes, Python
messages, the reference codec and the tests; the generalised codegen is to
lay out records from these tables), as ITCH's are from
``protocols/itch50/spec.py``. Unlike the ITCH table, what a generator needs
to know about the wire is a property of the spec, not of the generator:
:attr:`Feed.byte_order` and the :class:`Kind` of every field (size,
signedness, implied decimals, unit, C type), so one generator can serve
big-endian ITCH and little-endian IEX.

Sources (the "Field Name / Offset / Length / Type" table and the example of
each message, "Data Types", "Appendix A: Flags"), IEX's PDFs as published on
iextrading.com, read in the copies kept by the Open Markets Initiative
(github.com/Open-Markets-Initiative/Directory, Organizations/Iex/Specifications):

* *Investors Exchange TOPS Specification*, version 1.66, October 19, 2021
  (protocol TOPS 1.6, Message Protocol ID 0x8003);
* *Investors Exchange DEEP Specification*, version 1.08, October 19, 2021
  (protocol DEEP 1.0, Message Protocol ID 0x8004);
* *Investors Exchange DEEP+ Specification*, version 1.04, June 4, 2026
  (protocol DEEP+ 1.0, Message Protocol ID 0x8005; its message formats are
  those of version 1.02, January 14, 2025, also read in a text transcription;
  1.01 changed Add Order's type byte to 'a' (0x61), 1.03/1.04 only network
  details).

Offsets and lengths were cross-checked against two independent readings:
timpalpant/go-iex (``iextp/tops``, ``iextp/deep``: every TOPS and DEEP
message but Retail Liquidity Indicator, which it predates) and the Open
Markets Initiative's DEEP+ 1.04 P4 header definitions (every DEEP+ message).

Wire facts (all three specs, "Data Types"): every binary field is little
endian. Byte: 1 byte unsigned; Integer: 4 bytes unsigned; Long: 8 bytes
signed; Price: 8 bytes signed, 4 implied decimals; Timestamp: 8 bytes signed,
nanoseconds since the POSIX epoch, UTC; Event Time: 4 bytes unsigned, seconds
since the epoch, UTC; String: fixed-length ASCII, left justified, space
filled on the right. Every message starts with its 1-byte Message Type; its
length comes from the IEX-TP framing (2-byte length before each message).
IEX "reserves the right to add message types and grow the length of any
messages": a decoder must count unknown types and read a longer message's
known prefix (:attr:`Message.length` is a minimum, not an exact size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ByteOrder = Literal["little", "big"]


@dataclass(frozen=True)
class Kind:
    """How a field's bytes become a value: a property of the spec, read by generators.

    :param name: the kind's name in the table.
    :param spec_type: the spec's data type ("Byte", "Price", ...).
    :param size: wire size in bytes; 0 for ``alpha``, sized per field.
    :param signed: two's complement when true.
    :param ctype: C type of the decoded value (alpha: the element type).
    :param decimals: implied decimal places of a fixed-point value.
    :param unit: what the integer counts, for timestamps and times.
    :param text: decoded to text (ASCII) rather than to an integer.
    """

    name: str
    spec_type: str
    size: int
    signed: bool
    ctype: str
    decimals: int = 0
    unit: str = ""
    text: bool = False


#: The kinds IEX's three message specs use. ``char``, ``u8`` and ``flags``
#: are all the spec's "Byte" (1 byte unsigned): an ASCII code, a number, or
#: a bit field (see :attr:`Field.values`).
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("char", "Byte", 1, False, "char", text=True),
    Kind("u8", "Byte", 1, False, "uint8_t"),
    Kind("flags", "Byte", 1, False, "uint8_t"),
    Kind("u32", "Integer", 4, False, "uint32_t"),
    Kind("i64", "Long", 8, True, "int64_t"),
    Kind("price", "Price", 8, True, "int64_t", decimals=4),
    Kind("timestamp", "Timestamp", 8, True, "int64_t", unit="ns since the POSIX epoch, UTC"),
    Kind("event_time", "Event Time", 4, False, "uint32_t", unit="s since the POSIX epoch, UTC"),
    Kind("alpha", "String", 0, False, "char", text=True),
)}

Category = Literal["administrative", "trading", "auction"]

FieldKind = Literal["char", "u8", "flags", "u32", "i64", "price", "timestamp", "event_time", "alpha"]

#: A field's documented values: (code, meaning). ``char``: one-character
#: codes; ``u8``: numbers; ``flags``: bit masks (a clear bit means the opposite);
#: ``alpha``: the codes before space padding.
Values = tuple[tuple[object, str], ...]


@dataclass(frozen=True)
class Field:
    """One row of a spec table.

    :param offset: the spec's Offset column; checked against the rows before.
    :param size: the spec's Length column.
    :param kind: key of :data:`KINDS`.
    :param name: snake_case name, for records, dtypes and messages.
    :param spec_name: the spec's Field Name.
    :param values: documented codes, flag bits or numbers, when the spec lists them.
    """

    offset: int
    size: int
    kind: FieldKind
    name: str
    spec_name: str
    values: Values = ()

    def __post_init__(self) -> None:
        fixed = KINDS[self.kind].size
        if (fixed and self.size != fixed) or self.size <= 0:
            raise ValueError(f"IEX spec table: {self.spec_name} is {self.kind}, not {self.size} bytes")


@dataclass(frozen=True)
class Message:
    """One message type of a feed.

    :param type: the Message Type byte, as a one-character string.
    :param name: CamelCase name for C structs and Python classes.
    :param spec_name: the heading of the spec's section.
    :param category: the spec's section: administrative, trading or auction.
    :param length: "Total Message Data length", Message Type included.
    :param fields: every field in wire order, Message Type first.
    """

    type: str
    name: str
    spec_name: str
    category: Category
    length: int
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        end = 0
        for f in self.fields:
            if f.offset != end:
                raise ValueError(f"IEX spec table: {self.name}.{f.name} at offset {f.offset}, "
                                 f"previous field ends at {end}")
            end += f.size
        if end != self.length:
            raise ValueError(f"IEX spec table: {self.name} fields end at {end}, spec says {self.length} bytes")
        first = self.fields[0]
        if (first.name, first.offset, first.size) != ("message_type", 0, 1):
            raise ValueError(f"IEX spec table: {self.name} does not start with its 1-byte Message Type")
        if len({f.name for f in self.fields}) != len(self.fields):
            raise ValueError(f"IEX spec table: {self.name} repeats a field name")

    @property
    def type_byte(self) -> int:
        return ord(self.type)


@dataclass(frozen=True)
class Feed:
    """One IEX message protocol: its identity on IEX-TP, byte order, kinds and messages."""

    name: str
    version: str
    message_protocol_id: int
    document: str
    messages: tuple[Message, ...]
    byte_order: ByteOrder = "little"
    kinds: tuple[Kind, ...] = tuple(KINDS.values())

    def __post_init__(self) -> None:
        types = [m.type for m in self.messages]
        if len(set(types)) != len(types):
            raise ValueError(f"IEX spec table: {self.name} repeats a message type")

    @property
    def by_type(self) -> dict[str, Message]:
        """Message Type character -> :class:`Message`."""
        return {m.type: m for m in self.messages}

    @property
    def types(self) -> str:
        """Every Message Type character, in spec order."""
        return "".join(m.type for m in self.messages)

    def kind(self, field: Field) -> Kind:
        """The :class:`Kind` of one of this feed's fields."""
        return {k.name: k for k in self.kinds}[field.kind]


# --- fields every message shares ---------------------------------------------

def _message_type(code: str, meaning: str) -> Field:
    return Field(0, 1, "char", "message_type", "Message Type", ((code, meaning),))


def _timestamp() -> Field:
    return Field(2, 8, "timestamp", "timestamp", "Timestamp")


def _symbol() -> Field:
    return Field(10, 8, "alpha", "symbol", "Symbol")


_SALE_CONDITION_FLAGS: Values = (
    (0x80, "intermarket sweep order (ISO)"),
    (0x40, "extended hours trade (Form T)"),
    (0x20, "odd lot trade"),
    (0x10, "trade through exempt (not subject to Rule 611)"),
    (0x08, "single-price cross trade"),
)


def _sale_conditions() -> Field:
    return Field(1, 1, "flags", "sale_condition_flags", "Sale Condition Flags", _SALE_CONDITION_FLAGS)


def _msg(type_: str, name: str, spec_name: str, category: Category, length: int, byte_field: Field,
         *rest: Field) -> Message:
    """A message with a Symbol: Message Type, one Byte, Timestamp, Symbol, then ``rest``."""
    return Message(type_, name, spec_name, category, length,
                   (_message_type(type_, spec_name), byte_field, _timestamp(), _symbol(), *rest))


def _trade_shape(type_: str, name: str, spec_name: str) -> Message:
    """Trade Report / Trade / Trade Break: 38 bytes, the same fields."""
    return _msg(type_, name, spec_name, "trading", 38, _sale_conditions(),
                Field(18, 4, "u32", "size", "Size"),
                Field(22, 8, "price", "price", "Price"),
                Field(30, 8, "i64", "trade_id", "Trade ID"))


# --- administrative messages (the same in all three feeds) -------------------

SYSTEM_EVENT = Message("S", "SystemEvent", "System Event Message", "administrative", 10, (
    _message_type("S", "System Event"),
    Field(1, 1, "char", "system_event", "System Event", (
        ("O", "start of messages"), ("S", "start of system hours"), ("R", "start of regular market hours"),
        ("M", "end of regular market hours"), ("E", "end of system hours"), ("C", "end of messages"))),
    _timestamp(),
))

SECURITY_DIRECTORY = _msg(
    "D", "SecurityDirectory", "Security Directory Message", "administrative", 31,
    Field(1, 1, "flags", "flags", "Flags", ((0x80, "test security"), (0x40, "when issued security"), (0x20, "ETP"))),
    Field(18, 4, "u32", "round_lot_size", "Round Lot Size"),
    Field(22, 8, "price", "adjusted_poc_price", "Adjusted POC Price"),
    Field(30, 1, "u8", "luld_tier", "LULD Tier", (
        (0, "not applicable"), (1, "Tier 1 NMS Stock"), (2, "Tier 2 NMS Stock"))))

TRADING_STATUS = _msg(
    "H", "TradingStatus", "Trading Status Message", "administrative", 22,
    Field(1, 1, "char", "trading_status", "Trading Status", (
        ("H", "trading halted across all US equity markets"),
        ("O", "halt released into an Order Acceptance Period on IEX"),
        ("P", "trading paused and Order Acceptance Period on IEX"), ("T", "trading on IEX"))),
    Field(18, 4, "alpha", "reason", "Reason", (
        ("T1", "halt news pending"), ("IPO1", "IPO not yet trading"), ("IPOD", "IPO deferred"),
        ("MCB3", "market-wide circuit breaker level 3 breached"), ("NA", "reason not available"),
        ("T2", "halt news dissemination"), ("IPO2", "IPO order acceptance period"),
        ("IPO3", "IPO pre-launch period"), ("MCB1", "market-wide circuit breaker level 1 breached"),
        ("MCB2", "market-wide circuit breaker level 2 breached"), ("", "blank: trading, or paused"))))

RETAIL_LIQUIDITY_INDICATOR = _msg(
    "I", "RetailLiquidityIndicator", "Retail Liquidity Indicator Message", "administrative", 18,
    Field(1, 1, "char", "retail_liquidity_indicator", "Retail Liquidity Indicator", (
        (" ", "not applicable"), ("A", "buy interest for retail"), ("B", "sell interest for retail"),
        ("C", "buy and sell interest for retail"))))

OPERATIONAL_HALT_STATUS = _msg(
    "O", "OperationalHaltStatus", "Operational Halt Status Message", "administrative", 18,
    Field(1, 1, "char", "operational_halt_status", "Operational Halt Status", (
        ("O", "IEX specific operational trading halt"), ("N", "not operationally halted on IEX"))))

SHORT_SALE_PRICE_TEST_STATUS = _msg(
    "P", "ShortSalePriceTestStatus", "Short Sale Price Test Status Message", "administrative", 19,
    Field(1, 1, "u8", "short_sale_price_test_status", "Short Sale Price Test Status", (
        (0, "not in effect"), (1, "in effect"))),
    Field(18, 1, "char", "detail", "Detail", (
        (" ", "no price test in place"), ("A", "activated (intraday price drop)"),
        ("C", "continued from prior day"), ("D", "deactivated"), ("N", "detail not available"))))

SECURITY_EVENT = _msg(
    "E", "SecurityEvent", "Security Event Message", "administrative", 18,
    Field(1, 1, "char", "security_event", "Security Event", (
        ("O", "opening process complete"), ("C", "closing process complete"))))

_ADMINISTRATIVE = (SYSTEM_EVENT, SECURITY_DIRECTORY, TRADING_STATUS, RETAIL_LIQUIDITY_INDICATOR,
                   OPERATIONAL_HALT_STATUS, SHORT_SALE_PRICE_TEST_STATUS)

# --- trading and auction messages of TOPS and DEEP ---------------------------

QUOTE_UPDATE = _msg(
    "Q", "QuoteUpdate", "Quote Update Message", "trading", 42,
    Field(1, 1, "flags", "flags", "Flags", (
        (0x80, "symbol halted, paused or otherwise not available for trading on IEX"),
        (0x40, "pre/post-market session"))),
    Field(18, 4, "u32", "bid_size", "Bid Size"),
    Field(22, 8, "price", "bid_price", "Bid Price"),
    Field(30, 8, "price", "ask_price", "Ask Price"),
    Field(38, 4, "u32", "ask_size", "Ask Size"))

TRADE_REPORT = _trade_shape("T", "TradeReport", "Trade Report Message")

OFFICIAL_PRICE = _msg(
    "X", "OfficialPrice", "Official Price Message", "trading", 26,
    Field(1, 1, "char", "price_type", "Price Type", (
        ("Q", "IEX Official Opening Price"), ("M", "IEX Official Closing Price"))),
    Field(18, 8, "price", "official_price", "Official Price"))

TRADE_BREAK = _trade_shape("B", "TradeBreak", "Trade Break Message")

AUCTION_INFORMATION = _msg(
    "A", "AuctionInformation", "Auction Information Message", "auction", 80,
    Field(1, 1, "char", "auction_type", "Auction Type", (
        ("O", "opening auction"), ("C", "closing auction"), ("I", "IPO auction"), ("H", "halt auction"),
        ("V", "volatility auction"))),
    Field(18, 4, "u32", "paired_shares", "Paired Shares"),
    Field(22, 8, "price", "reference_price", "Reference Price"),
    Field(30, 8, "price", "indicative_clearing_price", "Indicative Clearing Price"),
    Field(38, 4, "u32", "imbalance_shares", "Imbalance Shares"),
    Field(42, 1, "char", "imbalance_side", "Imbalance Side", (
        ("B", "buy-side imbalance"), ("S", "sell-side imbalance"), ("N", "no imbalance"))),
    Field(43, 1, "u8", "extension_number", "Extension Number"),
    Field(44, 4, "event_time", "scheduled_auction_time", "Scheduled Auction Time"),
    Field(48, 8, "price", "auction_book_clearing_price", "Auction Book Clearing Price"),
    Field(56, 8, "price", "collar_reference_price", "Collar Reference Price"),
    Field(64, 8, "price", "lower_auction_collar", "Lower Auction Collar"),
    Field(72, 8, "price", "upper_auction_collar", "Upper Auction Collar"))


def _price_level_update(type_: str, name: str, side: str) -> Message:
    """DEEP's Price Level Update: the type byte carries the side."""
    return _msg(type_, name, f"Price Level Update Message, {side} Side", "trading", 30,
                Field(1, 1, "flags", "event_flags", "Event Flags", (
                    (0x01, "event processing complete (clear: order book in transition)"),)),
                Field(18, 4, "u32", "size", "Size"),
                Field(22, 8, "price", "price", "Price"))


PRICE_LEVEL_UPDATE_BUY = _price_level_update("8", "PriceLevelUpdateBuy", "Buy")
PRICE_LEVEL_UPDATE_SELL = _price_level_update("5", "PriceLevelUpdateSell", "Sell")

# --- DEEP+ order-by-order messages --------------------------------------------

ADD_ORDER = _msg(
    "a", "AddOrder", "Add Order Message", "trading", 38,
    Field(1, 1, "char", "side", "Side", (("8", "buy"), ("5", "sell"))),
    Field(18, 8, "i64", "order_id", "Order ID"),
    Field(26, 4, "u32", "size", "Size"),
    Field(30, 8, "price", "price", "Price"))

ORDER_MODIFY = _msg(
    "M", "OrderModify", "Order Modify Message", "trading", 38,
    Field(1, 1, "flags", "modify_flags", "Modify Flags", ((0x01, "maintain priority (clear: priority reset)"),)),
    Field(18, 8, "i64", "order_id_reference", "Order ID Reference"),
    Field(26, 4, "u32", "size", "Size"),
    Field(30, 8, "price", "price", "Price"))

ORDER_DELETE = _msg(
    "R", "OrderDelete", "Order Delete Message", "trading", 26,
    Field(1, 1, "u8", "reserved", "Reserved"),
    Field(18, 8, "i64", "order_id_reference", "Order ID Reference"))

ORDER_EXECUTED = _msg(
    "L", "OrderExecuted", "Order Executed Message", "trading", 46, _sale_conditions(),
    Field(18, 8, "i64", "order_id_reference", "Order ID Reference"),
    Field(26, 4, "u32", "size", "Size"),
    Field(30, 8, "price", "price", "Price"),
    Field(38, 8, "i64", "trade_id", "Trade ID"))

TRADE = _trade_shape("T", "Trade", "Trade Message")

CLEAR_BOOK = _msg("C", "ClearBook", "Clear Book Message", "trading", 18, Field(1, 1, "u8", "reserved", "Reserved"))

# --- the three feeds -----------------------------------------------------------

#: TOPS 1.6: top of book, last sale, administrative and auction messages.
TOPS = Feed("TOPS", "1.6", 0x8003, "Investors Exchange TOPS Specification 1.66, October 19, 2021",
            _ADMINISTRATIVE + (QUOTE_UPDATE, TRADE_REPORT, OFFICIAL_PRICE, TRADE_BREAK, AUCTION_INFORMATION))

#: DEEP 1.0: price-level depth of book (Price Level Update, buy '8' and sell '5').
DEEP = Feed("DEEP", "1.0", 0x8004, "Investors Exchange DEEP Specification 1.08, October 19, 2021",
            _ADMINISTRATIVE + (SECURITY_EVENT, PRICE_LEVEL_UPDATE_BUY, PRICE_LEVEL_UPDATE_SELL, TRADE_REPORT,
                               OFFICIAL_PRICE, TRADE_BREAK, AUCTION_INFORMATION))

#: DEEP+ 1.0: order-by-order depth of book; no quote, official price or auction messages.
DEEP_PLUS = Feed("DEEP+", "1.0", 0x8005, "Investors Exchange DEEP+ Specification 1.04, June 4, 2026",
                 _ADMINISTRATIVE + (SECURITY_EVENT, ADD_ORDER, ORDER_MODIFY, ORDER_DELETE, ORDER_EXECUTED, TRADE,
                                    TRADE_BREAK, CLEAR_BOOK))

#: Every feed, by name.
FEEDS: dict[str, Feed] = {f.name: f for f in (TOPS, DEEP, DEEP_PLUS)}

