"""Image verification: two image fingerprints -> one calibrated similarity and an envelope.

Two kinds of evidence, each calibrated to the same similarity scale:
- global hashes (pHash + dHash) of the frame and of the content region, in both orientations: robust
  to recompression, resizing, tone changes and low texture; vectorised over the whole batch;
- keypoints with a guarded geometric fit (matching.local): robust to heavy crops, screenshots,
  padding, rotation and overlays; one small OpenCV call per pair.
The pair's similarity is the stronger of the two. Which one won, and the fitted geometry, decide
match_type and the reason text.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from ..config import LocalMatchConfig, MatchingConfig
from ..envelope import MatchResult, confidence_for
from ..fingerprints.bits import hamming
from ..fingerprints.image import unpack_flat, unpack_picture, unpack_tone
from ..fingerprints.region import BLOCK, TILTED, region_kind
from .local import LocalEvidence, trusted_fit

# A mirrored reading must beat the straight one by this much (normalised distance) to be called
# mirrored: symmetric products look alike either way round.
_MIRROR_MARGIN = 3.0 / 128
_ASPECT_TOLERANCE = 0.03
_RESIZE_TOLERANCE = 0.10
_TONE_TOLERANCE = 10     # mean channel or contrast shift, in 8-bit levels, that counts as a tone change
_CROP_REPORT = 0.90      # a side sharing less than this of its frame was cropped (or framed)
_TILT_REPORT_DEG = 1.5   # rotations below this are noise of the fit
_COVERED_REPORT = 0.85   # inlier occupancy below this: part of the picture is covered
_FRAMING_AGREEMENT = 0.2  # content region and shared area this close: the side is framed, not cropped


@dataclass(frozen=True)
class ImageSide:
    width: int
    height: int
    tone: int
    region: Sequence[float] | None = None    # content region as frame fractions, if one was found


@dataclass(frozen=True)
class GlobalScores:
    similarity: np.ndarray   # float64 in [0, 1]
    distance: np.ndarray     # normalised Hamming distance in [0, 1], best orientation and region pairing
    mirrored: np.ndarray     # bool
    via_region: np.ndarray   # bool: the best pairing used a content region on either side
    frame_straight: np.ndarray   # the frames' own distance, straight and mirrored (no pairing rules),
    frame_mirrored: np.ndarray   # which the keypoint template guard compares with
    page_like: np.ndarray        # bool: either frame is mostly flat background
    pairing: np.ndarray | None = None   # int: which of _PAIRINGS scored best (frame or region per side)
    chance: np.ndarray | None = None    # distance at which unrelated hashes of the compared ones' bit
                                        # balance would lie (`chance_distance`; 0.5 when balanced)


def calibrate(distance: np.ndarray, anchors: list) -> np.ndarray:
    xs = np.array([float(p[0]) for p in anchors])
    ys = np.array([float(p[1]) for p in anchors])
    return np.clip(np.interp(distance, xs, ys), 0.0, 1.0)


_PAIRINGS = (("", ""), ("region_", "region_"), ("", "region_"), ("region_", ""))
# Per pairing, whether side a / side b compared its content region (else its frame).
_REGION_A = np.array([pa == "region_" for pa, _ in _PAIRINGS])
_REGION_B = np.array([pb == "region_" for _, pb in _PAIRINGS])


def frame_distances(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pHash+dHash distance of the two frames, straight and with b mirrored."""
    straight = (hamming(a["phash"], b["phash"]) + hamming(a["dhash"], b["dhash"])) / 128.0
    mirrored = (hamming(a["phash"], b["phash_mirror"]) + hamming(a["dhash"], b["dhash_mirror"])) / 128.0
    return straight, mirrored


def score_global(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], cfg: MatchingConfig,
                 region_a: np.ndarray | None = None, region_b: np.ndarray | None = None) -> GlobalScores:
    """`a`, `b`: {hash column: uint64/int64 array}, aligned pairwise; frame and region columns, and
    optionally the tone word (which says how much of each frame is flat background).

    Region columns equal the frame's when no region was found, so the four pairings always exist.
    Frame is not compared with frame when both sides have a content region (`region_a`,
    `region_b`: bool arrays) or both frames are mostly background. A mostly-flat frame against a
    content region stays: it may be a minimalist photo that a screenshot shows.
    """
    n = len(a["phash"])
    no = np.zeros(n, dtype=bool)
    limit = cfg.image.max_frame_flat_fraction
    flat_a = unpack_flat(a["tone"]) > limit if "tone" in a else no
    flat_b = unpack_flat(b["tone"]) > limit if "tone" in b else no
    both_framed = no
    if region_a is not None and region_b is not None:
        both_framed = np.asarray(region_a, dtype=bool) & np.asarray(region_b, dtype=bool)
    frame_s, frame_f = frame_distances(a, b)
    void = both_framed | (flat_a & flat_b)
    straight, flipped = [np.where(void, 1.0, frame_s)], [np.where(void, 1.0, frame_f)]
    for pa_, pb_ in _PAIRINGS[1:]:
        straight.append((hamming(a[pa_ + "phash"], b[pb_ + "phash"]) + hamming(a[pa_ + "dhash"], b[pb_ + "dhash"])) / 128.0)
        flipped.append((hamming(a[pa_ + "phash"], b[pb_ + "phash_mirror"])
                        + hamming(a[pa_ + "dhash"], b[pb_ + "dhash_mirror"])) / 128.0)
    s, f = np.stack(straight), np.stack(flipped)
    best_s, best_f = s.min(axis=0), f.min(axis=0)
    mirrored = best_f + _MIRROR_MARGIN < best_s
    distance = np.where(mirrored, best_f, best_s)
    which = np.where(mirrored, f.argmin(axis=0), s.argmin(axis=0))
    return GlobalScores(calibrate(distance, cfg.image.calibration), distance, mirrored, which > 0,
                        frame_s, frame_f, flat_a | flat_b, which, chance_distance(a, b, which, mirrored))


def _ones_share(words: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.ascontiguousarray(words).astype(np.int64).view(np.uint64)) / 64.0


def chance_distance(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], pairing: np.ndarray,
                    mirrored: np.ndarray) -> np.ndarray:
    """Per pair, the normalised pHash+dHash distance at which two unrelated hashes with the bit
    balance of the compared ones (the best pairing, in its orientation) would lie: p(1-q) + q(1-p)
    per hash for shares p and q of set bits. Balanced bits give 0.5; a smooth gradient sets nearly
    every dHash bit one way, and two such hashes agree on most bits whatever the pictures are."""
    n = len(pairing)
    out = np.zeros(n, dtype=np.float64)
    for h in ("phash", "dhash"):
        p, q = np.zeros(n), np.zeros(n)
        for k, (side_a, side_b) in enumerate(_PAIRINGS):
            rows = pairing == k
            if rows.any():
                p[rows] = _ones_share(a[side_a + h][rows])
                q[rows] = np.where(mirrored[rows], _ones_share(b[side_b + h + "_mirror"][rows]),
                                   _ones_share(b[side_b + h][rows]))
        out += 0.5 * (p * (1 - q) + q * (1 - p))
    return out


_SATURATION_SCALES = np.linspace(0.5, 2.0, 31)   # saturation edits rescale a colour's distance from grey


def chroma_distance(tone_a: np.ndarray, tone_b: np.ndarray) -> np.ndarray:
    """How far apart two pictures' mean colours are once brightness, contrast and saturation are
    set aside: each colour as its channels' shares of R+G+B minus grey's third, the largest channel
    difference after rescaling one side's (the better way round) by the saturation scale that fits
    best. A white-balance cast moves it a few hundredths; another hue moves it by tenths."""
    def shares(tone: np.ndarray) -> np.ndarray:
        t = np.asarray(tone).astype(np.int64)
        rgb = np.stack([t & 255, (t >> 8) & 255, (t >> 16) & 255], axis=-1).astype(np.float64)
        return rgb / np.maximum(rgb.sum(axis=-1, keepdims=True), 1.0) - 1.0 / 3.0
    a, b = shares(tone_a), shares(tone_b)
    s = _SATURATION_SCALES[None, :, None]
    ab = np.abs(a[:, None, :] - s * b[:, None, :]).max(axis=2).min(axis=1)
    ba = np.abs(b[:, None, :] - s * a[:, None, :]).max(axis=2).min(axis=1)
    return np.minimum(ab, ba)


def _weak(similarity: np.ndarray, cfg: MatchingConfig) -> np.ndarray:
    """Matches in the band the weak-hash rules judge: at or above the threshold, below confidence.high."""
    return (similarity >= cfg.match_threshold) & (similarity < cfg.confidence.high)


def colours_refute(similarity: np.ndarray, tone_a: np.ndarray, tone_b: np.ndarray, cfg: MatchingConfig) -> np.ndarray:
    """Which global-hash scores are refused by colour (matching.image.weak_global_max_chroma): a
    match weaker than confidence.high between pictures whose mean colours no tone edit connects.
    Rows without a tone word (0) are never refused."""
    limit = cfg.image.weak_global_max_chroma
    similarity = np.asarray(similarity, dtype=np.float64)
    if limit < 0 or similarity.size == 0:
        return np.zeros(similarity.shape, dtype=bool)
    weak = _weak(similarity, cfg)
    known = (np.asarray(tone_a).astype(np.int64) != 0) & (np.asarray(tone_b).astype(np.int64) != 0)
    return weak & known & (chroma_distance(tone_a, tone_b) > limit)


def shapes_refute(similarity: np.ndarray, pairing: np.ndarray | None, sides_a: Sequence["ImageSide"],
                  sides_b: Sequence["ImageSide"], cfg: MatchingConfig) -> np.ndarray:
    """Which global-hash scores are refused by shape (matching.image.weak_global_max_aspect_change):
    a match weaker than confidence.high between areas (frame or content region, as the best hash
    pairing took them) whose aspect ratios differ more than that (|ln| of their ratio).

    Hashes are taken on a square thumbnail, so they cannot tell a 3:4 box from a 4:3 one: two
    products of one outline and colour on white meet whatever their proportions. A copy keeps its
    proportions, or is cropped into them (then keypoints carry it); a stretched copy keeps its
    thumbnail and scores above confidence.high. Sides of unknown size are never refused."""
    limit = cfg.image.weak_global_max_aspect_change
    similarity = np.asarray(similarity, dtype=np.float64)
    if limit < 0 or similarity.size == 0 or pairing is None:
        return np.zeros(similarity.shape, dtype=bool)
    weak = _weak(similarity, cfg)
    log_a = np.array([_log_aspect(s, r) for s, r in zip(sides_a, _REGION_A[pairing])])
    log_b = np.array([_log_aspect(s, r) for s, r in zip(sides_b, _REGION_B[pairing])])
    return weak & np.isfinite(log_a) & np.isfinite(log_b) & (np.abs(log_a - log_b) > limit)


def details_refute(similarity: np.ndarray, pairing: np.ndarray | None, pictures_a: Sequence[bytes | None],
                   pictures_b: Sequence[bytes | None], sides_a: Sequence["ImageSide"], sides_b: Sequence["ImageSide"],
                   cfg: MatchingConfig) -> np.ndarray:
    """Which global-hash scores are refused by detail: a match weaker than confidence.high between
    areas (frame or content region, as the best hash pairing took them) whose inner grey-level
    spreads differ more than matching.image.weak_global_max_detail_ratio, and a stronger one past
    strong_global_max_detail_ratio.

    Hashes see outlines and the layout of light and dark: a plain product and a patterned one of
    the same shape and colour meet. Every hash bit compares a coefficient or a pixel with others, so
    the hashes cannot see contrast at any score: a flat picture and a noisy gradient of one layout
    meet at 0.95 as readily as at 0.8. A copy keeps its texture, up to the contrast a tone edit
    changes; the interquartile range ignores an overlay on part of it. Only pairs at or above the
    match threshold are measured, on the stored pictures; a side without a picture, or too small an
    area, is never refused."""
    image_cfg = cfg.image
    similarity = np.asarray(similarity, dtype=np.float64)
    out = np.zeros(similarity.shape, dtype=bool)
    if similarity.size == 0 or pairing is None:
        return out
    weak = _weak(similarity, cfg)
    limit = np.where(weak, image_cfg.weak_global_max_detail_ratio, image_cfg.strong_global_max_detail_ratio)
    judged = np.flatnonzero((similarity >= cfg.match_threshold) & (limit >= 0))
    out[judged] = _area_ratios(judged, pairing, pictures_a, pictures_b, sides_a, sides_b, image_cfg.detail_inset,
                               _interquartile_range, image_cfg.detail_floor_levels) > limit[judged]
    return out


def brightness_refute(similarity: np.ndarray, pairing: np.ndarray | None, pictures_a: Sequence[bytes | None],
                      pictures_b: Sequence[bytes | None], sides_a: Sequence["ImageSide"],
                      sides_b: Sequence["ImageSide"], cfg: MatchingConfig) -> np.ndarray:
    """Which global-hash matches are refused by brightness (matching.image.global_max_brightness_ratio):
    those between areas (as for details_refute) whose mean grey levels differ more than that ratio,
    after adding brightness_floor_levels to both.

    Every hash bit compares a coefficient or a pixel with its neighbours or their median, so hashes
    cannot see brightness at all: a dark product and a light gradient whose layouts agree meet at
    any score. A copy's brightness edit moves the mean by tens of percent, not several-fold. Unlike
    the colour, shape and detail rules this one also refuses matches above confidence.high, because
    a stronger hash agreement says nothing more about brightness. Only pairs at or above the match
    threshold are measured; a side without a picture, or too small an area, is never refused."""
    image_cfg = cfg.image
    limit = image_cfg.global_max_brightness_ratio
    similarity = np.asarray(similarity, dtype=np.float64)
    out = np.zeros(similarity.shape, dtype=bool)
    if limit < 0 or similarity.size == 0 or pairing is None:
        return out
    matched = np.flatnonzero(similarity >= cfg.match_threshold)
    out[matched] = _area_ratios(matched, pairing, pictures_a, pictures_b, sides_a, sides_b, image_cfg.detail_inset,
                                np.mean, image_cfg.brightness_floor_levels) > limit
    return out


def chance_refute(glob: GlobalScores, pictures_a: Sequence[bytes | None], pictures_b: Sequence[bytes | None],
                  sides_a: Sequence["ImageSide"], sides_b: Sequence["ImageSide"], cfg: MatchingConfig) -> np.ndarray:
    """Which global-hash scores are refused as chance agreement of smooth pictures
    (matching.image.weak_global_max_chance_share): a match weaker than confidence.high whose distance
    is more than that share of its hashes' chance distance (`chance_distance`), between areas (as
    for details_refute) whose fine detail (`_fine_detail`) differs more than chance_max_fine_detail_ratio.

    Hashes of smooth pictures carry little: a lit page and a gradient agree on most bits. Their
    pictures still tell them apart by their fine detail (the page's print against the gradient's
    nothing), which a copy keeps up to its contrast change. A side without a picture, or too small
    an area, is never refused."""
    image_cfg = cfg.image
    share = image_cfg.weak_global_max_chance_share
    similarity = np.asarray(glob.similarity, dtype=np.float64)
    out = np.zeros(similarity.shape, dtype=bool)
    if share < 0 or similarity.size == 0 or glob.chance is None or glob.pairing is None:
        return out
    weak = _weak(similarity, cfg)
    rows = np.flatnonzero(weak & (np.asarray(glob.distance) > share * np.asarray(glob.chance)))
    out[rows] = _area_ratios(rows, glob.pairing, pictures_a, pictures_b, sides_a, sides_b, image_cfg.detail_inset,
                             _fine_detail, image_cfg.fine_detail_floor_levels) > image_cfg.chance_max_fine_detail_ratio
    return out


def _fine_detail(levels: np.ndarray) -> float:
    """Mean absolute difference from the 3x3 local mean: print, texture and edges, not gradients."""
    grey = levels.astype(np.float32)
    return float(np.abs(grey - cv2.blur(grey, (3, 3), borderType=cv2.BORDER_REFLECT)).mean())


_MIN_INNER_PIXELS = 16    # fewer pixels than this say nothing about texture or brightness


def _area_ratios(rows: np.ndarray, pairing: np.ndarray, pictures_a: Sequence[bytes | None],
                 pictures_b: Sequence[bytes | None], sides_a: Sequence["ImageSide"], sides_b: Sequence["ImageSide"],
                 inset: float, measure: Callable[[np.ndarray], float], floor: float) -> np.ndarray:
    """For each of `rows`, (larger + floor) / (smaller + floor) of `measure` over the two sides'
    inner areas (`_inner_area`, where the row's hash pairing compared them); NaN, which no limit
    refuses, where either side has no picture or too small an area."""
    out = np.full(rows.size, np.nan)
    for k, i in enumerate(rows):
        area_a = _inner_area(pictures_a[i], sides_a[i], bool(_REGION_A[pairing[i]]), inset)
        area_b = _inner_area(pictures_b[i], sides_b[i], bool(_REGION_B[pairing[i]]), inset)
        if area_a is not None and area_b is not None:
            value_a, value_b = float(measure(area_a)), float(measure(area_b))
            out[k] = (max(value_a, value_b) + floor) / (min(value_a, value_b) + floor)
    return out


def _interquartile_range(levels: np.ndarray) -> float:
    q1, q3 = np.percentile(levels, [25.0, 75.0])
    return float(q3 - q1)


def _inner_area(picture: bytes | None, side: "ImageSide", use_region: bool, inset: float) -> np.ndarray | None:
    """The grey levels inside the compared area of a stored picture, less `inset` of the area's width
    and height on every side (outlines and borders stay out); None without enough pixels."""
    p = unpack_picture(picture)
    if p is None:
        return None
    h, w = p.shape
    x0, y0, x1, y1 = _compared_box(side, use_region)
    dx, dy = (x1 - x0) * inset, (y1 - y0) * inset
    inner = p[int(round((y0 + dy) * h)):int(round((y1 - dy) * h)), int(round((x0 + dx) * w)):int(round((x1 - dx) * w))]
    return inner if inner.size >= _MIN_INNER_PIXELS else None


def _log_aspect(side: "ImageSide", use_region: bool) -> float:
    """ln(width / height) of the frame, or of its content region when `use_region` and it has one."""
    if side.width <= 0 or side.height <= 0:
        return float("nan")
    x0, y0, x1, y1 = _compared_box(side, use_region)
    return float(np.log(side.width * (x1 - x0) / (side.height * (y1 - y0))))


def _compared_box(side: "ImageSide", use_region: bool) -> tuple[float, float, float, float]:
    """The area a hash pairing compared, as frame fractions: the content region when `use_region`
    and the side has a valid one, else the whole frame."""
    r = side.region
    if use_region and r is not None and len(r) >= 4 and r[2] > r[0] and r[3] > r[1]:
        return float(r[0]), float(r[1]), float(r[2]), float(r[3])
    return 0.0, 0.0, 1.0, 1.0


def check_aligned(local: LocalEvidence, frame_distance: float, cfg: LocalMatchConfig,
                  page_like: bool = False) -> LocalEvidence:
    """Reject a keypoint fit that lays one frame squarely on the other while the frames look different.

    That is the signature of shared page chrome, a shop template or a common logo: the keypoints on
    it agree perfectly, the pictures do not. A genuine aligned copy (overlay, tone change, re-encode)
    keeps its frame hashes close, unless a sticker or banner on a smooth photo moves them.

    A trusted fit (see `trusted_fit`: many inliers spread over the shared area) is not refused here:
    chrome, a word or a logo is confined, so such a fit is an overlaid copy or a template framing
    two different photos, and the pictures tell those apart; they must agree (check_pictures).
    On mostly-background frames the inliers must cover both sides' detail (`occupancy_least`;
    a trusted fit, which no chrome makes, the better-covered side's): two pages of one template
    cover all of a side whose photo is smooth, never the other side's photo. A found fit that does
    not goes to the pictures, which must then agree as closely as aligned_page_picture_agreement,
    and in their fine detail as closely as aligned_page_detail_agreement: a sticker on a product
    shot on white leaves part of the copy's detail uncovered, as a template does, but the copy's
    picture, print and edges included, is the original's; another photo in one template agrees in
    grey wherever page and badge are most of the frame, not in the photo's fine detail.
    """
    if not (local.standing or local.confined):
        return local
    aligned = (min(local.shared_a, local.shared_b) >= cfg.aligned_shared
               and abs(local.rotation_deg) < cfg.aligned_max_rotation_deg)
    if not aligned:
        return local
    trusted = local.found and trusted_fit(local, cfg)
    # Each refusal, and how closely the pictures (and their fine detail) must agree to overturn it
    # for any found fit (0: only a trusted fit is handed over).
    if frame_distance > cfg.aligned_max_frame_distance:
        reason = "aligned frames that differ (shared template or logo)"
        pictures_overturn_at, detail_overturn_at = 0.0, 0.0
    elif page_like and (local.occupancy if trusted else local.occupancy_least) < cfg.aligned_page_min_occupancy:
        # Mostly-background frames (pages) make the frame distance meaningless; then the inliers
        # must cover the shared area, not just the page's text and chrome.
        reason = "aligned pages matching on chrome or text only"
        pictures_overturn_at, detail_overturn_at = cfg.aligned_page_picture_agreement, cfg.aligned_page_detail_agreement
    else:
        return local
    if cfg.aligned_trusted_to_pictures and trusted:
        return replace(local, pictures_must_agree=reason)
    if local.found and pictures_overturn_at > 0:
        return replace(local, pictures_must_agree=reason, agreement_needed=pictures_overturn_at,
                       detail_needed=detail_overturn_at)
    return replace(local, similarity=0.0, unconfirmed=0.0, confined=0.0, rejected=reason)


def combine(global_similarity: float, local: LocalEvidence) -> tuple[float, str]:
    """The pair's similarity and which evidence carried it ("global" or "local")."""
    if local.similarity > global_similarity:
        return local.similarity, "local"
    return float(global_similarity), "global"


# Why a hash score was refused, by rule, in the order the rules are asked (the first that refuses names it).
REFUSAL_REASONS = {
    "colour": "Images differ: their layouts of light and dark are alike, but their colours are not related by "
              "any brightness, contrast or saturation change",
    "shape": "Images differ: their layouts of light and dark are alike, but their proportions are not (a copy "
             "keeps its width-to-height ratio)",
    "detail": "Images differ: their layouts of light and dark are alike, but one is plain where the other is "
              "detailed (a copy keeps its texture)",
    "brightness": "Images differ: their layouts of light and dark are alike, but one is several times brighter "
                  "than the other",
    "chance": "Images differ: their hashes agree no better than smooth pictures' do by chance, and one has fine "
              "detail the other lacks",
}


def describe_image_match(similarity: float, evidence: str, global_mirrored: bool, via_region: bool,
                         local: LocalEvidence, same_bytes: bool, a: ImageSide, b: ImageSide,
                         cfg: MatchingConfig, refused_by: str | None = None) -> MatchResult:
    """Envelope for one scored pair: match_type and a one-sentence reason naming what changed.

    `exact` is reserved for byte-identical files; everything else that matches says how it differs.
    `refused_by`: the hash rule (a key of REFUSAL_REASONS) that refused the pair's hash score, if any.
    """
    similarity = 1.0 if same_bytes else float(similarity)
    confidence = confidence_for(similarity, cfg.match_threshold, cfg.confidence)
    if similarity < cfg.match_threshold:
        if refused_by is not None and not same_bytes:
            return MatchResult(False, "none", similarity, "no_match", "image", REFUSAL_REASONS[refused_by])
        return MatchResult(False, "none", similarity, "no_match", "image",
                           "Images differ: no visual correspondence above the match threshold")
    if same_bytes:
        return MatchResult(True, "high", 1.0, "exact", "image", "Files are byte-identical")

    changes: list[str] = []
    mirrored = local.mirrored if evidence == "local" else global_mirrored
    partial = False
    if evidence == "local" or local.found:
        partial = _geometry_changes(local, a, b, changes)
        if not partial and local.found and local.occupancy < _COVERED_REPORT:
            changes.append("an overlay, sticker or text covering part of the picture")
    elif via_region:
        kind = _framed_kind(a, b)
        changes.append(_FRAMING_PHRASES[kind])
        partial = kind != TILTED        # a straightened photo is the whole picture, not a part of a frame
    if not partial and not changes:
        changes.extend(_aspect_change(a, b))
    changes.extend(_size_and_tone_changes(a, b))
    if not changes:
        changes = ["re-encoding or compression changes"]

    if mirrored:
        match_type, what = "mirrored", "is a mirrored copy"
    elif partial:
        match_type, what = "partial_copy", "is contained in the other"
    elif confidence == "high":
        match_type, what = "near_duplicate", "appears visually similar"
    else:
        match_type, what = "edited_copy", "appears to be an edited copy"
    return MatchResult(True, confidence, similarity, match_type, "image",
                       f"Product image {what} with {_join(_unique(changes))}")


def _geometry_changes(local: LocalEvidence, a: ImageSide, b: ImageSide, out: list[str]) -> bool:
    """Crop / framing / rotation phrases from the keypoint fit; True when one picture is a part of the other."""
    partial = False
    smaller_side = min(local.shared_a, local.shared_b)
    if smaller_side < _CROP_REPORT:
        partial = True
        framed = a if local.shared_a < local.shared_b else b
        region = framed.region
        # The side sharing less is either a frame around the picture (its content region is the
        # shared part) or the original that the other side cropped.
        if region is not None and abs(_region_area(region) - smaller_side) < _FRAMING_AGREEMENT:
            if region_kind(region) == BLOCK:
                out.append(f"screenshot or page framing (the photo fills about {_pct(smaller_side)} of the frame)")
            else:
                out.append("padding, borders or letterbox bars")
        else:
            out.append(f"cropping (about {_pct(smaller_side)} of the larger picture kept)")
    if abs(local.rotation_deg) >= _TILT_REPORT_DEG:
        out.append(f"rotation by about {abs(local.rotation_deg):.0f} degrees")
    return partial


_FRAMING_PHRASES = {BLOCK: "screenshot or page framing", TILTED: "a small rotation on a filled canvas",
                    None: "padding, borders or letterbox bars"}


def _framed_kind(a: ImageSide, b: ImageSide) -> int | None:
    """Kind (BLOCK or TILTED) of the content region that frames the picture; None for plain borders."""
    framed = a if a.region is not None and (b.region is None or _region_area(a.region) < _region_area(b.region)) else b
    kind = region_kind(framed.region)
    return kind if kind in (BLOCK, TILTED) else None


def _aspect_change(a: ImageSide, b: ImageSide) -> list[str]:
    if min(a.width, a.height, b.width, b.height) > 0:
        aspect = (a.width / a.height) / (b.width / b.height)
        if abs(np.log(aspect)) > _ASPECT_TOLERANCE:
            return ["crop or padding"]
    return []


def _size_and_tone_changes(a: ImageSide, b: ImageSide) -> list[str]:
    out = []
    if min(a.width, a.height, b.width, b.height) > 0:
        area = (a.width * a.height) / (b.width * b.height)
        if abs(np.log(area)) > _RESIZE_TOLERANCE:
            out.append("resizing")
    if a.tone and b.tone:
        ta, tb = np.array(unpack_tone(a.tone)), np.array(unpack_tone(b.tone))
        if np.abs(ta - tb).max() > _TONE_TOLERANCE:
            out.append("colour or brightness change")
    return out


def _region_area(region: Sequence[float]) -> float:
    return max(0.0, region[2] - region[0]) * max(0.0, region[3] - region[1])


def _pct(x: float) -> str:
    return f"{int(round(100 * x / 5.0) * 5)}%"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
