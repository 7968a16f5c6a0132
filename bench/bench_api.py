"""`make bench-api`: latency of the HTTP API and of catalog search at scale, default configuration.

1. /image/match: a real server (`medialayer serve` in its own process) and 8 concurrent clients
   posting pairs of ~1000-pixel JPEGs (an original and an edited copy) as local paths; p50/p99.
2. Search: an index of N fingerprints: the real originals (photographs that packages ship) plus
   synthetic filler rows (random hashes and random keypoint descriptors, which match nothing and
   stand in for the rest of a catalog). Queries are edited copies of the originals. Per query, the
   time of `SearchIndex.search` after the query's fingerprint is computed (p50/p95), and recall of
   the planted copies (each query's own original, counted when an exhaustive scan, verification of
   the query against every real original, confirms it). The scan's other matches (different
   low-texture photographs whose global hashes agree) are reported beside it. Fillers are random,
   so a sample of them is verified to show they never match. Index build time (Arrow cache write
   + key entries), load time on a restart (files mapped again) and resident memory are printed.

    .venv/bin/python bench/bench_api.py [--index-size N] [--requests R] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medialayer.config import load_config
from medialayer.fetching import Fetcher
from medialayer.media import fingerprint_table
from medialayer.search_index import SearchIndex, _side_schema
from medialayer.synth.edits import EDITS
from medialayer.synth.photos import all_photos, load_photo
from medialayer.verification import SIDE_COLUMNS, pair_batch, verify_batch

TARGETS = {"match_p50_ms": 100, "match_p99_ms": 300, "search_p95_ms": 100, "search_recall": 0.99}
QUERY_EDITS = ("recompress", "crop", "mirror", "watermark", "screenshot", "crop_heavy")
CACHE = Path(__file__).resolve().parent / ".cache" / "api"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_media(max_photos: int) -> tuple[list[str], list[tuple[int, str, str]]]:
    """Originals at ~1000 px and one copy per query edit: ([original paths], [(original, edit, copy path)])."""
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    originals, copies = [], []
    for i, path in enumerate(all_photos()[:max_photos]):
        orig = CACHE / f"orig_{i:03d}.jpg"
        img = None
        if not orig.exists():
            img = load_photo(path, 1000)
            img.save(orig, quality=90)
        originals.append(str(orig))
        for edit in QUERY_EDITS:
            copy = CACHE / f"copy_{i:03d}_{edit}.jpg"
            if not copy.exists():
                img = img or load_photo(path, 1000)
                EDITS[edit](img, rng).save(copy, quality=85)
            copies.append((i, edit, str(copy)))
    return originals, copies


def fillers(n: int, keypoints: int, seed: int) -> pa.Table:
    """Synthetic index rows: random hashes, random keypoints; a unique key and URL each."""
    rng = np.random.default_rng(seed)
    schema = _side_schema()
    cols: dict[str, pa.Array] = {}
    for f in schema:
        name = f.name
        if name == "media_key":
            cols[name] = pa.array([f"filler{seed:02d}{i:09d}" for i in range(n)])
        elif name == "media_url":
            cols[name] = pa.array([f"https://cdn.example.com/filler/{seed}/{i}.jpg" for i in range(n)])
        elif name == "media_type":
            cols[name] = pa.array(["image"] * n)
        elif name in ("listing_id",):
            cols[name] = pa.array([f"F{seed}-{i}" for i in range(n)])
        elif name in ("seller_id", "sku_id", "brand_id", "content_sha256"):
            cols[name] = pa.nulls(n, f.type)
        elif name in ("width", "height"):
            cols[name] = pa.array(np.full(n, 1000, np.int32))
        elif name in ("kp_frame_w", "kp_frame_h"):
            cols[name] = pa.array(np.full(n, 400, np.int32))
        elif name == "region":
            cols[name] = pa.nulls(n, f.type)
        elif pa.types.is_int64(f.type):
            cols[name] = pa.array(rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64))
        elif name in ("duration_s", "frame_times", "frame_hashes", "audio_peaks", "kf_times", "kf_counts"):
            cols[name] = pa.nulls(n, f.type)          # video and audio columns: images have none
        elif name == "picture":                       # a 48 x 36 grey picture: its width byte, then pixels
            size = 48 * 36
            blob = rng.integers(0, 256, (n, 1 + size), dtype=np.uint8)
            blob[:, 0] = 48
            offsets = pa.array(np.arange(0, n * (1 + size) + 1, 1 + size, dtype=np.int32))
            cols[name] = pa.BinaryArray.from_buffers(pa.binary(), n, [None, offsets.buffers()[1],
                                                                      pa.py_buffer(blob.tobytes())])
        elif pa.types.is_binary(f.type):
            width = {"kp_xy": 4, "kp_desc": 32, "kp_desc_mirror": 32, "kp_angle": 1}[name]
            blob = rng.integers(0, 256, n * keypoints * width, dtype=np.uint8).tobytes()
            offsets = pa.array(np.arange(0, n * keypoints * width + 1, keypoints * width, dtype=np.int32))
            cols[name] = pa.BinaryArray.from_buffers(pa.binary(), n, [None, offsets.buffers()[1], pa.py_buffer(blob)])
        else:
            raise AssertionError(f"no filler for {name}")
    return pa.table(cols, schema=schema)


def write_fillers(wh: Path, n: int, keypoints: int, chunk: int, fingerprint_columns: list[str]) -> None:
    """One chunk of filler rows into a warehouse's fingerprints and listing_media tables."""
    part = fillers(n, keypoints, chunk)
    fp_cols = [c for c in part.column_names if c in fingerprint_columns]
    pq.write_table(part.select(fp_cols).append_column("status", pa.array(["ok"] * part.num_rows)),
                   wh / "fingerprints" / f"filler-{chunk:04d}.parquet")
    pq.write_table(part.select(["listing_id", "media_key", "seller_id", "sku_id", "brand_id"]),
                   wh / "listing_media" / f"filler-{chunk:04d}.parquet")


def bench_search(index_size: int, originals: list[str], copies, cfg, workdir: Path) -> dict:
    fetcher = Fetcher(cfg.fetch, trusted_local=True)
    real = fingerprint_table(originals, ["image"] * len(originals), cfg, fetcher, 8)
    listing = pa.table({"listing_id": [f"L{i}" for i in range(real.num_rows)], "media_key": real.column("media_key"),
                        "seller_id": ["s"] * real.num_rows, "sku_id": ["k"] * real.num_rows,
                        "brand_id": ["b"] * real.num_rows})
    wh = workdir / "warehouse"
    n_fill = max(0, index_size - real.num_rows)
    ready = workdir / "READY"
    if ready.exists() and ready.read_text() == f"{index_size} {real.column('media_key')[0].as_py()}":
        print(f"  reusing the warehouse of {index_size} media in {workdir}", flush=True)
        n_fill = 0
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        (wh / "fingerprints").mkdir(parents=True)
        (wh / "listing_media").mkdir()
        pq.write_table(real, wh / "fingerprints" / "real.parquet")
        pq.write_table(listing, wh / "listing_media" / "part-0.parquet")
    chunk = 50_000
    kp = cfg.image.local.max_keypoints
    started = time.monotonic()
    for c, start in enumerate(range(0, n_fill, chunk)):
        write_fillers(wh, min(chunk, n_fill - start), kp, c, real.column_names)
    if not (n_fill == 0 and ready.exists()):
        print(f"  wrote {n_fill} filler rows in {time.monotonic() - started:.0f}s", flush=True)
        ready.write_text(f"{index_size} {real.column('media_key')[0].as_py()}")

    reused = any((wh / ".search_index").glob("*.keys"))     # a kept warehouse whose index was built before
    rss0 = rss_mb()
    t0 = time.monotonic()
    index = SearchIndex.from_warehouse(wh, cfg, cfg.api.search_prefetch)
    load_s = time.monotonic() - t0
    del index
    t0 = time.monotonic()
    index = SearchIndex.from_warehouse(wh, cfg, cfg.api.search_prefetch)   # a restart: mapped again
    reload_s = time.monotonic() - t0
    rss1 = rss_mb()
    cache_bytes = sum(p.stat().st_size for p in (wh / ".search_index").glob("*.arrow"))

    queries = fingerprint_table([c[2] for c in copies], ["image"] * len(copies), cfg, fetcher, 8)
    real_sides = real.select(list(SIDE_COLUMNS))
    latencies, found, expected, planted, planted_found = [], 0, 0, 0, 0
    for qi, (orig, edit, _) in enumerate(copies):
        q = queries.slice(qi, 1)
        if q.column("status")[0].as_py() != "ok":
            continue
        t = time.perf_counter()
        hits = index.search(q, 10)
        latencies.append((time.perf_counter() - t) * 1000)
        # Exhaustive: the query against every real original.
        both = pa.concat_tables([q.select(list(SIDE_COLUMNS)), real_sides])
        n = real.num_rows
        v = verify_batch(pair_batch(both, np.zeros(n, np.int64), np.arange(1, n + 1)), cfg, keep_below_record=True)
        truth = {real.column("media_key")[i].as_py() for i in np.flatnonzero(
            np.asarray(v.column("match_found").to_numpy(zero_copy_only=False), dtype=bool))}
        got = {h.media_key for h in hits}
        expected += len(truth)
        found += len(truth & got)
        # The planted copy: the query's own original, when the exhaustive scan confirms it.
        own = real.column("media_key")[orig].as_py()
        if own in truth:
            planted += 1
            planted_found += own in got
    # Fillers never match: verify a sample of them against the queries.
    real_keys = set(real.column("media_key").to_pylist())
    head = index.table.slice(0, 2000).select(list(SIDE_COLUMNS))
    is_filler = np.array([k not in real_keys for k in head.column("media_key").to_pylist()], dtype=bool)
    sample = head.filter(pa.array(is_filler)).slice(0, 500)
    filler_matches = 0
    if sample.num_rows:
        q = queries.slice(0, 1).select(list(SIDE_COLUMNS)).cast(sample.schema)
        both = pa.concat_tables([q, sample])
        n = sample.num_rows
        v = verify_batch(pair_batch(both, np.zeros(n, np.int64), np.arange(1, n + 1)), cfg, keep_below_record=True)
        filler_matches = int(np.sum(np.asarray(v.column("match_found").to_numpy(zero_copy_only=False), dtype=bool)))
    lat = np.array(latencies)
    rss2 = rss_mb()
    return {"index_media": index.size, "index_entries": int(index.entries.size), "load_s": round(load_s, 1),
            "reused_index": reused,
            "reload_s": round(reload_s, 2), "rss_growth_mb": round(rss1 - rss0, 1),
            "rss_growth_after_queries_mb": round(rss2 - rss0, 1),
            "key_bytes_per_media": round(index.bytes_per_media, 1),
            "arrow_cache_mb": round(cache_bytes / 2**20, 1), "queries": len(latencies),
            "search_p50_ms": round(float(np.percentile(lat, 50)), 2),
            "search_p95_ms": round(float(np.percentile(lat, 95)), 2),
            "search_recall": round(planted_found / max(1, planted), 4), "planted_matches": planted,
            "exhaustive_recall": round(found / max(1, expected), 4), "exhaustive_matches": expected,
            "filler_false_matches_in_sample": filler_matches, "filler_sample": sample.num_rows}


def bench_match(originals, copies, requests: int, clients: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = Path(tempfile.mkdtemp()) / "api.yaml"
    conf.write_text(json.dumps({"fetch": {"local_roots": [str(CACHE)]}, "logging": {"level": "WARNING"}}))
    server = subprocess.Popen([str(Path(sys.executable).with_name("medialayer")), "serve", "--conf", str(conf),
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("server did not start: " + server.stderr.read().decode()[-2000:])
                time.sleep(0.2)
        pairs = [(originals[o], path) for o, _, path in copies]

        def one(i: int) -> tuple[float, int]:
            a, b = pairs[i % len(pairs)]
            data = json.dumps({"url_a": a, "url_b": b}).encode()
            req = urllib.request.Request(base + "/image/match", data=data, headers={"Content-Type": "application/json"})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    resp.read()
                    code = resp.status
            except urllib.error.HTTPError as err:
                code = err.code
            return (time.perf_counter() - t) * 1000, code

        for i in range(clients * 2):      # warm up
            one(i)
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, range(requests)))
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)
    lat = np.array([r[0] for r in results])
    codes = {c: sum(1 for r in results if r[1] == c) for c in {r[1] for r in results}}
    return {"requests": requests, "clients": clients, "codes": codes, "match_p50_ms": round(float(np.percentile(lat, 50)), 1),
            "match_p99_ms": round(float(np.percentile(lat, 99)), 1), "throughput_rps": round(requests / wall, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index-size", type=int, default=100_000, help="fingerprints in the search index (1000000 for the target)")
    p.add_argument("--photos", type=int, default=80, help="distinct real photographs to plant")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--only", choices=["match", "search"], help="run one half")
    p.add_argument("--search-dir", help="keep the search warehouse and its index files here, and reuse them on the "
                   "next run with the same --index-size (about 45 GB at 1,000,000)")
    args = p.parse_args()
    cfg = load_config(overrides={"logging": {"level": "WARNING"}})
    originals, copies = make_media(args.photos)
    print(f"{len(originals)} originals, {len(copies)} edited copies ({', '.join(QUERY_EDITS)})", flush=True)
    report = {"cpu_count": os.cpu_count()}
    rows = []
    met = True
    if args.only in (None, "match"):
        print("/image/match ...", flush=True)
        m = report["match"] = bench_match(originals, copies, args.requests, args.clients)
        rows += [
            ("/image/match p50 (ms)", m["match_p50_ms"], f"<= {TARGETS['match_p50_ms']}"),
            ("/image/match p99 (ms)", m["match_p99_ms"], f"<= {TARGETS['match_p99_ms']}"),
            ("/image/match throughput (req/s)", m["throughput_rps"], ""),
            ("/image/match status codes", m["codes"], "all 200"),
        ]
        met &= m["match_p50_ms"] <= TARGETS["match_p50_ms"] and m["match_p99_ms"] <= TARGETS["match_p99_ms"]
    if args.only in (None, "search"):
        # Filler Parquet, the Arrow cache and the key entries: about 45 KB per media on disk (memory
        # stays bounded: the index is built batch by batch into memory-mapped files).
        where = Path(args.search_dir) if args.search_dir else CACHE
        kept = sum(f.stat().st_size for f in where.rglob("*") if f.is_file()) if args.search_dir and where.exists() else 0
        need_gb = max(0.0, args.index_size * 45e3 - kept) / 1e9
        CACHE.mkdir(parents=True, exist_ok=True)
        free_gb = shutil.disk_usage(where if where.exists() else CACHE).free / 1e9
        if need_gb > 0.9 * free_gb:
            print(f"search over {args.index_size} fingerprints needs about {need_gb:.0f} GB more disk under {where}; "
                  f"{free_gb:.0f} GB are free. Use a smaller --index-size.", file=sys.stderr)
            return 2
        print(f"search over {args.index_size} fingerprints ...", flush=True)
        if args.search_dir:
            s = report["search"] = bench_search(args.index_size, originals, copies, cfg, Path(args.search_dir))
        else:
            with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
                s = report["search"] = bench_search(args.index_size, originals, copies, cfg, Path(tmp))
        rows += [
            ("search index size (media)", s["index_media"], "1,000,000"),
            ("search p50 (ms)", s["search_p50_ms"], ""),
            ("search p95 (ms)", s["search_p95_ms"], f"<= {TARGETS['search_p95_ms']}"),
            ("recall of planted copies vs exhaustive", f"{s['search_recall']} ({s['planted_matches']} planted)",
             f">= {TARGETS['search_recall']}"),
            ("recall of every exhaustive match", f"{s['exhaustive_recall']} ({s['exhaustive_matches']} pairs)", ""),
            (f"filler false matches (sample of {s['filler_sample']})", s["filler_false_matches_in_sample"], "0"),
            ("index build (s)" + (", reused: mapped" if s["reused_index"] else ""), s["load_s"], ""),
            ("index load on restart (s, mapped)", s["reload_s"], ""),
            ("index key entries", s["index_entries"], ""),
            ("key bytes per media (memory-mapped)", s["key_bytes_per_media"], ""),
            ("RSS growth after load (MB)", s["rss_growth_mb"], ""),
            ("RSS growth after the queries (MB)", s["rss_growth_after_queries_mb"], ""),
            ("Arrow cache on disk (MB, memory-mapped)", s["arrow_cache_mb"], ""),
        ]
        met &= (s["search_p95_ms"] <= TARGETS["search_p95_ms"] and s["search_recall"] >= TARGETS["search_recall"]
                and s["index_media"] >= 1_000_000)
    print()
    for name, value, target in rows:
        print(f"  {name:<42} {str(value):>28}   {target}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print("\nall targets met" if met else "\ntargets not all met (see above)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
