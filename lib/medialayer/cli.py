"""The `medialayer` command: run, match, demo."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import date
from pathlib import Path

from . import __version__
from .config import Config, ConfigError, load_config
from .warehouse import TABLES

log = logging.getLogger("medialayer")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.conf)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging("DEBUG" if args.verbose else cfg.logging.level)
    try:
        return args.func(args, cfg)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medialayer", description=__doc__)
    p.add_argument("--version", action="version", version=f"medialayer {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--conf", help="YAML file merged over conf/default.yaml")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="run the whole pipeline on a manifest")
    run.add_argument("--manifest", required=True, help="Parquet file/directory or Delta table")
    run.add_argument("--warehouse", required=True, help="directory of the output tables")
    run.add_argument("--run-date", type=date.fromisoformat, help="YYYY-MM-DD (default: today, UTC)")
    run.add_argument("--authorizations", help="brand authorizations (brand_id, seller_id): Parquet, Delta or CSV")
    run.set_defaults(func=cmd_run)

    match = sub.add_parser("match", parents=[common], help="compare two media, or a CSV of pairs")
    match.add_argument("a", nargs="?", help="URL or path")
    match.add_argument("b", nargs="?", help="URL or path")
    match.add_argument("--media-type", choices=["image", "video", "audio"])
    match.add_argument("--pairs", help="CSV with columns a,b[,media_type]")
    match.add_argument("--out", help="JSONL output for --pairs (default: stdout)")
    match.set_defaults(func=cmd_match)

    serve = sub.add_parser("serve", parents=[common], help="HTTP API: pairwise match and catalog search")
    serve.add_argument("--warehouse", help="warehouse whose fingerprints /search queries (optional)")
    serve.add_argument("--host", help="default: api.host in conf")
    serve.add_argument("--port", type=int, help="default: api.port in conf")
    serve.set_defaults(func=cmd_serve)

    search = sub.add_parser("search", parents=[common], help="top-K catalog matches of one media URL")
    search.add_argument("query", help="URL or path of the query media")
    search.add_argument("--warehouse", required=True)
    search.add_argument("-k", type=int, default=None, help="number of results (default: api.search_default_k)")
    search.set_defaults(func=cmd_search)

    report = sub.add_parser("report", parents=[common], help="the review queue as a self-contained HTML page")
    report.add_argument("--warehouse", required=True)
    report.add_argument("--out", default="report.html")
    report.add_argument("--media-root", action="append", default=[],
                        help="a local directory thumbnails may be read from (repeatable); adds to fetch.local_roots")
    report.add_argument("--max-items", type=int, default=200)
    report.set_defaults(func=cmd_report)

    demo = sub.add_parser("demo", parents=[common], help="build the sample catalog and run the pipeline on it")
    demo.add_argument("--out", default="demo_output", help="directory for the sample catalog and warehouse")
    demo.add_argument("--run-date", type=date.fromisoformat, default=None,
                      help="the second night (default: today, UTC); the first is the day before")
    demo.add_argument("--format", choices=["parquet", "delta"], help="warehouse format (default: from conf)")
    demo.set_defaults(func=cmd_demo)
    return p


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("py4j").setLevel(logging.WARNING)


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from .pipeline import run_pipeline
    from .spark.manifest import ManifestError
    from .spark.session import get_spark
    from .warehouse import RunOrderError, WarehouseLocked

    spark = get_spark(cfg)
    try:
        summary = run_pipeline(spark, cfg, args.manifest, args.warehouse, args.run_date, args.authorizations)
    except (ManifestError, WarehouseLocked, RunOrderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary.to_dict()))
    return 0


def cmd_match(args: argparse.Namespace, cfg: Config) -> int:
    from .pairwise import match_pairs, read_pairs_csv

    if args.pairs:
        with open(args.pairs, newline="") as fh:
            pairs = read_pairs_csv(fh)
        results = match_pairs(pairs, cfg)
        out = open(args.out, "w") if args.out else sys.stdout
        try:
            for (a, b, _), result in zip(pairs, results):
                out.write(json.dumps({**result.to_dict(), "a": a, "b": b}) + "\n")
        finally:
            if args.out:
                out.close()
        if args.out:
            found = sum(r.match_found for r in results)
            print(f"{len(results)} pairs, {found} matches -> {args.out}", file=sys.stderr)
        return 0
    if not (args.a and args.b):
        print("error: give two media (match A B) or --pairs FILE", file=sys.stderr)
        return 2
    result = match_pairs([(args.a, args.b, args.media_type)], cfg)[0]
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def cmd_serve(args: argparse.Namespace, cfg: Config) -> int:
    import uvicorn

    host = args.host or cfg.api.host
    port = args.port if args.port is not None else cfg.api.port
    if cfg.api.workers == 1:
        from .api import create_app

        uvicorn.run(create_app(cfg, args.warehouse), host=host, port=port, log_level=cfg.logging.level.lower(),
                    timeout_keep_alive=5)
        return 0
    # Several processes (fingerprinting holds the GIL for part of each request): each worker builds
    # the app from the same conf through medialayer.api.serve_app.
    os.environ["MEDIALAYER_SERVE_CONF"] = str(Path(args.conf).resolve()) if args.conf else ""
    os.environ["MEDIALAYER_SERVE_WAREHOUSE"] = str(Path(args.warehouse).resolve()) if args.warehouse else ""
    uvicorn.run("medialayer.api:serve_app", factory=True, workers=cfg.api.workers, host=host, port=port,
                log_level=cfg.logging.level.lower(), timeout_keep_alive=5)
    return 0


def cmd_search(args: argparse.Namespace, cfg: Config) -> int:
    from .api import MediaFailed, search_url
    from .search_index import SearchIndex

    index = SearchIndex.from_warehouse(args.warehouse, cfg)
    k = args.k or cfg.api.search_default_k
    try:
        result = search_url(index, args.query, k, None, cfg, trusted_local=True)
    except MediaFailed as exc:
        print(f"error: {exc.code}: {exc.url}: {exc.detail}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def cmd_report(args: argparse.Namespace, cfg: Config) -> int:
    from .report import write_report

    summary = write_report(args.warehouse, args.out, cfg, args.media_root, args.max_items)
    print(f"{summary.items} review item(s), {summary.thumbnails} thumbnail(s)"
          + (f" ({summary.thumbnail_errors} could not be made)" if summary.thumbnail_errors else "")
          + f" -> {summary.path}")
    return 0


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    """Two nights on the sample catalog: day one lists it, day two's feed adds new listings."""
    from datetime import datetime, timedelta, timezone

    from .pipeline import run_pipeline
    from .sample_catalog import build_day_two, build_sample_catalog
    from .spark.session import get_spark

    out = Path(args.out).resolve()
    log.info("building the sample catalog in %s", out / "sample")
    catalog = build_sample_catalog(out / "sample")
    day2 = build_day_two(catalog)
    cfg = cfg.with_overrides({"fetch": {"local_roots": [str(catalog.media_dir)]}})
    if args.format:
        cfg = cfg.with_overrides({"warehouse": {"format": args.format}})
    warehouse = str(fresh_demo_warehouse(out / "warehouse"))
    spark = get_spark(cfg)
    second = args.run_date or datetime.now(timezone.utc).date()
    for day, manifest in ((second - timedelta(days=1), catalog.manifest_path), (second, day2.manifest_path)):
        summary = run_pipeline(spark, cfg, str(manifest), warehouse, day, str(catalog.authorizations_path))
        print(format_summary(summary.to_dict()) + "\n")
    from .report import write_report

    report = write_report(warehouse, out / "report.html", cfg, [str(catalog.media_dir)])
    print(f"review report: {report.path} ({report.items} items)")
    print(f"sample catalog: {catalog.manifest_path} ({catalog.rows} rows, "
          f"{len(catalog.groups)} planted near-duplicate groups, {len(catalog.singletons)} unrelated listings, "
          f"{len(catalog.bad_listings)} bad rows); day two: {day2.manifest_path} "
          f"({len(day2.new_listings)} new listings)")
    return 0


def fresh_demo_warehouse(path: Path) -> Path:
    """The demo's warehouse, emptied: the demo replays two nights ending today, and a warehouse that
    already holds today's run refuses the night before (runs go forward in time). Only a medialayer
    warehouse (one with a `runs` table) is removed; anything else at that path stops the demo."""
    import shutil

    if path.exists():
        if not (path / "runs").exists():
            raise SystemExit(f"{path} exists and is not a medialayer warehouse; the demo will not replace it "
                             "(choose another --out)")
        log.info("replacing the previous demo warehouse %s", path)
        shutil.rmtree(path)
    return path


def format_summary(s: dict) -> str:
    lines = [
        f"run {s['run_id']}  ->  warehouse {s['warehouse']}",
        f"  rows in                {s['rows_in']}",
        f"  media in index         {s['media_total']}  (fetched this run: {s['media_fetched']}, reused: {s['media_reused']})",
        f"  media errors           {s['media_errors']}" + (
            "  " + ", ".join(f"{k}={v}" for k, v in sorted(s["errors_by_code"].items())) if s["errors_by_code"] else ""),
        f"  candidate pairs        {s['candidates']}  (oversized buckets skipped: {s['oversized_buckets']})",
        f"  verified matches       {s['matches']}",
        f"  listing matches        {s['listing_matches']}  (" + ", ".join(
            f"{k}={v}" for k, v in sorted(s["decisions"].items())) + ")",
        f"  clusters               {s['clusters']}  ({s['clustered_listings']} listings, {s['flagged_clusters']} flagged; "
        + ", ".join(f"{k}={v}" for k, v in sorted(s["cluster_events"].items())) + ")",
        f"  sku suggestions        {s['sku_suggestions']}",
        f"  review queue           {s['review_items']} items",
        "  durations (s)          " + ", ".join(f"{k}={v}" for k, v in s["durations_s"].items()),
    ]
    if s["largest_clusters"]:
        lines.append("  largest clusters:")
        for c in s["largest_clusters"]:
            more = " ..." if c["size"] > len(c["listings"]) else ""
            lines.append(f"    {c['cluster_id']}  size {c['size']}: {', '.join(c['listings'])}{more}")
    lines.append("  tables: " + ", ".join(TABLES))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
