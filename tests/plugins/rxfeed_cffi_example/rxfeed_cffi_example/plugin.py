"""Hooks of the cffi example plugin: the ``example_cffi`` backend, whose
receive path is C (reader.c) built with cffi's API mode and handed to the
run loop through :func:`rxfeed.ffi.backend_capsule`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from rxfeed import PluginConfig, RxBackend
from rxfeed import ffi as rxffi
from rxfeed.hookspecs import hookimpl

from . import datagrams


class CffiReplayConfig(PluginConfig):
    """:ivar path: an example_cffi datagram file (``rxfeed_cffi_example.datagrams``).
    :ivar loops: passes over the file."""

    path: str
    loops: int = Field(1, ge=1, le=2**32 - 1, description="passes over the file")


class CffiReplayBackend(RxBackend[CffiReplayConfig]):
    """A datagram file replayed by C code built with cffi (no Cython, no
    CPython module code). The file's bytes, the C reader and its
    ``rxf_backend_ops`` table are kept on this object while it lives."""

    name = "example_cffi"
    Config = CffiReplayConfig
    description = "example: datagram file replayed by a C backend built with cffi"

    def __init__(self, config: CffiReplayConfig) -> None:
        super().__init__(config)
        from ._reader import ffi, lib

        self._ffi, self._lib = ffi, lib
        data = Path(config.path).read_bytes()
        self._buf = ffi.from_buffer(data)  # the C reader points into it
        self._reader = ffi.new("rxcf_reader *")
        self._ops = ffi.new("rxf_backend_ops *")
        if lib.rxcf_reader_open(self._reader, self._ops, self._buf, len(data), config.loops) != 0:
            raise ValueError(f"{config.path}: {ffi.string(self._reader.error).decode()}")

    def native_capsule(self) -> Any:
        return rxffi.backend_capsule(self._ffi, self._ops)

    def stats(self) -> dict[str, Any]:
        return {"packets": int(self._reader.packets), "bytes": int(self._reader.bytes), "drops": {}}

    def progress(self) -> tuple[int, int] | None:
        return int(self._reader.pos), int(self._reader.len)

    def close(self) -> None:
        self._lib.rxcf_reader_close(self._reader)  # later bursts: end of source
        self._buf = self._ffi.NULL

    # what the conformance kit needs (pytest --rxfeed-conformance example_cffi)
    conformance_reset_option = "loops"

    @staticmethod
    def conformance_source(tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        datagrams.write(tmp_path / "src.rxcf", payloads)
        return {"path": str(tmp_path / "src.rxcf")}

    @staticmethod
    def conformance_corrupt(tmp_path: Path) -> list[dict[str, Any]]:
        """Missing, empty, of another format, cut in a length or a payload, a
        length no UDP payload has."""
        good = datagrams.MAGIC + datagrams.record(b"hello") + datagrams.record(b"world")
        cases = {"missing.rxcf": None, "empty.rxcf": b"", "other.rxcf": bytes(range(256)),
                 "cut_length.rxcf": good[:-7], "cut_payload.rxcf": good[:-2],
                 "huge.rxcf": datagrams.MAGIC + b"\xff\xff\xff\xff" + b"x" * 64}
        for name, data in cases.items():
            if data is not None:
                (tmp_path / name).write_bytes(data)
        return [{"path": str(tmp_path / name)} for name in cases]


@hookimpl
def rxfeed_register_backends(registry: Any) -> None:
    registry.add(CffiReplayBackend)


@hookimpl
def rxfeed_detect_source(path: str, head: bytes) -> tuple[str, None] | None:
    """An example_cffi file holds payloads of any protocol: the decoder is
    found from them (rxfeed_claim_payloads)."""
    return ("example_cffi", None) if head.startswith(datagrams.MAGIC) else None


@hookimpl
def rxfeed_native_info() -> dict[str, str]:
    from . import _reader, _tally

    return {"example_cffi": f"built with cffi ({Path(_reader.__file__).name}, {Path(_tally.__file__).name})"}
