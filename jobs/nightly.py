"""spark-submit entry point for the nightly run.

    spark-submit jobs/nightly.py --conf conf/default.yaml --manifest PATH --warehouse DIR --run-date 2026-11-24

Under spark-submit the master and driver memory come from spark-submit's own flags; the rest of
the Spark settings come from the conf file. medialayer must be importable by the driver and the
executors (installed in their Python, or shipped with --py-files).
"""
import argparse
import sys
from datetime import date

from medialayer.cli import setup_logging, format_summary
from medialayer.config import load_config
from medialayer.pipeline import run_pipeline
from medialayer.spark.session import get_spark


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="medialayer nightly run")
    p.add_argument("--conf", help="YAML merged over the packaged defaults")
    p.add_argument("--manifest", required=True)
    p.add_argument("--warehouse", required=True)
    p.add_argument("--run-date", type=date.fromisoformat, required=True)
    p.add_argument("--authorizations", help="brand authorizations (brand_id, seller_id)")
    args = p.parse_args(argv)
    cfg = load_config(args.conf)
    setup_logging(cfg.logging.level)
    summary = run_pipeline(get_spark(cfg), cfg, args.manifest, args.warehouse, args.run_date, args.authorizations)
    print(format_summary(summary.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
