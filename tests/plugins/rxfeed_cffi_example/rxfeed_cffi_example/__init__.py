"""rxfeed_cffi_example: an rxfeed plugin whose C parts are built with cffi's
API mode - the ``example_cffi`` backend (a datagram file replayed in C) and
a C handler table for ITCH 5.0 records (:class:`~.tally.ItchTally`)."""
