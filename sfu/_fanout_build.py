"""Builds ``sfu._fanout``, the compiled fan-out loop (``sfu/_fanout.c``), with cffi in API mode.

``pip install -e .`` runs it (``setup.py``: ``cffi_modules``); ``sfu.fanout``
is the Python side, and ``_fanout.h`` holds the declarations both read.
"""

from pathlib import Path

from cffi import FFI

SOURCE = Path(__file__).with_name("_fanout.c")
HEADER = Path(__file__).with_name("_fanout.h")  # the declarations Python uses, shared with the C source

ffibuilder = FFI()
ffibuilder.cdef(HEADER.read_text())
ffibuilder.set_source("sfu._fanout", SOURCE.read_text(), include_dirs=[str(SOURCE.parent)], extra_compile_args=["-O2"])
