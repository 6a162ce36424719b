"""Builds ``sfu._fanout``, the compiled fan-out loop (``sfu/_fanout.c``) and the
sender's SRTP (``sfu/_srtp_out.c``), with cffi in API mode. Nothing is linked
but libc: libsrtp and OpenSSL are called at the addresses of the copies
already loaded (``sfu.fanout``, ``sfu.srtp_out``).

``pip install -e .`` runs it (``setup.py``: ``cffi_modules``); ``sfu.fanout``
and ``sfu.srtp_out`` are the Python side, and ``_fanout.h`` holds the
declarations all read.
"""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).parent
SOURCE = HERE / "_fanout.c"
HEADER = HERE / "_fanout.h"  # the declarations Python uses, shared with the C sources

ffibuilder = FFI()
ffibuilder.cdef(HEADER.read_text())
ffibuilder.set_source(
    "sfu._fanout",
    SOURCE.read_text(),
    sources=[str(HERE / "_srtp_out.c")],
    include_dirs=[str(HERE)],
    extra_compile_args=["-O2"],
)
