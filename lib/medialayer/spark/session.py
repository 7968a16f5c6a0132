"""SparkSession factory: local[*] sized for a small machine by default, any master from conf."""
from __future__ import annotations

import logging
import os
import sys

from pyspark.sql import SparkSession

from ..config import Config
from ..cpu import NUMPY_ENV, numpy_worker_env
from ..malloc_env import MMAP_ENV, TRIM_ENV, malloc_worker_env

log = logging.getLogger(__name__)


def spark_settings(cfg: Config) -> dict[str, str]:
    """Every setting the session is built with; conf's spark.extra wins over ours."""
    sc = cfg.spark
    settings = {
        "spark.app.name": sc.app_name,
        "spark.sql.shuffle.partitions": str(sc.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        # Arrow batches are re-sliced by the stages themselves; this only bounds memory per batch.
        "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Delta and other readers expect microsecond timestamps, not Spark's legacy INT96.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.adaptive.enabled": "true",
        # Python workers must run the interpreter that has medialayer installed, not `python3` on PATH.
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "spark.pyspark.driver.python": os.environ.get("PYSPARK_DRIVER_PYTHON", sys.executable),
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
    }
    # Python workers import numpy before any of our code runs, and malloc reads its tunables when a
    # process starts: both are set by their environment. A value already in ours reaches them anyway
    # and is left alone.
    worker_env = {**numpy_worker_env(sc.numpy_avx512), **malloc_worker_env(sc.worker_malloc_retain_mb)}
    settings.update({f"spark.executorEnv.{k}": v for k, v in worker_env.items() if k not in os.environ})
    if sc.master.startswith("local"):
        settings["spark.driver.memory"] = sc.driver_memory
        settings["spark.ui.enabled"] = "false"
        settings["spark.ui.showConsoleProgress"] = "false"
    settings.update({str(k): str(v) for k, v in sc.extra.items()})
    return settings


def get_spark(cfg: Config) -> SparkSession:
    """The active session if there is one (notebooks, spark-submit, tests), otherwise a new one."""
    if cfg.spark.master.startswith("local"):
        # Without this, Spark binds to whatever the hostname resolves to and warns about it.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # SparkContext takes the workers' interpreter from this variable (default: `python3` on PATH,
    # which lacks our packages); the spark.pyspark.python setting only reaches spark-submit.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    # Under spark-submit the JVM started this process (and set the gateway port): its --master and
    # --driver-memory are already in force and must not be overridden by conf.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(cfg.spark.master)
    for key, value in spark_settings(cfg).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    log.info("Spark %s, master %s, default parallelism %d%s", spark.version, spark.sparkContext.master,
             spark.sparkContext.defaultParallelism,
             "".join(f"; workers' {k}={v!r}" for k, v in spark.sparkContext.environment.items()
                     if k in (NUMPY_ENV, MMAP_ENV, TRIM_ENV)))
    return spark


def delta_connector_available(spark: SparkSession) -> bool:
    """True when the Delta Spark connector's classes are on the JVM classpath."""
    try:
        spark.sparkContext._jvm.java.lang.Class.forName("io.delta.tables.DeltaTable")  # type: ignore[union-attr]
        return True
    except Exception:  # noqa: BLE001 - py4j raises a generic error for a missing class
        return False
