"""Video, audio and image-to-video matching: time-aligned evidence -> similarity and segments.

Pure numpy on unpacked fingerprints (no decoding here), so the batch job, pairwise requests and the
tests score a pair identically. Every function returns an `Alignment` oriented as called: `q` is
the first argument's timeline, `r` the second's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import AudioConfig, AudioMatchConfig, LocalMatchConfig, VideoConfig, VideoMatchConfig
from ..fingerprints.audio import Peaks, landmarks
from ..fingerprints.video import FrameHashes, Keyframes
from .image import chroma_distance
from .local import LocalEvidence, LocalSide, match_local
from .timeline import Line, longest_run, vote_line


_SPEED_MARGIN = 0.02     # another speed must fit the frames this much better than the current best


@dataclass(frozen=True)
class Alignment:
    similarity: float
    q_start: float
    q_end: float
    r_start: float
    r_end: float
    speed: float
    evidence: int          # matched frames (video) or distinct aligned landmarks (audio)
    detail: str            # what was measured, for the reason


def piecewise(x: float, anchors: list) -> float:
    xs = [float(p[0]) for p in anchors]
    ys = [float(p[1]) for p in anchors]
    return float(np.interp(x, xs, ys))


def frame_distances(q: FrameHashes, r: FrameHashes) -> np.ndarray:
    """(len(q), len(r)) mean of pHash and dHash Hamming distances, in bits: the nearest of whole
    frame to whole frame, whole to centre (q is cropped) and centre to whole (r is cropped)."""
    def d(qp, qd, rp, rd):
        return (np.bitwise_count(qp[:, None] ^ rp[None, :]).astype(np.float32)
                + np.bitwise_count(qd[:, None] ^ rd[None, :])) / 2.0
    out = d(q.phash, q.dhash, r.phash, r.dhash)
    np.minimum(out, d(q.phash, q.dhash, r.centre_phash, r.centre_dhash), out=out)
    np.minimum(out, d(q.centre_phash, q.centre_dhash, r.phash, r.dhash), out=out)
    return out


def match_video(q: FrameHashes, r: FrameHashes, cfg: VideoMatchConfig, vcfg: VideoConfig) -> Alignment | None:
    """The best-aligned stretch of `q` inside `r` (frames alike along one time line)."""
    if q.times.size == 0 or r.times.size == 0:
        return None
    dist = frame_distances(q, r)
    qi, ri = np.nonzero(dist <= cfg.frame_max_distance)
    if qi.size == 0:
        return None
    tq, tr = q.times.astype(np.float64), r.times.astype(np.float64)
    weights = (cfg.frame_max_distance + 1.0 - dist[qi, ri]).astype(np.float64)
    line = vote_line(tq[qi], tr[ri], weights, cfg.speeds, cfg.offset_bin_s)
    if line is None:
        return None
    # The vote fixes the offset to a bin; refine it in half-frame steps to where the frames agree
    # best (slow pans make neighbouring offsets look almost as good), then read each query frame
    # against the reference frame nearest its predicted time.
    step = 1.0 / vcfg.sample_fps
    offset, best, inside, speed = line.offset, None, None, line.speed
    best_score = np.inf
    # Speeds are re-tried here too: over a long excerpt a 4% drift shows only along the line.
    mid = float(np.median(tq[qi]))
    trials = [(float(sp), line.offset + (line.speed - float(sp)) * mid + shift)
              for sp in sorted(cfg.speeds, key=lambda v: abs(float(v) - 1.0))
              for shift in np.arange(-cfg.offset_bin_s, cfg.offset_bin_s + 1e-9, step / 2)]
    for sp, off in trials:
        predicted = sp * tq + off
        nearest = np.clip(np.searchsorted(tr, predicted), 1, tr.size - 1) if tr.size > 1 else np.zeros(tq.size, int)
        if tr.size > 1:
            nearest = np.where(np.abs(tr[nearest - 1] - predicted) <= np.abs(tr[nearest] - predicted),
                               nearest - 1, nearest)
        ok = np.abs(tr[nearest] - predicted) <= step * 0.75
        d = np.where(ok, dist[np.arange(tq.size), nearest], np.inf)
        within = (predicted >= tr[0] - step) & (predicted <= tr[-1] + step)
        agree = np.isfinite(d) & (d <= cfg.frame_max_distance) & within
        # fewest disagreeing frames first, then the smallest distance among agreeing ones
        score = (np.sum(within & ~agree) * cfg.frame_max_distance + np.sum(d[agree])) / max(1, int(within.sum()))
        if agree.sum() and score < best_score * (1.0 - _SPEED_MARGIN * (sp != speed)) - 1e-9:
            best_score, offset, best, inside, speed = score, off, d, within, sp
    if best is None:
        return None
    line = Line(speed, offset, line.score)
    matched = np.isfinite(best) & (best <= cfg.frame_max_distance) & inside
    if not matched.any():
        return None
    run = _agreeing_run(matched, inside, int(round(cfg.max_gap_s * vcfg.sample_fps)))
    first, last = np.flatnonzero(run)[[0, -1]]
    span = (tq >= tq[first]) & (tq <= tq[last]) & inside
    n_run = int(run.sum())
    coverage = n_run / max(1, int(span.sum()))
    mean_d = float(best[run].mean())
    sim = piecewise(mean_d / 64.0, cfg.calibration)
    if n_run < cfg.min_frames or coverage < cfg.min_coverage:
        sim = min(sim, 0.5 * n_run / cfg.min_frames if n_run < cfg.min_frames else 0.5)
    q0, q1 = float(tq[first]), float(tq[last]) + step
    r0 = max(0.0, line.speed * q0 + line.offset)
    r1 = min(float(tr[-1]) + step, line.speed * q1 + line.offset)
    detail = (f"{n_run} of {int(span.sum())} sampled frames alike (mean distance {mean_d:.1f} of 64 bits)")
    return Alignment(sim, q0, q1, r0, max(r0, r1), line.speed, n_run, detail)


def _agreeing_run(agree: np.ndarray, inside: np.ndarray, max_bad: int) -> np.ndarray:
    """The stretch of query frames with the most agreeing frames, broken only by more than
    `max_bad` disagreeing frames in a row. Frames dropped as near-blank (a fade, a plain card) are
    simply absent, so they never break a run: both copies lost them."""
    idx = np.flatnonzero(inside)
    best, best_n = (0, -1), 0
    start, n, bad = None, 0, 0
    for pos, k in enumerate(idx):
        if agree[k]:
            if start is None:
                start, n = pos, 0
            n += 1
            bad = 0
            end = pos
            if n > best_n:
                best, best_n = (start, end), n
        elif start is not None:
            bad += 1
            if bad > max_bad:
                start, bad = None, 0
    out = np.zeros_like(agree)
    if best_n:
        sel = idx[best[0]:best[1] + 1]
        out[sel[agree[sel]]] = True
    return out


def match_frame_grab(image_hashes: dict[str, int], r: FrameHashes, cfg: VideoMatchConfig,
                     window: tuple[float, float] | None = None) -> tuple[float, float, str] | None:
    """(similarity, frame time, how) of the video frame closest to the image: straight, mirrored
    or the image's content region, against each frame whole or its centre (a cropped grab),
    whichever is nearest; among the frames within `window` (seconds) when given. Scored on
    matching.video.frame_grab_calibration, stricter than the image one: the nearest of hundreds of
    frames is closer than any one pair by chance.

    Frames whose mean colour no tone edit relates to the image's (matching.video.grab_max_chroma;
    `image_hashes["tone"]`) are not candidates: the hashes are grey, and a smooth picture's layout of
    light and dark recurs in other videos' frames."""
    keep = np.ones(r.times.size, dtype=bool)
    if window is not None:
        keep &= (r.times >= window[0] - 1e-3) & (r.times <= window[1] + 1e-3)
    tone = image_hashes.get("tone")
    if r.colour is not None and tone and cfg.grab_max_chroma >= 0:
        keep &= chroma_distance(np.full(r.times.size, int(tone), dtype=np.int64),
                                r.colour.astype(np.int64)) <= cfg.grab_max_chroma
    if not keep.all():
        r = FrameHashes(r.times[keep], r.phash[keep], r.dhash[keep], r.centre_phash[keep], r.centre_dhash[keep],
                        r.colour[keep] if r.colour is not None else None)
    if r.times.size == 0:
        return None
    best = None
    for how, p, d in (("", "phash", "dhash"), ("mirrored ", "phash_mirror", "dhash_mirror"),
                      ("content region of ", "region_phash", "region_dhash")):
        if image_hashes.get(p) is None:
            continue
        hp = np.uint64(np.int64(image_hashes[p]).view(np.uint64))
        hd = np.uint64(np.int64(image_hashes[d]).view(np.uint64))
        for crop, fp, fd in (("", r.phash, r.dhash), ("cropped ", r.centre_phash, r.centre_dhash)):
            dist = (np.bitwise_count(fp ^ hp).astype(np.float32) + np.bitwise_count(fd ^ hd)) / 2.0
            k = int(np.argmin(dist))
            if best is None or dist[k] < best[0]:
                best = (float(dist[k]), float(r.times[k]), crop + how if how else crop)
    if best is None:
        return None
    return piecewise(best[0] / 64.0, cfg.frame_grab_calibration), best[1], best[2]


def match_keyframes(image: LocalSide, keyframes: Keyframes, cfg: LocalMatchConfig,
                    inside_fraction: float = 0.0) -> list[tuple[LocalEvidence, float, float]]:
    """(evidence, time, spacing) of every keyframe whose keypoints fit the image's, straight or
    mirrored, with every guard of image keypoint matching; best fit first. `spacing` is the larger
    gap to a neighbouring keyframe: the grabbed frame lies within it.

    Fits that hold at least `inside_fraction` of the image come first: a grabbed frame contains all
    of the image, while a video that shows the same picture again with another pan or zoom fits
    it with part of the image outside the frame, sometimes with more inliers."""
    t = keyframes.times
    found = []
    for k in range(t.size):
        f = keyframes.features(k)
        ev = match_local(LocalSide(f.xy, f.descriptors, f.mirrored, f.frame_w, f.frame_h), image, cfg)
        if ev.found:
            gaps = ([float(t[k] - t[k - 1])] if k > 0 else []) + ([float(t[k + 1] - t[k])] if k + 1 < t.size else [])
            found.append((ev, float(t[k]), max(gaps) if gaps else 0.0))
    # Among the fits that hold the image (then among the rest), most inliers first: calibrated
    # similarity saturates, and the keyframe nearest the grabbed frame keeps the most keypoints in place.
    found.sort(key=lambda x: (x[0].shared_b < inside_fraction, -x[0].inliers, -x[0].similarity))
    return found


def match_audio(q: Peaks, r: Peaks, cfg: AudioMatchConfig, acfg: AudioConfig) -> Alignment | None:
    """The best-aligned stretch of audio `q` inside `r`, over the configured speed hypotheses."""
    ref = landmarks(r, acfg)
    if ref.hash.size == 0 or q.size < 2:
        return None
    order = np.argsort(ref.hash, kind="stable")
    rh, rt = ref.hash[order], ref.t[order]
    uniq, counts = np.unique(rh, return_counts=True)
    common = uniq[counts > cfg.max_hash_repeats]
    best = None
    for speed, pitch in speed_hypotheses(cfg.speeds):
        lq = landmarks(q, acfg, speed, pitch)
        if lq.hash.size == 0:
            continue
        lo = np.searchsorted(rh, lq.hash, "left")
        hi = np.searchsorted(rh, lq.hash, "right")
        n = hi - lo
        if common.size:
            n[np.isin(lq.hash, common)] = 0
        if n.sum() == 0:
            continue
        qidx = np.repeat(np.arange(lq.hash.size), n)
        starts = np.repeat(lo, n)
        within = np.arange(qidx.size) - np.repeat(np.cumsum(n) - n, n)
        tr = rt[starts + within]
        tq = lq.t[qidx]
        line = vote_line(tq, tr, np.ones(tq.size), (1.0,), cfg.offset_bin_hops)
        inl = np.abs(tr - tq - line.offset) <= cfg.offset_bin_hops
        anchors = lq.anchor[qidx[inl]]
        score = np.unique(anchors).size
        if best is None or score > best[0]:
            best = (score, speed, pitch, lq, tq[inl], tr[inl], anchors, line.offset)
    if best is None:
        return None
    _, speed, pitch, lq, tq, tr, anchors, offset = best
    hop_s = acfg.hop / acfg.sample_rate
    run = longest_run(tq, cfg.max_gap_s / hop_s)
    tq, tr, anchors = tq[run], tr[run], anchors[run]
    hits = int(np.unique(anchors).size)
    q0h, q1h = float(tq.min()), float(tq.max())
    in_span = np.unique(lq.anchor[(lq.t >= q0h) & (lq.t <= q1h)]).size
    density = hits / max(1, in_span)
    sim = piecewise(hits, cfg.calibration)
    if density < cfg.min_density:
        sim = min(sim, 0.5)
    # Query times go back to the query's own clock (they were scaled by `speed` for hashing).
    q0, q1 = q0h / speed * hop_s, (q1h / speed) * hop_s + acfg.fft_size / acfg.sample_rate
    r0 = max(0.0, float(tr.min()) * hop_s)
    r1 = float(tr.max()) * hop_s + acfg.fft_size / acfg.sample_rate
    how = "" if speed == 1.0 else (f", resampled {speed:.2f}x" if pitch else f", tempo {speed:.2f}x")
    detail = f"{hits} landmarks aligned ({density:.0%} of the excerpt's landmarks{how})"
    return Alignment(sim, q0, q1, r0, r1, float(speed), hits, detail)


def snap_to_edges(al: Alignment, dur_q: float, dur_r: float, snap_s: float) -> Alignment:
    """Extend a segment that stops just short of a file's start or end to that edge (on both files,
    along the fitted line). The last landmarks need partners after them and blank frames are
    dropped, so evidence always ends a little inside a copied excerpt's true edges."""
    q0, q1, r0, r1, s = al.q_start, al.q_end, al.r_start, al.r_end, al.speed or 1.0
    head = min(q0, r0 / s)
    if 0 < head <= snap_s:
        q0, r0 = q0 - head, max(0.0, r0 - head * s)
    tail = min(max(0.0, dur_q - q1), max(0.0, dur_r - r1) / s) if dur_q and dur_r else 0.0
    if 0 < tail <= snap_s:
        q1, r1 = q1 + tail, r1 + tail * s
    return Alignment(al.similarity, q0, q1, r0, r1, al.speed, al.evidence, al.detail)


def extend_over_blanks(al: Alignment, q_times: np.ndarray, r_times: np.ndarray, dur_q: float, dur_r: float,
                       step_s: float) -> Alignment:
    """Carry a video alignment along its line across blank stretches at its ends: where neither file
    has an informative frame (a fade from black, a black title card), both show the same nothing,
    and the copied stretch goes on to the nearest content (or file edge) on either side.

    Blank frames are not hashed, so without this a copy that opens on black starts, for frame
    evidence, only where the first picture appears. `step_s` is the frame sampling interval: a
    stretch reaches to half a step short of the nearest informative frame.
    """
    s = al.speed or 1.0
    offset = al.r_start - s * al.q_start          # r = s * q + offset
    q0, q1 = al.q_start, al.q_end
    # Back: the last informative frame before the segment on either side (in query time), or an edge.
    half = step_s / 2              # an end's own frame sits within half a step of it
    before_q = q_times[q_times < q0 - half]
    before_r = r_times[r_times < al.r_start - half]
    limits = [0.0, -offset / s]
    if before_q.size:
        limits.append(float(before_q.max()) + half)
    if before_r.size:
        limits.append((float(before_r.max()) + half - offset) / s)
    q0_new = min(q0, max(limits))
    # Forward: the first informative frame after the segment on either side, or an edge.
    after_q = q_times[q_times > q1 + half]
    after_r = r_times[r_times > al.r_end + half]
    limits = [dur_q if dur_q else q1, (dur_r - offset) / s if dur_r else q1]
    if after_q.size:
        limits.append(float(after_q.min()) - half)
    if after_r.size:
        limits.append((float(after_r.min()) - half - offset) / s)
    q1_new = max(q1, min(limits))
    if q0_new >= q0 - step_s and q1_new <= q1 + step_s:
        return al                                  # nothing blank worth a sample interval at either end
    return Alignment(al.similarity, q0_new, q1_new, s * q0_new + offset, s * q1_new + offset, al.speed,
                     al.evidence, al.detail)


def speed_hypotheses(speeds: list) -> list[tuple[float, bool]]:
    """(speed, pitch follows) pairs: 1.0 once, every other speed as a resample and as a tempo change."""
    out = [(1.0, False)]
    for s in speeds:
        s = float(s)
        if s != 1.0:
            out += [(s, True), (s, False)]
    return out
