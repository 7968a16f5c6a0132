"""Faults mid-run: the job is SIGKILLed while fingerprinting and while publishing tables, then rerun.
The tables stay readable after each kill, and the rerun leaves them equal to an uninterrupted run's.
A second run on a warehouse that is in use is refused with a clear message.

The nightly job runs as a real process (`medialayer run`), fetching its media from a loopback HTTP
server that answers slowly, so a kill lands inside the stage it aims at.
"""
from __future__ import annotations

import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from medialayer.config import load_config
from medialayer.pipeline import run_pipeline
from medialayer.sample_catalog import build_day_two, build_sample_catalog
from medialayer.warehouse import TABLES, lock_warehouse

VOLATILE = ("fetched_at", "started_at", "durations_s")
KEYS = {"fingerprints": ["media_key"], "listing_media": ["listing_id", "media_key"],
        "media_matches": ["media_key_a", "media_key_b"], "listing_matches": ["listing_id_a", "listing_id_b"],
        "clusters": ["listing_id"], "cluster_events": ["run_id", "cluster_id", "event"],
        "sku_suggestions": ["cluster_id"], "review_queue": ["item_id"], "runs": ["run_id"]}
CLI = str(Path(sys.executable).parent / "medialayer")


def _serve_slowly(directory: Path, delay_s: float):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(directory), **kw)

        def log_message(self, *args):
            pass

        def do_GET(self):
            time.sleep(delay_s)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _over_http(manifest: Path, media_dir: Path, base: str, out: Path) -> Path:
    table = pq.read_table(manifest)
    urls = [base + "/" + str(Path(u).relative_to(media_dir)) for u in table.column("media_url").to_pylist()]
    pq.write_table(table.set_column(table.schema.get_field_index("media_url"), "media_url", pa.array(urls)), out)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    cat = build_sample_catalog(root / "catalog", n_groups=3, n_singletons=1, include_bad_rows=False,
                               include_av=False, max_side=320)
    day2 = build_day_two(cat, max_side=320)
    httpd = _serve_slowly(cat.media_dir, delay_s=0.4)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    conf = root / "conf.yaml"
    conf.write_text(yaml.safe_dump({
        "spark": {"shuffle_partitions": 4},
        "fetch": {"allow_hosts": [f"127.0.0.1:{httpd.server_address[1]}"], "concurrency": 2},
        "logging": {"level": "INFO"},
    }))
    manifests = {"day1": _over_http(cat.manifest_path, cat.media_dir, base, root / "day1.parquet"),
                 "day2": _over_http(day2.manifest_path, cat.media_dir, base, root / "day2.parquet")}
    yield {"root": root, "conf": conf, "manifests": manifests, "auth": cat.authorizations_path}
    httpd.shutdown()


def _run(setup, warehouse: Path, day: str, kill_at: str | None = None, kill_after_s: float = 0.0,
         log: Path | None = None) -> subprocess.CompletedProcess | int:
    """Run the nightly job; with `kill_at`, SIGKILL it `kill_after_s` after the log says that stage began."""
    date = {"day1": "2026-11-01", "day2": "2026-11-02"}[day]
    cmd = [CLI, "run", "--conf", str(setup["conf"]), "--manifest", str(setup["manifests"][day]),
           "--warehouse", str(warehouse), "--run-date", date, "--authorizations", str(setup["auth"])]
    if kill_at is None:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done
    log = log or warehouse.parent / f"{warehouse.name}-{day}-{kill_at}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        while f"stage {kill_at} ..." not in log.read_text():
            assert proc.poll() is None, f"the run ended before stage {kill_at}: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "stage never started"
            time.sleep(0.05)
        time.sleep(kill_after_s)
        os.killpg(proc.pid, signal.SIGKILL)          # the driver and its JVM, as a node loss would
        proc.wait(30)
    return proc.returncode


def _tables(warehouse: Path) -> dict[str, pd.DataFrame]:
    return {t: pq.read_table(warehouse / t).to_pandas() for t in TABLES}


def _assert_equal(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame], allowed=None) -> None:
    for table in TABLES:
        options = [want[table]] + ([allowed[table]] if allowed else [])
        b = got[table]
        drop = [c for c in VOLATILE if c in b.columns]
        b = b.drop(columns=drop).sort_values(KEYS[table]).reset_index(drop=True).map(repr)
        ok = False
        for a in options:
            a = a.drop(columns=drop).sort_values(KEYS[table]).reset_index(drop=True).map(repr)
            ok = ok or (len(a) == len(b) and a.equals(b))
        assert ok, f"{table} differs"


def _run_here(spark, setup, warehouse: Path, day: str) -> None:
    """The same run in this test's SparkSession (no JVM start): same conf, so the same tables."""
    date_ = {"day1": date(2026, 11, 1), "day2": date(2026, 11, 2)}[day]
    run_pipeline(spark, load_config(setup["conf"]), str(setup["manifests"][day]), str(warehouse), date_,
                 str(setup["auth"]))


@pytest.fixture(scope="module")
def reference(spark, setup):
    """Day one, then an uninterrupted day two on a copy: what every faulty history must end as."""
    wh = setup["root"] / "wh_clean"
    _run_here(spark, setup, wh, "day1")
    day1 = _tables(wh)
    shutil.copytree(wh, setup["root"] / "wh_faulty", symlinks=True)
    _run_here(spark, setup, wh, "day2")
    return {"day1": day1, "day2": _tables(wh)}


def test_kills_during_fingerprinting_and_publishing_then_rerun(spark, setup, reference):
    wh = setup["root"] / "wh_faulty"
    assert _run(setup, wh, "day2", kill_at="fingerprints", kill_after_s=2.0) == -signal.SIGKILL
    _assert_equal(_tables(wh), reference["day1"])             # nothing of the killed run is visible
    assert _run(setup, wh, "day2", kill_at="publish", kill_after_s=0.3) == -signal.SIGKILL
    # Each table is atomically either yesterday's or today's version, never half written.
    _assert_equal(_tables(wh), reference["day1"], allowed=reference["day2"])
    _run_here(spark, setup, wh, "day2")                       # the stale lock of the dead run is taken over
    _assert_equal(_tables(wh), reference["day2"])
    assert not (wh / ".lock").exists()


def test_a_second_run_on_a_busy_warehouse_is_refused(setup, reference):
    wh = setup["root"] / "wh_clean"
    with lock_warehouse(wh):                                  # this process holds the warehouse
        cmd = [CLI, "run", "--conf", str(setup["conf"]), "--manifest", str(setup["manifests"]["day2"]),
               "--warehouse", str(wh), "--run-date", "2026-11-02"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "warehouse is locked by another run" in done.stderr
    _assert_equal(_tables(wh), reference["day2"])             # untouched

