"""IEX (Investors Exchange) market data: the IEX-TP transport's C session
layer ``iextp.h`` (segment header checks, sequence numbers delivered once and
in order, gaps, duplicates, heartbeats, session changes, restarts at 1 and
stream offset mismatches counted; the gap fill request builder). The TOPS,
DEEP and DEEP+ message protocols build on it. See docs/protocols/iex.md."""
