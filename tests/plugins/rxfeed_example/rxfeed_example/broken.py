"""A plugin that fails to import: discovery must report it and go on."""
raise ImportError("rxfeed_example.broken is broken on purpose")
