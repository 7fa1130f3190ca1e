"""Cythonizes the backend and the decoder against rxfeed's Cython declarations
(``rxfeed.get_pxd_dir()``) and C header (``rxfeed.get_include()``)."""
from Cython.Build import cythonize
from setuptools import Extension, setup

import rxfeed

extensions = [Extension(f"rxfeed_cython_example.{name}", [f"rxfeed_cython_example/{name}.pyx"],
                        include_dirs=[rxfeed.get_include()])
              for name in ("_replay", "_toy")]
setup(ext_modules=cythonize(extensions, include_path=[rxfeed.get_pxd_dir()],
                            compiler_directives={"language_level": "3"}))
