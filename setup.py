# The compiled fan-out loop (sfu/_fanout.c), built with cffi; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["sfu/_fanout_build.py:ffibuilder"])
