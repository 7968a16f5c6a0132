"""The Airflow DAGs (make test-airflow; needs `pip install -e .[airflow]`): they load without import
errors, have the expected tasks and schedules, and the nightly DAG runs once end to end against the
sample catalog with `dag.test()` on SQLite, calling the real spark-submit."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from medialayer.sample_catalog import build_sample_catalog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("airflow")
    cat = build_sample_catalog(tmp / "catalog", n_groups=2, n_singletons=2, max_side=320)
    conf = tmp / "conf.yaml"
    conf.write_text(yaml.safe_dump({"fetch": {"local_roots": [str(cat.media_dir)]},
                                    "spark": {"shuffle_partitions": 2}}))
    env = {**os.environ,
           "AIRFLOW_HOME": str(tmp / "home"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "airflow_dags"),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp / 'airflow.db'}",
           "MEDIALAYER_HOME": str(ROOT),
           "MEDIALAYER_SPARK_SUBMIT": str(Path(sys.executable).parent / "spark-submit"),
           "MEDIALAYER_CONF": str(conf),
           "MEDIALAYER_MANIFEST": str(cat.manifest_path),
           "MEDIALAYER_WAREHOUSE": str(tmp / "warehouse"),
           "MEDIALAYER_AUTHORIZATIONS": str(cat.authorizations_path),
           "MEDIALAYER_REPORT_DIR": str(tmp),
           "MEDIALAYER_MEDIA_ROOT": str(cat.media_dir)}
    airflow = Path(sys.executable).parent / "airflow"
    proc = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return env, tmp, cat


def _python(code: str, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


def test_dags_load_with_expected_tasks_and_schedules(airflow_env):
    env, _, _ = airflow_env
    proc = _python(
        "import json\n"
        "from airflow.models import DagBag\n"
        "bag = DagBag()\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},"
        " 'dags': {d: {'tasks': sorted(t.task_id for t in dag.tasks),"
        " 'schedule': str(getattr(dag, 'schedule', None)), 'catchup': dag.catchup,"
        " 'max_active_runs': dag.max_active_runs,"
        " 'retries': [t.retries for t in dag.tasks],"
        " 'timeout': [str(t.execution_timeout) for t in dag.tasks]} for d, dag in bag.dags.items()}}))", env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    nightly, backfill = info["dags"]["medialayer_nightly"], info["dags"]["medialayer_backfill"]
    assert nightly["tasks"] == ["review_report", "run_pipeline"] and nightly["schedule"] == "@daily"
    assert not nightly["catchup"] and nightly["max_active_runs"] == 1
    assert 2 in nightly["retries"] and "6:00:00" in nightly["timeout"]
    assert backfill["tasks"] == ["backfill"] and backfill["schedule"] == "None"


def test_dag_file_does_no_heavy_work_at_import(airflow_env):
    env, _, _ = airflow_env
    proc = _python("import sys, runpy, time\nt = time.time()\n"
                   f"runpy.run_path({str(ROOT / 'airflow_dags' / 'medialayer_dags.py')!r})\n"
                   "print(time.time() - t, 'pyspark' in sys.modules, 'medialayer' in sys.modules)", env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seconds, spark_loaded, medialayer_loaded = proc.stdout.split()[-3:]
    assert spark_loaded == "False" and medialayer_loaded == "False"


def test_nightly_dag_runs_once_with_dag_test(airflow_env):
    env, tmp, cat = airflow_env
    proc = _python(
        "from datetime import datetime, timezone\n"
        "from airflow.models import DagBag\n"
        "dag = DagBag().dags['medialayer_nightly']\n"
        "run = dag.test(logical_date=datetime(2026, 11, 5, tzinfo=timezone.utc))\n"
        "print('STATE', run.state)\n", env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "STATE success" in proc.stdout, (proc.stdout + proc.stderr)[-4000:]
    runs = pq.read_table(tmp / "warehouse" / "runs").to_pandas()
    assert list(runs["run_id"]) == ["2026-11-05"]                 # the DAG's data interval date
    clusters = pq.read_table(tmp / "warehouse" / "clusters").to_pandas()
    assert clusters["cluster_id"].nunique() == len(cat.groups)
    report = (tmp / "report-2026-11-05.html").read_text()
    assert "review queue" in report and "<img class=\"thumb\"" in report
