"""`make bench`: cost curves of every stage, with the default configuration, on local Spark.

1. Fingerprinting throughput per media type, with decode-only time beside it as the limit: images/s
   per core (package photographs at ~1000 px), seconds of video and of audio per CPU-second.
2. Matching at scale: synthetic fingerprint tables of N media (medialayer.synth.scale: real
   fingerprints of real photographs and their edits, XOR-masked per planted group so distances inside
   a group are exact and everything else is unrelated; near-blank hot rows unmasked). For each N:
   wall time of candidates (keys + banding join), verification and clustering through the same Spark
   stage functions as the nightly job; candidate pairs; recall of planted pairs against the truth
   (every planted pair verified directly, without the candidate stage); chance matches between
   unrelated rows; peak memory of the driver (JVM and Python). The growth exponent of time against
   N is fitted over the sizes.
3. The banding join against Spark ML's MinHashLSH.approxSimilarityJoin and a single-process datasketch
   MinHashLSH, on the same pHashes: a 64-bit hash is the 64-element set {2i + bit_i}, whose Jaccard
   similarity is (64 - d) / (64 + d) at Hamming distance d. Truth: every pair within distance
   --max-distance, by an exhaustive numpy scan.

    .venv/bin/python bench/bench_scale.py                 # default sizes, under 10 minutes
    .venv/bin/python bench/bench_scale.py --full          # 100k, 300k and 1M media
    .venv/bin/python bench/bench_scale.py --sizes 50000 --skip-throughput --skip-compare
    .venv/bin/python bench/bench_scale.py --conf conf/scale.yaml --sizes 20000,50000,100000 --skip-throughput
    .venv/bin/python bench/bench_scale.py --conf conf/scale.yaml --sizes 100000 --skip-throughput --skip-compare --stages
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medialayer.config import load_config
from medialayer.fingerprints.image import FINGERPRINT_VERSION
from medialayer.synth.scale import Layout, build_pool, load_pool, plan, planted_pairs, save_pool, write_table

CACHE = Path(__file__).resolve().parent / ".cache" / "scale"
POOL_VERSION = 1
DEFAULT_SIZES = (4_000, 8_000, 16_000)
FULL_SIZES = (100_000, 300_000, 1_000_000)
TARGETS = {"full_1m_minutes": 15, "growth_exponent": 1.2, "recall": 0.99, "speedup_vs_minhashlsh": 5}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _hwm_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _java_children() -> list[int]:
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == me and "java" in Path(f"/proc/{d}/comm").read_text():
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


# --- 1. fingerprinting throughput -------------------------------------------------------------------

def throughput(cfg, work: Path) -> dict:
    from medialayer.decoding import decode_image
    from medialayer.decoding.av import decode_av
    from medialayer.fetching import Fetcher
    from medialayer.media import fingerprint_table
    from medialayer.synth import av as synth_av
    from medialayer.synth.photos import load_photo, package_photos

    fetcher = Fetcher(cfg.fetch, trusted_local=True)
    paths = []
    for i, p in enumerate(package_photos()):
        q = work / f"photo_{i:02d}.jpg"
        load_photo(p, 1000).save(q, quality=90)
        paths.append(str(q))
    out = {}
    fingerprint_table(paths[:2], ["image"] * 2, cfg, fetcher, workers=1)      # warm-up: imports, caches
    many = paths * 8                     # a few seconds of work, so one-off costs do not count
    t0 = time.process_time()
    table = fingerprint_table(many, ["image"] * len(many), cfg, fetcher, workers=1)
    cpu = time.process_time() - t0
    t0 = time.process_time()
    for p in many:
        decode_image(Path(p).read_bytes(), cfg.image)
    dec = time.process_time() - t0
    out["image"] = {"items": table.num_rows, "per_core_per_s": table.num_rows / cpu,
                    "decode_only_per_core_per_s": table.num_rows / dec}

    photos = [np.asarray(load_photo(Path(p), 640)) for p in paths[:8]]
    frames = synth_av.slideshow(photos, 60.0, fps=25.0, size=(640, 360))
    sound = synth_av.music(60.0, seed=3)
    video = synth_av.encode_video(work / "clip.mp4", frames, 25.0, audio=sound)
    audio = synth_av.encode_audio(work / "track.mp3", synth_av.music(180.0, seed=4))
    for kind, path in (("video", video), ("audio", audio)):
        t0 = time.process_time()
        t = fingerprint_table([str(path)], [kind], cfg, fetcher, workers=1)
        cpu = time.process_time() - t0
        secs = t.column("duration_s")[0].as_py() or 0.0
        t0 = time.process_time()
        decode_av(Path(path).read_bytes(), kind, cfg.video, cfg.audio)
        dec = time.process_time() - t0
        out[kind] = {"media_seconds": secs, "realtime_per_core": secs / cpu, "decode_only_realtime_per_core": secs / dec}
    return out


# --- 2. matching at scale ---------------------------------------------------------------------------

def pool(cfg, rebuild: bool = False):
    from medialayer.synth.photos import all_photos

    # Named for the image fingerprint version: a pool fingerprinted by older code is rebuilt.
    path = CACHE / f"pool-v{POOL_VERSION}-{FINGERPRINT_VERSION}.parquet"
    if path.exists() and not rebuild:
        return load_pool(path)
    photos = all_photos()[:60]
    log(f"building the pool: {len(photos)} photographs x {1 + 14} variants + near-blank pictures ...")
    built = build_pool(photos, cfg, CACHE / "pool_media")
    save_pool(built, path)
    return built


def pool_truth(p, cfg) -> dict[tuple[int, int], bool]:
    """{(pool row i, pool row j): matches} for every pair inside one family (what a planted pair can be)."""
    from medialayer.verification import pair_batch, verify_batch

    pairs = []
    for f in np.unique(p.family[~p.hot]):
        rows = p.family_rows(int(f))
        pairs += [(int(a), int(b)) for k, a in enumerate(rows) for b in rows[k + 1:]]
    a, b = np.array(pairs).T
    out = verify_batch(pair_batch(p.table, a, b), cfg, keep_below_record=True)
    found = out.column("match_found").to_pylist()
    truth = {}
    for (i, j), m in zip(pairs, found):
        truth[(i, j)] = truth[(j, i)] = bool(m)
    return truth


def synthetic_table(p, n: int, seed: int) -> tuple[Path, Layout]:
    # Named for the fingerprint schema and version too: a table cached before a column was added, or
    # drawn from a pool of older fingerprints, is rewritten.
    from medialayer.media import FINGERPRINT_SCHEMA

    tag = hashlib.sha1((FINGERPRINT_SCHEMA.to_string() + FINGERPRINT_VERSION).encode()).hexdigest()[:8]
    out = CACHE / f"table-v{POOL_VERSION}-{tag}-{n}-{seed}"
    layout = plan(p, n, seed=seed)
    if not (out / "_DONE").exists():
        t0 = time.time()
        write_table(p, layout, out, seed=seed)
        (out / "_DONE").write_text("ok")
        log(f"  wrote {n:,} synthetic fingerprints in {time.time() - t0:.0f}s "
            f"({sum(f.stat().st_size for f in out.glob('*.parquet')) / 1e9:.1f} GB)")
    return out, layout


def staged_candidates(spark, cfg, fps, path: Path, counter=None, new_keys=None, new_fps=None) -> tuple:
    """(candidate pairs written to `path` and read back, oversized buckets): the candidate stage as
    the nightly job runs it (keys made once, shuffled once); `counter` adds up the key rows;
    `new_keys` (a media_key frame) makes it an incremental run in which only those media ask, with
    `new_fps` their fingerprint rows (the pipeline's staged new fingerprints)."""
    from medialayer.spark.candidate_stage import candidate_pairs, media_ids, media_join_keys

    keys = media_join_keys(fps, cfg, new_keys, counter=counter, new_fingerprints=new_fps)
    pairs, oversized, cached_keys = candidate_pairs(keys, media_ids(fps), cfg)
    pairs.write.mode("overwrite").parquet(str(path))
    n_oversized = oversized.count()
    cached_keys.unpersist()
    return spark.read.parquet(str(path)), n_oversized


def stage_costs(spark) -> list[dict]:
    """Every completed Spark stage of this application so far, from Spark's status API (empty when
    the UI is off): id, tasks, executor run and CPU seconds (summed over tasks), shuffle GB."""
    import urllib.request

    base, app = spark.sparkContext.uiWebUrl, spark.sparkContext.applicationId
    if not base:
        return []
    with urllib.request.urlopen(f"{base}/api/v1/applications/{app}/stages?status=complete", timeout=30) as r:
        stages = json.load(r)
    return sorted(({"id": s["stageId"], "tasks": s["numTasks"], "run_s": s["executorRunTime"] / 1e3,
                    "cpu_s": s["executorCpuTime"] / 1e9, "shuffle_write_gb": s["shuffleWriteBytes"] / 1e9,
                    "shuffle_read_gb": s["shuffleReadBytes"] / 1e9} for s in stages), key=lambda s: s["id"])


def _stages_since(spark, seen: set) -> list[dict]:
    """Stages completed since `seen` was filled (and adds them to it); only those that ran >= 1 s."""
    new = [s for s in stage_costs(spark) if s["id"] not in seen]
    seen.update(s["id"] for s in new)
    return [s for s in new if s["run_s"] >= 1.0]


def new_rows(n: int, share: float, seed: int) -> np.ndarray | None:
    """The rows that an incremental run over this table treats as new (None: a full run)."""
    if share <= 0:
        return None
    return np.flatnonzero(np.random.default_rng(seed + 17).random(n) < share)


def run_matching(spark, cfg, table_dir: Path, work: Path, new: np.ndarray | None = None) -> dict:
    from pyspark.sql import functions as F

    from medialayer.spark.components import connected_components
    from medialayer.spark.verify_stage import companion_matches, verify_candidates

    fps = spark.read.parquet(str(table_dir))
    new_keys = new_fps = None
    staged_s = 0.0
    if new is not None:
        # As the nightly job has them: the new media's keys, and their fingerprints staged apart
        # (written before the clock starts, as the fingerprint stage writes them).
        t0 = time.time()
        new_keys = spark.createDataFrame([(f"syn-{i:09d}",) for i in new.tolist()], "media_key string")
        fps.join(F.broadcast(new_keys), "media_key", "left_semi").write.mode("overwrite").parquet(str(work / "new_fps"))
        new_fps = spark.read.parquet(str(work / "new_fps"))
        staged_s = time.time() - t0
    times, stages = {}, {}
    seen = {s["id"] for s in stage_costs(spark)}
    t0 = time.time()
    counter = spark.sparkContext.accumulator(0)
    pairs, n_oversized = staged_candidates(spark, cfg, fps, work / "pairs", counter, new_keys, new_fps)
    n_pairs = pairs.count()
    n_keys = counter.value
    times["candidates"] = time.time() - t0
    stages["candidates"] = _stages_since(spark, seen)
    log(f"  candidates: {times['candidates']:.0f}s, {n_keys:,} key rows, {n_pairs:,} pairs; verifying ...")
    t0 = time.time()
    verify_candidates(pairs, fps, cfg).write.mode("overwrite").parquet(str(work / "direct_matches"))
    direct = spark.read.parquet(str(work / "direct_matches"))
    # As the nightly job does: pairs that match a common third media but never met in the join.
    companions = companion_matches(direct, pairs, fps, cfg, new_keys)
    direct.unionByName(companions.select(*direct.columns)).write.mode("overwrite").parquet(str(work / "matches"))
    matches = spark.read.parquet(str(work / "matches"))
    n_matches = matches.where("match_found").count()
    n_direct = direct.where("match_found").count()
    times["verify"] = time.time() - t0
    stages["verify"] = _stages_since(spark, seen)
    log(f"  verify: {times['verify']:.0f}s, {n_matches:,} matches ({n_matches - n_direct:,} of them companion "
        f"pairs); clustering ...")
    t0 = time.time()
    edges = matches.where("match_found").select(F.col("media_key_a").alias("u"), F.col("media_key_b").alias("v"))
    comps = connected_components(edges, cfg.clustering.max_iterations, cfg.clustering.local_max_edges)
    comps.write.mode("overwrite").parquet(str(work / "components"))
    n_clusters = spark.read.parquet(str(work / "components")).select("component").distinct().count()
    times["clusters"] = time.time() - t0
    stages["clusters"] = _stages_since(spark, seen)
    out = {"key_rows": n_keys, "candidate_pairs": n_pairs, "oversized_buckets": n_oversized,
           "matches": n_matches, "companion_matches": n_matches - n_direct, "clusters": n_clusters, "times_s": times, "staging_s": staged_s}
    if any(stages.values()):
        out["spark_stages"] = stages
    return out


def score(work: Path, layout: Layout, truth: dict, prefix: str = "syn", new: np.ndarray | None = None) -> dict:
    """Recall of planted pairs that verify (those with a `new` row, when given: an incremental run
    finds no other); chance matches between rows of different groups."""
    m = pq.read_table(work / "matches", columns=["media_key_a", "media_key_b", "match_found"])
    m = m.filter(m.column("match_found"))
    off = len(prefix) + 1
    a = np.array([int(k[off:]) for k in m.column("media_key_a").to_pylist()], dtype=np.int64)
    b = np.array([int(k[off:]) for k in m.column("media_key_b").to_pylist()], dtype=np.int64)
    found = set(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist()))
    expected = missed = 0
    is_new = None
    if new is not None:
        is_new = np.zeros(layout.pool_row.size, dtype=bool)
        is_new[new] = True
    for i, j in planted_pairs(layout):
        if is_new is not None and not (is_new[i] or is_new[j]):
            continue
        if truth[(int(layout.pool_row[i]), int(layout.pool_row[j]))]:
            expected += 1
            missed += (i, j) not in found
    ga, gb = layout.group[a], layout.group[b]
    hot_pair = (ga < 0) & (gb < 0)
    chance = int(((ga != gb) & ~hot_pair).sum())
    return {"planted_true_pairs": expected, "recall": (expected - missed) / max(1, expected),
            "missed": missed, "hot_pairs_matched": int(hot_pair.sum()), "chance_matches": chance,
            "precision": 1 - chance / max(1, len(found) - int(hot_pair.sum()))}


def growth_exponent(ns: list[int], ts: list[float]) -> float | None:
    if len(ns) < 2:
        return None
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


# --- 3. banding join vs MinHashLSH ------------------------------------------------------------------

def exhaustive_pairs(h: np.ndarray, max_d: int) -> set[tuple[int, int]]:
    hu = h.view(np.uint64)
    out = set()
    step = 2048
    for s in range(0, hu.size, step):
        block = hu[s:s + step]
        d = np.bitwise_count(block[:, None] ^ hu[None, :])
        i, j = np.nonzero(d <= max_d)
        i = i + s
        keep = i < j
        out.update(zip(i[keep].tolist(), j[keep].tolist()))
    return out


def compare_lsh(spark, cfg, table_dir: Path, n: int, max_d: int) -> dict:
    from pyspark.ml.feature import MinHashLSH
    from pyspark.ml.linalg import SparseVector, VectorUDT
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from medialayer.candidates import band_keys, band_positions, collision_probability

    t = pq.read_table(table_dir, columns=["phash"]).slice(0, n)
    h = t.column("phash").to_numpy().astype(np.int64)
    t0 = time.time()
    truth = exhaustive_pairs(h, max_d)
    t_exhaustive = time.time() - t0
    res = {"n": int(h.size), "max_distance": max_d, "true_pairs": len(truth), "exhaustive_numpy_s": t_exhaustive}
    sets = ((h.view(np.uint64)[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.int64) \
        + 2 * np.arange(64)[None, :]

    def recall(pairs: set) -> float:
        return len(pairs & truth) / max(1, len(truth))

    # Ours: bit-sampling bands of the default configuration, equi-join, exact Hamming check.
    positions = band_positions(cfg.candidates.image)
    df = spark.createDataFrame(pa.table({"id": np.arange(h.size), "h": h}).to_pandas())
    df = df.repartition(8).cache()
    df.count()

    def keys_of(batches):
        for b in batches:
            ids = b.column("id").to_numpy()
            k = band_keys(b.column("h").to_numpy().astype(np.int64).view(np.uint64), positions)
            yield pa.RecordBatch.from_arrays([pa.array(np.repeat(ids, k.shape[1])), pa.array(k.ravel())],
                                             names=["id", "key"])

    t0 = time.time()
    keys = df.mapInArrow(keys_of, "id long, key long")
    cand = (keys.alias("x").join(keys.alias("y"), "key").where(F.col("x.id") < F.col("y.id"))
            .select(F.col("x.id").alias("a"), F.col("y.id").alias("b")).distinct())
    hx = df.select(F.col("id").alias("a"), F.col("h").alias("ha"))
    hy = df.select(F.col("id").alias("b"), F.col("h").alias("hb"))
    verified = (cand.join(hx, "a").join(hy, "b")
                .where(F.bit_count(F.col("ha").bitwiseXOR(F.col("hb"))) <= max_d).select("a", "b"))
    ours = {(r["a"], r["b"]) for r in verified.collect()}         # result pairs only (bench-side scoring)
    res["banding_join"] = {"seconds": time.time() - t0, "recall": recall(ours),
                           "expected_recall_at_max_distance": collision_probability(max_d, cfg.candidates.image)}

    # Spark ML MinHashLSH on the same hashes, as 64-element sets; threshold = Jaccard distance at max_d.
    jd = 1 - (64 - max_d) / (64 + max_d) + 1e-9      # approxSimilarityJoin keeps distance < threshold
    vec = F.udf(lambda s: SparseVector(128, sorted(s), [1.0] * 64), VectorUDT())
    sdf = spark.createDataFrame(pa.table({"id": np.arange(h.size), "s": list(sets)}).to_pandas(),
                                T.StructType([T.StructField("id", T.LongType()),
                                              T.StructField("s", T.ArrayType(T.LongType()))]))
    vdf = sdf.select("id", vec("s").alias("features")).repartition(8).cache()
    vdf.count()
    res["minhashlsh"] = []
    for tables in (5, 20):
        t0 = time.time()
        model = MinHashLSH(inputCol="features", outputCol="sig", numHashTables=tables, seed=7).fit(vdf)
        joined = model.approxSimilarityJoin(vdf, vdf, jd, distCol="jd").where(F.col("datasetA.id") < F.col("datasetB.id"))
        got = {(r["a"], r["b"]) for r in joined.select(F.col("datasetA.id").alias("a"),
                                                       F.col("datasetB.id").alias("b")).collect()}
        res["minhashlsh"].append({"hash_tables": tables, "seconds": time.time() - t0, "recall": recall(got)})
    vdf.unpersist()
    df.unpersist()

    # datasketch MinHashLSH, one process.
    from datasketch import MinHash, MinHashLSH as DSLSH

    t0 = time.time()
    lsh = DSLSH(threshold=(64 - max_d) / (64 + max_d) * 0.85, num_perm=64)
    mhs = MinHash.bulk([[int(x).to_bytes(2, "little") for x in row] for row in sets], num_perm=64)
    with lsh.insertion_session() as sess:
        for i, m in enumerate(mhs):
            sess.insert(i, m)
    got = set()
    for i, m in enumerate(mhs):
        for j in lsh.query(m):
            if j > i and int(np.bitwise_count(np.uint64(h[i] ^ h[j]).view(np.uint64))) <= max_d:
                got.add((i, j))
    res["datasketch"] = {"seconds": time.time() - t0, "recall": recall(got)}
    return res


# --- main ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--full", action="store_true", help=f"sizes {', '.join(f'{n:,}' for n in FULL_SIZES)}")
    ap.add_argument("--compare-size", type=int, default=None, help="media in the LSH comparison")
    ap.add_argument("--max-distance", type=int, default=10)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--conf", default=None)
    ap.add_argument("--new-share", type=float, default=0.0,
                    help="an incremental run: this share of each table's media is new (only they ask); 0 = a full run")
    ap.add_argument("--stages", action="store_true",
                    help="switch Spark's UI on and print each phase's Spark stages (executor time, shuffle bytes)")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / ".cache" / "bench_scale.json"))
    args = ap.parse_args(argv)
    sizes = args.sizes or (list(FULL_SIZES) if args.full else list(DEFAULT_SIZES))
    cfg = load_config(args.conf)
    if args.stages:
        cfg = cfg.with_overrides({"spark": {"extra": {"spark.ui.enabled": "true"}}})
    report: dict = {"sizes": sizes, "cores": os.cpu_count(), "conf": args.conf or "defaults",
                    "new_share": args.new_share,
                    "candidates_image": vars(cfg.candidates.image)}
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, sizes, cfg, report, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args, sizes: list[int], cfg, report: dict, work: Path) -> int:

    if not args.skip_throughput:
        log("fingerprinting throughput (one core) ...")
        report["throughput"] = throughput(cfg, work)
        for kind, v in report["throughput"].items():
            if kind == "image":
                log(f"  image: {v['per_core_per_s']:.1f}/s per core (decode alone {v['decode_only_per_core_per_s']:.1f}/s)")
            else:
                log(f"  {kind}: {v['realtime_per_core']:.0f}x real time per core "
                    f"(decode alone {v['decode_only_realtime_per_core']:.0f}x)")

    p = pool(cfg)
    log(f"pool: {p.table.num_rows} real fingerprints, {len(np.unique(p.family))} families")
    truth = pool_truth(p, cfg)

    from medialayer.spark.session import get_spark
    spark = get_spark(cfg)
    spark.sparkContext.setLogLevel("ERROR")
    report["scale"] = []
    for n in sizes:
        log(f"N = {n:,}: synthetic table ...")
        table_dir, layout = synthetic_table(p, n, args.seed)
        log(f"N = {n:,}: candidates -> verify -> clusters ...")
        new = new_rows(n, args.new_share, args.seed)
        if new is not None:
            log(f"  an incremental run: {new.size:,} new media")
        t0 = time.time()
        r = run_matching(spark, cfg, table_dir, work / f"n{n}", new)
        r["wall_s"] = time.time() - t0 - r["staging_s"]
        r.update(score(work / f"n{n}", layout, truth, new=new))
        r["n"] = n
        r["new_media"] = n if new is None else int(new.size)
        r["driver_peak_mb"] = {"python": _hwm_mb(), "jvm": max([_hwm_mb(pid) for pid in _java_children()] or [0])}
        report["scale"].append(r)
        t = r["times_s"]
        log(f"  {r['wall_s']:.0f}s (candidates {t['candidates']:.0f}s, verify {t['verify']:.0f}s, clusters "
            f"{t['clusters']:.0f}s); key rows {r['key_rows']:,}, candidate pairs {r['candidate_pairs']:,}, "
            f"matches {r['matches']:,}, recall {r['recall']:.4f} ({r['missed']} of {r['planted_true_pairs']} "
            f"missed), chance matches {r['chance_matches']}")
    ns = [r["n"] for r in report["scale"]]
    report["growth_exponent"] = {s: growth_exponent(ns, [r["times_s"][s] for r in report["scale"]])
                                 for s in ("candidates", "verify", "clusters")}
    report["growth_exponent"]["matching"] = growth_exponent(ns, [r["wall_s"] for r in report["scale"]])
    # Fixed costs flatter the fit over small sizes; the two largest show the trend.
    report["growth_exponent"]["matching_largest_two"] = growth_exponent(ns[-2:], [r["wall_s"] for r in report["scale"][-2:]])

    if not args.skip_compare:
        # MinHashLSH cannot AND hashes within a table (one min-hash per table, OR over tables), so it makes
        # a candidate of most unrelated pairs: its cost is quadratic, hence a smaller comparison set.
        n_cmp = args.compare_size or min(ns[-1], 5_000 if args.full else 2_000)
        log(f"banding join vs MinHashLSH vs datasketch on {n_cmp:,} pHashes ...")
        report["compare"] = compare_lsh(spark, cfg, synthetic_table(p, max(ns), args.seed)[0], n_cmp,
                                        args.max_distance)
    spark.stop()

    print_table(report)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2, default=float))
    print(f"\nreport: {args.json}")
    return 0


def print_table(rep: dict) -> None:
    print("\n== bench-scale ==")
    if rep.get("new_share"):
        print(f"incremental runs: {rep['new_share']:.1%} of the media new (recall over planted pairs with a new media)")
    if "throughput" in rep:
        tp = rep["throughput"]
        print(f"fingerprinting, one core: images {tp['image']['per_core_per_s']:.1f}/s "
              f"(decode only {tp['image']['decode_only_per_core_per_s']:.1f}/s); video "
              f"{tp['video']['realtime_per_core']:.0f}x real time (decode only "
              f"{tp['video']['decode_only_realtime_per_core']:.0f}x); audio {tp['audio']['realtime_per_core']:.0f}x "
              f"(decode only {tp['audio']['decode_only_realtime_per_core']:.0f}x)")
    print(f"\n{'N':>9s} {'wall s':>7s} {'cand s':>7s} {'verify s':>8s} {'clust s':>7s} {'key rows':>13s} "
          f"{'cand pairs':>11s} {'matches':>9s} {'recall':>7s} {'chance':>6s} {'JVM MB':>7s}")
    for r in rep["scale"]:
        t = r["times_s"]
        print(f"{r['n']:9,d} {r['wall_s']:7.0f} {t['candidates']:7.0f} {t['verify']:8.0f} {t['clusters']:7.0f} "
              f"{r['key_rows']:13,d} {r['candidate_pairs']:11,d} {r['matches']:9,d} {r['recall']:7.4f} "
              f"{r['chance_matches']:6d} {r['driver_peak_mb']['jvm']:7.0f}")
    for r in rep["scale"]:
        if "spark_stages" in r:
            print(f"\nSpark stages at {r['n']:,} (executor s summed over tasks; JVM CPU; shuffle GB written/read):")
            for phase, rows in r["spark_stages"].items():
                for i, s in enumerate(rows, 1):
                    print(f"  {phase:<10s} #{i} {s['tasks']:5d} tasks {s['run_s']:8.1f} s  CPU {s['cpu_s']:7.1f} s  "
                          f"write {s['shuffle_write_gb']:6.2f}  read {s['shuffle_read_gb']:6.2f}")
    g = rep["growth_exponent"]
    if g["matching"] is not None:
        print("growth exponent (time ~ N^k): " + ", ".join(f"{k} {v:.2f}" for k, v in g.items() if v is not None)
              + f"   (target <= {TARGETS['growth_exponent']})")
    if "compare" in rep:
        c = rep["compare"]
        print(f"\nLSH on {c['n']:,} pHashes, pairs within {c['max_distance']} bits ({c['true_pairs']:,} true pairs; "
              f"exhaustive numpy scan {c['exhaustive_numpy_s']:.1f}s):")
        print(f"  banding join (Spark)       {c['banding_join']['seconds']:7.1f}s  recall {c['banding_join']['recall']:.4f}")
        for m in c["minhashlsh"]:
            print(f"  MinHashLSH x{m['hash_tables']:<3d} (Spark ML) {m['seconds']:7.1f}s  recall {m['recall']:.4f}")
        print(f"  datasketch MinHashLSH      {c['datasketch']['seconds']:7.1f}s  recall {c['datasketch']['recall']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
