# cython: language_level=3, boundscheck=False, wraparound=False
"""Several native backends read as one (rxfeed/lines.h), exported through the C ABI."""
from libc.stdlib cimport calloc, free
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport fill_backend_ops, RXF_BACKEND_CAPSULE

from rxfeed._runloop import backend_table

_STATES = ("running", "eof", "error")


cdef class LinesReader:
    """Read the backend capsules ``capsules`` (their tables must outlive this
    object: it keeps the capsules) as one, round robin; a line silent for
    ``silence_s`` seconds is counted down (0: never)."""

    def __cinit__(self, list capsules, double silence_s=1.0):
        cdef uint32_t i
        if not 1 <= len(capsules) <= RXF_LINES_MAX:
            raise ValueError(f"lines: between 1 and {RXF_LINES_MAX} backends, got {len(capsules)}")
        if silence_s < 0:
            raise ValueError(f"lines: silence_s must be >= 0, got {silence_s}")
        self.ls = <rxf_lines *>calloc(1, sizeof(rxf_lines))
        if self.ls == NULL:
            raise MemoryError()
        self.capsules = list(capsules)
        for i, cap in enumerate(self.capsules):
            self.ls.line[i].ops = <const rxf_backend_ops *><size_t>backend_table(cap)
        self.ls.n = len(capsules)
        self.ls.silence_ns = <uint64_t>(silence_s * 1e9)
        fill_backend_ops(&self.ops, self.ls, rxf_lines_rx_burst, rxf_lines_release, rxf_lines_last_error)

    def __dealloc__(self):
        free(self.ls)

    def capsule(self):
        """The combined backend table (valid while this object lives)."""
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    def line_stats(self) -> list:
        """Per line: packets, bursts, state (running/eof/error), error, down, downs, ups,
        and the age of its last packet in seconds (None before the first)."""
        cdef uint32_t i
        cdef uint64_t now = rxf_lines_now()
        out = []
        for i in range(self.ls.n):
            l = &self.ls.line[i]
            out.append({"packets": l.packets, "bursts": l.bursts, "state": _STATES[l.state],
                        "error": l.error.decode(errors="replace") or None, "down": bool(l.down),
                        "downs": l.downs, "ups": l.ups,
                        "last_packet_age_s": (now - l.last_ns) / 1e9 if l.last_ns and now >= l.last_ns else None})
        return out
