"""One SparkSession for every end-to-end test (a JVM start costs seconds)."""
from __future__ import annotations

import pytest

from medialayer.config import load_config
from medialayer.spark.session import get_spark


@pytest.fixture(scope="session")
def spark_cfg():
    return load_config(overrides={"spark": {"shuffle_partitions": 4}, "logging": {"level": "WARNING"}})


@pytest.fixture(scope="session")
def spark(spark_cfg):
    session = get_spark(spark_cfg)
    yield session
    session.stop()
