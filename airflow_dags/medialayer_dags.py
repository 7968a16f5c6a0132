"""Airflow DAGs for medialayer: the nightly run and a backfill over a date range.

Both run the jobs with `spark-submit` from a BashOperator (a documented alternative to the Apache
Spark provider, whose current releases pull in `pyspark-client`, which would overwrite the full
pyspark medialayer runs on). Nothing heavy happens at import time: the file reads environment
variables only. Settings (environment of the scheduler and workers):

    MEDIALAYER_HOME          the project checkout (jobs/ and .venv/); default: this file's parent
    MEDIALAYER_SPARK_SUBMIT  spark-submit to use; default: $MEDIALAYER_HOME/.venv/bin/spark-submit
    MEDIALAYER_SPARK_MASTER  e.g. spark://host:7077 or yarn; default: local[2]
    MEDIALAYER_CONF          the run's conf YAML (optional)
    MEDIALAYER_MANIFEST      the manifest path; {date} is replaced by the run date (YYYY-MM-DD)
    MEDIALAYER_WAREHOUSE     the warehouse directory
    MEDIALAYER_AUTHORIZATIONS brand authorizations table (optional)
    MEDIALAYER_REPORT_DIR    where the nightly DAG writes report-<date>.html (optional)
    MEDIALAYER_MEDIA_ROOT    a local directory the report may read thumbnails from (optional)
"""
from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta
from pathlib import Path

try:                                       # Airflow 3
    from airflow.sdk import DAG, Param
except ImportError:                        # Airflow 2.x
    from airflow import DAG
    from airflow.models.param import Param
try:
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:
    from airflow.operators.bash import BashOperator

HOME = Path(os.environ.get("MEDIALAYER_HOME", Path(__file__).resolve().parents[1]))
SPARK_SUBMIT = os.environ.get("MEDIALAYER_SPARK_SUBMIT", str(HOME / ".venv" / "bin" / "spark-submit"))
MASTER = os.environ.get("MEDIALAYER_SPARK_MASTER", "local[2]")
CONF = os.environ.get("MEDIALAYER_CONF", "")
MANIFEST = os.environ.get("MEDIALAYER_MANIFEST", "")
WAREHOUSE = os.environ.get("MEDIALAYER_WAREHOUSE", str(HOME / "warehouse"))
AUTHORIZATIONS = os.environ.get("MEDIALAYER_AUTHORIZATIONS", "")
REPORT_DIR = os.environ.get("MEDIALAYER_REPORT_DIR", "")
MEDIA_ROOT = os.environ.get("MEDIALAYER_MEDIA_ROOT", "")

DEFAULT_ARGS = {
    "owner": "catalog-media",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(hours=6),
}


def _env() -> dict[str, str]:
    """spark-submit finds Spark through the venv's python; executors use the same interpreter."""
    bin_dir = str(Path(SPARK_SUBMIT).parent)
    return {"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYSPARK_PYTHON": str(Path(bin_dir) / "python")}


def _job(script: str, args: list[str]) -> str:
    common = ["--conf", CONF] if CONF else []
    auth = ["--authorizations", AUTHORIZATIONS] if AUTHORIZATIONS else []
    cmd = [SPARK_SUBMIT, "--master", MASTER, str(HOME / "jobs" / script), *common, *args,
           "--warehouse", WAREHOUSE, *auth]
    # {{ ... }} survive quoting: Airflow renders them before bash runs the line.
    return " ".join(a if "{{" in a else shlex.quote(a) for a in cmd)


with DAG(
    dag_id="medialayer_nightly",
    description="Fingerprint the day's new media, match them against the catalog, refresh decisions",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,                      # runs build on each other; the warehouse lock refuses overlap
    default_args=DEFAULT_ARGS,
    tags=["medialayer"],
) as nightly:
    run = BashOperator(
        task_id="run_pipeline",
        bash_command=_job("nightly.py", ["--manifest", MANIFEST.replace("{date}", "{{ ds }}"),
                                         "--run-date", "{{ ds }}"]),
        env=_env(), append_env=True,
    )
    if REPORT_DIR:
        roots = f" --media-root {shlex.quote(MEDIA_ROOT)}" if MEDIA_ROOT else ""
        conf = f" --conf {shlex.quote(CONF)}" if CONF else ""
        report = BashOperator(
            task_id="review_report",
            bash_command=(f"{shlex.quote(str(Path(SPARK_SUBMIT).parent / 'medialayer'))} report{conf} "
                          f"--warehouse {shlex.quote(WAREHOUSE)}{roots} "
                          f"--out {shlex.quote(REPORT_DIR)}/report-{{{{ ds }}}}.html"),
            env=_env(), append_env=True, retries=0,
        )
        run >> report


with DAG(
    dag_id="medialayer_backfill",
    description="The nightly run for every date of a range, in order, resuming where it stopped",
    schedule=None,                          # triggered by hand with start and end dates
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(hours=48)},
    params={"start": Param("2026-11-01", type="string", format="date"),
            "end": Param("2026-11-01", type="string", format="date")},
    tags=["medialayer"],
) as backfill:
    BashOperator(
        task_id="backfill",
        bash_command=_job("backfill.py", ["--manifest", MANIFEST, "--start", "{{ params.start }}",
                                          "--end", "{{ params.end }}"]),
        env=_env(), append_env=True,
    )
