"""A backend to copy: rename the package, the class and ``name``; register the
plugin module under the ``rxfeed`` entry-point group in your pyproject.toml::

    [project.entry-points.rxfeed]
    my_backend = "my_package.plugin"

Module roles (keep them): ``config.py`` (pydantic settings), ``backend.py``
(the :class:`rxfeed.RxBackend`), ``plugin.py`` (the hooks).

===========================  ========  ========================================
member                       needed?   what
===========================  ========  ========================================
``name``, ``Config``         required  registry name and settings model
``native_capsule()``         one of    C function table (fast path, see
                                       ``docs/plugin-abi.md``)
``read_burst(n)``            one of    pure Python: list of buffers, ``[]`` or None
``stats()``                  optional  counters, ``drops`` by reason
``close()``                  optional  release resources
===========================  ========  ========================================
"""
