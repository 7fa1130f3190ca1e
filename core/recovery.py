"""Settings of recovery (sequencer, A/B lines, re-request), shared by every
session layer that uses rxfeed's sequencer (core/include/rxfeed/recovery.h).

A decoder that supports recovery has a ``recovery`` field of this type in its
Config; ``docs/recovery.md`` says what each setting does and what to choose
for a production feed.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: reorder window the CLI uses when --line-b or --rerequest is given without one
DEFAULT_WINDOW_MS = 250.0


def parse_host_port(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` -> (host, port); a clear ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected HOST:PORT (e.g. 10.0.0.5:9000)")
    return host, int(port)


class RecoveryConfig(BaseModel):
    """:ivar reorder_window_ms: how long a hole waits to be filled (from
        another line or a re-request) before it is declared lost. 0: off, a
        hole is lost the moment it is seen (one line, no re-request).
    :ivar reorder_max_mb: bytes the reorder buffer may hold; when full, the
        oldest hole is declared lost at once.
    :ivar reorder_max_datagrams: datagrams it may hold.
    :ivar slot_bytes: the largest datagram that can wait (a larger one after
        a hole makes the hole lost).
    :ivar rerequest: ``HOST:PORT`` of the re-request server; None: none.
    :ivar rerequest_delay_ms: a hole is asked for once it has been open this
        long (time for the other line to fill it).
    :ivar rerequest_timeout_ms: an unanswered request is sent again after
        this, doubled at each attempt.
    :ivar rerequest_attempts: requests per range before it is given up.
    :ivar rerequest_max_messages: messages asked for per request.
    :ivar rerequest_in_flight: requests unanswered at once."""

    model_config = ConfigDict(extra="forbid")

    reorder_window_ms: float = Field(0.0, ge=0.0, le=600_000.0)
    reorder_max_mb: float = Field(64.0, gt=0.0, le=65536.0)
    reorder_max_datagrams: int = Field(16384, ge=1, le=1 << 24)
    slot_bytes: int = Field(2048, ge=64, le=65536)
    rerequest: str | None = None
    rerequest_delay_ms: float = Field(0.5, ge=0.0)
    rerequest_timeout_ms: float = Field(10.0, gt=0.0)
    rerequest_attempts: int = Field(4, ge=1, le=100)
    rerequest_max_messages: int = Field(1000, ge=1, le=65534)
    rerequest_in_flight: int = Field(16, ge=1, le=256)

    @field_validator("rerequest")
    @classmethod
    def _host_port(cls, v: str | None) -> str | None:
        if v is not None:
            parse_host_port(v)
        return v

    @model_validator(mode="after")
    def _window_for_rerequest(self) -> Self:
        if self.rerequest and self.reorder_window_ms <= 0:
            raise ValueError("rerequest needs reorder_window_ms > 0 (the time a hole waits for the answer)")
        return self

    @property
    def enabled(self) -> bool:
        """Is the sequencer on?"""
        return self.reorder_window_ms > 0


def start_recovery(native: Any, r: RecoveryConfig, where: str, max_messages_limit: int | None = None) -> None:
    """Switch on a native decoder's sequencer and gap-fill client as ``r``
    says (nothing when off). ``native`` has ``enable_recovery`` and
    ``connect_rerequest`` (the first-party decoders' signature);
    ``max_messages_limit``: the protocol's own cap on messages per request.
    A server that cannot be reached or named is a :class:`ConfigError` at ``where``."""
    from .config import ConfigError

    if not r.enabled:
        return
    native.enable_recovery(r.reorder_window_ms, r.reorder_max_datagrams, r.slot_bytes,
                           int(r.reorder_max_mb * (1 << 20)))
    if not r.rerequest:
        return
    host, port = parse_host_port(r.rerequest)
    max_messages = min(r.rerequest_max_messages, max_messages_limit or r.rerequest_max_messages)
    try:
        native.connect_rerequest(host, port, max_messages, r.rerequest_timeout_ms, r.rerequest_attempts,
                                 r.rerequest_in_flight, r.rerequest_delay_ms)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}.rerequest: {exc}") from None
