"""Hook specifications of rxfeed plugins.

A plugin is a module (or object) registered under the ``rxfeed`` entry-point
group; it implements any of these hooks with :data:`hookimpl`. The
first-party backends and decoders are plugins of exactly this kind.

Example (a plugin module)::

    from rxfeed.hookspecs import hookimpl

    @hookimpl
    def rxfeed_register_backends(registry):
        registry.add(MyBackend)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .registry import BackendRegistry, DecoderRegistry, SinkRegistry

PROJECT = "rxfeed"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def rxfeed_register_backends(registry: "BackendRegistry") -> None:
    """Register :class:`rxfeed.interfaces.RxBackend` subclasses.

    Called once when the plugin manager is built. Call
    ``registry.add(BackendClass)`` for each backend the plugin provides; a
    name already taken is an error reported against this plugin.

    :param registry: the backend registry.
    """


@hookspec
def rxfeed_register_decoders(registry: "DecoderRegistry") -> None:
    """Register :class:`rxfeed.interfaces.ProtocolDecoder` subclasses.

    Called once when the plugin manager is built, like
    :func:`rxfeed_register_backends`.

    :param registry: the decoder registry.
    """


@hookspec
def rxfeed_register_sinks(registry: "SinkRegistry") -> None:
    """Register output sinks (classes with ``name``, ``Config``,
    ``attach(decoder)`` and ``close()``), e.g. a ZeroMQ publisher.

    Called once when the plugin manager is built.

    :param registry: the sink registry.
    """


@hookspec(firstresult=True)
def rxfeed_detect_source(path: str, head: bytes) -> tuple[str, str | None] | None:
    """Say which ``(backend, decoder)`` reads a file, from its first bytes.

    Called by ``rxfeed replay``/``inspect``/``convert``/``plot`` when
    ``--backend`` or ``--decoder`` is not given. The first plugin that
    recognises the file answers; return ``None`` to pass. A backend that
    knows the container but not the protocol inside (a pcap) answers
    ``(backend, None)``: the decoder is then found from the payloads
    (:func:`rxfeed_claim_payloads`).

    :param path: the file's path.
    :param head: up to 64 leading bytes, already gunzipped if the file is gzip.
    """


@hookspec
def rxfeed_claim_payloads(payloads: list[bytes]) -> str | None:
    """Claim a capture for a decoder, from its first UDP payloads.

    Called when a capture's decoder is not named (``-d``): with up to 32 of
    its first UDP payloads. Return the name of the decoder (registered by
    this plugin) that reads them, or ``None``. Exactly one claim picks the
    decoder; none or several make the CLI ask for ``--decoder``. Be strict:
    claim only payloads your framing parses exactly.

    :param payloads: the payloads, in capture order.
    """


@hookspec
def rxfeed_native_info() -> dict[str, str] | None:
    """Report native parts for ``rxfeed plugins``: ``{part: "built ..."}``.

    Called by ``rxfeed plugins``; return ``None`` when the plugin has none.
    """
