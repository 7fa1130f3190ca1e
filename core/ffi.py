"""The cffi route for C plugins: rxfeed's C ABI as a cffi declaration, and
the step from a cffi-built function table to the PyCapsule the run loop takes.

A backend (or decoder) written in C and built with cffi's API mode needs no
Cython and no hand-written CPython module::

    import cffi, rxfeed.ffi

    ffi = cffi.FFI()
    ffi.cdef(rxfeed.ffi.ABI_CDEF)                 # rxf_packet, rxf_backend_ops, ...
    ffi.cdef("void my_backend_init(rxf_backend_ops *ops, ...);")
    ffi.set_source("_my_backend", C_SOURCE, **rxfeed.ffi.build_args())
    ffi.compile()

    ops = ffi.new("rxf_backend_ops *")
    lib.my_backend_init(ops, ...)
    capsule = rxfeed.ffi.backend_capsule(ffi, ops)   # for RxBackend.native_capsule()

The run loop calls the C functions in the table directly, without the GIL;
Python is not involved per packet. ``ops`` (and whatever ``ctx`` points at)
must stay alive while the capsule is used: keep them on the backend object.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path
from typing import Any

from . import get_include

_INCLUDE = Path(get_include())


def _abi_constants() -> str:
    """``#define NAME ...`` for every integer constant of ``rxfeed/abi.h``
    (cffi's API mode takes each value from the compiler)."""
    text = (_INCLUDE / "rxfeed" / "abi.h").read_text()
    names = re.findall(r"^#define (RXF_\w+) (?!\")", text, re.M)
    return "\n".join(f"#define {n} ..." for n in names) + "\n"


#: cffi ``cdef`` text of the ABI: integer constants and the three types.
ABI_CDEF: str = _abi_constants() + (_INCLUDE / "rxfeed" / "abi_types.h").read_text()

#: Capsule names (kept alive here: a capsule stores the pointer, not a copy).
BACKEND_CAPSULE_NAME = b"rxfeed.backend_ops.v1"
DECODER_CAPSULE_NAME = b"rxfeed.decoder_ops.v1"

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


def build_args(**extra: Any) -> dict[str, Any]:
    """Keyword arguments for ``ffi.set_source``: rxfeed's include directory
    (so the C source can ``#include "rxfeed/abi.h"``) merged with ``extra``."""
    args = dict(extra)
    args["include_dirs"] = [str(_INCLUDE), *extra.get("include_dirs", [])]
    return args


def make_capsule(ffi: Any, pointer: Any, name: bytes, ctype: str) -> Any:
    """A PyCapsule named ``name`` holding the cffi pointer ``pointer`` to
    ``ctype`` (checked). ``name`` must be a bytes object that outlives the
    capsule (module constants do)."""
    if ffi.typeof(pointer) is not ffi.typeof(f"{ctype} *"):
        raise TypeError(f"expected a cffi '{ctype} *', got {ffi.typeof(pointer).cname}")
    if pointer == ffi.NULL:
        raise ValueError(f"NULL {ctype} pointer")
    return _capsule_new(int(ffi.cast("uintptr_t", pointer)), name, None)


def _check_table(ffi: Any, ops: Any, kind: str, required: str) -> None:
    if ffi.typeof(ops) is not ffi.typeof(f"rxf_{kind}_ops *"):
        raise TypeError(f"expected a cffi 'rxf_{kind}_ops *', got {ffi.typeof(ops).cname}")
    lib_version = ffi.integer_const("RXF_ABI_VERSION")
    if ops.abi_version != lib_version or ops.struct_size != ffi.sizeof(f"rxf_{kind}_ops"):
        raise ValueError(f"{kind} table says ABI {ops.abi_version} (size {ops.struct_size}); "
                         f"set abi_version = RXF_ABI_VERSION and struct_size = sizeof(rxf_{kind}_ops)")
    if getattr(ops, required) == ffi.NULL:
        raise ValueError(f"{kind} table has no {required}")


def backend_capsule(ffi: Any, ops: Any) -> Any:
    """The ``rxfeed.backend_ops.v1`` capsule of a filled cffi ``rxf_backend_ops *``."""
    _check_table(ffi, ops, "backend", "rx_burst")
    return make_capsule(ffi, ops, BACKEND_CAPSULE_NAME, "rxf_backend_ops")


def decoder_capsule(ffi: Any, ops: Any) -> Any:
    """The ``rxfeed.decoder_ops.v1`` capsule of a filled cffi ``rxf_decoder_ops *``."""
    _check_table(ffi, ops, "decoder", "on_burst")
    return make_capsule(ffi, ops, DECODER_CAPSULE_NAME, "rxf_decoder_ops")
