"""rxfeed: exchange market data at kernel-bypass speed.

Public API: :class:`Pipeline`, :func:`get_plugins`, the interfaces
:class:`RxBackend` / :class:`ProtocolDecoder`, and :func:`get_include` for C
or Cython plugins compiled against ``rxfeed/abi.h``.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"


def get_include() -> str:
    """Directory holding ``rxfeed/abi.h`` (add it to a plugin's include path)."""
    return os.path.join(os.path.dirname(__file__), "include")


def get_pxd_dir() -> str:
    """Directory holding ``rxfeed_abi.pxd`` (add it to Cython's include path)."""
    return os.path.dirname(__file__)


from .config import ConfigError, PluginConfig, RunConfig  # noqa: E402
from .interfaces import Packet, ProtocolDecoder, PythonDecoder, RxBackend  # noqa: E402
from .pipeline import Pipeline  # noqa: E402
from .plugins import get_plugins  # noqa: E402
from .summary import Summary  # noqa: E402

__all__ = ["ConfigError", "Packet", "Pipeline", "PluginConfig", "ProtocolDecoder", "PythonDecoder", "RunConfig",
           "RxBackend", "Summary",
           "get_include", "get_plugins", "get_pxd_dir", "__version__"]
