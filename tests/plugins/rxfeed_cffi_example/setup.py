"""Builds the two cffi (API mode) extension modules: each build script names
an ``ffibuilder`` whose C source is compiled against rxfeed's headers."""
from setuptools import setup

setup(cffi_modules=["rxfeed_cffi_example/_build.py:reader_builder",
                    "rxfeed_cffi_example/_build.py:tally_builder"])
