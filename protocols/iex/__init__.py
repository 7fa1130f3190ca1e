"""IEX: TOPS 1.6, DEEP 1.0 and DEEP+ 1.0 over IEX-TP.

* :mod:`.spec` -- the message spec tables, one per feed; records, dtypes,
  messages and the tests are to be derived from them.
"""
