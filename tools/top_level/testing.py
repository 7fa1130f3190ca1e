"""``rxfeed.testing``: the conformance kit a plugin runs against itself.

The public name of :mod:`rxfeed.tools.conformance` (this file lives in
``tools/top_level/`` and is installed as ``rxfeed/testing.py``: the kit is a
tool, and the framework in ``core/`` imports no tool). A backend or decoder
package checks its plugin with one class in its own tests::

    from rxfeed.testing import BackendConformance, DecoderConformance

    class TestMyDecoder(DecoderConformance):
        decoder = "my_decoder"

        def valid_payloads(self):
            return payloads, number_of_messages_in_them

or with no test file: ``pytest --rxfeed-conformance NAME`` (the ``rxfeed``
pytest plugin, from the ``conformance_*`` hooks of the plugin's class). See
docs/writing-a-plugin.md, "Conformance kit".
"""

from __future__ import annotations

from rxfeed.tools.conformance import (CLEAR_ERRORS, GOOD_ENDS, BackendConformance, DecoderConformance,
                                      NativeBackendConformance, NativeDecoderConformance,
                                      ReplayAgainConformance, backend_kit, conformance_classes, decoder_kit,
                                      poisoned)

__all__ = ["CLEAR_ERRORS", "GOOD_ENDS", "BackendConformance", "DecoderConformance", "NativeBackendConformance",
           "NativeDecoderConformance", "ReplayAgainConformance", "backend_kit", "conformance_classes",
           "decoder_kit", "poisoned"]
