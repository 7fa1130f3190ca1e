"""The template's hooks (point your entry point at this module)."""

from rxfeed.hookspecs import hookimpl
from rxfeed.registry import BackendRegistry


@hookimpl
def rxfeed_register_backends(registry: BackendRegistry) -> None:
    from .backend import TemplateBackend

    registry.add(TemplateBackend)
