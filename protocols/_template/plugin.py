"""The template's hooks."""

from rxfeed.hookspecs import hookimpl
from rxfeed.registry import DecoderRegistry


@hookimpl
def rxfeed_register_decoders(registry: DecoderRegistry) -> None:
    from .decoder import TemplateDecoder

    registry.add(TemplateDecoder)
