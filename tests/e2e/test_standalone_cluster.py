"""The nightly job through spark-submit against a real Spark standalone cluster (a master and one
worker on loopback, started from the pip pyspark's spark-class). Unlike local[*], executors are
separate JVMs with their own Python workers, so this proves nothing relies on driver-local state."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from medialayer.sample_catalog import build_sample_catalog

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{what} did not come up at {url}")


@pytest.fixture
def cluster(tmp_path):
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "SPARK_LOG_DIR": str(tmp_path / "logs"),
           "SPARK_WORKER_DIR": str(tmp_path / "work")}
    port, ui, worker_ui = _free_port(), _free_port(), _free_port()
    master_url = f"spark://127.0.0.1:{port}"
    logs = open(tmp_path / "cluster.log", "w")
    master = subprocess.Popen([str(BIN / "spark-class"), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env, stdout=logs, stderr=logs)
    worker = None
    try:
        _wait_http(f"http://127.0.0.1:{ui}/json/", master, "the master")
        worker = subprocess.Popen([str(BIN / "spark-class"), "org.apache.spark.deploy.worker.Worker", "--host",
                                   "127.0.0.1", "--cores", "2", "--memory", "2g", "--webui-port", str(worker_ui),
                                   master_url], env=env, stdout=logs, stderr=logs)
        deadline = time.monotonic() + 90
        while '"aliveworkers" : 1' not in urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/").read().decode().lower():
            assert worker.poll() is None and time.monotonic() < deadline, "the worker did not register"
            time.sleep(0.5)
        yield master_url, env, ui
    finally:
        for proc in (worker, master):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        logs.close()


def test_nightly_job_on_a_standalone_cluster(cluster, tmp_path):
    master_url, env, ui = cluster
    catalog = build_sample_catalog(tmp_path / "catalog", n_groups=2, n_singletons=2, max_side=320, include_av=False)
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"fetch": {"local_roots": [str(catalog.media_dir)]},
                                    "spark": {"shuffle_partitions": 4}}))
    proc = subprocess.run(
        [str(BIN / "spark-submit"), "--master", master_url, "--driver-memory", "1g", "--executor-memory", "1g",
         "--conf", "spark.driver.host=127.0.0.1", str(ROOT / "jobs" / "nightly.py"),
         "--conf", str(conf), "--manifest", str(catalog.manifest_path), "--warehouse", str(tmp_path / "wh"),
         "--run-date", "2026-11-04", "--authorizations", str(catalog.authorizations_path)],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"master {master_url}" in proc.stderr            # the session really ran against the cluster
    clusters = pq.read_table(tmp_path / "wh" / "clusters").to_pandas()
    assert clusters["cluster_id"].nunique() == len(catalog.groups)
    fps = pq.read_table(tmp_path / "wh" / "fingerprints").to_pandas()
    assert len(fps) == len(set(pq.read_table(catalog.manifest_path).column("media_url").to_pylist()))
    assert set(fps.loc[fps["status"] == "error", "error_code"]) == set(catalog.bad_listings.values())
    # The application used the worker's executors (the master lists it as completed).
    status = urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/").read().decode()
    assert '"completedapps"' in status.lower() and "medialayer" in status
