"""Configuration: frozen pydantic models, loadable from TOML and the environment.

A config file has a ``[run]`` table and one table per plugin::

    [run]
    backend = "pcap_replay"
    decoder = "my_decoder"

    [backend.pcap_replay]
    path = "day.pcap"
    speed = 1.0

    [decoder.my_decoder]
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
    decoder: str | None = Field(None, description="decoder name; None: detect from the source, or the "
                                                  "only decoder installed")
    burst: int = Field(32, ge=1, le=4096, description="packets per rx burst")
    max_packets: int = Field(0, ge=0, description="stop after this many packets (0: no limit)")
    max_seconds: float = Field(0.0, ge=0.0, description="stop after this long (0: no limit)")
    cpu: int | None = Field(None, ge=0, description="pin the loop to this CPU")
    handle_signals: bool = Field(True, description="SIGINT/SIGTERM stop the loop cleanly")
    latency: bool = Field(False, description="rdtsc histogram of rx_burst-return to decoder-done per burst")


def describe_validation(exc: ValidationError, where: str) -> str:
    """A pydantic error as lines naming ``where.field``, the problem and the value given."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (where, *err["loc"]) if p != "")
        got = f" (got {err['input']!r})" if "input" in err and err["type"] != "missing" else ""
        lines.append(f"{loc}: {err['msg']}{got}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def validate(model: type[M], data: Mapping[str, Any] | BaseModel | None, where: str) -> M:
    """Build ``model`` from ``data``; a bad field raises :class:`ConfigError`
    naming ``where.field``."""
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump()
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table of settings (got {data!r})")
    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc, where)) from None


TABLES = ("run", "backend", "decoder")


def _read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None


def _check_shape(tree: Mapping[str, Any], origin: str) -> None:
    """``[run]`` is a table; ``[backend]`` and ``[decoder]`` hold a table per plugin."""
    unknown = set(tree) - set(TABLES)
    if unknown:
        raise ConfigError(f"{origin}: unknown top-level table(s) {sorted(unknown)}; expected run, backend, decoder")
    if not isinstance(tree.get("run", {}), dict):
        raise ConfigError(f"{origin}: [run] must be a table (got {tree['run']!r})")
    for kind in ("backend", "decoder"):
        plugins = tree.get(kind, {})
        if not isinstance(plugins, dict):
            raise ConfigError(f"{origin}: [{kind}] must hold one table per {kind}, e.g. [{kind}.NAME] "
                              f"(got {plugins!r})")
        for name, table in plugins.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{origin}: [{kind}.{name}] must be a table (got {table!r})")


def _apply_environment(tree: dict[str, Any], env: Mapping[str, str]) -> None:
    """``RXFEED_RUN__BURST=64`` sets ``tree["run"]["burst"] = "64"``."""
    for key, value in env.items():
        if not key.startswith("RXFEED_") or "__" not in key:
            continue
        parts = [p.lower() for p in key[len("RXFEED_"):].split("__")]
        if parts[0] not in TABLES:
            continue
        node = tree
        for depth, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: {'.'.join(parts[:depth + 1])} is not a table")
        node[parts[-1]] = value


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the raw config tree from a TOML file and ``RXFEED_*`` variables.
    A file that cannot be read, is not TOML or is not shaped as above raises
    :class:`ConfigError`."""
    tree: dict[str, Any] = {} if path is None else _read_toml(path)
    _check_shape(tree, str(path))
    _apply_environment(tree, os.environ if environ is None else environ)
    _check_shape(tree, "the RXFEED_* environment")
    return tree
