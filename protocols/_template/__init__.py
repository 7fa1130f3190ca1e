"""A protocol decoder to copy: ``config.py`` (settings), ``decoder.py`` (the
class), ``plugin.py`` (the hooks). It starts as a :class:`rxfeed.PythonDecoder`
(no C): replace the body of ``on_packets`` with your framing.

=====================  ========  ===============================================
member                 needed?   what
=====================  ========  ===============================================
``name``, ``Config``   required  registry name and settings model
``on_packets()``       required  one burst of :class:`rxfeed.Packet` (Python decoder)
``counters()``         required  dict for the summary (``messages``, ``errors``...)
``capabilities``       optional  what the CLI may ask of it (rxfeed.interfaces.CAPABILITIES)
``on_end()``           optional  end of input
``finish()``           optional  flush after the run
=====================  ========  ===============================================

For speed, move the framing to C: a ``ProtocolDecoder`` whose
``decoder_capsule()`` returns a ``rxf_decoder_ops`` table (Cython, see
``rxfeed/protocols/itch50/_decoder.pyx``, or C with cffi, see
``docs/writing-a-plugin.md``) reading ``rxf_packet`` arrays without the GIL,
checking every length first.
"""
