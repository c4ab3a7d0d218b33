"""Build hook: metadata lives in pyproject.toml; this file only adds the C++ decoder.

``pip install .`` compiles ``cpp/dark_decoder.cpp`` (the source cppimport builds in a checkout,
see ``course_lib/native.py``) ahead of time into the module ``course_lib.dark_decoder``, so an
installed or read-only copy of the course never needs a compiler at run time. The extension is
optional: without a working compiler the install still succeeds and ``course_lib.native``
reports that the C++ decoder is unavailable (decoding then runs in numpy).

``COURSE_BUILD_EXT=0`` skips the extension: the Makefile's editable install sets it, because in a
checkout cppimport builds the same source on first use (``course_lib/native.py``).
"""

import os
import sys

from setuptools import setup

try:
    from pybind11.setup_helpers import Pybind11Extension, build_ext, has_flag
except ImportError:  # pybind11 is a build requirement; without it, install the pure-Python part
    ext_modules, cmdclass = [], {}
else:

    class BuildExt(build_ext):
        """Add OpenMP where the compiler supports it (never -march=native: the module must run on
        any CPU of the same architecture); never fail the whole install on a compile error."""

        def build_extensions(self):
            if sys.platform.startswith("linux") and has_flag(self.compiler, "-fopenmp"):
                for ext in self.extensions:
                    ext.extra_compile_args.append("-fopenmp")
                    ext.extra_link_args.append("-fopenmp")
            super().build_extensions()

    ext_modules = [
        Pybind11Extension(
            # the module name must equal PYBIND11_MODULE(dark_decoder, m) in the source
            "course_lib.dark_decoder",
            ["cpp/dark_decoder.cpp"],
            cxx_std=17,
            extra_compile_args=["-O3", "-g0"] if sys.platform != "win32" else [],
            optional=True,
        )
    ]
    cmdclass = {"build_ext": BuildExt}

if os.environ.get("COURSE_BUILD_EXT", "1") == "0":
    ext_modules = []

setup(ext_modules=ext_modules, cmdclass=cmdclass)
