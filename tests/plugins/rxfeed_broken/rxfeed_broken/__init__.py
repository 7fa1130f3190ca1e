"""Deliberately broken rxfeed plugins, one failure per entry point.

Not installed: the tests put this directory on ``PYTHONPATH``, where
``importlib.metadata`` finds ``rxfeed_broken-0.0.1.dist-info`` and its entry
points like an installed distribution's. Every other plugin and command
must keep working with all of them present, and each must be named when
it fails.
"""
