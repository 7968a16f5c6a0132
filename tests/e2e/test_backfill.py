"""jobs/backfill.py over three dates: stops at a date whose manifest is missing, resumes there."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from medialayer.sample_catalog import build_day_two, build_sample_catalog

ROOT = Path(__file__).resolve().parents[2]


def _backfill_module():
    spec = importlib.util.spec_from_file_location("backfill_job", ROOT / "jobs" / "backfill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backfill_processes_each_date_once_and_resumes_after_a_failure(spark, tmp_path):
    cat = build_sample_catalog(tmp_path / "catalog", n_groups=3, n_singletons=1, include_bad_rows=False,
                               include_av=False,
                               max_side=320)
    day2 = build_day_two(cat, max_side=320)
    feeds = tmp_path / "feeds"
    (feeds / "2026-11-01").mkdir(parents=True)
    shutil.copy(cat.manifest_path, feeds / "2026-11-01" / "manifest.parquet")
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump({"fetch": {"local_roots": [str(cat.media_dir)]},
                                    "spark": {"shuffle_partitions": 4}, "logging": {"level": "WARNING"}}))
    args = ["--conf", str(conf), "--manifest", str(feeds / "{date}" / "manifest.parquet"),
            "--warehouse", str(tmp_path / "wh"), "--start", "2026-11-01", "--end", "2026-11-03",
            "--authorizations", str(cat.authorizations_path)]
    backfill = _backfill_module()

    assert backfill.main(args) == 1                      # 2026-11-02's feed has not arrived
    runs = pq.read_table(tmp_path / "wh" / "runs").to_pandas()
    assert list(runs["run_id"]) == ["2026-11-01"]

    for day in ("2026-11-02", "2026-11-03"):             # the feeds arrive; day three repeats day two
        (feeds / day).mkdir()
        shutil.copy(day2.manifest_path, feeds / day / "manifest.parquet")
    assert backfill.main(args) == 0
    runs = pq.read_table(tmp_path / "wh" / "runs").to_pandas().set_index("run_id")
    assert list(runs.index) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    distinct_urls = len(set(pq.read_table(cat.manifest_path).column("media_url").to_pylist()))
    assert runs.loc["2026-11-01", "media_fetched"] == distinct_urls
    assert runs.loc["2026-11-02", "media_fetched"] == len(day2.new_listings)
    assert runs.loc["2026-11-03", "media_fetched"] == 0               # nothing new, nothing refetched

    assert backfill.main(args) == 0                      # everything done: a no-op
    assert len(pq.read_table(tmp_path / "wh" / "runs")) == 3
