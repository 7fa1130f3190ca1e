from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from rxfeed_abi cimport rxf_backend_ops, rxf_packet

cdef extern from "faults.h" nogil:
    enum: RXF_FAULT_NKINDS
    enum: RXF_FAULTS_MAX_BURST
    ctypedef struct rxf_faults_cfg:
        uint64_t seed
        double rate[6]
        uint32_t reorder_max
        uint64_t delay_ns
        int64_t kill_after_ns
        int64_t kill_after_packets
        uint32_t hold_max
        uint64_t arena_bytes
    ctypedef struct rxf_faults_stats:
        uint64_t inner, delivered, dropped, duplicated, reordered, delayed, truncated, corrupted
        uint64_t killed_after, no_room, held_peak, killed
    ctypedef struct rxf_faults:
        pass
    rxf_faults *rxf_faults_new(const rxf_backend_ops *inner, const rxf_faults_cfg *cfg, const char **why)
    void rxf_faults_close(rxf_faults *f)
    void rxf_faults_free(rxf_faults *f)
    void rxf_faults_ops(rxf_faults *f, rxf_backend_ops *ops)
    const rxf_faults_stats *rxf_faults_get_stats(const rxf_faults *f)
    uint64_t rxf_faults_held(const rxf_faults *f)
    uint64_t rxf_faults_next(uint64_t *state)


cdef class FaultInjector:
    cdef rxf_faults *f
    cdef rxf_backend_ops ops
    cdef object inner_owner
