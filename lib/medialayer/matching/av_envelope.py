"""One verified pair with a video or audio side -> the match envelope.

Which evidence applies follows the two media types: video-video compares frames and sound tracks
(the stronger wins, both are reported), video-audio and audio-audio compare sound, image-video looks
for the picture among the video's frames (frame_grab). Segments are oriented a -> b: `query_*` is
side a's timeline, `reference_*` side b's.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..envelope import MatchResult, Segment, confidence_for
from ..fingerprints.audio import unpack_peaks
from ..fingerprints.video import Keyframes, unpack_frames
from .av import (Alignment, extend_over_blanks, match_audio, match_frame_grab, match_keyframes, match_video,
                 snap_to_edges)
from .local import LocalEvidence, LocalSide

_FULL_COVERAGE = 0.85     # a segment covering this share of both files is the whole file


@dataclass(frozen=True)
class AVSide:
    media_type: str
    duration_s: float
    sha256: str | None
    frame_times: bytes | None
    frame_hashes: bytes | None
    audio_peaks: bytes | None
    image_hashes: dict | None = None     # image sides: phash, dhash, mirrored and region hashes
    image_local: LocalSide | None = None  # image sides: keypoints
    keyframes: Keyframes | None = None   # video sides: keyframe keypoints


def verify_av_pair(a: AVSide, b: AVSide, cfg: Config) -> MatchResult:
    m = cfg.matching
    types = {a.media_type, b.media_type}
    kind = "video" if "video" in types and "audio" not in types else "audio"
    if a.sha256 is not None and a.sha256 == b.sha256:
        dur = a.duration_s or 0.0
        return MatchResult(True, "high", 1.0, "exact", a.media_type, "Files are byte-identical",
                           [Segment(0.0, dur, 0.0, dur, 1.0)])
    if "image" in types:
        return _frame_grab(a, b, cfg)

    found: list[tuple[str, Alignment]] = []
    if a.media_type == "video" and b.media_type == "video":
        fa, fb = unpack_frames(a.frame_times, a.frame_hashes), unpack_frames(b.frame_times, b.frame_hashes)
        v = match_video(fa, fb, m.video, cfg.video)
        if v is not None:
            v = extend_over_blanks(v, fa.times, fb.times, a.duration_s, b.duration_s, 1.0 / cfg.video.sample_fps)
            found.append(("frames", snap_to_edges(v, a.duration_s, b.duration_s, m.video.edge_snap_s)))
    if a.audio_peaks and b.audio_peaks:
        s = match_audio(unpack_peaks(a.audio_peaks), unpack_peaks(b.audio_peaks), m.audio, cfg.audio)
        if s is not None:
            found.append(("sound", snap_to_edges(s, a.duration_s, b.duration_s, m.audio.edge_snap_s)))
    if not found:
        what = "frames or sound" if kind == "video" else "sound"
        return MatchResult(False, "none", 0.0, "no_match", kind, f"No aligned {what} in common")
    found.sort(key=lambda x: -x[1].similarity)
    which, best = found[0]
    if len(found) == 2 and found[1][1].similarity >= m.match_threshold and _same_line(best, found[1][1]):
        best = _union(best, found[1][1])      # frames and sound each see part of the copied stretch
    sim = best.similarity
    confidence = confidence_for(sim, m.match_threshold, m.confidence)
    seg = Segment(round(best.q_start, 2), round(best.q_end, 2), round(best.r_start, 2), round(best.r_end, 2),
                  round(sim, 4))
    if sim < m.match_threshold:
        return MatchResult(False, "none", sim, "no_match", kind,
                           f"No copied stretch: best {which} alignment only {best.detail}", [seg])
    cov_a = (best.q_end - best.q_start) / max(a.duration_s or 0.0, 1e-6)
    cov_b = (best.r_end - best.r_start) / max(b.duration_s or 0.0, 1e-6)
    whole = cov_a >= _FULL_COVERAGE and cov_b >= _FULL_COVERAGE
    if whole:
        match_type = "near_duplicate" if best.speed == 1.0 else "edited_copy"
    else:
        match_type = "segment_copy"
    label = "Video frames" if which == "frames" else ("Sound track" if kind == "video" else "Audio")
    # Orientation-free wording (segments carry the times per side): pairwise requests re-orient
    # segments to the caller's order, and the text must stay true either way round.
    shorter = min(best.q_end - best.q_start, best.r_end - best.r_start)
    if whole:
        reason = f"{label}: the whole {shorter:.1f} s match; {best.detail}"
    else:
        reason = f"{label}: a {shorter:.1f} s excerpt of one file is found in the other; {best.detail}"
    if best.speed != 1.0:
        reason += f"; speed changed by {abs(best.speed - 1.0):.0%}"
    others = [f"the {w} agree too: {x.detail}" for w, x in found[1:] if x.similarity >= m.match_threshold]
    if others:
        reason += "; " + "; ".join(others)
    return MatchResult(True, confidence, sim, match_type, kind, reason, [seg])


def _same_line(x: Alignment, y: Alignment, tolerance_s: float = 1.0) -> bool:
    """Both alignments put the query on (nearly) the same place of the reference."""
    def offset(al: Alignment) -> float:
        return al.r_start - al.speed * al.q_start
    return abs(offset(x) - offset(y)) <= tolerance_s and abs(x.speed - y.speed) <= 0.051


def _union(x: Alignment, y: Alignment) -> Alignment:
    return Alignment(x.similarity, min(x.q_start, y.q_start), max(x.q_end, y.q_end), min(x.r_start, y.r_start),
                     max(x.r_end, y.r_end), x.speed, x.evidence, x.detail)


def _frame_grab(a: AVSide, b: AVSide, cfg: Config) -> MatchResult:
    m = cfg.matching
    image, video = (a, b) if a.media_type == "image" else (b, a)
    if video.media_type != "video" or not image.image_hashes:
        return MatchResult(False, "none", 0.0, "no_match", video.media_type,
                           "An image and a sound cannot be compared")
    frames = unpack_frames(video.frame_times, video.frame_hashes)
    hashes = image.image_hashes
    local = image.image_local
    if local is not None and local.block is not None and not local.pasted:
        # A blob (one detailed patch of a smooth photo, a product on a plain ground) is not a
        # picture inside a frame: against hundreds of frames its hashes find look-alikes (a smooth
        # patch of one wallpaper met a plain frame of another video in bench-av).
        hashes = {k: v for k, v in hashes.items() if not k.startswith("region_")}
    hit = match_frame_grab(hashes, frames, m.video)
    if local is not None and video.keyframes is not None and video.keyframes.times.size:
        keyed = match_keyframes(local, video.keyframes, m.image.local, m.video.grab_inside_fraction)
        if keyed:
            # Keypoints say which stretch holds the picture (the hashes of a cropped grab can prefer
            # a look-alike elsewhere); the frame hashes within it give the time. A picture shown
            # twice is reported where a keyframe holds all of it and fits best.
            ev, t_key, spacing = keyed[0]
            near = match_frame_grab(hashes, frames, m.video, window=(t_key - spacing, t_key + spacing))
            near_sim, t = (near[0], near[1]) if near is not None else (0.0, t_key)
            if near_sim < m.match_threshold:
                t = t_key         # no frame nearby is alike by its hashes: the window may cross a cut
            # The strongest fit says how sure we are that the picture is in the video (a showing
            # that leaves a little of it outside still shows it); the placed keyframe says where.
            strongest = max(k[0].similarity for k in keyed)
            # ... unless the hashes find a near-identical frame elsewhere: an uncropped grab.
            if hit is None or hit[0] < m.confidence.high or hit[0] <= near_sim:
                hit = (max(strongest, near_sim), t, _keyframe_how(ev))
    if hit is None:
        return MatchResult(False, "none", 0.0, "no_match", "video", "The video has no informative frame")
    sim, t, how = hit
    t = round(t, 2)
    seg = Segment(0.0, 0.0, t, t, round(sim, 4)) if a is image else Segment(t, t, 0.0, 0.0, round(sim, 4))
    if sim < m.match_threshold:
        return MatchResult(False, "none", sim, "no_match", "video",
                           f"The image is not among the video's frames (nearest at {t:.1f} s)", [seg])
    confidence = confidence_for(sim, m.match_threshold, m.confidence)
    return MatchResult(True, confidence, sim, "frame_grab", "video",
                       f"The {how}image is a frame taken from the video at {t:.1f} s", [seg])


def _keyframe_how(ev: LocalEvidence) -> str:
    """How the image differs from its keyframe, in the words of the frame-grab reason."""
    words = []
    if ev.mirrored:
        words.append("mirrored")
    if min(ev.shared_a, 1.0) < 0.9:
        words.append(f"cropped (about {ev.shared_a:.0%} of the frame)")
    return (" and ".join(words) + " ") if words else ""
