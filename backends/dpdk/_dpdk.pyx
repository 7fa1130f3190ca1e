# cython: language_level=3, boundscheck=False, wraparound=False
"""DPDK receive queues exported through the rxfeed C ABI (see dpdk_rx.c)."""
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport fill_backend_ops, RXF_BACKEND_CAPSULE

from rxfeed.backend_base import check_filter_count, net_drops

#: RXF_FILTER_MAX of rxfeed/net.h, the size of the filter arrays.
FILTER_MAX = RXF_FILTER_MAX
#: groups and SSM sources per group the NIC-side IGMP responder holds (rxfeed/igmp.h)
IGMP_MAX_GROUPS = RXF_IGMP_MAX_GROUPS
IGMP_MAX_SOURCES = RXF_IGMP_MAX_SOURCES
_EAL_ARGS = None


def version() -> str:
    """The DPDK version this extension is linked against."""
    return rxf_dpdk_version().decode()


def eal_args():
    """The arguments EAL was started with in this process, or None."""
    return _EAL_ARGS


def eal_init(args):
    """Start DPDK's EAL with ``args`` (argv without the program name).

    EAL can start once per process. Calling again with the same arguments is a
    no-op; with different ones it raises, saying so."""
    global _EAL_ARGS
    args = [str(a) for a in args]
    if _EAL_ARGS is not None:
        if args != _EAL_ARGS:
            raise RuntimeError("DPDK's EAL is already running in this process with "
                               f"{' '.join(_EAL_ARGS)!r}; it can start only once per process "
                               "(run another backend configuration in a new process)")
        return
    argv_b = [b"rxfeed"] + [a.encode() for a in args]
    cdef int argc = len(argv_b)
    cdef char **argv = <char **>malloc((argc + 1) * sizeof(char *))
    cdef char err[256]
    if argv == NULL:
        raise MemoryError()
    try:
        for i, a in enumerate(argv_b):
            argv[i] = a
        argv[argc] = NULL
        if rxf_dpdk_eal_init(argc, argv, err, sizeof(err)) != 0:
            raise RuntimeError(f"{err.decode(errors='replace')} (EAL arguments: {' '.join(args)})")
    finally:
        free(argv)
    _EAL_ARGS = args


_FLOW_MODES = {"off": RXF_FLOW_OFF, "auto": RXF_FLOW_AUTO, "on": RXF_FLOW_ON}


cdef _fill_flow(rxf_flow_cfg *f, filters, unsigned int nq, str rules, str isolate, queues, bint rss):
    """The flow set-up of dpdk_flow.h: ``filters`` as (ip, port) pairs (0 = any),
    filter i to ``queues[i]`` (default: i modulo the queue count)."""
    filters, queues = list(filters), list(queues)
    check_filter_count(filters)
    memset(f, 0, sizeof(rxf_flow_cfg))
    if queues and len(queues) != len(filters):
        raise ValueError(f"flow_queues has {len(queues)} entries for {len(filters)} filters")
    if rules not in _FLOW_MODES or isolate not in _FLOW_MODES:
        raise ValueError(f"flow_rules {rules!r} / flow_isolate {isolate!r}: each is one of auto, on, off")
    f.rules, f.isolate, f.rss = _FLOW_MODES[rules], _FLOW_MODES[isolate], rss
    for i, (ip, prt) in enumerate(filters):
        f.dst.ip[i], f.dst.port[i] = ip, prt
        f.queue[i] = queues[i] if queues else i % max(nq, 1)
    f.dst.n = len(filters)


def set_isolating_drivers(names) -> None:
    """The PMDs ``flow_isolate = "auto"`` isolates when rules are to be
    installed: substrings of the driver name (default ``["mlx5"]``). For
    another bifurcated driver, and for tests (net_tap can isolate)."""
    joined = ",".join(names).encode()
    if rxf_flow_set_isolating_drivers(joined) != 0:
        raise ValueError(f"driver names {joined!r}: at most 127 bytes together")


def flow_rule_texts(filters, unsigned int rx_queues=1, flow_queues=(), bint rss=False) -> list:
    """The rte_flow rules the device would install for ``filters`` ((ip, port)
    pairs, 0 = any), in testpmd syntax, read back from the built rte_flow items
    and actions (dpdk_flow.c). Needs no EAL."""
    cdef rxf_flow_cfg f
    cdef char out[512]
    _fill_flow(&f, filters, rx_queues, "auto", "auto", flow_queues, rss)
    texts = []
    for i in range(f.dst.n):
        if rxf_flow_describe(&f, i, rx_queues, out, sizeof(out)) != 0:
            raise ValueError(f"rule {i}: queue {f.queue[i]} is not one of {rx_queues} RX queues")
        texts.append(out.decode())
    return texts


cdef int _rx(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil:
    return rxf_dpdk_rx_burst(ctx, pkts, max)


cdef void _rel(void *ctx, rxf_packet *pkts, uint32_t n) noexcept nogil:
    rxf_dpdk_release(ctx, pkts, n)


cdef const char *_err(void *ctx) noexcept nogil:
    return rxf_dpdk_last_error(ctx)


cdef class DpdkDevice:
    """A started DPDK port with ``rx_queues`` RX queues (RSS over them when > 1).
    EAL must be running. :meth:`queue` gives the poller of one queue."""

    def __cinit__(self, port, unsigned int rx_queues=1, unsigned int rx_desc=1024, unsigned int tx_desc=512,
                  unsigned int pool_size=8191, unsigned int pool_cache=256, bint promiscuous=True,
                  bint all_multicast=True, unsigned long long expected_frames=0, double idle_timeout_s=0.0,
                  double nic_ts_unit_ns=1.0, filters=(), str flow_rules="auto", str flow_isolate="auto",
                  flow_queues=(), bint flow_rss=False):
        cdef rxf_dpdk_cfg cfg
        if not rxf_dpdk_eal_ready():
            raise RuntimeError("DPDK's EAL is not running: call eal_init() first")
        self._name = port.encode() if isinstance(port, str) else b""
        cfg.port_name = self._name
        cfg.port_id = port if isinstance(port, int) else 0
        cfg.rx_queues = rx_queues
        cfg.rx_desc = rx_desc
        cfg.tx_desc = tx_desc
        cfg.pool_size = pool_size
        cfg.pool_cache = pool_cache
        cfg.promiscuous = promiscuous
        cfg.all_multicast = all_multicast
        cfg.expected_frames = expected_frames
        cfg.idle_timeout_s = idle_timeout_s
        cfg.nic_ts_unit_ns = nic_ts_unit_ns
        _fill_flow(&cfg.flow, filters, rx_queues, flow_rules, flow_isolate, flow_queues, flow_rss)
        self._queues = []
        self.membership = None
        self.d = <rxf_dpdk_dev *>calloc(1, sizeof(rxf_dpdk_dev))
        if self.d == NULL:
            raise MemoryError()
        if rxf_dpdk_dev_open(self.d, &cfg) != 0:
            msg = self.d.error.decode(errors="replace")
            rxf_dpdk_dev_close(self.d)
            free(self.d)
            self.d = NULL
            raise RuntimeError(msg)
        self.is_open = True

    def __dealloc__(self):
        if self.d != NULL:
            if self.is_open:
                rxf_dpdk_igmp_leave(self.d.igmp)
                rxf_dpdk_dev_close(self.d)
            rxf_dpdk_igmp_free(self.d.igmp)
            free(self.d)

    def driver(self):
        """``(PMD name, kernel interface index or 0)`` of the port."""
        cdef unsigned if_index = 0
        name = rxf_dpdk_driver_name(self.d.port, &if_index).decode()
        return name, if_index

    def igmp_start(self, groups, unsigned int version=3, unsigned int source_ip=0, unsigned int robustness=2,
                   double interval_s=1.0):
        """Send IGMP from TX queue 0 (``nic`` mode): ``groups`` is
        ``[(group, (source, ...)), ...]`` in host order. Before :meth:`queue`
        (the pollers pick the responder up when they are made)."""
        cdef rxf_dpdk_igmp_cfg cfg
        cdef char err[256]
        if self._queues or self.d.igmp != NULL:
            raise RuntimeError("igmp_start: call it once, before the queues' pollers are made")
        groups = list(groups)
        if len(groups) > RXF_IGMP_MAX_GROUPS:
            raise ValueError(f"IGMP: at most {RXF_IGMP_MAX_GROUPS} groups; got {len(groups)}")
        memset(&cfg, 0, sizeof(cfg))
        cfg.version, cfg.robustness, cfg.interval_s, cfg.src_ip = version, robustness, interval_s, source_ip
        for i, (group, sources) in enumerate(groups):
            if len(sources) > RXF_IGMP_MAX_SOURCES:
                raise ValueError(f"IGMP: at most {RXF_IGMP_MAX_SOURCES} sources per group; got {len(sources)}")
            cfg.groups[i].group = group
            cfg.groups[i].nsrc = len(sources)
            for k, src in enumerate(sources):
                cfg.groups[i].src[k] = src
        cfg.ngroups = len(groups)
        self.d.igmp = rxf_dpdk_igmp_open(self.d.port, &cfg, err, sizeof(err))
        if self.d.igmp == NULL:
            raise RuntimeError(err.decode(errors="replace"))

    def igmp_counters(self) -> dict:
        """The NIC-side responder's counters (empty unless :meth:`igmp_start` ran)."""
        cdef rxf_dpdk_igmp *g = self.d.igmp if self.d != NULL else NULL
        if g == NULL:
            return {}
        s = g.st.stats
        return {"version": g.st.version, "reports_sent": s.reports_sent, "queries_seen": s.queries_seen,
                "queries_answered": s.queries_answered, "leaves_sent": s.leaves_sent, "tx_failed": s.tx_failed,
                "bad_queries": s.bad_queries, "queries_handed_over": rxf_dpdk_igmp_handover(g, 0),
                "queries_dropped": rxf_dpdk_igmp_handover(g, 1)}

    @property
    def rx_queues(self) -> int:
        return self.d.nq

    @property
    def numa_mismatch(self) -> bool:
        """True when the polling core and the port sit on different NUMA nodes."""
        return bool(self.d.numa_mismatch)

    def flow_steering(self) -> dict:
        """What dpdk_flow.c did: ``mode`` "rte_flow" (rules installed) or
        "software" (the queues' filters only), ``rules`` created, ``isolated``,
        and ``reason``: why software only / not isolated ("" when all went as asked)."""
        f = self.d.flow
        return {"mode": "rte_flow" if f.steering else "software", "rules": f.rules, "isolated": bool(f.isolated),
                "reason": f.reason.decode(errors="replace")}

    def queue(self, unsigned int q, filters=()):
        """The poller of RX queue ``q`` (one per thread/lcore)."""
        if q >= self.d.nq:
            raise ValueError(f"queue {q}: the port has {self.d.nq} RX queues")
        dq = DpdkQueue(self, q, filters)
        self._queues.append(dq)
        return dq

    def nic_stats(self) -> dict:
        cdef uint64_t nic[6]
        if not self.is_open or rxf_dpdk_nic_stats(self.d, nic) != 0:
            return {}
        return {"ipackets": nic[0], "imissed": nic[1], "ierrors": nic[2], "rx_nombuf": nic[3], "ibytes": nic[4]}

    def close(self):
        if self.is_open:
            for dq in self._queues:
                dq.drain()
            with nogil:
                rxf_dpdk_igmp_leave(self.d.igmp)  # the pollers have stopped; the port still runs
            rxf_dpdk_dev_close(self.d)
            self.is_open = False
        if self.membership is not None:
            self.membership.close()  # kernel mode: the sockets (the kernel sends the leaves)


cdef class DpdkQueue:
    """One RX queue's poller, exported as an rxfeed backend capsule."""

    def __cinit__(self, DpdkDevice device, unsigned int q, filters=()):
        self.device = device
        self.p = <rxf_dpdk_queue *>calloc(1, sizeof(rxf_dpdk_queue))
        if self.p == NULL:
            raise MemoryError()
        rxf_dpdk_queue_init(self.p, device.d, q)
        filters = list(filters)
        check_filter_count(filters)  # the C arrays' bound (config validation says so first)
        for i, (ip, prt) in enumerate(filters):
            self.p.filter.ip[i] = ip
            self.p.filter.port[i] = prt
        self.p.filter.n = len(filters)
        fill_backend_ops(&self.ops, self.p, _rx, _rel, _err)

    def __dealloc__(self):
        if self.p != NULL:
            free(self.p)

    def capsule(self):
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    def drain(self):
        """Give back the mbufs of the last burst (before the device closes)."""
        rxf_dpdk_queue_drain(self.p)

    def close(self):
        """Give back held mbufs; the device (shared by its queues) closes on its own."""
        if self.device.is_open:
            rxf_dpdk_queue_drain(self.p)

    def stats(self) -> dict:
        s = self.p.stats
        drops = net_drops(s.drops, filtered=s.filtered)
        out = {"port": self.p.port, "queue": self.p.queue, "bursts": s.bursts, "frames": s.frames,
               "packets": s.packets, "bytes": s.bytes, "nic_timestamps": self.p.ts_offset >= 0,
               "nic_stamped": s.nic_stamped}
        nic = self.device.nic_stats()
        if nic:
            out["nic"] = nic
            for k in ("imissed", "ierrors", "rx_nombuf"):
                if nic[k]:
                    drops["nic_" + k] = nic[k]
        out["drops"] = drops
        return out
