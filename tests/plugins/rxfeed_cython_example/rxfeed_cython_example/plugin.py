"""Hooks of the Cython example plugin: the ``example_cython`` backend and the
``example_toy_native`` decoder, both native (no Python call per packet)."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from pydantic import Field

from rxfeed import PluginConfig, ProtocolDecoder
from rxfeed.backend_base import NativeBackend, NativeReader
from rxfeed.hookspecs import hookimpl

from . import records
from .records import MAGIC


class ReplayConfig(PluginConfig):
    """:ivar path: a record file (``rxfeed_cython_example.records``).
    :ivar loops: passes over the file."""

    path: str
    loops: int = Field(1, ge=1, description="passes over the file")


class CythonReplayBackend(NativeBackend[ReplayConfig]):
    """A record file replayed by a Cython reader (``_replay.pyx``) with each
    packet's receive time and addresses."""

    name = "example_cython"
    Config = ReplayConfig
    description = "example: record file replayed by a Cython backend"

    def open_reader(self, config: ReplayConfig) -> NativeReader:
        from ._replay import ReplayReader

        return ReplayReader(config.path, config.loops)

    # what the conformance kit needs (pytest --rxfeed-conformance example_cython)
    conformance_reset_option = "loops"

    @staticmethod
    def conformance_source(tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        records.write(tmp_path / "src.rxcy", payloads)
        return {"path": str(tmp_path / "src.rxcy")}

    @staticmethod
    def conformance_corrupt(tmp_path: Path) -> list[dict[str, Any]]:
        """Missing, of another format, cut in a header or a payload, a length no UDP payload has."""
        good = records.MAGIC + records.record(b"hello") + records.record(b"world")
        cases = {"missing.rxcy": None, "empty.rxcy": b"", "other.rxcy": bytes(range(256)),
                 "cut_header.rxcy": good[:-12], "cut_payload.rxcy": good[:-2],
                 "huge.rxcy": records.MAGIC + records.HEADER.pack(0xFFFFFFFF, 0, 0, 0, 0, 0) + b"x" * 64}
        for name, data in cases.items():
            if data is not None:
                (tmp_path / name).write_bytes(data)
        return [{"path": str(tmp_path / name)} for name in cases]


class ToyNativeConfig(PluginConfig):
    """No settings."""


class ToyNativeDecoder(ProtocolDecoder[ToyNativeConfig]):
    """The TOY protocol decoded in Cython (``_toy.pyx``). It only counts: it
    offers none of rxfeed.interfaces.CAPABILITIES."""

    name = "example_toy_native"
    Config = ToyNativeConfig
    description = "example: the made-up TOY protocol decoded in Cython"

    def __init__(self, config: ToyNativeConfig | None = None) -> None:
        super().__init__(config or ToyNativeConfig())
        from ._toy import ToyCounter

        self.native = ToyCounter()

    def decoder_capsule(self) -> Any:
        return self.native.capsule()

    def counters(self) -> dict[str, Any]:
        return self.native.counters()

    @staticmethod
    def conformance_samples() -> tuple[list[bytes], int]:
        """200 TOY datagrams of an 'a' and a 'b' message (pytest --rxfeed-conformance example_toy_native)."""
        return [struct.pack(">IB", seq, 2) + b"a\x01x" + b"b\x02yz" for seq in range(1, 201)], 400


@hookimpl
def rxfeed_register_backends(registry: Any) -> None:
    registry.add(CythonReplayBackend)


@hookimpl
def rxfeed_register_decoders(registry: Any) -> None:
    registry.add(ToyNativeDecoder)


@hookimpl
def rxfeed_detect_source(path: str, head: bytes) -> tuple[str, None] | None:
    """A record file holds payloads of any protocol: the decoder is found
    from them (rxfeed_claim_payloads)."""
    return ("example_cython", None) if head.startswith(MAGIC) else None


@hookimpl
def rxfeed_native_info() -> dict[str, str]:
    from . import _replay, _toy

    return {"example_cython": f"built ({_replay.__file__.rsplit('/', 1)[-1]})", "example_toy_native": f"built ({_toy.__file__.rsplit('/', 1)[-1]})"}
