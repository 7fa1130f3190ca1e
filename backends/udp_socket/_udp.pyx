# cython: language_level=3, boundscheck=False, wraparound=False
"""Kernel UDP socket receiver exported through the rxfeed C ABI (udp_rx.c)."""
from libc.stdlib cimport calloc, free
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport fill_backend_ops, RXF_BACKEND_CAPSULE

from rxfeed.backend_base import check_filter_count


cdef int _rx(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil:
    return rxf_udp_rx_burst(ctx, pkts, max)


cdef const char *_err(void *ctx) noexcept nogil:
    return rxf_udp_last_error(ctx)


cdef class UdpReceiver:
    """One socket bound to ``port``, joined to ``groups`` ((group, source) in host order)."""

    def __cinit__(self, unsigned int port, groups=(), unsigned int iface_addr=0, int iface_index=0,
                  int rcvbuf=0, int busy_poll_us=0, bint blocking=False, double idle_timeout_s=0.0):
        cdef rxf_udp_cfg cfg
        groups = list(groups)
        check_filter_count(groups)  # the C arrays' bound (config validation says so first)
        cfg.port = port
        cfg.n_groups = len(groups)
        for i, (g, s) in enumerate(groups):
            cfg.group[i] = g
            cfg.source[i] = s
        cfg.iface_addr = iface_addr
        cfg.iface_index = iface_index
        cfg.rcvbuf = rcvbuf
        cfg.busy_poll_us = busy_poll_us
        cfg.blocking = blocking
        cfg.idle_timeout_s = idle_timeout_s
        self.u = <rxf_udp *>calloc(1, sizeof(rxf_udp))
        if self.u == NULL:
            raise MemoryError()
        if rxf_udp_open(self.u, &cfg) != 0:
            msg = self.u.error.decode(errors="replace")
            rxf_udp_close(self.u)
            free(self.u)
            self.u = NULL
            raise RuntimeError(msg)
        self.is_open = True
        fill_backend_ops(&self.ops, self.u, _rx, NULL, _err)

    def __dealloc__(self):
        if self.u != NULL:
            if self.is_open:
                rxf_udp_close(self.u)
            free(self.u)

    def capsule(self):
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    def stats(self) -> dict:
        s = self.u.stats
        drops = {}
        if s.kernel_drops:
            drops["socket_overflow"] = s.kernel_drops
        if s.truncated:
            drops["truncated"] = s.truncated
        return {"recvmmsg_calls": s.calls, "packets": s.packets, "bytes": s.bytes,
                "socket_drops": s.kernel_drops, "drops": drops}

    def close(self):
        if self.is_open:
            rxf_udp_close(self.u)
            self.is_open = False
