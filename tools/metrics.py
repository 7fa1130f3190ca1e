"""Prometheus metrics of a run (``rxfeed replay/listen --metrics HOST:PORT``).

A :class:`MetricsServer` serves ``/metrics`` in Prometheus' text format
(``prometheus-client``, the ``rxfeed[metrics]`` extra) from its own thread.
Nothing is pushed by the run loop: every value is read when Prometheus
scrapes, from *sources*, functions registered with
:meth:`MetricsServer.add_source`. A source returns an iterable of samples::

    (name, help, kind, labels, value)

- ``name``: ``rxfeed_...`` in Prometheus' naming; a counter's name ends in
  ``_total`` (added when missing), units are in the name (``_seconds``,
  ``_bytes``).
- ``help``: one line saying what it counts.
- ``kind``: ``"counter"`` (only ever grows while the process lives),
  ``"gauge"`` (goes up and down), or ``"histogram"`` with a
  :class:`HistogramValue` as value.
- ``labels``: ``{label: value}``, strings; the same label names for every
  sample of one name.
- ``value``: a number (a :class:`HistogramValue` for a histogram).

A source is called on the server's thread with the server's lock held (one
scrape at a time; :meth:`~MetricsServer.remove_source` waits for a scrape in
progress), so it must be quick and must not block: read counters, never wait
on the loop. A source that raises, or returns a malformed sample, costs
that scrape its samples (counted in ``rxfeed_metrics_source_errors_total``)
and never the others'. A sink object with a ``metrics_samples()`` method
returning such samples is registered by the CLI as a source (the JetStream
sink's ring occupancy and publish backlog; docs/operations.md).

:class:`RunMetrics` ties one CLI run to a server: the pipelines' counters
(:meth:`rxfeed.Pipeline.snapshot`) while the loop runs, then the final
summary's values, served as they are until the process exits, so that the
last scrape equals the printed summary.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

log = logging.getLogger("rxfeed.metrics")

#: One sample: (name, help, kind, labels, value); see the module docstring.
Sample = tuple[str, str, str, Mapping[str, str], Any]
#: A function the server calls at each scrape.
Source = Callable[[], Iterable[Sample]]

KINDS = ("counter", "gauge", "histogram")
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

#: Upper bounds (seconds) of the buckets a native latency histogram is served in.
LATENCY_BUCKETS_S = (50e-9, 100e-9, 200e-9, 500e-9, 1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6,
                     500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 100e-3, 1.0)


class MetricsError(Exception):
    """The metrics endpoint cannot be served (address taken, unknown host, no prometheus-client)."""


@dataclass(frozen=True)
class HistogramValue:
    """A histogram sample's value: ``buckets`` are (upper bound, cumulative
    count) in ascending bounds, the last bound ``inf`` (its count is the
    histogram's count); ``sum`` is the sum of the observed values."""

    buckets: Sequence[tuple[float, float]]
    sum: float


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        """No line per scrape on stderr."""


class _Server4(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server4):
    address_family = socket.AF_INET6


class MetricsServer:
    """``/metrics`` on HOST:PORT (port 0: any free port, see :attr:`address`).

    Example::

        server = MetricsServer("127.0.0.1", 9464).start()
        server.add_source(lambda: [("rxfeed_example_total", "examples seen", "counter", {}, 3)])
        ...
        server.stop()
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sources: list[Source] = []
        self._frozen: list[Sample] | None = None
        self._lock = threading.RLock()
        self._errors = 0
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) bound; the port the kernel chose for port 0."""
        if self._httpd is None:
            return self.host, self.port
        return self.host, int(self._httpd.server_address[1])

    def start(self) -> MetricsServer:
        """Bind and serve from a daemon thread; :class:`MetricsError` when the
        address cannot be bound (taken, not local, unknown host)."""
        try:
            from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
        except ImportError as exc:
            raise MetricsError(f"--metrics needs prometheus-client: pip install 'rxfeed[metrics]' ({exc})") from None
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        registry.register(_Collector(self))
        server_class = _server_class(self.host, self.port)
        try:
            self._httpd = make_server(self.host, self.port, make_wsgi_app(registry), server_class, _Quiet)
        except OSError as exc:
            raise MetricsError(f"cannot serve metrics on {self.host}:{self.port}: {_bind_text(exc)}") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="rxfeed-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_source(self, source: Source) -> Source:
        """Read ``source`` at every scrape (until :meth:`freeze`); returns it."""
        with self._lock:
            self._sources.append(source)
        return source

    def remove_source(self, source: Source) -> None:
        """Stop reading ``source``; once this returns it is not being called."""
        self.replace_source(source, None)

    def replace_source(self, old: Source, new: Source | None) -> None:
        """Read ``new`` where ``old`` was read (no scrape sees both, or
        neither); ``old`` is not being called once this returns."""
        with self._lock:
            kept: list[Source] = []
            for src in self._sources:
                now = new if src is old else src
                if now is not None:
                    kept.append(now)
            self._sources = kept

    def freeze(self, final: Mapping[Source, Iterable[Sample]] | None = None) -> None:
        """Read every source one last time (or take its samples from
        ``final``) and serve those values from now on; the sources are
        forgotten, so the objects behind them may close."""
        final = final or {}
        with self._lock:
            self._frozen = [s for src in self._sources for s in self._read(src, final.get(src))]
            self._sources = []

    def samples_of(self, source: Source) -> list[Sample]:
        """``source``'s samples now, checked (none when it fails, counted)."""
        with self._lock:
            return self._read(source)

    def samples(self) -> list[Sample]:
        """Every sample a scrape would serve now (besides process_* and the error count)."""
        with self._lock:
            if self._frozen is not None:
                return list(self._frozen)
            return [s for src in self._sources for s in self._read(src)]

    def _read(self, source: Source, given: Iterable[Sample] | None = None) -> list[Sample]:
        """A source's samples, checked; none (and an error counted) when it
        raises or returns a malformed sample."""
        try:
            out = [_checked(s) for s in (given if given is not None else source())]
        except Exception as exc:  # a broken source must not break the scrape
            self._errors += 1
            log.warning("metrics source %r failed: %s", source, exc)
            return []
        return out

    def families(self) -> list[Any]:
        """The metric families of a scrape (prometheus-client objects)."""
        from prometheus_client.core import Metric

        fams = _families(self.samples())
        errors = Metric("rxfeed_metrics_source_errors", "metric sources that raised or returned a malformed "
                        "sample, since the server started", "counter")
        errors.add_sample("rxfeed_metrics_source_errors_total", {}, float(self._errors))
        return [*fams, errors]


class _Collector:
    """The server's samples, for prometheus-client's registry."""

    def __init__(self, server: MetricsServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        yield from self.server.families()


def _server_class(host: str, port: int) -> type[WSGIServer]:
    """The IPv4 or IPv6 server class for ``host``."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise MetricsError(f"cannot serve metrics on {host}:{port}: unknown host ({exc.strerror})") from None
    return _Server6 if family == socket.AF_INET6 else _Server4


def _bind_text(exc: OSError) -> str:
    """Why a bind failed, in words."""
    if exc.errno == errno.EADDRINUSE:
        return "the address is already in use (another process listens on this port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "not an address of this machine"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need root)"
    return exc.strerror or str(exc)


def _checked(sample: Sample) -> Sample:
    """``sample`` if it is well formed, else ValueError naming what is wrong."""
    name, help_text, kind, labels, value = sample
    if kind not in KINDS:
        raise ValueError(f"{name}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a Prometheus metric name")
    bad = [k for k in labels if not _LABEL.match(k) or k == "le"]
    if bad:
        raise ValueError(f"{name}: bad label name(s) {bad}")
    if kind == "histogram" and not isinstance(value, HistogramValue):
        raise ValueError(f"{name}: a histogram's value is a HistogramValue")
    if kind == "counter" and not name.endswith("_total"):
        name += "_total"
    if kind != "histogram":
        value = float(value)
    return name, str(help_text), kind, {k: str(v) for k, v in labels.items()}, value


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (``+Inf``, ``0.5``, ``1e-06``)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _families(samples: Iterable[Sample]) -> list[Any]:
    """Samples grouped into prometheus-client metric families, one per name
    (the first sample's help and kind; a later sample of another kind is dropped)."""
    from prometheus_client.core import Metric

    fams: dict[str, Any] = {}
    for name, help_text, kind, labels, value in samples:
        base = name.removesuffix("_total") if kind == "counter" else name
        fam = fams.get(base)
        if fam is None:
            fam = fams[base] = Metric(base, help_text, kind)
        elif fam.type != kind:
            log.warning("metric %s: a %s sample after %s samples, dropped", name, kind, fam.type)
            continue
        if kind != "histogram":
            fam.add_sample(name, dict(labels), value)
            continue
        for bound, count in value.buckets:
            fam.add_sample(name + "_bucket", {**labels, "le": _le(bound)}, float(count))
        fam.add_sample(name + "_count", dict(labels), float(value.buckets[-1][1] if value.buckets else 0))
        fam.add_sample(name + "_sum", dict(labels), float(value.sum))
    return list(fams.values())


# --- a run's counters as samples --------------------------------------------------------------

def _c(name: str, help_text: str, labels: Mapping[str, str], value: Any) -> Sample:
    return name, help_text, "counter", labels, value


def _g(name: str, help_text: str, labels: Mapping[str, str], value: Any) -> Sample:
    return name, help_text, "gauge", labels, value


def _each(name: str, help_text: str, labels: Mapping[str, str], key: str, counts: Mapping[str, Any]) -> list[Sample]:
    """A counter sample per entry of ``counts``, the entry's key as label ``key``."""
    return [_c(name, help_text, {**labels, key: str(k)}, n) for k, n in counts.items()]


#: (summary key, metric, help) of the decoder's counters at the top of a summary
_DECODER_COUNTERS = (
    ("packets", "rxfeed_packets_total", "datagrams (or stream chunks) handed to the decoder"),
    ("messages", "rxfeed_messages_total", "messages decoded"),
    ("gaps", "rxfeed_gaps_total", "runs of missing sequence numbers the session layer saw"),
    ("gap_messages", "rxfeed_gap_messages_total", "messages in those runs (sequence numbers skipped)"),
    ("duplicates", "rxfeed_duplicate_messages_total", "messages received again (already seen sequence numbers)"),
)


def summary_samples(s: Mapping[str, Any]) -> list[Sample]:
    """Samples of a run's summary (``vars(summary)`` or ``Summary.to_dict()``): what it counted,
    by decoder, backend, reason and line; docs/operations.md lists them."""
    run = {"backend": str(s["backend"]), "decoder": str(s["decoder"])}
    dec = {"decoder": run["decoder"]}
    out = [_g("rxfeed_run_info", "the run's backend, decoder and source (always 1)",
              {**run, "source": str(s.get("source") or "")}, 1),
           _g("rxfeed_running", "1 while the receive loop runs, 0 once it has stopped", {},
              1 if s["stop_reason"] in ("running", "not_started") else 0),
           _g("rxfeed_run_elapsed_seconds", "seconds since the receive loop started", {}, s["elapsed_s"])]
    out += [_c(metric, text, dec, s[key]) for key, metric, text in _DECODER_COUNTERS]
    out += _each("rxfeed_messages_by_type_total", "messages decoded, by message type", dec, "type",
                 s["messages_per_type"])
    out += _each("rxfeed_decode_errors_total", "packets or messages the decoder refused, by reason", dec, "reason",
                 s["errors"])
    out += _each("rxfeed_drops_total", "frames the backend dropped before the decoder, by reason",
                 {"backend": run["backend"]}, "reason", s["drops"])
    out += _line_samples(s.get("backend_stats") or {})
    out += _fault_samples(s.get("backend_stats") or {}, {})
    if s.get("recovery"):
        out += _recovery_samples(s["recovery"], dec)
    return out


def _line_samples(stats: Mapping[str, Any]) -> list[Sample]:
    """Per line of a LinesBackend (``--line-b``): packets, state, silences, faults."""
    out: list[Sample] = []
    for i, ln in enumerate(stats.get("lines") or []):
        lab = {"line": str(i)}
        age = ln.get("last_packet_age_s")
        out += [_c("rxfeed_line_packets_total", "packets read off the line", lab, ln["packets"]),
                _g("rxfeed_line_up", "1 while the line delivers packets, 0 once it is silent longer than "
                   "--line-silence-s, has ended or failed", lab, 0 if ln["down"] or ln["state"] != "running" else 1),
                _c("rxfeed_line_downs_total", "times the line went silent longer than --line-silence-s", lab,
                   ln["downs"]),
                _g("rxfeed_line_last_packet_age_seconds", "seconds since the line's last packet (NaN before "
                   "the first)", lab, float("nan") if age is None else age)]
        out += _each("rxfeed_line_drops_total", "frames the line's backend dropped, by reason", lab, "reason",
                     ln.get("drops") or {})
        out += _fault_samples(ln.get("stats") or {}, lab)
    return out


def _fault_samples(stats: Mapping[str, Any], labels: Mapping[str, str]) -> list[Sample]:
    """What ``--faults`` injected, by kind (none without it)."""
    f = stats.get("faults")
    if not f:
        return []
    kinds = ("dropped", "duplicated", "reordered", "delayed", "truncated", "corrupted")
    return _each("rxfeed_faults_injected_total", "faults injected by --faults (a test tool), by kind", labels,
                 "kind", {k: f[k] for k in kinds})


def _recovery_samples(r: Mapping[str, Any], dec: Mapping[str, str]) -> list[Sample]:
    """What the sequencer did (``recovery`` on: --line-b, --rerequest, a reorder window)."""
    out = [_c("rxfeed_recovery_gaps_opened_total", "holes in the sequence the sequencer waited on", dec,
              r["gaps_opened"]),
           _c("rxfeed_recovery_gaps_filled_total", "holes filled (from another line or a re-request)", dec,
              r["gaps_filled"]),
           _c("rxfeed_recovery_lost_ranges_total", "holes declared lost (a gap event; books suspect)", dec,
              r["lost_ranges"]),
           _c("rxfeed_recovery_redundant_copies_total", "datagrams that arrived again on another line "
              "(the A/B copies arbitration discarded)", dec, r["redundant_copies"]),
           _g("rxfeed_recovery_reorder_held_datagrams", "datagrams waiting in the reorder buffer now", dec,
              r["held_now"]),
           _g("rxfeed_recovery_reorder_peak_datagrams", "most datagrams the reorder buffer held at once", dec,
              r["reorder_peak_datagrams"]),
           _g("rxfeed_recovery_reorder_peak_bytes", "most bytes the reorder buffer held at once", dec,
              r["reorder_peak_bytes"])]
    out += _each("rxfeed_recovery_lost_messages_total", "messages declared lost, by why the hole was given up",
                 dec, "reason", r["lost_by_reason"])
    for ln in r.get("lines") or []:
        lab = {"line": str(ln["line"])}
        out += [_c("rxfeed_line_first_arrivals_total", "datagrams this line delivered first (the copy used)",
                   lab, ln["first_arrivals"]),
                _c("rxfeed_line_gaps_total", "holes seen on this line alone (filled or not)", lab, ln["line_gaps"]),
                _c("rxfeed_line_gap_messages_total", "messages missing on this line alone", lab,
                   ln["line_gap_messages"])]
    rr = r.get("rerequest")
    if rr:
        out += _rerequest_samples(rr, dec)
    return out


def _rerequest_samples(rr: Mapping[str, Any], dec: Mapping[str, str]) -> list[Sample]:
    """The re-request client's counters (``--rerequest``)."""
    out = [_c("rxfeed_rerequest_requests_total", "re-requests sent (retries included)", dec, rr["requests_sent"]),
           _c("rxfeed_rerequest_retries_total", "re-requests sent again after a timeout", dec, rr["retries"]),
           _c("rxfeed_rerequest_recovered_messages_total", "messages recovered from re-request answers", dec,
              rr["recovered_messages"]),
           _c("rxfeed_rerequest_given_up_ranges_total", "ranges given up after every attempt", dec,
              rr["given_up_ranges"])]
    return out + _each("rxfeed_rerequest_answers_refused_total", "re-request answers refused, by reason", dec,
                       "reason", rr["answers_refused"])


# --- the native latency histogram -------------------------------------------------------------

def latency_histogram(counts: Sequence[int], cycles_per_ns: float,
                      bounds_s: Sequence[float] = LATENCY_BUCKETS_S) -> HistogramValue:
    """A native ``rxfeed/hist.h`` cycle histogram as Prometheus buckets (seconds).

    Native bucket ``i`` holds values in ``[lower[i], lower[i + 1])`` cycles;
    it is counted under the first bound at or above its upper end (so a
    bucket's count never includes a value above its bound; with native
    buckets 1.6 % wide, at most that much too low). ``sum`` takes each
    native bucket's midpoint."""
    lower = _lower_bounds()
    per_bound = [0] * (len(bounds_s) + 1)
    total_s = 0.0
    scale = 1e-9 / cycles_per_ns
    for i, n in enumerate(counts):
        if not n:
            continue
        upper = lower[i + 1] if i + 1 < len(lower) else lower[i]
        total_s += n * (lower[i] + upper) / 2 * scale
        k = next((j for j, b in enumerate(bounds_s) if upper * scale <= b), len(bounds_s))
        per_bound[k] += n
    cumulative, acc = [], 0
    for bound, n in zip((*bounds_s, float("inf")), per_bound):
        acc += n
        cumulative.append((bound, float(acc)))
    return HistogramValue(cumulative, total_s)


_LOWER: list[int] = []


def _lower_bounds() -> list[int]:
    """Lower bounds (cycles) of the native histogram's buckets, read once."""
    if not _LOWER:
        from rxfeed import _runloop

        _LOWER.extend(_runloop.histogram_lower_bounds())
    return _LOWER


def _latency_samples(pipes: Sequence[Any]) -> list[Sample]:
    """The loop's per-burst latency histogram (``--latency``, native path), all queues added up."""
    hists = [p.latency_histogram for p in pipes if p.latency_histogram is not None]
    if not hists:
        return []
    from rxfeed import _runloop

    counts = [sum(col) for col in zip(*hists)] if len(hists) > 1 else hists[0]
    value = latency_histogram(counts, _runloop.cycles_per_ns())
    return [("rxfeed_burst_latency_seconds", "rx_burst returned -> decoder done, per burst (rdtsc inside "
             "the loop; --latency)", "histogram", {"decoder": str(pipes[0].decoder.name)}, value)]


# --- one CLI run --------------------------------------------------------------------------------

class RunMetrics:
    """The metrics of one ``replay``/``listen`` run: ``server`` (started),
    the pipelines' live counters while :meth:`watching`, sinks' samples, the
    final summary's values after :meth:`finish`."""

    def __init__(self, server: MetricsServer) -> None:
        self.server = server
        self.pipes: list[Any] = []
        self._live: Source | None = None

    def add_sink(self, sink: Any) -> None:
        """Serve ``sink.metrics_samples()`` when the sink has that method."""
        samples = getattr(sink, "metrics_samples", None)
        if callable(samples):
            self.server.add_source(samples)

    def _snapshot(self) -> list[Sample]:
        """The pipelines' counters now (several RX queues merged)."""
        from rxfeed.pipeline import merge_summaries

        snaps = [p.snapshot() for p in self.pipes]
        merged = snaps[0] if len(snaps) == 1 else merge_summaries(snaps)
        return summary_samples(vars(merged)) + _latency_samples(self.pipes)  # vars: no deep copy per scrape

    @contextlib.contextmanager
    def watching(self, pipes: Sequence[Any]) -> Iterator[None]:
        """While the block runs ``pipes``, serve their counters; when it
        ends (before the pipelines close), serve the values they ended with."""
        self.pipes = list(pipes)
        live = self._live = self.server.add_source(self._snapshot)
        try:
            yield
        finally:
            ended = self.server.samples_of(live)

            def stopped() -> list[Sample]:
                return ended

            self.server.replace_source(live, stopped)
            self._live = stopped

    def finish(self, summary: Any) -> None:
        """Serve the final summary's values (and the sinks' last) from now on."""
        final = summary_samples(vars(summary)) + _latency_samples(self.pipes)
        if self._live is None:
            self._live = self.server.add_source(lambda: final)
        self.server.freeze({self._live: final})
