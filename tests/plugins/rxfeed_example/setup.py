"""Builds the C backend against rxfeed's installed header (rxfeed.get_include())."""
from setuptools import Extension, setup

import rxfeed

setup(ext_modules=[Extension("rxfeed_example._cbackend", ["rxfeed_example/_cbackend.c"],
                             include_dirs=[rxfeed.get_include()])])
