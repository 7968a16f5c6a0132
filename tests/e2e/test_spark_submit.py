"""jobs/nightly.py through the real spark-submit launcher (its own JVM, not the test session)."""
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from medialayer.sample_catalog import build_sample_catalog

ROOT = Path(__file__).resolve().parents[2]


def test_nightly_job_runs_under_spark_submit(tmp_path):
    catalog = build_sample_catalog(tmp_path / "catalog", n_groups=2, n_singletons=2, include_bad_rows=False,
                                   include_av=False,
                                   max_side=320)
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"fetch": {"local_roots": [str(catalog.media_dir)]},
                                    "spark": {"shuffle_partitions": 2}}))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.run(
        [str(bin_dir / "spark-submit"), "--master", "local[2]", "--driver-memory", "1g", str(ROOT / "jobs" / "nightly.py"),
         "--conf", str(conf), "--manifest", str(catalog.manifest_path), "--warehouse", str(tmp_path / "wh"),
         "--run-date", "2026-11-03"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "verified matches" in proc.stdout
    clusters = pq.read_table(tmp_path / "wh" / "clusters").to_pandas()
    assert clusters["cluster_id"].nunique() == len(catalog.groups)
