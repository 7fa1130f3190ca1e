"""NATS JetStream fan-out of normalised book events (``--publish nats://...``)."""

from .sink import NatsJsConfig, NatsJsSink

__all__ = ["NatsJsConfig", "NatsJsSink"]
