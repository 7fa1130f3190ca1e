"""The run summary: what was received, decoded, lost and how fast."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


#: Names of the frame drop counters of rxfeed/net.h, index = rxf_net_verdict
#: (shared by every backend that parses frames).
NET_DROP_KINDS = ("ok", "truncated_frame", "not_ipv4", "not_udp", "ip_fragment", "bad_header",
                  "unsupported_linktype")


@dataclass
class Summary:
    """Everything a run counted. ``to_dict()`` is what ``--json`` prints."""

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
    session: dict[str, Any] = field(default_factory=dict)
    backend_stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    latency: dict[str, Any] | None = None
    books: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
