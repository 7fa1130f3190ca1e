"""The record backend: live capture of what any backend delivers, to pcapng."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rxfeed.config import ConfigError, validate
from rxfeed.interfaces import RxBackend

from ._record import Recorder
from .config import RecordConfig


def _prepare_dir(directory: str) -> Path:
    """``directory``, made if missing; a path that cannot be a directory is a config error."""
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"record: cannot make directory {directory!r}: {exc.strerror or exc}") from None
    if not d.is_dir():
        raise ConfigError(f"record: {directory!r} is not a directory")
    return d


#: a recording's file names after its prefix: ``-000001.pcapng`` ...
FILE_PATTERN = "-" + "[0-9]" * 6 + ".pcapng"


def _free_prefix(directory: Path) -> str:
    """``rxfeed-`` and the UTC time, with ``-2``, ``-3``... when a recording
    of that second is already in ``directory``."""
    stamp = time.strftime("rxfeed-%Y%m%dT%H%M%SZ", time.gmtime())
    prefix, n = stamp, 1
    while any(directory.glob(prefix + FILE_PATTERN)):
        n += 1
        prefix = f"{stamp}-{n}"
    return prefix


class RecordBackend(RxBackend[RecordConfig]):
    """Wraps a backend and writes every packet it delivers to pcapng files,
    from the receive loop through a bounded queue to a writer thread.

    The loop never waits for the disk: a packet that finds the queue full is
    passed on, not recorded, and counted. Packets are passed on untouched.
    Build it by name (``config.backend``, ``config.backend_config``) or
    around an instance with :meth:`wrap`.
    """

    name = "record"
    Config = RecordConfig
    description = "live capture of what a backend delivers to pcapng files (rotation, bounded queue)"

    def __init__(self, config: RecordConfig, inner: RxBackend[Any] | None = None) -> None:
        super().__init__(config)
        if inner is None:
            inner = self._open_inner(config)
        self.inner: RxBackend[Any] = inner
        self.stream = inner.stream  # type: ignore[misc]
        self.source = getattr(inner, "source", None) or getattr(inner.config, "path", None)
        cpu = getattr(inner, "cpu", None)
        if cpu is not None:
            self.cpu = cpu
        try:
            if inner.stream:
                raise ConfigError(f"record: backend {inner.name!r} delivers a byte stream, not datagrams; "
                                  "only datagrams are recorded (the file itself is the capture)")
            self.directory = _prepare_dir(config.dir)
            self.prefix = config.prefix or _free_prefix(self.directory)
            self.recorder = self._recorder(inner, config, self.directory, self.prefix)
        except BaseException:
            inner.close()
            raise
        self._final: dict[str, Any] | None = None

    @staticmethod
    def _recorder(inner: RxBackend[Any], c: RecordConfig, directory: Path, prefix: str) -> Recorder:
        """The C recorder around ``inner``'s table (a Python backend's: one built over ``read_burst``)."""
        capsule = inner.native_capsule()
        python_source = None
        if capsule is None:
            from rxfeed.backends.faults._faults import PythonSource

            python_source = PythonSource(inner)
            capsule = python_source.capsule()
        rotate_bytes = 0 if c.rotate_mb is None else max(4096, int(c.rotate_mb * (1 << 20)))
        rotate_ns = 0 if c.rotate_s is None else int(c.rotate_s * 1e9)
        try:
            return Recorder(capsule, (inner, python_source), str(directory), prefix, c.ring_bytes,
                            rotate_bytes, rotate_ns)
        except OSError as exc:
            raise ConfigError(str(exc)) from None

    @staticmethod
    def _open_inner(config: RecordConfig) -> RxBackend[Any]:
        from rxfeed.backends.faults.backend import _inner_class

        if not config.backend:
            raise ConfigError("backend.record.backend: name the backend to wrap (or use RecordBackend.wrap)")
        if config.backend == RecordBackend.name:
            raise ConfigError("backend.record.backend: record cannot wrap itself by name (use RecordBackend.wrap)")
        cls = _inner_class(config.backend)
        return cls(validate(cls.Config, config.backend_config, f"backend.{config.backend}"))

    @classmethod
    def config_for_source(cls, path: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """``rxfeed replay FILE -b record -o backend=NAME -o dir=DIR``: the inner
        backend's settings for ``FILE``."""
        from rxfeed.backends.faults.backend import _inner_class

        inner = overrides.get("backend")
        if not inner or not isinstance(inner, str):
            raise ConfigError("backend record: name the backend to wrap, e.g. -o backend=pcap_replay "
                              "(or use --record DIR with any backend)")
        icls = _inner_class(inner)
        return {**overrides, "backend_config": icls.config_for_source(path, dict(overrides.get("backend_config", {})))}

    @classmethod
    def wrap(cls, inner: RxBackend[Any], config: RecordConfig | dict[str, Any] | None = None,
             **settings: Any) -> "RecordBackend":
        """``inner``, recorded: ``config`` a :class:`RecordConfig` or a dict;
        ``settings`` override. The wrapper owns ``inner``: closing it closes ``inner``."""
        if isinstance(config, RecordConfig):
            config = config.model_dump()
        return cls(validate(RecordConfig, {**(config or {}), **settings}, "record"), inner)

    def native_capsule(self) -> Any:
        return self.recorder.capsule()

    def files(self) -> list[Path]:
        """The files this recorder wrote, in order."""
        return sorted(self.directory.glob(self.prefix + FILE_PATTERN))

    def record_stats(self) -> dict[str, Any]:
        """The recorder's counters, after waiting (``drain_timeout_s``) for
        the writer to write what was queued."""
        if self._final is not None:
            return self._final
        drained = self.recorder.drain(self.config.drain_timeout_s)
        s = self.recorder.stats()
        s["drained"] = drained
        s["error"] = self.recorder.error()
        s["dir"] = str(self.directory)
        s["prefix"] = self.prefix
        return s

    def _warnings(self, s: dict[str, Any]) -> list[str]:
        out: list[str] = []
        if s["error"]:
            out.append(f"{s['error']}: recording stopped ({s['lost_to_error'] + s['after_error']} packets "
                       "not recorded); the run went on")
        if s["overflow_packets"]:
            out.append(f"record: {s['overflow_packets']} packets not recorded: the queue to the writer was full "
                       f"(ring_bytes={self.config.ring_bytes})")
        if s["too_big"]:
            out.append(f"record: {s['too_big']} packets longer than a UDP datagram not recorded")
        if not s["drained"]:
            out.append(f"record: the writer had not caught up after {self.config.drain_timeout_s} s")
        return out

    def stats(self) -> dict[str, Any]:
        """The inner backend's counters, plus ``record``: what was written;
        problems of the recording are warnings (the run itself is unaffected)."""
        inner = self.inner.stats()
        s = self.record_stats()
        return {**inner, "inner_backend": self.inner.name, "record": s,
                "warnings": [*inner.get("warnings", []), *self._warnings(s)]}

    def progress(self) -> tuple[int, int] | None:
        return self.inner.progress()

    def close(self) -> None:
        """Write what is queued, fsync and close the file, stop the writer; then close the inner backend."""
        if self._final is None:
            self.recorder.stop()
            self._final = self.record_stats()
        self.inner.close()

    # what the conformance kit needs: the inner backend's behaviour, recorded
    @staticmethod
    def conformance_source(tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        """pcap_replay over the payloads, recorded to ``tmp_path/record``."""
        from rxfeed.backends.pcap_replay.backend import PcapReplayBackend

        return {"backend": "pcap_replay", "backend_config": PcapReplayBackend.conformance_source(tmp_path, payloads),
                "dir": str(tmp_path / "record")}

    @staticmethod
    def conformance_corrupt(tmp_path: Path) -> list[dict[str, Any]]:
        """The inner backend's broken sources, a missing inner backend, a directory that cannot be."""
        from rxfeed.backends.pcap_replay.backend import PcapReplayBackend

        (tmp_path / "a_file").write_bytes(b"")
        good = PcapReplayBackend.conformance_source(tmp_path, [b"x" * 20])
        return [{"backend": "pcap_replay", "backend_config": c, "dir": str(tmp_path / "record")}
                for c in PcapReplayBackend.conformance_corrupt(tmp_path)] + \
            [{"backend": "no_such_backend", "dir": str(tmp_path / "record")},
             {"backend": "pcap_replay", "backend_config": good, "dir": str(tmp_path / "a_file" / "sub")}]
