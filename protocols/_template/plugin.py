"""The template's hooks."""

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_decoders(registry):
    from .decoder import TemplateDecoder

    registry.add(TemplateDecoder)
