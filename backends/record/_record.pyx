# cython: language_level=3, boundscheck=False, wraparound=False
"""Native live-capture wrapper exported through the rxfeed C ABI (record.c)."""
from libc.stdint cimport uint64_t
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer, PyCapsule_IsValid
from rxfeed_abi cimport rxf_backend_ops, rxf_packet, fill_backend_ops, RXF_BACKEND_CAPSULE, RXF_ABI_VERSION
from libc.stdint cimport uint32_t
from rxfeed._runloop import backend_table

cdef extern from "record.h" nogil:
    enum: RXF_RECORD_MAX_PAYLOAD
    ctypedef struct rxf_record_cfg:
        const char *dir
        const char *prefix
        uint64_t ring_bytes, rotate_bytes, rotate_ns
    ctypedef struct rxf_record_stats:
        uint64_t seen, queued, overflow_packets, overflow_bytes, too_big, packets, bytes, file_bytes
        uint64_t files, write_errors, lost_to_error, after_error, ring_peak
    ctypedef struct rxf_record:
        pass
    rxf_record *rxf_record_new(const rxf_backend_ops *inner, const rxf_record_cfg *cfg, const char **why)
    int rxf_record_drain(rxf_record *r, uint64_t timeout_ns)
    void rxf_record_stop(rxf_record *r)
    void rxf_record_free(rxf_record *r)
    int rxf_record_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) noexcept
    void rxf_record_release(void *ctx, rxf_packet *pkts, uint32_t n) noexcept
    const char *rxf_record_last_error(void *ctx) noexcept
    void rxf_record_get_stats(const rxf_record *r, rxf_record_stats *out)
    const char *rxf_record_error(const rxf_record *r)

#: Largest payload recorded (an IPv4 UDP datagram's); longer ones are counted ``too_big``.
MAX_PAYLOAD = RXF_RECORD_MAX_PAYLOAD


cdef const rxf_backend_ops *_inner_ops(capsule) except NULL:
    """The inner backend's table, checked as a run checks it (name, ABI, rx_burst)."""
    return <const rxf_backend_ops *><size_t>backend_table(capsule)


cdef class Recorder:
    """The wrapper table around ``inner_capsule`` (whose owner ``owner`` is
    kept alive as long as this object). Creating it opens the first file
    and starts the writer thread; :meth:`stop` ends it."""

    cdef rxf_record *r
    cdef rxf_backend_ops ops
    cdef object inner_owner

    def __cinit__(self, inner_capsule, owner, str directory, str prefix, unsigned long long ring_bytes,
                  unsigned long long rotate_bytes, unsigned long long rotate_ns):
        cdef rxf_record_cfg cfg
        cdef const char *why = NULL
        cdef const rxf_backend_ops *inner = _inner_ops(inner_capsule)
        d, p = directory.encode(), prefix.encode()
        cfg.dir, cfg.prefix = d, p
        cfg.ring_bytes, cfg.rotate_bytes, cfg.rotate_ns = ring_bytes, rotate_bytes, rotate_ns
        self.r = rxf_record_new(inner, &cfg, &why)
        if self.r == NULL:
            raise OSError(why.decode(errors="replace"))
        self.inner_owner = (owner, inner_capsule)
        fill_backend_ops(&self.ops, <void *>self.r, rxf_record_rx_burst, rxf_record_release, rxf_record_last_error)

    def __dealloc__(self):
        rxf_record_free(self.r)

    def capsule(self):
        """The wrapper's table (valid while this object lives)."""
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    def drain(self, double timeout_s=10.0) -> bool:
        """Wait until everything queued so far is written and flushed (not from the loop)."""
        cdef uint64_t t = <uint64_t>(timeout_s * 1e9)
        with nogil:
            rc = rxf_record_drain(self.r, t)
        return rc == 0

    def stop(self):
        """Write what is queued, fsync and close the file, end the writer (idempotent)."""
        with nogil:
            rxf_record_stop(self.r)

    def error(self) -> str:
        """The write error that stopped recording, or ""."""
        return rxf_record_error(self.r).decode(errors="replace")

    def stats(self) -> dict:
        """Packets seen, recorded, lost to overflow; files, bytes, errors."""
        cdef rxf_record_stats s
        rxf_record_get_stats(self.r, &s)
        return {"seen": s.seen, "recorded_packets": s.packets, "recorded_bytes": s.bytes,
                "overflow_packets": s.overflow_packets, "overflow_bytes": s.overflow_bytes,
                "too_big": s.too_big, "queued": s.queued, "pending": max(0, int(s.queued) - int(s.packets) - int(s.lost_to_error)),
                "files": s.files, "file_bytes": s.file_bytes, "write_errors": s.write_errors,
                "lost_to_error": s.lost_to_error, "after_error": s.after_error, "ring_peak_bytes": s.ring_peak}
