"""The run summary: what was received, decoded, lost and how fast."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


#: Names of the frame drop counters of rxfeed/net.h, index = rxf_net_verdict
#: (shared by every backend that parses frames).
NET_DROP_KINDS = ("ok", "truncated_frame", "not_ipv4", "not_udp", "ip_fragment", "bad_header",
                  "unsupported_linktype")


#: The decoder counters the framework itself reports at the top of a summary
#: (every decoder may report them; a protocol without sequence numbers has no
#: gaps). Every other counter a decoder returns is its own and goes, as is,
#: into :attr:`Summary.decoder_stats`.
FRAMEWORK_DECODER_KEYS = frozenset({"packets", "messages", "messages_per_type", "gaps", "gap_messages",
                                    "duplicates", "errors", "warnings", "recovery"})


@dataclass
class Summary:
    """Everything a run counted. ``to_dict()`` is what ``--json`` prints.

    The top-level fields are the framework's and mean the same for every
    backend and decoder: what was received (``packets``), decoded
    (``messages``), lost (``gaps``: runs of missing sequence numbers,
    ``gap_messages`` messages in them; ``duplicates``) or refused
    (``errors`` from the decoder, ``drops`` from the backend). What only one
    plugin knows is under its own key: ``backend_stats`` (the backend's
    :meth:`~rxfeed.RxBackend.stats`) and ``decoder_stats`` (the decoder's
    other counters, e.g. a sequenced transport's ``session``, ``next_sequence``,
    ``heartbeats``). ``recovery`` is what rxfeed's sequencer did (lines,
    holes filled and lost with their ranges, redundant copies, re-requests,
    reorder-buffer peak, fill latency; docs/recovery.md), None when it was off.
    """

    source: str | None
    backend: str
    decoder: str
    stop_reason: str
    packets: int
    messages: int
    messages_per_type: dict[str, int]
    gaps: int
    gap_messages: int
    duplicates: int
    errors: dict[str, int]
    drops: dict[str, int]
    elapsed_s: float
    messages_per_s: float
    decoder_stats: dict[str, Any] = field(default_factory=dict)
    backend_stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    latency: dict[str, Any] | None = None
    books: dict[str, Any] | None = None
    recovery: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
