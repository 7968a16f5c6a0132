"""The session's settings reach the Python workers."""
from __future__ import annotations

import os

from medialayer.cpu import NUMPY_ENV


def test_python_workers_start_with_the_numpy_setting(spark):
    def probe(batches):
        import pandas as pd
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            from numpy.core._multiarray_umath import __cpu_features__ as features
        for _ in batches:
            value = os.environ.get(NUMPY_ENV, "")
            off = [f for f in value.split() if f in features and not features[f]]
            yield pd.DataFrame({"env": [value], "off": [" ".join(off)]})

    row = spark.range(1).mapInPandas(probe, "env string, off string").collect()[0]
    expected = os.environ.get(NUMPY_ENV) or spark.sparkContext.environment.get(NUMPY_ENV, "")
    assert row.env == expected
    assert row.off == expected          # every feature named is off in the worker's numpy
