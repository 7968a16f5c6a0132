"""`make bench-av`: video and audio detection accuracy, segment error and speed, default configuration.

The set (generated once, cached under bench/.cache/av-v*): reference videos of 30-120 s (slideshows
with pans and zooms over real photographs, with a sound track of espeak-ng speech over generated
music) and reference audio files (speech, or music); queries are 5-20 s excerpts of them after each
edit a seller makes; negatives are the same edits applied to clips that are not in the reference
set. Frame grabs (a hero image made from one frame) are queries too; the generator records which
part of which photo each reference frame shows, so a grab's reported time is checked against every
frame that shows it (a slideshow shows each photo several times), besides |dt| to its own frame.

Everything goes through the production path: `fingerprint_table` (decode + fingerprint), the join
keys and semantics of the Spark job (`candidates.media_keys`, `candidate_pairs_in_memory`) and
`verify_batch`. A query counts as detected only if it became a candidate of its reference AND
verified at or above matching.match_threshold.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa

from medialayer.candidates import candidate_pairs_in_memory, media_keys
from medialayer.config import load_config
from medialayer.fetching import Fetcher
from medialayer.media import fingerprint_table
from medialayer.synth import av as S
from medialayer.synth.photos import all_photos, load_photo
from medialayer.verification import pair_batch, verify_batch

GENERATOR_VERSION = 4          # 4: references record which part of which photo each frame shows
FPS, SR = 10.0, 16000
TARGET_PRECISION, TARGET_RECALL, TARGET_BOUNDARY_S = 0.99, 0.95, 1.0
# A frame grab is placed right when the reference's frame at the reported time shows at least this
# share of the grabbed part of the photo (a slideshow shows each photo several times: a grab has
# as many right answers as frames that show it).
GRAB_COVER = 0.9
GRAB_MIN_CONTRAST = 10.0   # grey standard deviation of a grabbed frame: nothing is grabbed from a blank one
EXTRA_GRABS = 4       # frame grabs of each kind per video source, besides the one among the edits
WORDS = ("this stainless steel kettle boils water in three minutes and switches off by itself the handle "
         "stays cool the lid opens with one button a soft blue light shows it is on it holds one point seven "
         "litres and comes with a two year warranty our wireless headphones fold flat fit every head and play "
         "for thirty hours the case charges them twice this backpack has a padded laptop sleeve water proof "
         "zips and a hidden pocket for your passport").split()

VIDEO_EDITS = ("excerpt", "reencode", "crop_90", "crop_80", "rescale", "letterbox", "logo", "faster_4pct",
               "slower_4pct", "frame_grab", "frame_grab_cropped")
AUDIO_EDITS = ("excerpt", "reencode_low", "quieter", "noise_10db", "music_bed_5db", "faster_3pct",
               "tempo_slower_3pct")


@dataclass
class Item:
    path: str
    role: str            # reference | query | negative
    media_type: str
    source: str          # the clip it was cut from
    edit: str = ""
    start: float = 0.0   # excerpt start/end in the source's seconds (frame grabs: the frame's time)
    end: float = 0.0
    photo: int = -1      # frame grabs: which of the source's photos, and the part of it grabbed
    box: list | None = None        # (x0, y0, x1, y1) as fractions of the photo
    views: list | None = None      # reference videos, per frame: [photo, x0, y0, x1, y1] (fractions)


def _soundtrack(seconds: float, rng: random.Random, seed: int, speech_ok: bool) -> np.ndarray:
    """Speech over music. Each source has its own speaker (voice variant and pitch) and its own word
    order: two sources never say the same thing in the same voice, as two real voice-overs do not."""
    bed = S.music(seconds, SR, seed=seed)
    if not speech_ok:
        return bed
    voice = np.zeros(int(seconds * SR), dtype=np.float32)
    pos = 0
    speaker = rng.choice(("en+m1", "en+m3", "en+m5", "en+m7", "en+f2", "en+f4", "en-us+m2", "en-us+f3",
                          "en-gb+m4", "en-gb+f1"))
    pitch, wpm = rng.randint(20, 80), rng.randint(140, 185)
    words = list(WORDS)
    rng.shuffle(words)
    k = 0
    while pos < voice.size:
        n = rng.randint(8, 20)
        text = " ".join(words[(k + i) % len(words)] for i in range(n))
        k += n
        clip = S.speech(text, SR, voice=speaker, speed_wpm=wpm, pitch=pitch)
        n = min(clip.size, voice.size - pos)
        voice[pos:pos + n] = clip[:n]
        pos += n + int(rng.uniform(0.2, 0.8) * SR)
    return S.mix(voice, bed, 8.0)


def build(cache: Path, n_sources: int, seed: int, log=print) -> list[Item]:
    root = cache.resolve() / f"av-v{GENERATOR_VERSION}-n{n_sources}-s{seed}"
    index = root / "items.json"
    if index.is_file():
        return [Item(**d) for d in json.loads(index.read_text())]
    speech_ok = shutil.which("espeak-ng") is not None
    if not speech_ok:
        log("espeak-ng not found: sound tracks are generated music only (make bench-av installs it as root)")
    paths = all_photos()
    if len(paths) < 6 * n_sources // 2:
        sys.exit(f"bench-av needs {6 * n_sources // 2} photographs (6 per video source, none shared), found "
                 f"{len(paths)}: install Debian's wallpaper packages (make bench-av does this as root)")
    random.Random(seed).shuffle(paths)
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    items: list[Item] = []
    t0 = time.time()
    for s in range(n_sources):
        # Even sources are references; odd ones only give negatives (same edits, never indexed).
        role_q = "query" if s % 2 == 0 else "negative"
        is_video = s % 4 in (0, 1)
        dur = rng.uniform(30, 120)
        sound = _soundtrack(dur, rng, seed * 100 + s, speech_ok)
        name = f"src{s:03d}"
        if is_video:
            pics = [np.asarray(load_photo(paths.pop(), 640)) for _ in range(6)]     # no photo in two sources
            per_photo = rng.uniform(2.5, 6)
            frames = S.slideshow(pics, dur, FPS, (320, 240), seconds_per_photo=per_photo, seed=s)
            views = _views(pics, S.slideshow_plan(len(pics), dur, FPS, per_photo, s))
            path = S.encode_video(media / f"{name}.mp4", frames, FPS, audio=sound, sr=SR)
        else:
            frames = None
            path = S.encode_audio(media / f"{name}.mp3", sound, SR)
        if role_q == "query":
            items.append(Item(str(path), "reference", "video" if is_video else "audio", name,
                              views=views if is_video else None))
        edits = VIDEO_EDITS if is_video else AUDIO_EDITS
        for e in edits:
            length = rng.uniform(5, 20)
            start = rng.uniform(0, dur - length - 0.5)
            end = start + length
            out = media / f"{name}_{e}"
            grabbed: dict = {}
            if is_video:
                item = _video_query(out, frames, sound, e, start, end, rng, views, grabbed)
            else:
                item = _audio_query(out, sound, e, start, end)
            items.append(Item(str(item[0]), role_q, item[1], name, e, round(item[2], 3), round(item[3], 3),
                              **grabbed))
        if is_video:
            # More frame grabs, from their own random stream (the clips above stay as they were):
            # six sources give six grabs per edit, too few to read 0.95 from.
            grab_rng = random.Random(seed * 1000 + s)
            for n in range(EXTRA_GRABS):
                for e in ("frame_grab", "frame_grab_cropped"):
                    grabbed = {}
                    item = _video_query(media / f"{name}_{e}_{n + 2}", frames, sound, e, 0.0, dur - 0.5,
                                        grab_rng, views, grabbed)
                    items.append(Item(str(item[0]), role_q, "image", name, e, round(item[2], 3),
                                      round(item[3], 3), **grabbed))
        log(f"  source {s + 1}/{n_sources} ({'video' if is_video else 'audio'}, {dur:.0f} s) "
            f"[{time.time() - t0:.0f} s]")
    index.write_text(json.dumps([asdict(i) for i in items]))
    return items


def _views(pics, plan) -> list[list[float]]:
    """Per slideshow frame: the photo it shows and the part of it, as fractions of the photo."""
    out = []
    for k, zoom, centre in plan:
        ph, pw = pics[k].shape[:2]
        x0, y0, x1, y1 = S.view_box(pw, ph, zoom, centre, 320, 240)
        out.append([k, round(x0 / pw, 5), round(y0 / ph, 5), round(x1 / pw, 5), round(y1 / ph, 5)])
    return out


def _video_query(out: Path, frames, sound, edit: str, start: float, end: float, rng: random.Random,
                 views: list, grabbed: dict):
    """An edited excerpt, or a frame grab (then `grabbed` gets its photo and the part of it)."""
    if edit.startswith("frame_grab"):
        t = round(rng.uniform(start, end), 1)
        for _ in range(50):       # a seller grabs a frame that shows something, not a black one
            if cv2.cvtColor(frames[int(t * FPS)], cv2.COLOR_RGB2GRAY).std() >= GRAB_MIN_CONTRAST:
                break
            t = round(rng.uniform(start, end), 1)
        img = frames[int(t * FPS)]
        k, x0, y0, x1, y1 = views[int(t * FPS)]
        fx0 = fy0 = 0.0
        if edit == "frame_grab_cropped":                  # the seller trims the frame's edges
            h, w = img.shape[:2]
            keep = rng.uniform(0.8, 0.92)
            y, x = int(h * (1 - keep) / 2), int(w * (1 - keep) / 2)
            img = img[y:h - y, x:w - x]
            fx0, fy0 = x / w, y / h
        grabbed.update(photo=int(k), box=[x0 + fx0 * (x1 - x0), y0 + fy0 * (y1 - y0),
                                          x1 - fx0 * (x1 - x0), y1 - fy0 * (y1 - y0)])
        img = cv2.resize(img, (480, 360), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img.astype(np.int16) + rng.randint(-15, 15), 0, 255).astype(np.uint8)
        path = out.with_suffix(".jpg")
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 82])
        return path, "image", t, t
    speed = {"faster_4pct": 1.04, "slower_4pct": 0.96}.get(edit, 1.0)
    clip = S.retime(frames, FPS, start, end, speed)
    track = sound[int(start * SR):int(end * SR)]
    if speed != 1.0:
        track = S.change_speed(track, speed)
    if edit == "crop_90":
        clip = S.crop_frames(clip, 0.9)
    elif edit == "crop_80":
        clip = S.crop_frames(clip, 0.8)
    elif edit == "rescale":
        clip = S.scale_frames(clip, 0.5)
    elif edit == "letterbox":
        clip = S.letterbox_frames(clip)
    elif edit == "logo":
        clip = S.logo_frames(clip)
    codec, crf = ("mpeg4", 31) if edit == "reencode" else ("libx264", 26)
    path = S.encode_video(out.with_suffix(".mp4"), clip, FPS, audio=track, sr=SR, codec=codec, crf=crf)
    return path, "video", start, end


def _audio_query(out: Path, sound, edit: str, start: float, end: float):
    x = sound[int(start * SR):int(end * SR)]
    if edit == "quieter":
        x = x * 0.25
    elif edit == "noise_10db":
        x = S.mix(x, np.random.default_rng(1).normal(0, 1, x.size).astype(np.float32), 10)
    elif edit == "music_bed_5db":
        x = S.mix(x, S.music(x.size / SR + 1, SR, seed=int(start * 1000)), 5)
    elif edit == "faster_3pct":
        x = S.change_speed(x, 1.03)
    elif edit == "tempo_slower_3pct":
        x = S.change_tempo(x, 0.97, SR)
    suffix = ".ogg" if edit == "reencode_low" else ".mp3"
    path = S.encode_audio(out.with_suffix(suffix), x, SR)
    return path, "audio", start, end


def evaluate(items: list[Item], cfg, log=print) -> dict:
    fetcher = Fetcher(cfg.fetch, trusted_local=True)
    # Fingerprint each media type on its own so its CPU cost can be read (process CPU time covers
    # every thread; one thread here, so the rate is per core).
    order, parts, speed = [], [], {}
    for kind in ("video", "audio", "image"):
        idx = [k for k, it in enumerate(items) if it.media_type == kind]
        t0 = time.process_time()
        table = fingerprint_table([items[k].path for k in idx], [kind] * len(idx), cfg, fetcher, workers=1)
        cpu = time.process_time() - t0
        secs = sum(d or 0.0 for d in table.column("duration_s").to_pylist())
        if kind != "image":
            speed[kind] = {"media_seconds": secs, "cpu_s": cpu, "realtime_per_core": secs / max(cpu, 1e-9)}
        order += idx
        parts.append(table)
    fps = pa.concat_tables(parts).take(pa.array(np.argsort(order)))
    status = fps.column("status").to_pylist()
    bad = [(items[k].path, fps.column("error_code")[k].as_py()) for k, st in enumerate(status) if st != "ok"]
    if bad:
        log(f"fingerprinting failed on {len(bad)} items, e.g. {bad[:3]}")

    refs = np.array([k for k, i in enumerate(items) if i.role == "reference"])
    queries = np.array([k for k, i in enumerate(items) if i.role in ("query", "negative")])
    t1 = time.time()
    keys = media_keys(fps, cfg)
    a, b, _ = candidate_pairs_in_memory(keys, cfg.candidates, query_rows=queries)
    is_ref = np.zeros(len(items), dtype=bool)
    is_ref[refs] = True
    keep = is_ref[a] ^ is_ref[b]                      # query x reference pairs only
    q = np.where(is_ref[a], b, a)[keep]
    r = np.where(is_ref[a], a, b)[keep]
    t_cand = time.time() - t1
    t2 = time.time()
    out = verify_batch(pair_batch(fps, q, r), cfg, keep_below_record=True).to_pylist() if q.size else []
    t_verify = time.time() - t2

    detected = collections.defaultdict(list)
    for qi, ri, row in zip(q, r, out):
        if row["match_found"]:
            detected[int(qi)].append((int(ri), row))
    per_edit = collections.defaultdict(lambda: {"positives": 0, "found": 0, "false": 0, "negatives": 0,
                                               "boundary_errors": [], "on_picture": 0})
    reference_of = {it.source: it for it in items if it.role == "reference"}
    tp = fp = 0
    for k in queries:
        it = items[k]
        key = f"{'video' if it.source and _is_video_source(items, it.source) else 'audio'}/{it.edit}"
        e = per_edit[key]
        hits = detected.get(int(k), [])
        if it.role == "negative":
            e["negatives"] += 1
            e["false"] += len(hits)
            fp += len(hits)
            continue
        e["positives"] += 1
        right = [(ri, row) for ri, row in hits if items[ri].source == it.source]
        fp += len(hits) - len(right)
        e["false"] += len(hits) - len(right)
        if right:
            tp += 1
            e["found"] += 1
            seg = right[0][1]["matched_segments"][0]
            if it.edit.startswith("frame_grab"):
                e["boundary_errors"].append(abs(seg["reference_start"] - it.start))
                e["on_picture"] += shows_grab(reference_of[it.source], it, seg["reference_start"])
            else:
                e["boundary_errors"] += [abs(seg["reference_start"] - it.start), abs(seg["reference_end"] - it.end)]
    positives = sum(e["positives"] for e in per_edit.values())
    report = {
        "items": len(items), "references": int(refs.size), "queries": int(queries.size), "positives": positives,
        "recall": tp / max(1, positives), "precision": tp / max(1, tp + fp), "false_matches": fp,
        "candidate_pairs": int(q.size),
        "per_edit": {k: {"recall": v["found"] / max(1, v["positives"]), "positives": v["positives"],
                         "false_matches": v["false"], "negatives": v["negatives"],
                         "mean_boundary_error_s": _stat(np.mean, v["boundary_errors"]),
                         "max_boundary_error_s": _stat(np.max, v["boundary_errors"]),
                         **({"placed_on_its_picture": v["on_picture"]} if "frame_grab" in k else {})}
                     for k, v in sorted(per_edit.items())},
        "speed": {**speed, "candidates_s": t_cand, "verify_s": t_verify,
                  "verify_ms_per_pair": 1000 * t_verify / max(1, q.size)},
    }
    for kind, decode in _decode_only(items, cfg).items():
        report["speed"][kind]["decode_only_realtime_per_core"] = decode
    return report


def shows_grab(reference: Item, grab: Item, t: float) -> bool:
    """Whether the reference's frame at `t` shows at least GRAB_COVER of the grabbed part of its photo."""
    views = reference.views or []
    if not views or grab.box is None:
        return False
    k, x0, y0, x1, y1 = views[min(len(views) - 1, max(0, int(round(t * FPS))))]
    if int(k) != grab.photo:
        return False
    gx0, gy0, gx1, gy1 = grab.box
    inter = max(0.0, min(x1, gx1) - max(x0, gx0)) * max(0.0, min(y1, gy1) - max(y0, gy0))
    return inter >= GRAB_COVER * (gx1 - gx0) * (gy1 - gy0)


def _stat(fn, values: list) -> float | None:
    return float(fn(values)) if values else None


def _is_video_source(items: list[Item], source: str) -> bool:
    return any(i.source == source and i.media_type == "video" for i in items)


def _decode_only(items: list[Item], cfg) -> dict[str, float]:
    """The limit: decoding alone (PyAV, sampled frames + resampled track), seconds of media per CPU-second."""
    from medialayer.decoding.av import decode_av

    out = {}
    for kind in ("video", "audio"):
        t0 = time.process_time()
        secs = 0.0
        for it in items:
            if it.media_type == kind:
                secs += decode_av(Path(it.path).read_bytes(), kind, cfg.video, cfg.audio).duration_s
        out[kind] = secs / max(time.process_time() - t0, 1e-9)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=int, default=24, help="clips generated (half references, half negatives)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--cache", default=str(Path(__file__).resolve().parent / ".cache"))
    ap.add_argument("--conf", default=None, help="a conf file merged over the defaults")
    ap.add_argument("--json", default=None, help="also write the report here")
    args = ap.parse_args(argv)
    cfg = load_config(args.conf)
    print(f"bench-av: building or reusing the set ({args.sources} sources) ...", flush=True)
    items = build(Path(args.cache), args.sources, args.seed, log=lambda m: print(m, flush=True))
    print(f"bench-av: {len(items)} media; evaluating with the default configuration ...", flush=True)
    rep = evaluate(items, cfg)
    print(f"\nreferences {rep['references']}, queries {rep['queries']} ({rep['positives']} positives), "
          f"candidate pairs {rep['candidate_pairs']}")
    print(f"detection recall {rep['recall']:.3f}  precision {rep['precision']:.3f}  "
          f"false matches {rep['false_matches']}   (targets: recall >= {TARGET_RECALL}, precision >= "
          f"{TARGET_PRECISION}, boundaries within {TARGET_BOUNDARY_S} s)")
    print(f"\n{'edit':32s} {'recall':>7s} {'found':>9s} {'false':>6s} {'negatives':>9s} "
          f"{'mean |dt| s':>11s} {'max':>6s}")
    for k, v in rep["per_edit"].items():
        found = f"{round(v['recall'] * v['positives'])}/{v['positives']}"
        mean = "-" if v["mean_boundary_error_s"] is None else f"{v['mean_boundary_error_s']:.2f}"
        mx = "-" if v["max_boundary_error_s"] is None else f"{v['max_boundary_error_s']:.2f}"
        print(f"{k:32s} {v['recall']:7.3f} {found:>9s} {v['false_matches']:6d} {v['negatives']:9d} "
              f"{mean:>11s} {mx:>6s}")
    grabs = {k: v for k, v in rep["per_edit"].items() if "placed_on_its_picture" in v}
    placed = sum(v["placed_on_its_picture"] for v in grabs.values())
    found = sum(round(v["recall"] * v["positives"]) for v in grabs.values())
    print(f"\nframe grabs placed on a frame that shows the grabbed picture (>= {GRAB_COVER:.0%} of it): "
          f"{placed}/{found} found ("
          + ", ".join(f"{k.split('/')[1]} {v['placed_on_its_picture']}" for k, v in grabs.items())
          + "); |dt| above is to the frame it was taken from, and a photo the slideshow shows again "
          "is another right answer")
    sp = rep["speed"]
    print("\nspeed (one core):")
    for kind in ("video", "audio"):
        v = sp[kind]
        print(f"  {kind:5s} {v['media_seconds']:7.0f} s of media in {v['cpu_s']:6.1f} CPU-s: "
              f"{v['realtime_per_core']:6.1f}x real time (decode alone {v['decode_only_realtime_per_core']:6.1f}x, "
              f"fingerprinting keeps {v['realtime_per_core'] / v['decode_only_realtime_per_core']:.0%} of it)")
    print(f"  candidates {sp['candidates_s']:.2f} s, verify {sp['verify_s']:.2f} s ({sp['verify_ms_per_pair']:.1f} ms/pair)")
    if args.json:
        Path(args.json).write_text(json.dumps(rep, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
