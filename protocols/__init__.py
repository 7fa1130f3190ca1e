"""First-party protocol decoders (plugins of the ``rxfeed`` entry-point group)."""
