# cython: language_level=3, boundscheck=False, wraparound=False
"""Native fault injector exported through the rxfeed C ABI (a pure-Python
inner backend comes as a table from rxfeed._pysource)."""
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport RXF_BACKEND_CAPSULE

from rxfeed._runloop import backend_table

#: Fault kinds with a rate, in the order of the C ``rate[]`` array.
KINDS = ("drop", "duplicate", "reorder", "delay", "truncate", "corrupt")


cdef const rxf_backend_ops *_inner_ops(capsule) except NULL:
    """The inner backend's table, checked as a run checks it (name, ABI, rx_burst)."""
    return <const rxf_backend_ops *><size_t>backend_table(capsule)


cdef class FaultInjector:
    """The wrapper table around ``inner_capsule`` (whose owner ``owner`` is
    kept alive as long as this object).

    :param rates: one per :data:`KINDS`, each 0..1.
    :param kill_after_ns / kill_after_packets: -1 for never.
    """

    def __cinit__(self, inner_capsule, owner, rates, unsigned long long seed, unsigned int reorder_max,
                  unsigned long long delay_ns, long long kill_after_ns, long long kill_after_packets,
                  unsigned int hold_max, unsigned long long arena_bytes):
        cdef rxf_faults_cfg cfg
        cdef const char *why = NULL
        cdef const rxf_backend_ops *inner = _inner_ops(inner_capsule)
        if len(rates) != RXF_FAULT_NKINDS:
            raise ValueError(f"faults: {RXF_FAULT_NKINDS} rates expected")
        cfg.seed = seed
        for i, r in enumerate(rates):
            cfg.rate[i] = r
        cfg.reorder_max, cfg.delay_ns = reorder_max, delay_ns
        cfg.kill_after_ns, cfg.kill_after_packets = kill_after_ns, kill_after_packets
        cfg.hold_max, cfg.arena_bytes = hold_max, arena_bytes
        self.f = rxf_faults_new(inner, &cfg, &why)
        if self.f == NULL:
            raise ValueError(why.decode())
        self.inner_owner = (owner, inner_capsule)
        rxf_faults_ops(self.f, &self.ops)

    def __dealloc__(self):
        rxf_faults_free(self.f)

    def close(self):
        """Give the inner backend back its last burst and drop what is held
        (before the inner backend closes); the table then ends at once."""
        rxf_faults_close(self.f)

    def capsule(self):
        """The wrapper's table (valid while this object lives)."""
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    def stats(self) -> dict:
        """Faults injected by kind, packets in and out, and what is held now."""
        cdef const rxf_faults_stats *s = rxf_faults_get_stats(self.f)
        return {"inner_packets": s.inner, "delivered": s.delivered, "dropped": s.dropped,
                "duplicated": s.duplicated, "reordered": s.reordered, "delayed": s.delayed,
                "truncated": s.truncated, "corrupted": s.corrupted, "killed_after": s.killed_after,
                "killed": bool(s.killed), "no_room": s.no_room, "held": rxf_faults_held(self.f),
                "held_peak": s.held_peak}


def prng_sequence(unsigned long long seed, int n):
    """The first ``n`` outputs of the C PRNG (splitmix64) from ``seed`` (tests)."""
    cdef uint64_t s = seed
    return [rxf_faults_next(&s) for _ in range(n)]
