"""Output sinks (plugins of the ``rxfeed`` entry-point group, registered with
``rxfeed_register_sinks``): they take decoded batches off a pipeline and send
them elsewhere."""
