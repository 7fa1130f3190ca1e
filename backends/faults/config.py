"""Settings of the faults backend, and the ``--faults`` spec that builds them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rxfeed.backend_base import WrapperConfig
from rxfeed.config import ConfigError

#: Fault kinds with a rate, in the C engine's order.
RATE_KINDS = ("drop", "duplicate", "reorder", "delay", "truncate", "corrupt")


class FaultsConfig(WrapperConfig):
    """Seeded faults injected into the packets of an inner backend (which
    ``backend`` and ``backend_config`` name: :class:`WrapperConfig`).

    :ivar seed: one seed for every fault kind: the same seed and input give
        the same faults.
    :ivar drop: probability a packet is lost.
    :ivar duplicate: probability a packet is delivered twice (the copy right after it).
    :ivar reorder: probability a packet is overtaken by 1..``reorder_distance`` later packets.
    :ivar delay: probability a packet comes out ``delay_ms`` later (by packet time).
    :ivar truncate: probability a packet is cut to a random shorter length (0..len-1).
    :ivar corrupt: probability 1 to 3 bytes of a packet are flipped.
    :ivar reorder_distance: most packets that overtake a reordered one.
    :ivar delay_ms: how much later a delayed packet comes out.
    :ivar kill_at: the line dies this many seconds after its first packet
        (packet time); ``None``: never.
    :ivar kill_after: the line dies after this many packets from the inner
        backend; ``None``: never.
    :ivar hold_max: most packets waiting inside the wrapper at once
        (reordered, delayed, queued); a fault that would exceed it is not
        injected and is counted as ``no_room``.
    :ivar arena_mb: memory for copies (held, duplicated, corrupted packets).
    """

    seed: int = Field(0, ge=0, lt=2**64)
    drop: float = Field(0.0, ge=0.0, le=1.0)
    duplicate: float = Field(0.0, ge=0.0, le=1.0)
    reorder: float = Field(0.0, ge=0.0, le=1.0)
    delay: float = Field(0.0, ge=0.0, le=1.0)
    truncate: float = Field(0.0, ge=0.0, le=1.0)
    corrupt: float = Field(0.0, ge=0.0, le=1.0)
    reorder_distance: int = Field(8, ge=1, le=1 << 20)
    delay_ms: float = Field(1.0, ge=0.0, le=3.6e6)
    kill_at: float | None = Field(None, ge=0.0)
    kill_after: int | None = Field(None, ge=0)
    hold_max: int = Field(4096, ge=1, le=1 << 20)
    arena_mb: int = Field(16, ge=1, le=4096)

    def rates(self) -> list[float]:
        """The rates in :data:`RATE_KINDS` order."""
        return [getattr(self, k) for k in RATE_KINDS]


#: What ``--faults`` takes: every setting but the inner backend's.
SPEC_KEYS = tuple(k for k in FaultsConfig.model_fields if k not in WrapperConfig.model_fields)


def parse_spec(spec: str) -> dict[str, Any]:
    """``"drop=0.01,reorder=0.02,seed=7"`` -> settings for :class:`FaultsConfig`
    (values checked there). Raises :class:`ConfigError` naming the bad part."""
    out: dict[str, Any] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not value.strip():
            raise ConfigError(f"--faults: {part!r} is not KEY=VALUE (e.g. drop=0.01,seed=7)")
        if key not in SPEC_KEYS:
            raise ConfigError(f"--faults: unknown fault setting {key!r}; known: {', '.join(SPEC_KEYS)}")
        if key in out:
            raise ConfigError(f"--faults: {key!r} given twice")
        out[key] = value.strip()
    if not out:
        raise ConfigError("--faults: empty spec (e.g. drop=0.01,reorder=0.02,seed=7)")
    return out
