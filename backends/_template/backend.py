"""The template backend: a pure-Python source of UDP payloads, one per line of
a file of hex strings. Replace the body of ``read_burst`` with your source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rxfeed.interfaces import RxBackend

from .config import TemplateConfig


class TemplateBackend(RxBackend[TemplateConfig]):
    name = "template"
    Config = TemplateConfig
    description = "copy me: payloads from a file of hex lines"

    def __init__(self, config: TemplateConfig) -> None:
        super().__init__(config)
        self._lines = open(config.path, encoding="ascii")
        self._count = 0

    def read_burst(self, max_packets: int) -> list[bytes] | None:
        out: list[bytes] = []
        for _ in range(min(max_packets, self.config.burst_limit)):
            line = self._lines.readline()
            if not line:
                return out or None
            out.append(bytes.fromhex(line.strip()))
        self._count += len(out)
        return out

    def stats(self) -> dict[str, Any]:
        return {"packets": self._count, "drops": {}}

    def close(self) -> None:
        self._lines.close()

    @staticmethod
    def conformance_source(tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        """For the conformance kit (``pytest --rxfeed-conformance NAME``): a
        config of a source that delivers exactly ``payloads``, in order."""
        (tmp_path / "hex.txt").write_text("".join(p.hex() + "\n" for p in payloads))
        return {"path": str(tmp_path / "hex.txt")}

    @staticmethod
    def conformance_corrupt(tmp_path: Path) -> list[dict[str, Any]]:
        """For the conformance kit: broken sources (refused clearly or counted)."""
        return [{"path": str(tmp_path / "missing.txt")}]
