"""Entry point ``rxfeed = nats_js``."""

from __future__ import annotations

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_sinks(registry):
    from .sink import NatsJsSink

    registry.add(NatsJsSink)
