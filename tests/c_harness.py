"""Build a small C test harness with cffi (API mode) against rxfeed's headers.

``scripts/sanitize.sh`` sets ``RXFEED_HARNESS_CFLAGS`` so the harnesses are
built with ASan+UBSan too."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import cffi

import rxfeed

# C for harnesses that record what they see: append v to a growing array (*a, *n, *cap); needs <stdlib.h>
C_PUSH_U64 = r"""
static void push(uint64_t **a, size_t *n, size_t *cap, uint64_t v) {
    if (*n == *cap) { *cap = *cap ? *cap * 2 : 1024; *a = realloc(*a, *cap * sizeof(uint64_t)); }
    (*a)[(*n)++] = v;
}
"""


def build_module(name: str, cdef: str, source: str, **set_source: Any) -> Any:
    """Compile ``source`` exposing ``cdef`` as module ``name`` (cffi API mode,
    ``set_source`` keyword arguments as given) in a temporary directory,
    import it, and remove the directory."""
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(name, source, **set_source)
    out = Path(tempfile.mkdtemp(prefix=name))
    ffi.compile(tmpdir=str(out))
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(out))
        shutil.rmtree(out, ignore_errors=True)  # the loaded library stays mapped; nothing piles up in /tmp


def build_harness(name: str, cdef: str, source: str, include_dirs: list[str] | None = None) -> Any:
    """A test harness: :func:`build_module` against rxfeed's headers with
    -Wall -Werror (and the sanitizers under ``scripts/sanitize.sh``)."""
    sanitize = os.environ.get("RXFEED_HARNESS_CFLAGS", "").split()
    return build_module(name, cdef, source, include_dirs=[rxfeed.get_include(), *(include_dirs or [])],
                        extra_compile_args=["-O1", "-Wall", "-Werror", "-Wno-unused-function", *sanitize],
                        extra_link_args=sanitize)


def own_sanitizer_env() -> dict[str, str]:
    """The environment for a test binary built with its own sanitizer runtime
    (gcc -fsanitize=...): without a preloaded one (the sanitizer job preloads
    clang's, and two ASan runtimes in one process abort)."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
