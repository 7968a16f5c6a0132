"""numba, set up in one place for the compiled inner loops (the `*_kernel.py` and `pixel_kernels.py`
modules of `fingerprints` and `matching`). Import this, not numba, and only where a kernel is first
needed: numba takes ~0.3 s to import.

Compiled code is cached on disk, under NUMBA_CACHE_DIR when set, else in `medialayer-numba-<uid>` under
the temp directory: every Spark worker process of a user on a machine then compiles a kernel once
between them, and an install whose package directory is read-only still caches (numba's own default
writes beside the source).
"""
from __future__ import annotations

import os
import tempfile

_USER = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"medialayer-numba-{_USER}"))

from numba import njit, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

__all__ = ["njit", "popcount64"]


@intrinsic
def popcount64(typingctx, x):
    """The number of set bits of a uint64: LLVM's ctpop, one instruction on x86-64 and ARM."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen
