"""cffi (API mode) build scripts, named in setup.py's ``cffi_modules``.

Each builder declares rxfeed's C ABI (``rxfeed.ffi.ABI_CDEF``, or the ITCH
handler declarations that include it) plus this package's own functions,
and compiles the package's ``.c`` file against rxfeed's headers
(``build_args()`` gives the include directories). setuptools runs this
from the project directory, so the source paths are relative to it.
"""
import cffi

import rxfeed.ffi
from rxfeed.protocols.itch50 import ffi as itch_ffi

PKG = "rxfeed_cffi_example"

READER_CDEF = """
typedef struct rxcf_reader { uint64_t packets, bytes; size_t len, pos; char error[128]; ...; } rxcf_reader;
int rxcf_reader_open(rxcf_reader *r, rxf_backend_ops *ops, const uint8_t *buf, size_t len, uint32_t loops);
void rxcf_reader_close(rxcf_reader *r);
"""

TALLY_CDEF = """
typedef struct rxcf_tally { uint64_t by_type[256]; uint64_t add_shares; uint64_t last_sequence; } rxcf_tally;
void rxcf_tally_init(rxf_itch_handlers *h, rxcf_tally *t);
"""

reader_builder = cffi.FFI()
reader_builder.cdef(rxfeed.ffi.ABI_CDEF + READER_CDEF)
reader_builder.set_source(f"{PKG}._reader", '#include "reader.h"', sources=[f"{PKG}/reader.c"],
                          **rxfeed.ffi.build_args(include_dirs=[PKG]))

tally_builder = cffi.FFI()
tally_builder.cdef(itch_ffi.HANDLERS_CDEF + TALLY_CDEF)
tally_builder.set_source(f"{PKG}._tally", '#include "tally.h"', sources=[f"{PKG}/tally.c"],
                         **itch_ffi.build_args(include_dirs=[PKG]))

