"""NASDAQ TotalView-ITCH 5.0 over MoldUDP64 (or NASDAQ file framing), decoded in Cython.

* :mod:`.spec` -- the one spec table; :mod:`.messages`, :mod:`.dtypes`,
  ``_records.h`` are derived from it.
* :class:`ItchDecoder` -- the decoder: C handlers, Python callbacks, numpy batches.
"""

from .decoder import Itch50Decoder, ItchDecoder
from .config import Itch50Config

__all__ = ["Itch50Config", "Itch50Decoder", "ItchDecoder"]
