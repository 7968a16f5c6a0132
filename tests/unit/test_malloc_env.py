"""The allocator setting passed to Spark's Python workers, and that a new process really keeps
arrays of a few MB in its heap under it."""
from __future__ import annotations

import ctypes
import json
import os
import platform
import subprocess
import sys

from medialayer.config import load_config
from medialayer.malloc_env import HEAP_ARRAY_LIMIT, MMAP_ENV, TRIM_ENV, malloc_worker_env
from medialayer.spark.session import spark_settings


def test_the_env_follows_the_setting():
    assert malloc_worker_env(0) == {}
    assert malloc_worker_env(512) == {MMAP_ENV: str(32 << 20), TRIM_ENV: str(512 << 20)}
    assert int(malloc_worker_env(64)[MMAP_ENV]) == HEAP_ARRAY_LIMIT


def test_spark_settings_pass_it_to_workers_unless_ours_already_has_it(monkeypatch):
    monkeypatch.delenv(MMAP_ENV, raising=False)
    monkeypatch.delenv(TRIM_ENV, raising=False)
    settings = spark_settings(load_config(overrides={"spark": {"worker_malloc_retain_mb": 256}}))
    assert settings[f"spark.executorEnv.{TRIM_ENV}"] == str(256 << 20)
    assert settings[f"spark.executorEnv.{MMAP_ENV}"] == str(HEAP_ARRAY_LIMIT)
    off = spark_settings(load_config(overrides={"spark": {"worker_malloc_retain_mb": 0}}))
    assert not any(k.endswith((MMAP_ENV, TRIM_ENV)) for k in off)
    monkeypatch.setenv(TRIM_ENV, "1")
    mine = spark_settings(load_config(overrides={"spark": {"worker_malloc_retain_mb": 256}}))
    assert f"spark.executorEnv.{TRIM_ENV}" not in mine and f"spark.executorEnv.{MMAP_ENV}" in mine


# In a new process: how much memory malloc holds in mmapped blocks while an 8 MB array lives, the
# first of its size (glibc's mallinfo2: hblkhd).
_PROBE = """
import ctypes, json, numpy as np
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
a = np.ones(1 << 20)
print(json.dumps({"mmapped": libc.mallinfo2().hblkhd}))
"""


def _glibc_with_mallinfo2() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


def test_a_new_process_serves_arrays_from_its_heap_under_the_env():
    if not _glibc_with_mallinfo2():      # other C libraries ignore the variables: nothing to check
        assert malloc_worker_env(512)
        return
    base = {k: v for k, v in os.environ.items() if k not in (MMAP_ENV, TRIM_ENV)}

    def probe(extra: dict) -> dict:
        out = subprocess.run([sys.executable, "-c", _PROBE], env={**base, **extra}, capture_output=True, text=True,
                             check=True)
        return json.loads(out.stdout)

    assert probe(malloc_worker_env(512))["mmapped"] < (1 << 20)     # the array came from the heap
    # The contrast: glibc's defaults map a first array this large from the OS.
    assert probe({})["mmapped"] >= (8 << 20)
