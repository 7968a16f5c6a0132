"""The search index over a small warehouse of real photographs: its entry file is built once and
mapped on restart, rebuilt when the key settings change, and finds mirrored copies although it
stores straight keys only."""
from __future__ import annotations

import time

import numpy as np

from medialayer.config import load_config
from medialayer.fetching import Fetcher
from medialayer.media import fingerprint_table
from medialayer.search_index import SearchIndex


def _query(path: str, cfg):
    return fingerprint_table([path], ["image"], cfg, Fetcher(cfg.fetch, trusted_local=True), 1)


def test_a_restart_maps_the_saved_entries_instead_of_rebuilding(catalog):
    cfg = load_config()
    first = SearchIndex.from_warehouse(catalog["warehouse"], cfg)
    files = sorted((catalog["warehouse"] / ".search_index").glob("*.keys"))
    assert len(files) == 1 and files[0].stat().st_size == first.entries.size * 8 > 0
    stamp = files[0].stat().st_mtime_ns
    again = SearchIndex.from_warehouse(catalog["warehouse"], cfg)
    assert files[0].stat().st_mtime_ns == stamp                    # mapped, not written again
    assert np.array_equal(np.asarray(again.entries), np.asarray(first.entries))
    q = _query(catalog["copies"][(1, "crop")], cfg)
    assert [h.to_dict() for h in again.search(q, 3)] == [h.to_dict() for h in first.search(q, 3)]


def test_changed_key_settings_rebuild_the_entries_and_drop_the_old_file(catalog):
    default = SearchIndex.from_warehouse(catalog["warehouse"], load_config())
    fewer = SearchIndex.from_warehouse(catalog["warehouse"],
                                       load_config(overrides={"candidates": {"local": {"tables": 2}}}))
    files = list((catalog["warehouse"] / ".search_index").glob("*.keys"))
    assert len(files) == 1                                          # the stale entry file is gone
    assert 0 < fewer.entries.size < default.entries.size


def test_a_service_with_other_fingerprint_settings_than_the_warehouse_is_warned(catalog, caplog):
    """Queries fingerprinted under other settings than the indexed media compare two kinds of
    fingerprint: the index says so when it loads (the warehouse was built with the defaults)."""
    import logging

    from medialayer.search_index import warn_on_other_versions
    from medialayer.versions import CODE_VERSIONS

    with caplog.at_level(logging.WARNING, logger="medialayer.search_index"):
        assert warn_on_other_versions(catalog["warehouse"], load_config()) == 0
        assert not caplog.records
        other = load_config(overrides={"image": {"local": {"max_side": 360}}})
        assert warn_on_other_versions(catalog["warehouse"], other) == len(catalog["originals"])
    assert "8 indexed media were fingerprinted by other code or settings" in caplog.text
    assert CODE_VERSIONS["image"] + "/" in caplog.text


def test_straight_entries_find_mirrored_copies_through_the_querys_mirrored_keys(catalog):
    """Every original of the warehouse shares keypoint words with its mirrored copy (the query's
    mirrored words meet the original's straight ones), though the index holds no mirrored key."""
    cfg = load_config()
    index = SearchIndex.from_warehouse(catalog["warehouse"], cfg)
    per_media = cfg.candidates.local.keypoints * cfg.candidates.local.tables + 2 * cfg.candidates.image.bands
    assert index.entries.size <= index.size * per_media
    keys = index.table.column("media_key").to_pylist()
    originals = fingerprint_table(catalog["originals"], ["image"] * len(catalog["originals"]), cfg,
                                  Fetcher(cfg.fetch, trusted_local=True), 8).column("media_key").to_pylist()
    for i in range(len(catalog["originals"])):
        rows, words = index._candidates(_query(catalog["copies"][(i, "mirror")], cfg))
        at = rows.tolist().index(keys.index(originals[i]))
        # Keypoint words, not only the pHash bands a mirrored hash also meets.
        assert words[at] >= cfg.candidates.local.min_shared, f"mirrored copy of photo {i}: {words[at]} words"


def test_the_index_keeps_ok_images_only_and_a_media_without_listing_has_null_ids(catalog, tmp_path):
    import shutil

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wh = tmp_path / "warehouse"
    shutil.copytree(catalog["warehouse"], wh, ignore=shutil.ignore_patterns(".search_index"))
    fps = pq.read_table(wh / "fingerprints" / "part-0.parquet")
    error = fps.slice(0, 1).to_pylist()[0] | {"media_key": "broken", "status": "error", "error_code": "decode_error"}
    pq.write_table(pa.Table.from_pylist([error], schema=fps.schema), wh / "fingerprints" / "part-1.parquet")
    listing = pq.read_table(wh / "listing_media" / "part-0.parquet")
    pq.write_table(listing.filter(pc.not_equal(listing.column("listing_id"), "L0")),
                   wh / "listing_media" / "part-0.parquet")
    cfg = load_config()
    index = SearchIndex.from_warehouse(wh, cfg)
    assert index.size == len(catalog["originals"])                   # the error row is not indexed
    hits = index.search(_query(catalog["originals"][0], cfg), 1)
    assert hits and hits[0].media_key == fps.column("media_key")[0].as_py()
    assert hits[0].listing_id is None and hits[0].seller_id is None
    other = index.search(_query(catalog["originals"][1], cfg), 1)
    assert other[0].listing_id == "L1" and other[0].sku_id == "sku-1"


def test_workers_starting_together_build_the_index_once(catalog, tmp_path):
    """Two processes (a server's workers) load a warehouse with no index files at the same time:
    one builds, the other waits and maps the same files."""
    import fcntl
    import shutil
    import subprocess
    import sys

    wh = tmp_path / "warehouse"
    shutil.copytree(catalog["warehouse"], wh, ignore=shutil.ignore_patterns(".search_index"))
    (wh / ".search_index").mkdir()
    child = ("import os, sys; from medialayer.config import load_config; "
             "from medialayer.search_index import SearchIndex; "
             "i = SearchIndex.from_warehouse(sys.argv[1], load_config()); "
             "k = [p for p in os.listdir(sys.argv[1] + '/.search_index') if p.endswith('.keys')]; "
             "print(i.size, i.entries.size, os.stat(sys.argv[1] + '/.search_index/' + k[0]).st_ino)")
    with open(wh / ".search_index" / "build.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)          # both children start while a build is "running"
        procs = [subprocess.Popen([sys.executable, "-c", child, str(wh)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(1.0)
        assert all(p.poll() is None for p in procs)        # both are waiting for the lock
        fcntl.flock(held, fcntl.LOCK_UN)
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    first, second = (o[0].split() for o in outs)
    assert first == second and int(first[0]) == len(catalog["originals"]) and int(first[1]) > 0
    assert not list((wh / ".search_index").glob("*.tmp"))


def test_a_warehouse_written_before_a_column_existed_still_loads(catalog, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    wh = tmp_path / "warehouse"
    shutil.copytree(catalog["warehouse"], wh, ignore=shutil.ignore_patterns(".search_index"))
    part = wh / "fingerprints" / "part-0.parquet"
    fps = pq.read_table(part)
    pq.write_table(fps.drop_columns(["kf_times", "kf_counts"]), part)    # as video-v1 warehouses were
    cfg = load_config()
    index = SearchIndex.from_warehouse(wh, cfg)
    assert index.size == len(catalog["originals"])
    hits = index.search(_query(catalog["copies"][(2, "crop")], cfg), 3)
    assert hits and hits[0].media_key == fps.column("media_key")[2].as_py()


def test_a_newer_run_is_picked_up_and_a_broken_one_keeps_the_old_index(catalog, tmp_path):
    """The server's IndexHolder swaps in the index of a newly published fingerprints version (the
    warehouse's symlink swap), and keeps serving the old one when the new one cannot be read."""
    import os
    import shutil

    import pyarrow.parquet as pq

    from medialayer.search_index import IndexHolder

    wh = tmp_path / "warehouse"
    shutil.copytree(catalog["warehouse"] / "listing_media", wh / "listing_media")
    fps = pq.read_table(catalog["warehouse"] / "fingerprints" / "part-0.parquet")

    def publish(run: str, table) -> None:
        version = wh / ".versions" / "fingerprints" / run
        version.mkdir(parents=True)
        if table is None:
            (version / "part-0.parquet").write_bytes(b"PAR1 not really parquet")
        else:
            pq.write_table(table, version / "part-0.parquet")
        tmp = wh / ".fingerprints.tmp"
        os.symlink(os.path.relpath(version, wh), tmp)
        os.replace(tmp, wh / "fingerprints")

    cfg = load_config()
    publish("run1", fps.slice(0, 4))
    holder = IndexHolder(wh, cfg, interval_s=0.0)
    late_key = fps.column("media_key")[6].as_py()
    query = _query(catalog["originals"][6], cfg)
    assert holder.index.size == 4
    assert late_key not in [h.media_key for h in holder.index.search(query, 3)]

    publish("run2", fps)
    assert holder.index.size == len(catalog["originals"])
    hits = holder.index.search(query, 3)
    assert hits and hits[0].media_key == late_key and hits[0].listing_id == "L6"
    served = holder.index.version
    patient = IndexHolder(wh, cfg, interval_s=3600.0)
    assert patient.index.version == served

    publish("run3", None)                         # unreadable: the old index keeps answering
    assert holder.index.version == served and holder.index.size == len(catalog["originals"])
    assert patient.index.version == served        # not even looked at before its interval
    publish("run4", fps.slice(0, 5))               # a readable run after the broken one is taken
    assert holder.index.size == 5 and holder.index.version != served


def test_the_api_benchmarks_filler_rows_fit_the_index(catalog, tmp_path):
    """bench_api's synthetic rows (its million-media index) must keep up with the index's columns:
    a warehouse of real originals plus fillers loads, and the fillers never match a real query."""
    import shutil
    import sys
    from pathlib import Path

    import pyarrow.parquet as pq

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    try:
        import bench_api
    finally:
        sys.path.pop(0)
    wh = tmp_path / "warehouse"
    shutil.copytree(catalog["warehouse"], wh, ignore=shutil.ignore_patterns(".search_index"))
    cfg = load_config()
    real = pq.read_table(wh / "fingerprints" / "part-0.parquet")
    bench_api.write_fillers(wh, 300, cfg.image.local.max_keypoints, 0, real.column_names)
    index = SearchIndex.from_warehouse(wh, cfg)
    assert index.size == real.num_rows + 300
    for i in range(len(catalog["originals"])):
        hits = index.search(_query(catalog["copies"][(i, "crop")], cfg), 5)
        assert hits and hits[0].media_key == real.column("media_key")[i].as_py()
        assert not [h.media_key for h in hits if h.media_key.startswith("filler")]


def test_videos_and_audio_are_found_by_a_clip_a_sound_and_a_grabbed_frame(catalog, av_clips, tmp_path):
    """The index holds the warehouse's videos and audio files beside its images: an excerpt of a
    video, a stretch of its sound and a cropped frame grab each find it, with the batch job's
    envelope; the unrelated video is not returned."""
    import shutil

    import cv2
    import pyarrow as pa
    import pyarrow.parquet as pq

    from medialayer.api import search_url
    from medialayer.pairwise import match
    from medialayer.synth import av as synth_av

    wh = tmp_path / "warehouse"
    shutil.copytree(catalog["warehouse"], wh, ignore=shutil.ignore_patterns(".search_index"))
    media = tmp_path / "media"
    media.mkdir()
    sr, fps = av_clips["sr"], av_clips["fps"]
    sound = synth_av.encode_audio(media / "jingle.mp3", av_clips["other"]["sound"], sr)
    refs = [str(av_clips["demo"]["path"]), str(av_clips["other"]["path"]), str(sound)]
    cfg = load_config(overrides={"fetch": {"local_roots": [str(media), str(av_clips["root"])]}})
    rows = fingerprint_table(refs, [None] * 3, cfg, Fetcher(cfg.fetch, trusted_local=True), 2)
    assert rows.column("status").to_pylist() == ["ok"] * 3
    images = pq.read_table(wh / "fingerprints" / "part-0.parquet")
    pq.write_table(rows.cast(images.schema), wh / "fingerprints" / "part-1.parquet")
    keys = rows.column("media_key").to_pylist()
    pq.write_table(pa.table({"listing_id": ["V0", "V1", "A0"], "media_key": keys, "seller_id": ["s9"] * 3,
                             "sku_id": ["k0", "k1", "k2"], "brand_id": ["acme"] * 3}),
                   wh / "listing_media" / "part-1.parquet")
    index = SearchIndex.from_warehouse(wh, cfg)
    assert index.size == len(catalog["originals"]) + 3 and index.av_bytes_per_media > 0

    clip = synth_av.encode_video(media / "clip.mp4", synth_av.retime(av_clips["demo"]["frames"], fps, 10, 22), fps,
                                 audio=av_clips["demo"]["sound"][10 * sr:22 * sr], sr=sr)
    voice = synth_av.encode_audio(media / "voice.mp3", av_clips["other"]["sound"][5 * sr:17 * sr], sr)
    frame = av_clips["demo"]["frames"][int(31.3 * fps)]
    h, w = frame.shape[:2]
    grab = cv2.resize(frame[h // 12:h - h // 12, w // 12:w - w // 12], (480, 360), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(media / "grab.jpg"), cv2.cvtColor(grab, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])

    # The voice is a stretch of the other video's sound: the audio file and that video both hold it.
    for query, want, kind in ((clip, {"V0"}, "segment_copy"), (voice, {"A0", "V1"}, "segment_copy"),
                              (media / "grab.jpg", {"V0"}, "frame_grab")):
        out = search_url(index, str(query), 5, None, cfg, trusted_local=True)
        hits = {r["listing_id"]: r for r in out["results"]}
        assert set(hits) & {"V0", "V1", "A0"} == want, (query, out["results"])
        for name in want:
            assert hits[name]["match_type"] == kind, hits[name]
            pairwise = match(str(query), refs[["V0", "V1", "A0"].index(name)], cfg=cfg).to_dict()
            assert hits[name]["similarity"] == pairwise["similarity"]     # search and pairwise agree
    # Segments read query -> catalog media, whichever way round the job scores the pair.
    for query, name, start in ((clip, "V0", 10), (voice, "A0", 5), (voice, "V1", 5)):
        hit = {r["listing_id"]: r for r in search_url(index, str(query), 5, None, cfg, True)["results"]}[name]
        seg = hit["matched_segments"][0]
        assert seg["query_start"] <= 1 and abs(seg["reference_start"] - start) <= 1, (name, seg)


def test_indexes_dropped_by_reloads_leave_no_open_files(catalog):
    """A server reloads its index whenever a run lands: the old index's mapped files and the file
    its prefetch reads through must close with it."""
    import gc
    import os

    cfg = load_config()
    SearchIndex.from_warehouse(catalog["warehouse"], cfg)
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        index = SearchIndex.from_warehouse(catalog["warehouse"], cfg)
        assert index.search(_query(catalog["copies"][(2, "crop")], cfg), 1)
    del index
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before
