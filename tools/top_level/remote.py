"""``rxfeed.remote``: books and event streams rebuilt on any host from the
JetStream stream an rxfeed publisher writes (``replay``/``listen --publish
nats://...``). The public name of :mod:`rxfeed.sinks.nats_js.remote`;
docs/distribution.md, "Consumers", shows how to use it."""

from rxfeed.sinks.nats_js.remote import Books, RemoteStats, events

__all__ = ["Books", "RemoteStats", "events"]
