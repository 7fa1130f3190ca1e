"""Hooks of the example plugin."""
from typing import Any

from rxfeed import PluginConfig, RxBackend
from rxfeed.hookspecs import hookimpl

from . import datagrams


class ExampleConfig(PluginConfig):
    path: str


class _ConformanceSource:
    """What the conformance kit needs (``pytest --rxfeed-conformance example_py``)."""

    @staticmethod
    def conformance_source(tmp_path, payloads):
        datagrams.write(tmp_path / "d.bin", payloads)
        return {"path": str(tmp_path / "d.bin")}


class PyDatagramBackend(_ConformanceSource, RxBackend):
    """Pure Python: hands memoryviews through read_burst()."""

    name = "example_py"
    Config = ExampleConfig
    description = "example: pure-Python datagram file"

    def __init__(self, config):
        super().__init__(config)
        self._payloads = datagrams.read(config.path)
        self._pos = 0

    def read_burst(self, max_packets):
        if self._pos >= len(self._payloads):
            return None
        out = self._payloads[self._pos:self._pos + max_packets]
        self._pos += len(out)
        return out

    def stats(self) -> dict[str, Any]:
        return {"packets": self._pos, "drops": {}}


class CDatagramBackend(_ConformanceSource, RxBackend):
    """C: exports rxf_backend_ops from a separately compiled extension."""

    name = "example_c"
    Config = ExampleConfig
    description = "example: C datagram file via the rxfeed C ABI"

    def __init__(self, config):
        super().__init__(config)
        from ._cbackend import DatagramFile

        self._impl = DatagramFile(open(config.path, "rb").read())

    def native_capsule(self):
        return self._impl.capsule()

    def stats(self):
        return {"packets": self._impl.packets(), "drops": {}}


@hookimpl
def rxfeed_register_backends(registry):
    registry.add(PyDatagramBackend)
    registry.add(CDatagramBackend)


@hookimpl
def rxfeed_register_decoders(registry):
    from .toy import ToyDecoder

    registry.add(ToyDecoder)


@hookimpl
def rxfeed_claim_payloads(payloads):
    import os

    from .toy import frames_exactly

    if os.environ.get("RXFEED_EXAMPLE_CLAIM_RAISES"):  # for rxfeed's tests: a buggy hook
        raise KeyError("claim bug")
    return "example_toy" if payloads and all(frames_exactly(bytes(p)) for p in payloads) else None
