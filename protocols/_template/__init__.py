"""A protocol decoder to copy. A decoder exports a C table (``rxf_decoder_ops``, see
``docs/plugin-abi.md``) wrapped in a :class:`rxfeed.ProtocolDecoder`.

=====================  ========  ===============================================
member                 needed?   what
=====================  ========  ===============================================
``name``, ``Config``   required  registry name and settings model
``decoder_capsule()``     required  PyCapsule ``rxfeed.decoder_ops.v1``
``counters()``         required  dict for the summary (``messages``, ``errors``...)
``finish()``           optional  flush after the run
=====================  ========  ===============================================

``decoder.py`` here wraps the itch50 Cython decoder to show the shape; a new
protocol writes its own ``_decoder.pyx`` with an ``on_burst`` that reads
``rxf_packet`` arrays without the GIL, checking every length first.
"""
