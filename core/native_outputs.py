"""The Python face of a native decoder's outputs, shared by the first-party
decoders (and free to third parties): each capability method forwards to the
Cython decoder object kept as ``self.native``, which implements the outputs
(C handler tables, Python callbacks, numpy batches, events, arrival log)."""

from __future__ import annotations

from typing import Any


class NativeOutputs:
    """Mixin for a :class:`~rxfeed.interfaces.ProtocolDecoder` whose work is
    done by ``self.native``; anything else of ``self.native`` is reachable as
    an attribute of the decoder too."""

    native: Any

    def subscribe(self, callback: Any, types: Any = None, *, with_meta: bool = False, **options: Any) -> None:
        """A Python callback per message of ``types`` (all: None), optionally with its meta;
        ``options``: the native decoder's own keyword arguments, passed on."""
        self.native.subscribe(callback, types, with_meta=with_meta, **options)

    def on_event(self, callback: Any) -> None:
        """A Python callback per session-layer event (gap, session change, ...)."""
        self.native.on_event(callback)

    def subscribe_batches(self, callback: Any = None, types: Any = None) -> None:
        """numpy structured batches of ``types`` (to ``callback``, or kept for :meth:`take_batches`)."""
        self.native.subscribe_batches(callback, types)

    def take_batches(self) -> Any:
        """The batches kept so far, by type (one array per type)."""
        return self.native.take_batches()

    def add_handlers(self, consumer: Any) -> None:
        """Attach a C handler table (the decoder's handlers capsule, or its owner)."""
        self.native.add_handlers(consumer)

    def log_arrivals(self, on: bool = True) -> None:
        """Record per-packet handler-done times (``listen --arrivals``)."""
        self.native.log_arrivals(on)

    def take_arrivals(self) -> Any:
        """The arrival log so far."""
        return self.native.take_arrivals()

    def finish(self) -> None:
        """Deliver partial batches and queued callbacks; re-raise a callback's error."""
        self.native.flush()

    def __getattr__(self, item: str) -> Any:
        if item == "native":  # not set yet (in __init__): no recursion
            raise AttributeError(item)
        return getattr(self.native, item)
