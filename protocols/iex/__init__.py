"""IEX (Investors Exchange) market data: TOPS 1.6, DEEP 1.0 and DEEP+ 1.0
over the IEX-TP transport.

* ``iextp.h`` -- the IEX-TP C session layer (segment header checks, sequence
  numbers delivered once and in order, gaps, duplicates, heartbeats, session
  changes, restarts at 1 and stream offset mismatches counted; the gap fill
  request builder).
* :mod:`.spec` -- the message spec tables, one per feed; records, dtypes,
  messages and the tests are (to be) derived from them.
* :mod:`.codegen` -> ``_iex_records.h`` / ``.pxd`` -- C records and a
  length-checked decoder per feed, written by the shared generator
  ``rxfeed.specgen`` (the build fails when they are stale); :mod:`.dtypes`
  -- numpy dtypes of the same layout; ``_codec`` -- the C decoders one
  message at a time (``decode_one(feed, bytes) -> dict``), for tests.

See docs/protocols/iex.md.
"""
