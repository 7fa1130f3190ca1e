"""MoldUDP64, NASDAQ's sequenced UDP transport (also under BX, PSX and GEMX
ITCH): the C session layer ``moldudp64.h`` (sequence numbers delivered once and
in order, gaps and duplicates counted, session changes and implausible jumps
judged) and its Cython declarations ``rxfeed_mold.pxd``. Used by the itch50
decoder; the framework itself knows no transport. See docs/session-layer.md."""
