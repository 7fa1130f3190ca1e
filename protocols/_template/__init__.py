"""A protocol decoder to copy. A decoder is a C sink (``rxf_sink_ops``, see
``docs/plugin-abi.md``) wrapped in a :class:`rxfeed.ProtocolDecoder`.

=====================  ========  ===============================================
member                 needed?   what
=====================  ========  ===============================================
``name``, ``Config``   required  registry name and settings model
``sink_capsule()``     required  PyCapsule ``rxfeed.sink_ops.v1``
``counters()``         required  dict for the summary (``messages``, ``errors``...)
``finish()``           optional  flush after the run
=====================  ========  ===============================================

``decoder.py`` here wraps the itch50 Cython sink to show the shape; a new
protocol writes its own ``_sink.pyx`` with an ``on_burst`` that reads
``rxf_packet`` arrays without the GIL, checking every length first.
"""
