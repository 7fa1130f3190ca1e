"""The template's hooks (point your entry point at this module)."""

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_backends(registry):
    from .backend import TemplateBackend

    registry.add(TemplateBackend)
