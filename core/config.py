"""Configuration: frozen pydantic models, loadable from TOML and the environment.

A config file has a ``[run]`` table and one table per plugin::

    [run]
    backend = "pcap_replay"
    decoder = "itch50"

    [backend.pcap_replay]
    path = "day.pcap"
    speed = 1.0

    [decoder.itch50]
    initial_sequence = 1

Environment variables override the file: ``RXFEED_RUN__BURST=64``,
``RXFEED_BACKEND__PCAP_REPLAY__SPEED=2`` (``__`` separates levels).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field."""


class PluginConfig(BaseModel):
    """Base of every plugin's config: frozen, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RunConfig(PluginConfig):
    """How the run loop runs."""

    backend: str | None = Field(None, description="backend name; None: detect from the source")
    decoder: str = Field("itch50", description="decoder name")
    burst: int = Field(32, ge=1, le=4096, description="packets per rx burst")
    max_packets: int = Field(0, ge=0, description="stop after this many packets (0: no limit)")
    max_seconds: float = Field(0.0, ge=0.0, description="stop after this long (0: no limit)")
    cpu: int | None = Field(None, ge=0, description="pin the loop to this CPU")
    handle_signals: bool = Field(True, description="SIGINT/SIGTERM stop the loop cleanly")
    latency: bool = Field(False, description="rdtsc histogram of rx_burst-return to decoder-done per burst")


def validate(model: type[M], data: Mapping[str, Any] | BaseModel | None, where: str) -> M:
    """Build ``model`` from ``data``; a bad field raises :class:`ConfigError`
    naming ``where.field``."""
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump()
    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"{where}.{loc}: {err['msg']}" + (f" (got {err['input']!r})" if "input" in err and err["type"] != "missing" else ""))
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the raw config tree from a TOML file and ``RXFEED_*`` variables."""
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                tree = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(tree) - {"run", "backend", "decoder"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level table(s) {sorted(unknown)}; expected run, backend, decoder")
    env = os.environ if environ is None else environ
    for key, value in env.items():
        if not key.startswith("RXFEED_") or "__" not in key:
            continue
        parts = [p.lower() for p in key[len("RXFEED_"):].split("__")]
        if parts[0] not in ("run", "backend", "decoder"):
            continue
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return tree
