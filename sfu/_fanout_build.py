"""Builds ``sfu._fanout``, the compiled fan-out loop (``sfu/_fanout.c``), with cffi in API mode.

``pip install -e .`` runs it (``setup.py``: ``cffi_modules``); ``sfu.fanout``
is the Python side. The declarations below are those of ``_fanout.c`` that
Python uses.
"""

from pathlib import Path

from cffi import FFI

SOURCE = Path(__file__).with_name("_fanout.c")

ffibuilder = FFI()
ffibuilder.cdef(
    """
    typedef struct {
        double times[8192];
        uint16_t sizes[8192];
        uint16_t next;
        uint16_t ext;
        uint32_t reserved;
    } vcs_cc;

    typedef struct {
        int fd;
        int gso;
        uint32_t pt;
        uint32_t seq_off;
        uint32_t ts_off;
        uint32_t ssrc;
        void *srtp;
        vcs_cc *cc;
        uint32_t addrlen;
        unsigned char addr[28];
    } vcs_target;

    typedef struct {
        uint64_t syscalls;
        uint64_t messages;
    } vcs_stats;

    vcs_stats vcs_totals;

    int vcs_fanout(uintptr_t protect_address, const vcs_target *targets, int ntargets, const char *data,
                   const int *lengths, int count, uint32_t seq, uint32_t ts, int marker, double now);
    """
)
ffibuilder.set_source("sfu._fanout", SOURCE.read_text(), extra_compile_args=["-O2"])

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(SOURCE.parent.parent), verbose=True)
