"""The record backend: live capture of what any backend delivers, to pcapng."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rxfeed.backend_base import WrapperBackend
from rxfeed.config import ConfigError

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


class RecordBackend(WrapperBackend[RecordConfig]):
    """Wraps a backend and writes every packet it delivers to pcapng files,
    from the receive loop through a bounded queue to a writer thread.

    The loop never waits for the disk: a packet that finds the queue full is
    passed on, not recorded, and counted. Packets are passed on untouched.
    Build it by name (``config.backend``, ``config.backend_config``) or
    around an instance with :meth:`wrap`
    (:class:`~rxfeed.backend_base.WrapperBackend`).
    """

    name = "record"
    Config = RecordConfig
    description = "live capture of what a backend delivers to pcapng files (rotation, bounded queue)"
    cli_option = "--record DIR"

    def open_wrapper(self, config: RecordConfig) -> None:
        """Refuse a byte stream; make the directory; start the C recorder around the inner backend's table."""
        if self.inner.stream:
            raise ConfigError(f"record: backend {self.inner.name!r} delivers a byte stream, not datagrams; "
                              "only datagrams are recorded (the file itself is the capture)")
        self.directory = _prepare_dir(config.dir)
        self.prefix = config.prefix or _free_prefix(self.directory)
        self._final: dict[str, Any] | None = None
        capsule, keep_alive = self.inner_table()
        rotate_bytes = 0 if config.rotate_mb is None else max(4096, int(config.rotate_mb * (1 << 20)))
        rotate_ns = 0 if config.rotate_s is None else int(config.rotate_s * 1e9)
        try:
            self.recorder = Recorder(capsule, keep_alive, str(self.directory), self.prefix, config.ring_bytes,
                                     rotate_bytes, rotate_ns)
        except OSError as exc:
            raise ConfigError(str(exc)) from None

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

    def wrapper_stats(self) -> dict[str, Any]:
        """``record``: what was written (added to the inner backend's counters);
        problems of the recording are warnings (the run itself is unaffected)."""
        s = self.record_stats()
        return {"record": s, "warnings": self._warnings(s)}

    def close_wrapper(self) -> None:
        """Write what is queued, fsync and close the file, stop the writer (before the inner backend closes)."""
        if self._final is None:
            self.recorder.stop()
            self._final = self.record_stats()

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
