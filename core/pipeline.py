"""Build a backend and a decoder from names and configs, run them, summarise."""

from __future__ import annotations

import array
import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from . import _runloop
from .config import ConfigError, RunConfig, validate
from .interfaces import ProtocolDecoder, PythonDecoder, RxBackend
from .plugins import PluginSet, get_plugins
from .summary import FRAMEWORK_DECODER_KEYS, Summary


@contextlib.contextmanager
def _culprit(plugin: str) -> Iterator[None]:
    """Mark an exception raised while a plugin starts with that plugin
    (``exc.rxfeed_plugin``, e.g. ``"backend 'dpdk'"``) so a caller can name it;
    the exception itself is unchanged."""
    try:
        yield
    except Exception as exc:
        exc.rxfeed_plugin = plugin  # type: ignore[attr-defined]
        raise


def _only_decoder(plugins: PluginSet) -> str:
    """The decoder to use when none is named: the only one installed."""
    names = plugins.decoders.names()
    if len(names) != 1:
        raise ConfigError(f"name a decoder: {len(names)} are installed ({', '.join(names) or 'none'})")
    return names[0]


class Pipeline:
    """One backend feeding one decoder.

    :param backend: a registered backend name or an :class:`RxBackend` instance.
    :param decoder: a registered decoder name or a :class:`ProtocolDecoder`;
        ``None``: the only decoder installed (an error when there are several).
    :param backend_config: dict or model for the backend's ``Config``.
    :param decoder_config: dict or model for the decoder's ``Config``.
    :param run: :class:`RunConfig` (or dict).

    Example::

        pipe = Pipeline("pcap_replay", "my_decoder", backend_config={"path": "day.pcap"})
        print(pipe.run().to_json())
    """

    def __init__(self, backend: str | RxBackend[Any], decoder: str | ProtocolDecoder[Any] | None = None, *,
                 backend_config: Mapping[str, Any] | Any = None, decoder_config: Mapping[str, Any] | Any = None,
                 run: RunConfig | Mapping[str, Any] | None = None, plugins: PluginSet | None = None) -> None:
        self.run_config = validate(RunConfig, run, "run")
        plugins = plugins or get_plugins()
        if decoder is None:
            decoder = _only_decoder(plugins)
        if isinstance(decoder, str):
            dcls = plugins.decoders.get(decoder)
            dconf = validate(dcls.Config, decoder_config, f"decoder.{decoder}")
            with _culprit(f"decoder {decoder!r}"):
                decoder = dcls(dconf)
        self.decoder: ProtocolDecoder[Any] = decoder
        if isinstance(backend, str):
            bcls = plugins.backends.get(backend)
            bconf = validate(bcls.Config, backend_config, f"backend.{backend}")
            with _culprit(f"backend {backend!r}"):
                backend = bcls(bconf)
        self.backend: RxBackend[Any] = backend
        #: with ``run.latency`` on the native path: the loop's per-burst cycle
        #: histogram (``rxfeed/hist.h`` buckets, uint64), filled while it runs
        self.latency_histogram: array.array[int] | None = None
        self._state = "not_started"  # "running", then the stop reason
        self._t0 = self._elapsed = 0.0

    def run(self) -> Summary:
        """Run until the source ends, a limit or a signal; return the summary."""
        rc = self.run_config
        backend_cpu = getattr(self.backend, "cpu", None)
        if rc.cpu is None and backend_cpu is not None:
            rc = rc.model_copy(update={"cpu": backend_cpu})  # the backend's own lcore
        old_affinity = None
        if rc.cpu is not None:
            # the calling thread's mask may already be narrowed (DPDK's EAL pins
            # the thread that started it), so ask the kernel, not that mask
            old_affinity = os.sched_getaffinity(0)
            try:
                os.sched_setaffinity(0, {rc.cpu})
            except OSError:
                raise ConfigError(f"run.cpu: CPU {rc.cpu} is not available to this process "
                                  f"({os.cpu_count()} CPUs)") from None
        latency: dict[str, Any] | None = {} if rc.latency else None
        if latency is not None:
            _runloop.cycles_per_ns()  # calibrate outside the timed run
            self.latency_histogram = array.array("Q", bytes(8 * _runloop.HIST_BUCKETS))
        t0 = self._t0 = time.perf_counter()
        self._state = "running"
        try:
            packets, reason, err, path = self._loop(rc, latency)
        finally:
            elapsed = self._elapsed = time.perf_counter() - t0
            if old_affinity is not None:
                os.sched_setaffinity(0, old_affinity)
        self.decoder.finish()
        self._state = reason
        if reason == "decoder_stopped" and self.decoder.counters().get("end_of_session") and \
                getattr(self.decoder.config, "stop_at_end_of_session", False):
            reason = "end_of_session"
        summary = self._summary(reason, err, elapsed)
        if latency is not None:
            summary.latency = latency
            if path != "native":
                summary.warnings.append(f"no latency histogram: it is measured inside the native loop, and this "
                                        f"run took the {path} path (a Python backend or decoder)")
        return summary

    def _loop(self, rc: RunConfig, latency: dict[str, Any] | None) -> tuple[int, str, str, str]:
        """Run the loop that fits the two plugins; returns (packets, reason, error, path)."""
        capsule = self.backend.native_capsule()
        limits = (rc.burst, rc.max_packets, rc.max_seconds, rc.handle_signals)
        if isinstance(self.decoder, PythonDecoder):
            if capsule is not None:
                return (*_runloop.run_native_to_python(capsule, self.decoder, *limits,
                                                       stream=self.backend.stream), "native->python")
            return (*_runloop.run_python_to_python(self.backend, self.decoder, *limits), "python->python")
        decoder_ops = self.decoder.decoder_capsule()
        if capsule is not None:
            return (*_runloop.run_native(capsule, decoder_ops, *limits, latency, hist=self.latency_histogram),
                    "native")
        return (*_runloop.run_python(self.backend, decoder_ops, *limits), "python->native")

    def snapshot(self) -> Summary:
        """The counters so far as a :class:`Summary`: ``stop_reason`` is
        ``"running"`` while :meth:`run` runs (``"not_started"`` before it, the
        stop reason after it). Meant for another thread while the loop runs
        (live metrics, tools/metrics.py): it reads the plugins' counters,
        plain native integers, and never stops or slows the loop. ``latency``
        holds the percentiles so far when ``run.latency`` is on (native path).
        Not after :meth:`close`."""
        running = self._state == "running"
        elapsed = time.perf_counter() - self._t0 if running else self._elapsed
        summary = self._summary(self._state, "", elapsed)
        if self.latency_histogram is not None:
            summary.latency = _runloop.histogram_summary(self.latency_histogram)
        return summary

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _summary(self, reason: str, err: str, elapsed: float) -> Summary:
        c = self.decoder.counters()
        b = self.backend.stats()
        # each plugin words its own warnings (the framework knows no protocol)
        warnings = [*c.get("warnings", []), *b.get("warnings", [])]
        messages = int(c.get("messages", 0))
        return Summary(
            source=getattr(self.backend, "source", None) or getattr(self.backend.config, "path", None),
            backend=self.backend.name, decoder=self.decoder.name, stop_reason=reason,
            packets=int(c.get("packets", 0)), messages=messages,
            messages_per_type=dict(sorted(c.get("messages_per_type", {}).items())),
            gaps=int(c.get("gaps", 0)), gap_messages=int(c.get("gap_messages", 0)),
            duplicates=int(c.get("duplicates", 0)), errors=dict(c.get("errors", {})),
            drops=dict(b.get("drops", {})), elapsed_s=round(elapsed, 6),
            messages_per_s=round(messages / elapsed, 1) if elapsed > 0 else 0.0,
            decoder_stats={k: v for k, v in c.items() if k not in FRAMEWORK_DECODER_KEYS}, backend_stats={k: v for k, v in b.items() if k not in ("drops", "warnings")},
            warnings=warnings, recovery=c.get("recovery"), error=err or None)


def run_parallel(pipelines: list[Pipeline]) -> list[Summary]:
    """Run several pipelines at once, one thread each (the loops hold no GIL),
    e.g. one per RX queue. Each pipeline's ``run.cpu`` pins its thread.
    SIGINT/SIGTERM stop them all. Returns their summaries in order."""
    import threading

    results: list[Any] = [None] * len(pipelines)

    def work(i: int, p: Pipeline) -> None:
        try:
            results[i] = p.run()
        except BaseException as exc:  # reported to the caller below
            results[i] = exc

    with _runloop._Signals():
        threads = [threading.Thread(target=work, args=(i, p), name=f"rxfeed-loop-{i}")
                   for i, p in enumerate(pipelines)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def merge_summaries(parts: list[Summary]) -> Summary:
    """One summary of several queues' runs: counts added, each queue kept in
    ``backend_stats["queues"]``."""
    first = parts[0]
    types: dict[str, int] = {}
    errors: dict[str, int] = {}
    drops: dict[str, int] = {}
    for s in parts:
        for d, src in ((types, s.messages_per_type), (errors, s.errors), (drops, s.drops)):
            for k, v in src.items():
                d[k] = d.get(k, 0) + v
    elapsed = max(s.elapsed_s for s in parts)
    messages = sum(s.messages for s in parts)
    return Summary(
        source=first.source, backend=first.backend, decoder=first.decoder,
        stop_reason=",".join(sorted({s.stop_reason for s in parts})), packets=sum(s.packets for s in parts),
        messages=messages, messages_per_type=dict(sorted(types.items())), gaps=sum(s.gaps for s in parts),
        gap_messages=sum(s.gap_messages for s in parts), duplicates=sum(s.duplicates for s in parts),
        errors=errors, drops=drops, elapsed_s=elapsed,
        messages_per_s=round(messages / elapsed, 1) if elapsed > 0 else 0.0,
        decoder_stats={"queues": [s.decoder_stats for s in parts]},
        backend_stats={"queues": [s.backend_stats for s in parts]},
        warnings=[w for s in parts for w in s.warnings],
        error="; ".join(s.error for s in parts if s.error) or None)
