"""Tools built on rxfeed's public API, the way a third party's would be: the
``rxfeed`` command line, the synthetic-day generator, the paced sender, the
latency lab, file outputs (Parquet, plots) and the pytest plugin.

Nothing in :mod:`rxfeed`'s framework modules imports from here.
"""
