"""Example third-party rxfeed plugin written in Cython (test fixture): the
``example_cython`` backend (a record file, see :mod:`.records`) and the
``example_toy_native`` decoder (the TOY protocol of ``rxfeed_example.toy``)."""
