"""CPU quirks that change how fast numpy runs, and the numpy setting that avoids them.

AMD Zen 4 CPUs (family 0x19 with AVX-512: EPYC Genoa and Bergamo, Ryzen 7000, the cloud's m7a, c7a,
c3d, n4d, Dasv6 machines) run numpy's AVX-512 sorts (x86-simd-sort) several times slower than its
AVX2 ones: the sorts store with a compress instruction that Zen 4 runs in microcode (numpy and
x86-simd-sort know it; OpenJDK turned its AVX-512 sort off on these CPUs for the same reason). The
candidate join is mostly sorts, so Spark's Python workers there start with numpy's AVX-512
dispatch turned off (`NPY_DISABLE_CPU_FEATURES`). Results are the same; only speed changes.
Measured here (AMD EPYC, family 0x19): np.sort of 640k int64 36 -> 8 ms; making key rows 0.45 ->
0.35 ms per image, one partition of a million-media join 0.91 -> 0.64 s.
"""
from __future__ import annotations

from pathlib import Path

SLOW_AVX512_SORT_FAMILY = 0x19        # Zen 3 has no AVX-512 and Zen 5 (0x1A) fixed the instruction
NUMPY_ENV = "NPY_DISABLE_CPU_FEATURES"


def slow_avx512_sort(cpuinfo: str) -> bool:
    """Whether a CPU, described as /proc/cpuinfo describes it, runs AVX-512 sorts slowly (Zen 4)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break                          # the first processor is enough: they are alike
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    try:
        family = int(fields.get("cpu family", ""))
    except ValueError:
        return False
    return (fields.get("vendor_id") == "AuthenticAMD" and family == SLOW_AVX512_SORT_FAMILY
            and "avx512f" in fields.get("flags", "").split())


def this_cpu_sorts_slowly(cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """`slow_avx512_sort` for this machine; False where /proc/cpuinfo cannot be read (not Linux)."""
    try:
        return slow_avx512_sort(Path(cpuinfo_path).read_text(errors="replace"))
    except OSError:
        return False


def numpy_avx512_features() -> list[str]:
    """The AVX-512 feature names that this numpy dispatches to (the names differ between versions:
    X86_V4 from numpy 2.4, AVX512F and AVX512_SKX before), for `NUMPY_ENV`."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__ as dispatched
    except ImportError:                        # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__ as dispatched
    return [f for f in dispatched if f.startswith("AVX512") or f == "X86_V4"]


def numpy_worker_env(setting: str, slow_sort: bool | None = None) -> dict[str, str]:
    """Environment for processes that will import numpy: {NUMPY_ENV: features} when AVX-512 is to be
    turned off (`setting` "disable", or "auto" on a slow-sorting CPU), else empty ("keep")."""
    if setting == "keep" or (setting == "auto" and not (this_cpu_sorts_slowly() if slow_sort is None else slow_sort)):
        return {}
    features = numpy_avx512_features()
    return {NUMPY_ENV: " ".join(features)} if features else {}
