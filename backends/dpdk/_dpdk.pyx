# cython: language_level=3, boundscheck=False, wraparound=False
"""DPDK receive queues exported through the rxfeed C ABI (see dpdk_rx.c)."""
import os

from libc.stdlib cimport calloc, free, malloc
from libc.stdint cimport int64_t, uint32_t, uint64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from libc.string cimport memcpy, memset
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport fill_backend_ops, RXF_BACKEND_CAPSULE

from rxfeed.backend_base import check_filter_count, net_drops

#: RXF_FILTER_MAX of rxfeed/net.h, the size of the filter arrays.
FILTER_MAX = RXF_FILTER_MAX
#: clock_source of rx_ts_ns taken from the TSC
TSC_CLOCK_SOURCE = RXF_DPDK_TSC_SOURCE.decode()
_NIC_TIMESTAMPS = {"off": RXF_DPDK_TS_OFF, "auto": RXF_DPDK_TS_AUTO, "on": RXF_DPDK_TS_ON}
_NIC_TS_FORMATS = {"auto": RXF_DPDK_TSFMT_AUTO, "ticks": RXF_DPDK_TSFMT_TICKS, "ns": RXF_DPDK_TSFMT_NS}
#: the NIC-stamp mode a port with a clock to read starts in, per nic_ts_format (dpdk_rx.c nic_clock)
_NIC_TS_START_MODES = {"auto": RXF_DPDK_NICTS_UNDECIDED, "ticks": RXF_DPDK_NICTS_CLOCK, "ns": RXF_DPDK_NICTS_NS}
#: groups and SSM sources per group the NIC-side IGMP responder holds (rxfeed/igmp.h)
IGMP_MAX_GROUPS = RXF_IGMP_MAX_GROUPS
IGMP_MAX_SOURCES = RXF_IGMP_MAX_SOURCES
_EAL_ARGS = None
_LCORE_ANY = 0xFFFFFFFF


def version() -> str:
    """The DPDK version this extension is linked against."""
    return rxf_dpdk_version().decode()


def runtime_dir() -> str:
    """EAL's runtime directory in this process ("" before EAL starts)."""
    return rxf_dpdk_runtime_dir().decode()


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
def clock_ns(uint64_t hz, uint64_t ticks0, uint64_t epoch_ns0, uint64_t ticks) -> int:
    """Epoch ns of a counter reading under a calibration (``rxf_dpdk_clock_ns``,
    the conversion of TSC and NIC-clock ticks), exported for tests."""
    if hz == 0:
        raise ValueError("hz must be > 0")
    cdef rxf_dpdk_clock c
    c.hz, c.ticks0, c.epoch_ns0 = hz, ticks0, epoch_ns0
    return rxf_dpdk_clock_ns(&c, ticks)


ctypedef struct _FakeClock:
    double hz
    uint64_t offset


cdef int _fake_ticks(void *arg, uint64_t *ticks) noexcept nogil:
    cdef _FakeClock *f = <_FakeClock *>arg
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    ticks[0] = f.offset + <uint64_t>((<double>ts.tv_sec + <double>ts.tv_nsec * 1e-9) * f.hz)
    return 0


def calibrate_fake_clock(double hz, uint64_t offset_ticks, uint64_t interval_ns, uint64_t known_hz=0):
    """Calibrate a stand-in device clock (CLOCK_MONOTONIC x ``hz`` +
    ``offset_ticks``) as a NIC clock is (``rxf_dpdk_clock_calibrate_ticks``),
    for tests. Returns ``(calibrated hz, epoch ns of a fresh reading of it)``."""
    cdef _FakeClock f
    cdef rxf_dpdk_clock c
    cdef uint64_t now
    f.hz, f.offset = hz, offset_ticks
    if rxf_dpdk_clock_calibrate_ticks(&c, _fake_ticks, &f, interval_ns, known_hz) != 0:
        raise RuntimeError("the clock could not be calibrated")
    _fake_ticks(&f, &now)
    return c.hz, rxf_dpdk_clock_ns(&c, now)


def igmp_tx_pools() -> int:
    """The IGMP TX mbuf pools (nic mode, dpdk_igmp.c) that exist in this
    process: one per open device responding; a closed device's is freed."""
    return rxf_dpdk_igmp_pools()


def _nic_ts_format(str fmt) -> int:
    if fmt not in _NIC_TS_FORMATS:
        raise ValueError(f"nic_ts_format {fmt!r}: one of auto, ticks, ns")
    return _NIC_TS_FORMATS[fmt]


def nic_ts_is_ns(uint64_t raw, uint64_t now_ns) -> bool:
    """``nic_ts_format = "auto"``'s test of the first stamped frame: is ``raw``
    ns since the epoch (within a day of ``now_ns``, TAI included) rather than
    device ticks (``rxf_dpdk_nic_ts_is_ns``)? Exported for tests."""
    return bool(rxf_dpdk_nic_ts_is_ns(raw, now_ns))


def nic_ts_convert(str fmt, raws, uint64_t hz, uint64_t ticks0, uint64_t epoch_ns0):
    """The PMD timestamps ``raws`` of one queue of a stand-in port ("net_test",
    with a clock to read, calibrated as ``hz, ticks0, epoch_ns0``) in the order
    they arrive, converted as rx_burst converts them under ``nic_ts_format =
    fmt`` (``rxf_dpdk_nic_ts_ns``). Returns ``([epoch ns, ...], the queue's
    clock_source after them)``. Exported for tests."""
    if hz == 0:
        raise ValueError("hz must be > 0")
    cdef rxf_dpdk_queue *p = <rxf_dpdk_queue *>calloc(1, sizeof(rxf_dpdk_queue))
    if p == NULL:
        raise MemoryError()
    try:
        p.cfg.nic_ts_format = _nic_ts_format(fmt)
        p.cfg.nic_ts_unit_ns = 1.0
        p.nic_ts_mode = _NIC_TS_START_MODES[fmt]
        p.nic_clock.hz, p.nic_clock.ticks0, p.nic_clock.epoch_ns0 = hz, ticks0, epoch_ns0
        memcpy(p.driver, b"net_test", 9)
        rxf_dpdk_describe_nic_ts(p.clock_source, sizeof(p.clock_source), p.nic_ts_mode, &p.cfg, p.driver, hz)
        out = [rxf_dpdk_nic_ts_ns(p, raw) for raw in raws]
        return out, p.clock_source.decode(errors="replace")
    finally:
        free(p)


def thread_tokens(uint32_t n) -> list:
    """The tokens pollers know their thread by, of ``n`` threads run one
    after another, each ended before the next starts (``rxf_dpdk_thread_tokens``).
    Exported for tests: a token never comes back, though a thread's stack
    and TLS addresses do."""
    cdef int rc
    cdef uint64_t *out = <uint64_t *>calloc(max(n, 1), sizeof(uint64_t))
    if out == NULL:
        raise MemoryError()
    try:
        with nogil:
            rc = rxf_dpdk_thread_tokens(out, n)
        if rc != 0:
            raise RuntimeError("pthread_create failed")
        return [out[i] for i in range(n)]
    finally:
        free(out)


def register_current_thread() -> int:
    """Register the calling thread as a DPDK non-EAL lcore; its lcore id.
    Pollers do this themselves; for an application's own threads (and tests)."""
    cdef uint32_t lcore
    if rxf_dpdk_register_thread(&lcore) != 0:
        raise RuntimeError("rte_thread_register failed (no free lcore id?)")
    return lcore


def unregister_current_thread() -> None:
    """Undo :func:`register_current_thread` (in the same thread)."""
    rxf_dpdk_unregister_thread()


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
                  flow_queues=(), bint flow_rss=False, str nic_timestamps="auto", unsigned long long nic_clock_hz=0,
                  bint register_lcore=True, str nic_ts_format="auto"):
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
        cfg.nic_timestamps = _NIC_TIMESTAMPS[nic_timestamps]
        cfg.nic_clock_hz = nic_clock_hz
        cfg.register_lcore = register_lcore
        cfg.nic_ts_format = _nic_ts_format(nic_ts_format)
        self._queues = []
        self.membership = None
        self.d = <rxf_dpdk_dev *>calloc(1, sizeof(rxf_dpdk_dev))
        if self.d == NULL:
            raise MemoryError()
        if rxf_dpdk_dev_open(self.d, &cfg) != 0:
            rxf_dpdk_dev_close(self.d)  # it may add to the error (a port left isolated)
            msg = self.d.error.decode(errors="replace")
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
        return self.d.driver.decode(errors="replace"), self.d.if_index

    def igmp_start(self, groups, unsigned int version=3, unsigned int source_ip=0, unsigned int robustness=2,
                   double interval_s=1.0):
        """Send IGMP from TX queue 0 (``nic`` mode): ``groups`` is
        ``[(group, (source, ...)), ...]`` in host order. Before :meth:`queue`
        (the pollers pick the responder up when they are made)."""
        cdef rxf_dpdk_igmp_cfg cfg
        cdef char err[256]
        if not self.is_open or self._queues or self.d.igmp != NULL or self._igmp_final is not None:
            raise RuntimeError("igmp_start: call it once on an open port, before the queues' pollers are made")
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
        """The NIC-side responder's counters (empty unless :meth:`igmp_start`
        ran); after :meth:`close` their final values (``leaves_sent`` included).
        ``robustness`` is the one in force (the last IGMPv3 query's QRV when
        not 0, else the configured one), ``querier_query_interval_s`` the last
        IGMPv3 query's Query Interval (125 when none or 0)."""
        cdef rxf_dpdk_igmp *g = self.d.igmp if self.d != NULL else NULL
        if g == NULL:
            return dict(self._igmp_final or {})
        s = g.st.stats
        return {"version": g.st.version, "robustness": rxf_igmp_robustness(&g.st),
                "querier_query_interval_s": g.st.querier_qi_s, "reports_sent": s.reports_sent, "queries_seen": s.queries_seen,
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
    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return not self.is_open

    @property
    def port_socket(self) -> int:
        """The port's NUMA socket (-1: unknown, e.g. a virtual device)."""
        return self.d.port_socket

    @property
    def clock_source(self) -> str:
        """Where rx_ts_ns of a frame with a PMD timestamp comes from (others: the TSC)."""
        return self.d.clock_source.decode(errors="replace")

    @property
    def timestamp_offload(self) -> bool:
        """RTE_ETH_RX_OFFLOAD_TIMESTAMP was requested (the port offers it)."""
        return bool(self.d.ts_offload)

    @staticmethod
    def lcore_socket(unsigned int lcore) -> int:
        """The NUMA socket of EAL lcore ``lcore`` (-1: not an EAL lcore)."""
        return rxf_dpdk_lcore_socket(lcore)

    def pool_info(self) -> dict:
        """The port's mbuf pool: size, per-lcore cache size, objects available
        (ring and caches) and in use, socket, and ``cached``: objects in each
        lcore's cache, for the lcores whose cache holds any."""
        cdef int64_t out[5]
        cdef char name[64]
        cdef uint32_t n = rxf_dpdk_max_lcore()
        cdef uint32_t *cached = <uint32_t *>calloc(n, sizeof(uint32_t))
        if cached == NULL:
            raise MemoryError()
        try:
            if not self.is_open or rxf_dpdk_pool_info(self.d, out, cached, n, name, sizeof(name)) != 0:
                return {}
            return {"name": name.decode(errors="replace"), "size": out[0], "cache_size": out[1], "avail": out[2], "in_use": out[3], "socket": out[4],
                    "cached": {i: cached[i] for i in range(n) if cached[i]}}
        finally:
            free(cached)

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
        """Close the port. Call it after the queues' pollers stopped (rxfeed's
        pipelines close their backends only after the run loops returned).
        In nic mode the IGMP leaves go out from here, in this thread, from
        TX queue 0 before the port stops (robustness x up to 0.2 s); should
        queue 0's poller still be polling, it is fenced off first (it does no
        more IGMP; an IGMP step in progress is waited for: dpdk_igmp.h), but
        DPDK does not support stopping a port under a poller. Then the
        responder and its TX pool are freed (after the port closed: its TX
        ring may hold the pool's mbufs until then); its counters stay readable
        (:meth:`igmp_counters`)."""
        if self.is_open:
            for dq in self._queues:
                dq.drain()
            with nogil:
                rxf_dpdk_igmp_leave(self.d.igmp)
            rxf_dpdk_dev_close(self.d)
            self.is_open = False
            self._free_igmp()
        if self.membership is not None:
            self.membership.close()  # kernel mode: the sockets (the kernel sends the leaves)

    cdef _free_igmp(self):
        """Keep the responder's final counters; free it (the port has closed)."""
        if self.d.igmp != NULL:
            self._igmp_final = self.igmp_counters()
            rxf_dpdk_igmp_free(self.d.igmp)
            self.d.igmp = NULL


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

    def lcore_stats(self) -> dict:
        """The polling thread's lcore (set on the first burst) and its use of the pool cache."""
        lc = self.p.lcore
        return {"lcore_id": None if lc.lcore_id == _LCORE_ANY else lc.lcore_id,
                "lcore_registered": bool(lc.registered), "lcore_register_failures": lc.register_failures,
                "poller_socket": lc.socket, "port_socket": self.device.port_socket,
                "pool_cache_len_at_end": lc.cache_len_at_end}

    def lcore_warnings(self) -> list:
        lc = self.p.lcore
        if not lc.register_failures:
            return []
        return [f"DPDK queue {self.p.queue}: the polling thread got no lcore id (rte_thread_register: "
                f"{os.strerror(lc.register_errno)}); its mbuf allocations bypass the mempool cache"]

    def clock_source(self) -> str:
        """The device's clock source, as the frames of this queue got it
        (with ``nic_ts_format = "auto"``'s decision once made)."""
        s = self.p.stats
        source = self.p.clock_source.decode(errors="replace")
        if source == TSC_CLOCK_SOURCE or s.packets == 0:
            return source
        if s.nic_stamped == 0:
            return TSC_CLOCK_SOURCE + " (the PMD stamped no frame)"
        if s.nic_stamped < s.packets:
            return f"{source}; {s.packets - s.nic_stamped} frames without one: {TSC_CLOCK_SOURCE}"
        return source

    def stats(self) -> dict:
        s = self.p.stats
        drops = net_drops(s.drops, filtered=s.filtered)
        out = {"port": self.p.port, "queue": self.p.queue, "bursts": s.bursts, "frames": s.frames,
               "packets": s.packets, "bytes": s.bytes, "nic_timestamps": self.p.ts_offset >= 0,
               "nic_stamped": s.nic_stamped, "clock_source": self.clock_source(), **self.lcore_stats()}
        warnings = self.lcore_warnings()
        if warnings:
            out["warnings"] = warnings
        nic = self.device.nic_stats()
        if nic:
            out["nic"] = nic
            for k in ("imissed", "ierrors", "rx_nombuf"):
                if nic[k]:
                    drops["nic_" + k] = nic[k]
        out["drops"] = drops
        return out
