"""Which CPUs get numpy's AVX-512 turned off in Spark's Python workers, and that the setting works."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from medialayer.config import load_config
from medialayer.cpu import NUMPY_ENV, numpy_avx512_features, numpy_worker_env, slow_avx512_sort
from medialayer.spark.session import spark_settings


def _cpuinfo(vendor: str, family: int, flags: str) -> str:
    block = f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel name\t: x\nflags\t\t: {flags}\n"
    # a second processor that says otherwise: only the first is read
    other = "processor\t: 1\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nflags\t\t: fpu\n"
    return block + "\n" + other


@pytest.mark.parametrize("vendor, family, flags, slow", [
    ("AuthenticAMD", 25, "fpu sse avx2 avx512f avx512dq avx512bw", True),      # Zen 4 (EPYC 9004)
    ("AuthenticAMD", 25, "fpu sse avx2", False),                                # Zen 3: no AVX-512
    ("AuthenticAMD", 26, "fpu sse avx2 avx512f avx512dq", False),              # Zen 5 fixed it
    ("GenuineIntel", 6, "fpu sse avx2 avx512f avx512dq", False),               # Intel: AVX-512 sorts are fast
])
def test_only_zen4_counts_as_sorting_slowly(vendor, family, flags, slow):
    assert slow_avx512_sort(_cpuinfo(vendor, family, flags)) is slow


def test_unreadable_cpuinfo_is_not_slow():
    assert slow_avx512_sort("") is False
    assert slow_avx512_sort("vendor_id: AuthenticAMD\ncpu family: ?\nflags: avx512f\n") is False


def test_worker_env_follows_the_setting():
    off = {NUMPY_ENV: " ".join(numpy_avx512_features())} if numpy_avx512_features() else {}
    assert numpy_worker_env("keep", slow_sort=True) == {}
    assert numpy_worker_env("auto", slow_sort=False) == {}
    assert numpy_worker_env("auto", slow_sort=True) == off
    assert numpy_worker_env("disable", slow_sort=False) == off


def test_the_env_turns_avx512_off_in_a_new_numpy_without_complaint():
    env = numpy_worker_env("disable")
    if not env:                                         # not x86-64: nothing to turn off
        assert numpy_avx512_features() == []
        return
    probe = ("import json, numpy\n"
             "try:\n from numpy._core._multiarray_umath import __cpu_features__ as f\n"
             "except ImportError:\n from numpy.core._multiarray_umath import __cpu_features__ as f\n"
             "print(json.dumps(f))")
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **env}, capture_output=True, text=True,
                         check=True)
    features = json.loads(out.stdout)
    assert not any(features[f] for f in env[NUMPY_ENV].split())
    assert "cannot disable" not in out.stderr          # every name is one this numpy knows


def test_spark_settings_pass_the_env_to_workers_unless_ours_already_has_it(monkeypatch):
    monkeypatch.delenv(NUMPY_ENV, raising=False)
    key = f"spark.executorEnv.{NUMPY_ENV}"
    disable = spark_settings(load_config(overrides={"spark": {"numpy_avx512": "disable"}}))
    assert disable.get(key) == numpy_worker_env("disable").get(NUMPY_ENV)
    assert key not in spark_settings(load_config(overrides={"spark": {"numpy_avx512": "keep"}}))
    monkeypatch.setenv(NUMPY_ENV, "X86_V4")
    assert key not in spark_settings(load_config(overrides={"spark": {"numpy_avx512": "disable"}}))
