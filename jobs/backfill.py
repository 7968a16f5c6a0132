"""spark-submit entry point for a backfill: the nightly run for each date of a range, in order.

    spark-submit jobs/backfill.py --conf my.yaml --manifest 'feeds/dt={date}/manifest.parquet' \
        --warehouse wh/ --start 2026-11-01 --end 2026-11-07 [--authorizations auth.parquet]

`{date}` in --manifest is replaced by each date (YYYY-MM-DD); without it, every date reads the same
manifest. Dates the warehouse's `runs` table already holds are skipped, so a backfill that failed
on one date resumes there when started again with the same arguments; `--rerun-last` redoes the
newest recorded date first (for a failure after it was published). One SparkSession serves every
date. The exit status is 0 when every date ran (or was done already), 1 when one failed (the
later dates are not attempted: each builds on the one before).
"""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, timedelta

from medialayer.cli import format_summary, setup_logging
from medialayer.config import load_config
from medialayer.pipeline import run_pipeline
from medialayer.spark.session import get_spark
from medialayer.warehouse import Warehouse

log = logging.getLogger("medialayer.backfill")


def dates_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="medialayer backfill over a date range")
    p.add_argument("--conf", help="YAML merged over the packaged defaults")
    p.add_argument("--manifest", required=True, help="path, with {date} replaced by each run date")
    p.add_argument("--warehouse", required=True)
    p.add_argument("--start", type=date.fromisoformat, required=True)
    p.add_argument("--end", type=date.fromisoformat, required=True)
    p.add_argument("--authorizations", help="brand authorizations (brand_id, seller_id)")
    p.add_argument("--rerun-last", action="store_true", help="redo the newest date already recorded")
    args = p.parse_args(argv)
    cfg = load_config(args.conf)
    setup_logging(cfg.logging.level)
    days = dates_between(args.start, args.end)
    spark = get_spark(cfg)
    wh = Warehouse(spark, args.warehouse, cfg)
    done = {v.run_id for v in wh.versions("runs")}
    latest = max(done) if done else None
    todo = [d for d in days if d.isoformat() not in done or (args.rerun_last and d.isoformat() == latest)]
    log.info("backfill %s..%s: %d date(s), %d already done, %d to run", args.start, args.end, len(days),
             len(days) - len(todo), len(todo))
    for n, day in enumerate(todo, start=1):
        manifest = args.manifest.replace("{date}", day.isoformat())
        log.info("backfill date %s (%d/%d): manifest %s", day, n, len(todo), manifest)
        try:
            summary = run_pipeline(spark, cfg, manifest, args.warehouse, day, args.authorizations)
        except Exception as exc:  # noqa: BLE001 - report which date failed, then stop: later dates build on it
            log.error("backfill stopped at %s: %s; rerun the same command to resume from this date", day,
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return 1
        print(format_summary(summary.to_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
