"""Entry point ``rxfeed = zmq_pub``."""

from __future__ import annotations

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_sinks(registry):
    from .sink import ZmqPubSink

    registry.add(ZmqPubSink)
