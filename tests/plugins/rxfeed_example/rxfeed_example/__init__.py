"""Example third-party rxfeed plugin (test fixture)."""
