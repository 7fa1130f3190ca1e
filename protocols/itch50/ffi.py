"""ITCH 5.0 records and C handler tables for cffi: consume decoded records
in C, inside the nogil loop, from a module built with cffi's API mode.

::

    import cffi
    from rxfeed.protocols.itch50 import ffi as itch_ffi

    ffi = cffi.FFI()
    ffi.cdef(itch_ffi.HANDLERS_CDEF)      # ABI + every record struct + handler table
    ffi.cdef("void my_handlers_init(rxf_itch_handlers *h, my_state *st);")
    ffi.set_source("_my_handlers", C_SOURCE, **itch_ffi.build_args())
    ...
    table = ffi.new("rxf_itch_handlers *")
    lib.my_handlers_init(table, state)
    decoder.add_handlers(itch_ffi.handlers_capsule(ffi, table))

``C_SOURCE`` includes ``"itch50_handlers.h"`` (which brings ``itch50_wire.h``).
Per type a table takes the decoded record (``table.on[t]``) or a wire view
(``table.wire[t]``: ``void f(void *ctx, const uint8_t *msg, uint32_t len,
const rxf_itch_meta *meta)``, read with the generated inline accessors such
as ``itch_add_order_price(msg)``: no decode, no copy; ``len`` is the type's
wire length, checked before the call). The record structs in the cdef
are the generated ones, field for field (from :mod:`spec` through the same
code that writes ``_records.h``), so cffi's compile step checks every size and
offset against the C compiler once more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rxfeed import ffi as rxffi

from . import codegen, spec

_HERE = Path(__file__).resolve().parent

#: Capsule name of a handler table (kept alive here: capsules store the pointer).
HANDLERS_CAPSULE_NAME = b"rxfeed.itch50.handlers.v1"
HANDLERS_VERSION = 1


def _records_cdef() -> str:
    """The header struct, every record struct and the record union."""
    out = ["typedef struct rxf_itch_header { char type; uint8_t _pad0; uint16_t stock_locate;",
           "    uint16_t tracking_number; uint16_t _pad1; uint64_t timestamp; } rxf_itch_header;"]
    for m in spec.MESSAGES:
        members = " ".join(f"{ctype} {decl};" for ctype, decl, _ in codegen.struct_members(m))
        out.append(f"typedef struct rxf_itch_{m.name} {{ {members} }} rxf_itch_{m.name};")
    members = " ".join(f"rxf_itch_{m.name} {m.name};" for m in spec.MESSAGES)
    out.append(f"typedef union rxf_itch_record {{ rxf_itch_header hdr; {members} "
               f"uint64_t _align[{codegen.RECORDS.max_record_size // 8}]; }} rxf_itch_record;")
    return "\n".join(out) + "\n"


#: cffi ``cdef`` text: rxfeed's ABI, the ITCH records and the handler table.
HANDLERS_CDEF: str = (rxffi.ABI_CDEF + _records_cdef()
                      + (_HERE / "itch50_handler_types.h").read_text())


def build_args(**extra: Any) -> dict[str, Any]:
    """Keyword arguments for ``ffi.set_source``: include directories for
    ``rxfeed/abi.h`` and ``itch50_handlers.h``, merged with ``extra``."""
    return rxffi.build_args(**{**extra, "include_dirs": [str(_HERE), *extra.get("include_dirs", [])]})


def handlers_capsule(ffi: Any, table: Any) -> Any:
    """The ``rxfeed.itch50.handlers.v1`` capsule of a cffi ``rxf_itch_handlers *``
    (``version``/``struct_size`` are set here if left zero)."""
    if ffi.typeof(table) is not ffi.typeof("rxf_itch_handlers *"):
        raise TypeError(f"expected a cffi 'rxf_itch_handlers *', got {ffi.typeof(table).cname}")
    if table.version == 0 and table.struct_size == 0:
        table.version, table.struct_size = HANDLERS_VERSION, ffi.sizeof("rxf_itch_handlers")
    return rxffi.make_capsule(ffi, table, HANDLERS_CAPSULE_NAME, "rxf_itch_handlers")
