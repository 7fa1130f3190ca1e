"""One record generator for every protocol plugin: C records, decoders, dtypes.

A protocol states what its messages look like in a :class:`RecordSpec`: the
wire byte order, every field's :class:`Kind` (wire size, C type, sign, text),
the message types, the common header every record starts with, and one or
more :class:`Feed` decoders (a set of types and whether a message must have
exactly its length or at least it). From that, this module writes:

* ``_records.h`` text (:func:`generate_header`): one aligned C struct per
  message type (fields in wire order, each naturally aligned, padding made
  explicit, every offset pinned by ``_Static_assert``), the tagged record
  union, per feed the wire-size, record-size and layout tables, a decoder per
  type and a length-checked decoder per feed (the length is checked against
  the type before any byte past the type byte is read; an unknown type is a
  status code, not an error);
* the Cython declarations of the same (:func:`generate_pxd`);
* numpy dtypes with the C layout (:func:`dtype_for`).

It names no protocol and imports nothing of rxfeed: a protocol's ``codegen.py``
loads it by path at build time (``--check`` in meson) and as ``rxfeed.specgen``
at run time (:func:`main` does the writing and the staleness check).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

ByteOrder = Literal["big", "little"]

#: Size of each C type a record may hold.
CTYPE_SIZE: dict[str, int] = {"char": 1, "uint8_t": 1, "int8_t": 1, "uint16_t": 2, "int16_t": 2,
                              "uint32_t": 4, "int32_t": 4, "uint64_t": 8, "int64_t": 8}

#: Wire sizes with a load function (name ``rxf_<be|le><bits>``) in every generated header.
_LOAD_BITS = (16, 32, 64, 48)


class KindLike(Protocol):
    """What the generator reads of a field kind (a protocol's own class may be passed)."""

    name: str
    size: int      # wire size in bytes; 0 when sized per field (text)
    ctype: str     # C type of the decoded value (text: the element type)
    signed: bool
    text: bool


@dataclass(frozen=True)
class Kind:
    """A field kind, for protocols that do not define their own class."""

    name: str
    size: int
    ctype: str
    signed: bool = False
    text: bool = False


@dataclass(frozen=True)
class WireField:
    """One field of a message on the wire."""

    name: str
    kind: KindLike
    wire_offset: int
    size: int


@dataclass(frozen=True)
class WireMessage:
    """One message type: its type byte, C name, wire length and every field, header included."""

    type: str
    name: str
    wire_size: int
    fields: tuple[WireField, ...]


@dataclass(frozen=True)
class Feed:
    """One decoder: ``rxf_<prefix>_decode`` over ``messages``.

    :param exact_length: a message must be exactly its wire size; otherwise
        at least (a longer one is read for its known prefix).
    :param title: the protocol's name in comments ("... does not define").
    """

    prefix: str
    title: str
    messages: tuple[WireMessage, ...]
    exact_length: bool

    @property
    def types(self) -> str:
        return "".join(m.type for m in self.messages)


@dataclass(frozen=True)
class RecordSpec:
    """Everything the generator needs to know about one protocol's records.

    :param prefix: C names are ``rxf_<prefix>_*`` and ``RXF_<PREFIX>_*``.
    :param header: names of the fields every message has at the same record
        offset (the ``hdr`` member of the record union).
    :param messages: every message type, each name once.
    """

    prefix: str
    guard: str
    banner: str
    byte_order: ByteOrder
    header: tuple[str, ...]
    messages: tuple[WireMessage, ...]
    feeds: tuple[Feed, ...]

    def __post_init__(self) -> None:
        names = [m.name for m in self.messages]
        if len(set(names)) != len(names):
            raise ValueError(f"record spec {self.prefix}: a message name is repeated")
        for feed in self.feeds:
            if len(set(feed.types)) != len(feed.types) or not set(feed.messages) <= set(self.messages):
                raise ValueError(f"record spec {feed.prefix}: repeated types or messages not in the spec")
            if any(not m.type.isprintable() or m.type in "'\\" or len(m.type) != 1 for m in feed.messages):
                raise ValueError(f"record spec {feed.prefix}: a type is not one printable character")
        for m in self.messages:
            _check_message(m)
        header_layout(self)  # raises when a header field moves between messages
        if max(record_layout(m)[1] for m in self.messages) > 255 or max(m.wire_size for m in self.messages) > 255:
            raise ValueError(f"record spec {self.prefix}: sizes must fit the uint8_t tables")

    @property
    def upper(self) -> str:
        return self.prefix.upper()

    @property
    def max_record_size(self) -> int:
        return max(record_layout(m)[1] for m in self.messages)


def _check_message(m: WireMessage) -> None:
    """Fields contiguous from offset 0 to the wire size, each its kind's size."""
    end = 0
    for f in m.fields:
        if f.wire_offset != end or (f.kind.size and f.kind.size != f.size):
            raise ValueError(f"record spec: {m.name}.{f.name} at {f.wire_offset} ({f.size} bytes), expected {end}")
        if not f.kind.text and f.size not in (1, 2, 4, 6, 8):
            raise ValueError(f"record spec: {m.name}.{f.name}: no load for {f.size}-byte integers")
        end += f.size
    if end != m.wire_size:
        raise ValueError(f"record spec: {m.name} fields end at {end}, not {m.wire_size}")


# --- layout -------------------------------------------------------------------

@dataclass(frozen=True)
class RecordField:
    """A field's place in the decoded record and on the wire."""

    name: str
    kind: KindLike
    ctype: str
    offset: int       # offset in the record
    size: int         # size in the record
    wire_offset: int
    wire_size: int

    @property
    def declarator(self) -> str:
        return f"{self.name}[{self.size}]" if self.kind.text and self.wire_size > 1 else self.name


def _place(f: WireField, off: int) -> RecordField:
    """``f`` at the first offset from ``off`` aligned for its C type."""
    if f.kind.text:
        ctype, size, align = f.kind.ctype, f.size, 1
    else:
        ctype = f.kind.ctype
        size = align = CTYPE_SIZE[ctype]
    off = (off + align - 1) // align * align
    return RecordField(f.name, f.kind, ctype, off, size, f.wire_offset, f.size)


def record_layout(msg: WireMessage) -> tuple[tuple[RecordField, ...], int]:
    """``(fields, record_size)``: fields in wire order, each naturally aligned;
    the size is rounded up to 8 bytes so records pack into arrays."""
    out, off = [], 0
    for f in msg.fields:
        rf = _place(f, off)
        out.append(rf)
        off = rf.offset + rf.size
    return tuple(out), (off + 7) // 8 * 8


def header_layout(rs: RecordSpec) -> tuple[RecordField, ...]:
    """The header fields at the record offsets they have in every message."""
    first: dict[str, RecordField] = {}
    for m in rs.messages:
        by_name = {f.name: f for f in record_layout(m)[0]}
        for name in rs.header:
            f = by_name.get(name)
            if f is None or first.setdefault(name, f) != f:
                raise ValueError(f"record spec {rs.prefix}: header field {name} differs in {m.name}")
    return tuple(first[n] for n in rs.header)


def _members(fields: tuple[RecordField, ...], size: int, scalar_pads_below: int) -> list[tuple[str, str, int]]:
    """(ctype, declarator, size) in order, padding made explicit as ``_padN``.
    A pad that ends within ``scalar_pads_below`` bytes and has the size of an
    unsigned type is declared as one (the header's style)."""
    out, off, npad = [], 0, 0
    for f in fields + (None,):
        at = size if f is None else f.offset
        if at > off:
            n = at - off
            if at <= scalar_pads_below and n in (1, 2, 4, 8) and off % n == 0:
                out.append((f"uint{8 * n}_t", f"_pad{npad}", n))
            else:
                out.append(("uint8_t", f"_pad{npad}[{n}]", n))
            npad += 1
        if f is not None:
            out.append((f.ctype, f.declarator, f.size))
            off = f.offset + f.size
    return out


def _header_size(rs: RecordSpec) -> int:
    last = header_layout(rs)[-1]
    return last.offset + last.size


def struct_members(rs: RecordSpec, msg: WireMessage) -> list[tuple[str, str, int]]:
    """(ctype, declarator, size) of ``msg``'s record struct, padding explicit."""
    fields, size = record_layout(msg)
    return _members(fields, size, _header_size(rs))


def header_members(rs: RecordSpec) -> list[tuple[str, str, int]]:
    """(ctype, declarator, size) of the common header struct."""
    fields = header_layout(rs)
    return _members(fields, _header_size(rs), _header_size(rs))


# --- the C header -----------------------------------------------------------------

def _wrap(items: list[str], indent: str = "    ", width: int = 80) -> list[str]:
    """Items joined by spaces, a new line before one that would pass ``width``."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 1 + len(item) <= width:
            lines[-1] += " " + item
        else:
            lines.append(indent + item)
    return lines


def _loaders(order: ByteOrder) -> list[str]:
    """Unaligned loads of the wire byte order (the host is little endian)."""
    if order == "big":
        return [
            "static inline uint16_t rxf_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }",
            "static inline uint32_t rxf_be32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return __builtin_bswap32(v); }",
            "static inline uint64_t rxf_be64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return __builtin_bswap64(v); }",
            "static inline uint64_t rxf_be48(const uint8_t *p) { return ((uint64_t)rxf_be16(p) << 32) | rxf_be32(p + 2); }"]
    return [
        "#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__",
        "#error \"little-endian loads below assume a little-endian host\"",
        "#endif",
        "static inline uint16_t rxf_le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }",
        "static inline uint32_t rxf_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }",
        "static inline uint64_t rxf_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }",
        "static inline uint64_t rxf_le48(const uint8_t *p) { return ((uint64_t)rxf_le16(p + 4) << 32) | rxf_le32(p); }"]


def _prelude(rs: RecordSpec) -> list[str]:
    """Include guard, loads, constants and the common record header."""
    u = rs.upper
    out = [f"/* {rs.banner} */", f"#ifndef {rs.guard}", f"#define {rs.guard}", "",
           "#include <stddef.h>", "#include <stdint.h>", "#include <string.h>", ""]
    out += _loaders(rs.byte_order)
    out += ["", f"enum {{ RXF_{u}_OK = 0, RXF_{u}_UNKNOWN_TYPE = 1, RXF_{u}_BAD_LENGTH = 2 }};"]
    out += [f"#define RXF_{f.prefix.upper()}_NUM_TYPES {len(f.messages)}" for f in rs.feeds]
    out.append(f"#define RXF_{u}_MAX_RECORD_SIZE {rs.max_record_size}")
    out += [f"#define RXF_{f.prefix.upper()}_TYPES \"{f.types}\"" for f in rs.feeds]
    out += ["", f"/* Common {_header_size(rs)}-byte header of every record. */",
            f"typedef struct rxf_{rs.prefix}_header {{"]
    out += _wrap([f"{ctype} {decl};" for ctype, decl, _ in header_members(rs)])
    return out + [f"}} rxf_{rs.prefix}_header;", ""]


def _wire_comment(m: WireMessage, feeds: tuple[Feed, ...]) -> str:
    exact = all(f.exact_length for f in feeds if m in f.messages)
    return f"{'' if exact else 'at least '}{m.wire_size} bytes on the wire"


def _struct(rs: RecordSpec, m: WireMessage) -> list[str]:
    """One record struct with every size and offset pinned by _Static_assert."""
    sname = f"rxf_{rs.prefix}_{m.name}"
    out = [f"/* '{m.type}' {m.name}: {_wire_comment(m, rs.feeds)} */", f"typedef struct {sname} {{"]
    out += [f"    {ctype} {decl};" for ctype, decl, _ in struct_members(rs, m)]
    out.append(f"}} {sname};")
    fields, size = record_layout(m)
    out.append(f"_Static_assert(sizeof({sname}) == {size}, \"{m.name} size\");")
    for f in fields:
        out.append(f"_Static_assert(offsetof({sname}, {f.name}) == {f.offset}, \"{m.name}.{f.name}\");")
    return out + [""]


def _size_tables(rs: RecordSpec, feed: Feed) -> list[str]:
    """A feed's wire-size and record-size tables, indexed by type byte."""
    p = feed.prefix
    what = "Wire length" if feed.exact_length else "Minimum wire length (longer messages are accepted)"
    return [f"/* {what} of each message type; 0 for types {feed.title} does not define. */",
            f"static const uint8_t rxf_{p}_wire_size[256] = {{",
            "    " + ", ".join(f"['{m.type}'] = {m.wire_size}" for m in feed.messages), "};",
            "/* Decoded record size of each message type; 0 for unknown types. */",
            f"static const uint8_t rxf_{p}_record_size[256] = {{",
            "    " + ", ".join(f"['{m.type}'] = {record_layout(m)[1]}" for m in feed.messages), "};"]


def _layout_table(rs: RecordSpec, feed: Feed) -> list[str]:
    """Every field's offset and size as the C compiler laid it out."""
    out = [f"static const rxf_{rs.prefix}_field_layout rxf_{feed.prefix}_layout[] = {{"]
    for m in feed.messages:
        sname = f"rxf_{rs.prefix}_{m.name}"
        for f in m.fields:
            out.append(f"    {{'{m.type}', \"{f.name}\", offsetof({sname}, {f.name}), "
                       f"sizeof((({sname} *)0)->{f.name})}},")
        out.append(f"    {{'{m.type}', \"\", sizeof({sname}), 0}},")
    u = feed.prefix.upper()
    return out + ["};", f"#define RXF_{u}_LAYOUT_LEN (sizeof(rxf_{feed.prefix}_layout) / "
                        f"sizeof(rxf_{feed.prefix}_layout[0]))"]


def _tables(rs: RecordSpec) -> list[str]:
    """The record union, each feed's size tables and layout table."""
    p = rs.prefix
    out = [f"typedef union rxf_{p}_record {{", f"    rxf_{p}_header hdr;"]
    out += [f"    rxf_{p}_{m.name} {m.name};" for m in rs.messages]
    out += [f"    uint64_t _align[{rs.max_record_size // 8}];", f"}} rxf_{p}_record;", ""]
    for feed in rs.feeds:
        out += _size_tables(rs, feed)
    out += ["", "/* Layout as the C compiler laid it out, for the layout tests. */",
            f"typedef struct rxf_{p}_field_layout {{ char type; const char *name; uint32_t offset; uint32_t size; }}"
            f" rxf_{p}_field_layout;"]
    for feed in rs.feeds:
        out += _layout_table(rs, feed)
    return out + [""]


def _load(order: ByteOrder, f: RecordField) -> str:
    """The C expression reading ``f`` at ``p``."""
    if f.ctype == "char":
        return f"(char)p[{f.wire_offset}]"
    if f.wire_size == 1:
        return f"p[{f.wire_offset}]" if not f.kind.signed else f"({f.ctype})p[{f.wire_offset}]"
    call = f"rxf_{'be' if order == 'big' else 'le'}{8 * f.wire_size}(p + {f.wire_offset})"
    return f"({f.ctype}){call}" if f.kind.signed else call


def _assign(order: ByteOrder, f: RecordField) -> str:
    if f.kind.text and f.wire_size > 1:
        return f"memcpy(r->{f.name}, p + {f.wire_offset}, {f.size});"
    return f"r->{f.name} = {_load(order, f)};"


def _type_decoder(rs: RecordSpec, m: WireMessage) -> list[str]:
    """The wire -> record decoder of one type (length checked by the caller)."""
    sname = f"rxf_{rs.prefix}_{m.name}"
    fields, _ = record_layout(m)
    held = "holds" if all(f.exact_length for f in rs.feeds if m in f.messages) else "holds at least"
    out = [f"/* Caller guarantees p {held} {m.wire_size} bytes. */",
           f"static inline void rxf_{rs.prefix}_decode_{m.name}(const uint8_t *p, {sname} *r) {{"]
    pads = [d.split("[")[0] for _, d, _ in struct_members(rs, m) if d.startswith("_pad")]
    for pad in pads:  # zero only the padding (records are compared and summed as bytes)
        out.append(f"    memset(&r->{pad}, 0, sizeof(r->{pad}));")
    head = [_assign(rs.byte_order, f) for f in fields if f.name in rs.header]
    out += ["    " + " ".join(head[i:i + 2]) for i in range(0, len(head), 2)]
    out += [f"    {_assign(rs.byte_order, f)}" for f in fields if f.name not in rs.header]
    return out + ["}"]


def _dispatch(rs: RecordSpec, feed: Feed) -> list[str]:
    """The length-checked decoder of any of a feed's types."""
    p, u = feed.prefix, rs.upper
    check = "len != want" if feed.exact_length else "len < want"
    tail = ["   type before any byte past p[0] is read. */"] if feed.exact_length else [
        "   type before any byte past p[0] is read; a longer message is accepted",
        "   and its known fields decoded. */"]
    out = ["", "/* Decode one message of len bytes. The length is checked against the", *tail,
           f"static inline int rxf_{p}_decode(const uint8_t *p, uint32_t len, rxf_{rs.prefix}_record *r) {{",
           f"    if (len < 1) return RXF_{u}_BAD_LENGTH;",
           f"    uint8_t want = rxf_{p}_wire_size[p[0]];",
           f"    if (want == 0) return RXF_{u}_UNKNOWN_TYPE;",
           f"    if ({check}) return RXF_{u}_BAD_LENGTH;",
           "    switch (p[0]) {"]
    out += [f"    case '{m.type}': rxf_{rs.prefix}_decode_{m.name}(p, &r->{m.name}); break;" for m in feed.messages]
    return out + ["    }", f"    return RXF_{u}_OK;", "}"]


def generate_header(rs: RecordSpec) -> str:
    """``_records.h``: structs, tables and decoders."""
    out = _prelude(rs)
    for m in rs.messages:
        out += _struct(rs, m)
    out += _tables(rs)
    for m in rs.messages:
        out += _type_decoder(rs, m)
    for feed in rs.feeds:
        out += _dispatch(rs, feed)
    return "\n".join(out + ["", "#endif"]) + "\n"


# --- Cython declarations --------------------------------------------------------------

def generate_pxd(rs: RecordSpec, header_file: str = "_records.h") -> str:
    """``_records.pxd``: Cython declarations of :func:`generate_header`'s output."""
    p, u = rs.prefix, rs.upper
    signed = sorted({f.kind.ctype for m in rs.messages for f in m.fields if f.kind.ctype.startswith("int")})
    out = [f"# {rs.banner}", "from libc.stdint cimport " + ", ".join(
               ["uint8_t", "uint16_t", "uint32_t", "uint64_t"] + signed), "",
           f'cdef extern from "{header_file}" nogil:',
           f"    enum: RXF_{u}_OK", f"    enum: RXF_{u}_UNKNOWN_TYPE", f"    enum: RXF_{u}_BAD_LENGTH"]
    out += [f"    enum: RXF_{f.prefix.upper()}_NUM_TYPES" for f in rs.feeds]
    out.append(f"    enum: RXF_{u}_MAX_RECORD_SIZE")
    out += [f"    enum: RXF_{f.prefix.upper()}_LAYOUT_LEN" for f in rs.feeds]
    out.append(f"    ctypedef struct rxf_{p}_header:")
    out += [f"        {f.ctype} {f.declarator}" for f in header_layout(rs)]
    for m in rs.messages:
        out.append(f"    ctypedef struct rxf_{p}_{m.name}:")
        out += [f"        {f.ctype} {f.declarator}" for f in record_layout(m)[0]]
    out += [f"    ctypedef union rxf_{p}_record:", f"        rxf_{p}_header hdr"]
    out += [f"        rxf_{p}_{m.name} {m.name}" for m in rs.messages]
    out += [f"    ctypedef struct rxf_{p}_field_layout:",
            "        char type", "        const char *name", "        uint32_t offset", "        uint32_t size"]
    for f in rs.feeds:
        out += [f"    const rxf_{p}_field_layout rxf_{f.prefix}_layout[]",
                f"    const uint8_t rxf_{f.prefix}_wire_size[256]",
                f"    const uint8_t rxf_{f.prefix}_record_size[256]",
                f"    int rxf_{f.prefix}_decode(const uint8_t *p, uint32_t length, rxf_{p}_record *r)"]
    order = "be" if rs.byte_order == "big" else "le"
    out += [f"    uint16_t rxf_{order}16(const uint8_t *p)", f"    uint32_t rxf_{order}32(const uint8_t *p)",
            f"    uint64_t rxf_{order}64(const uint8_t *p)"]
    return "\n".join(out) + "\n"


# --- numpy dtypes -------------------------------------------------------------------

_NUMPY_INT = {"uint8_t": "u1", "int8_t": "i1", "uint16_t": "<u2", "int16_t": "<i2", "uint32_t": "<u4",
              "int32_t": "<i4", "uint64_t": "<u8", "int64_t": "<i8"}


def dtype_for(msg: WireMessage) -> Any:
    """The numpy dtype of ``msg``'s record: the C layout (offsets, itemsize);
    text fields are ``S<n>`` (bytes, padding kept as on the wire)."""
    import numpy as np

    fields, size = record_layout(msg)
    return np.dtype({"names": [f.name for f in fields],
                     "formats": [f"S{f.size}" if f.kind.text else _NUMPY_INT[f.ctype] for f in fields],
                     "offsets": [f.offset for f in fields], "itemsize": size})


# --- writing and checking ----------------------------------------------------------------

def main(argv: list[str], here: Path, outputs: dict[str, Callable[[], str]], banner: str) -> int:
    """Write ``outputs`` (file name -> text maker) into ``here``.

    ``--check`` only compares them with what the spec gives and fails when any
    is stale; ``--check --stamp FILE`` (a build's check) also writes FILE on
    success, so the build compiles nothing from stale outputs.
    """
    check = "--check" in argv
    stale = []
    for name, gen in outputs.items():
        text = gen()
        path = here / name
        if not check:
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(name)
    if stale:
        print(f"stale generated files: {', '.join(stale)} (spec.py changed): "
              f"run python {here / 'codegen.py'}", file=sys.stderr)
        return 1
    if check and "--stamp" in argv:
        Path(argv[argv.index("--stamp") + 1]).write_text(f"/* {banner} Outputs checked fresh. */\n")
    return 0


# --- the wire overlay: packed structs and accessors over the raw bytes --------------

def snake(name: str) -> str:
    """``AddOrderMPID`` -> ``add_order_mpid``: a message name in accessor style."""
    import re

    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def accessor_name(rs: RecordSpec, msg: WireMessage, field: str) -> str:
    """The C name of the wire accessor of ``msg.field``, ``<prefix>_<message in snake case>_<field>``."""
    return f"{rs.prefix}_{snake(msg.name)}_{field}"


def _wire_member(f: WireField) -> str:
    """A wire struct member: text as ``char``, integers as their raw bytes
    (wire byte order: read them with the accessors, never directly)."""
    if f.kind.text:
        return f"char {f.name}[{f.size}];" if f.size > 1 else f"char {f.name};"
    return f"uint8_t {f.name}[{f.size}];" if f.size > 1 else f"uint8_t {f.name};"


def _accessor(rs: RecordSpec, m: WireMessage, f: WireField) -> str:
    """One inline accessor: the field's value read at its offset in ``p``."""
    sname, name = f"rxf_{rs.prefix}_wire_{m.name}", accessor_name(rs, m, f.name)
    at = f"offsetof({sname}, {f.name})"
    if f.kind.text and f.size > 1:
        return f"static inline const char *{name}(const uint8_t *p) {{ return (const char *)p + {at}; }}"
    if f.kind.text:
        return f"static inline char {name}(const uint8_t *p) {{ return (char)p[{at}]; }}"
    ctype = f.kind.ctype
    if f.size == 1:
        value = f"p[{at}]"
    else:
        value = f"rxf_{'be' if rs.byte_order == 'big' else 'le'}{8 * f.size}(p + {at})"
    return f"static inline {ctype} {name}(const uint8_t *p) {{ return ({ctype}){value}; }}"


def _wire_struct(rs: RecordSpec, m: WireMessage) -> list[str]:
    """The packed wire struct of ``m``, its size and every offset asserted
    against the spec, and one accessor per field."""
    sname = f"rxf_{rs.prefix}_wire_{m.name}"
    what = f"'{m.type}' {m.name}" if m.type else "The common header"
    out = [f"/* {what}: the {m.wire_size} wire bytes as they arrive */",
           f"typedef struct {sname} {{"]
    out += [f"    {_wire_member(f)}" for f in m.fields]
    out += [f"}} {sname};", f"_Static_assert(sizeof({sname}) == {m.wire_size}, \"{m.name} wire size\");",
            f"_Static_assert(_Alignof({sname}) == 1, \"{m.name} wire struct is packed\");"]
    out += [f"_Static_assert(offsetof({sname}, {f.name}) == {f.wire_offset}, \"{m.name}.{f.name} wire offset\");"
            for f in m.fields]
    return out + [_accessor(rs, m, f) for f in m.fields] + [""]


def _wire_header_message(rs: RecordSpec) -> WireMessage:
    """The common header as a message of its own (``header``): the same wire
    offsets in every message, else the overlay has no common header."""
    first = {f.name: f for f in rs.messages[0].fields}
    fields = tuple(first[n] for n in rs.header)
    for m in rs.messages:
        if tuple(f for f in m.fields if f.name in rs.header) != fields:
            raise ValueError(f"record spec {rs.prefix}: {m.name}'s header is not at the common wire offsets")
    if [f.wire_offset for f in fields] != sorted(f.wire_offset for f in fields) or fields[0].wire_offset != 0:
        raise ValueError(f"record spec {rs.prefix}: the header does not lead every message")
    return WireMessage("", "header", sum(f.size for f in fields), fields)


def generate_wire_header(rs: RecordSpec, guard: str, records_header: str = "_records.h") -> str:
    """The zero-copy overlay: per message type a packed struct of its wire
    bytes (integers kept as raw bytes) and inline accessors reading each field
    in the wire byte order. Only valid over a message whose length was checked
    (the decoder checks it before calling a wire handler)."""
    out = [f"/* {rs.banner} */", f"#ifndef {guard}", f"#define {guard}", "",
           "/* Zero-copy view of messages: cast nothing, read a field with its",
           f"   accessor, e.g. {accessor_name(rs, rs.messages[0], rs.messages[0].fields[-1].name)}(p), where p",
           "   points at the message's first byte (its type) and the message is known",
           "   to hold its type's wire length. */", "",
           "#include <stddef.h>", "#include <stdint.h>", f"#include \"{records_header}\"  /* the loads */", ""]
    for m in (_wire_header_message(rs),) + rs.messages:
        out += _wire_struct(rs, m)
    return "\n".join(out + ["#endif"]) + "\n"


def generate_wire_pxd(rs: RecordSpec, header_file: str) -> str:
    """Cython declarations of :func:`generate_wire_header`'s output."""
    ctypes = sorted({f.kind.ctype for m in rs.messages for f in m.fields if not f.kind.text})
    out = [f"# {rs.banner}", "from libc.stdint cimport " + ", ".join(sorted(set(ctypes) | {"uint8_t"})), "",
           f'cdef extern from "{header_file}" nogil:']
    every = (_wire_header_message(rs),) + rs.messages
    for m in every:
        out.append(f"    ctypedef struct rxf_{rs.prefix}_wire_{m.name}:")
        out += [f"        {_wire_member(f).rstrip(';')}" for f in m.fields]
    for m in every:
        for f in m.fields:
            ret = ("const char *" if f.size > 1 else "char ") if f.kind.text else f"{f.kind.ctype} "
            out.append(f"    {ret}{accessor_name(rs, m, f.name)}(const uint8_t *p)")
    return "\n".join(out) + "\n"
