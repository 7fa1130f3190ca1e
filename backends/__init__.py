"""First-party receive backends (each one a plugin of the ``rxfeed`` entry-point group)."""
