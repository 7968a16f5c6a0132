"""The verify stage's two plans on one synthetic catalog: time, shuffle bytes and matches.

The candidate pairs are made once (bench_scale's synthetic table and the nightly job's candidate
stage) and cached beside the table; then verification runs with the pairs broadcast (the default,
`spark.verify_broadcast_pairs`) and with every fingerprint shuffled (`spark.verify_broadcast_pairs:
0`), one after the other in one Spark session, so the two are measured in the same machine state.
Shuffle bytes are read from Spark's status API (the UI is switched on for this). The first plan
carries the session's warm-up, which shows only at small sizes.

    .venv/bin/python bench/verify_plans.py --conf conf/scale.yaml --size 100000
    .venv/bin/python bench/verify_plans.py --conf conf/scale.yaml --size 1000000   # ~45 min for the pairs
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import log, pool, stage_costs, staged_candidates, synthetic_table  # noqa: E402

from medialayer.config import load_config  # noqa: E402


def _shuffle_written(spark) -> float:
    """GB every completed stage of this application has written to shuffles so far."""
    return sum(s["shuffle_write_gb"] for s in stage_costs(spark))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conf", default=None)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    cfg = load_config(args.conf).with_overrides({"spark": {"extra": {"spark.ui.enabled": "true"}}})

    from medialayer.spark.session import get_spark
    from medialayer.spark.verify_stage import verify_candidates

    table_dir, _ = synthetic_table(pool(cfg), args.size, args.seed)
    spark = get_spark(cfg)
    spark.sparkContext.setLogLevel("ERROR")
    fps = spark.read.parquet(str(table_dir))
    pairs_dir = table_dir.parent / f"{table_dir.name}-pairs-{cfg.config_hash}"
    if not (pairs_dir / "_SUCCESS").exists():
        log(f"candidate pairs of {args.size:,} media (once; cached in {pairs_dir}) ...")
        t0 = time.time()
        staged_candidates(spark, cfg, fps, pairs_dir)
        log(f"  {time.time() - t0:.0f}s")
    pairs = spark.read.parquet(str(pairs_dir))
    log(f"{pairs.count():,} candidate pairs")
    out = pairs_dir.parent / f"{table_dir.name}-matches"
    rows = []
    for name, limit in (("broadcast (default)", cfg.spark.verify_broadcast_pairs), ("shuffle all (0)", 0)):
        run_cfg = cfg.with_overrides({"spark": {"verify_broadcast_pairs": limit}})
        before = _shuffle_written(spark)
        t0 = time.time()
        verify_candidates(pairs, fps, run_cfg).write.mode("overwrite").parquet(str(out))
        seconds = time.time() - t0
        matches = spark.read.parquet(str(out)).where("match_found").count()
        rows.append((name, seconds, _shuffle_written(spark) - before, matches))
        log(f"  {name}: {seconds:.0f}s, shuffle writes {rows[-1][2]:.2f} GB, {matches:,} matches")
    spark.stop()
    shutil.rmtree(out, ignore_errors=True)
    print(f"\n{'plan':<22}{'verify s':>10}{'shuffle GB':>12}{'matches':>10}")
    for name, seconds, gb, matches in rows:
        print(f"{name:<22}{seconds:>10.0f}{gb:>12.2f}{matches:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
