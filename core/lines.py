"""Several lines of one feed (A/B multicast lines, two NICs, two sockets) as
one backend: round robin in C, each packet tagged with its line.

Example::

    a = get_plugins().backends.get("udp_socket")(UdpConfig(groups=["233.54.12.111:26477"]))
    b = get_plugins().backends.get("udp_socket")(UdpConfig(groups=["233.49.196.111:26477"]))
    pipe = Pipeline(LinesBackend([a, b]), "my_decoder")

The decoder sees one stream in which every datagram may come twice (once
per line); ``Packet.line`` / ``rxf_packet.line`` say from where.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field

from .backend_base import source_of
from .config import ConfigError, PluginConfig
from .interfaces import RxBackend


class LinesConfig(PluginConfig):
    """How the lines are watched."""

    silence_s: float = Field(1.0, ge=0.0, description="a line silent this long is reported down (0: never)")


class LinesBackend(RxBackend[LinesConfig]):
    """Read 1 to 8 native datagram backends as one. The run ends when every
    line has ended; a line that fails or ends early is reported in
    :meth:`stats` (``lines``), the others go on."""

    name: ClassVar[str] = "lines"
    Config: ClassVar[type[PluginConfig]] = LinesConfig
    description: ClassVar[str] = "several lines (A/B copies) of one feed, round robin"

    def __init__(self, backends: Sequence[RxBackend[Any]], config: LinesConfig | None = None) -> None:
        super().__init__(config or LinesConfig())
        from ._lines import LinesReader

        self.backends = list(backends)
        capsules = []
        for i, b in enumerate(self.backends):
            if b.stream:
                raise ConfigError(f"lines: line {i} ({b.name}) is a byte stream; lines carry datagrams")
            cap = b.native_capsule()
            if cap is None:
                raise ConfigError(f"lines: line {i} ({b.name}) is a Python backend; lines need native ones")
            capsules.append(cap)
        self._reader = LinesReader(capsules, self.config.silence_s)
        self.source = ",".join(str(source_of(b) or b.name) for b in self.backends)

    def native_capsule(self) -> Any:
        return self._reader.capsule()

    def stats(self) -> dict[str, Any]:
        """Each line's own stats and its packets, state, error, down/up
        counts and drops under ``lines``; the lines' drops added up under ``drops``;
        their warnings, and one per line that failed or went down."""
        lines, drops, warnings = [], {}, []
        for i, (b, own) in enumerate(zip(self.backends, self._reader.line_stats())):
            st = b.stats()
            for k, v in st.get("drops", {}).items():
                drops[k] = drops.get(k, 0) + v
            warnings += [f"line {i}: {w}" for w in st.get("warnings", [])]
            if own["state"] == "error":
                warnings.append(f"line {i} ({b.name}) failed: {own['error']}")
            if own["downs"]:
                warnings.append(f"line {i} ({b.name}) went silent {own['downs']} time(s) "
                                f"(> {self.config.silence_s} s)")
            lines.append({"backend": b.name, **own, "drops": dict(st.get("drops", {})),
                          "stats": {k: v for k, v in st.items() if k not in ("drops", "warnings")}})
        return {"lines": lines, "drops": drops, "warnings": warnings}

    def close(self) -> None:
        for b in self.backends:
            b.close()
