"""Image verification: two batches of image fingerprints -> calibrated similarity and an envelope.

Scores are computed for whole batches with XOR + popcount; only the envelope text is per pair,
and only for the pairs that are kept.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..config import MatchingConfig
from ..envelope import MatchResult, confidence_for
from ..fingerprints.bits import hamming
from ..fingerprints.image import unpack_tone

# A mirrored reading must beat the straight one by this much (normalised distance) to be called
# mirrored: symmetric products look alike either way round.
_MIRROR_MARGIN = 3.0 / 128
_ASPECT_TOLERANCE = 0.03
_RESIZE_TOLERANCE = 0.10
_TONE_TOLERANCE = 10   # mean channel or contrast shift, in 8-bit levels, that counts as a tone change


@dataclass(frozen=True)
class ImageSide:
    width: int
    height: int
    tone: int


@dataclass(frozen=True)
class ImageScores:
    similarity: np.ndarray   # float64 in [0, 1]
    distance: np.ndarray     # normalised Hamming distance in [0, 1], best orientation
    mirrored: np.ndarray     # bool


def calibrate(distance: np.ndarray, anchors: list) -> np.ndarray:
    xs = np.array([float(p[0]) for p in anchors])
    ys = np.array([float(p[1]) for p in anchors])
    return np.clip(np.interp(distance, xs, ys), 0.0, 1.0)


def score_image_pairs(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], cfg: MatchingConfig) -> ImageScores:
    """`a`, `b`: {hash column: uint64/int64 array}, aligned pairwise."""
    straight = (hamming(a["phash"], b["phash"]) + hamming(a["dhash"], b["dhash"])) / 128.0
    flipped = (hamming(a["phash"], b["phash_mirror"]) + hamming(a["dhash"], b["dhash_mirror"])) / 128.0
    mirrored = flipped + _MIRROR_MARGIN < straight
    distance = np.where(mirrored, flipped, straight)
    return ImageScores(calibrate(distance, cfg.image.calibration), distance, mirrored)


def describe_image_match(similarity: float, mirrored: bool, same_bytes: bool,
                         a: ImageSide, b: ImageSide, cfg: MatchingConfig) -> MatchResult:
    """Envelope for one scored pair: match_type and a one-sentence reason naming what changed.

    `exact` is reserved for byte-identical files; everything else that matches says how it differs.
    """
    similarity = 1.0 if same_bytes else float(similarity)
    confidence = confidence_for(similarity, cfg.match_threshold, cfg.confidence)
    if similarity < cfg.match_threshold:
        return MatchResult(False, "none", similarity, "no_match", "image",
                           "Images differ: no visual correspondence above the match threshold")
    if same_bytes:
        return MatchResult(True, "high", 1.0, "exact", "image", "Files are byte-identical")
    changes = _changes(a, b)
    if mirrored:
        match_type, what = "mirrored", "is a mirrored copy"
    elif confidence == "high":
        match_type, what = "near_duplicate", "appears visually similar"
    else:
        match_type, what = "edited_copy", "appears to be an edited copy"
        changes.append("local edits such as overlays or text")
    if not changes:
        changes = ["re-encoding or compression changes"]
    return MatchResult(True, confidence, similarity, match_type, "image",
                       f"Product image {what} with {_join(changes)}")


def _changes(a: ImageSide, b: ImageSide) -> list[str]:
    out = []
    if min(a.width, a.height, b.width, b.height) > 0:
        aspect = (a.width / a.height) / (b.width / b.height)
        if abs(np.log(aspect)) > _ASPECT_TOLERANCE:
            out.append("crop or padding")
        area = (a.width * a.height) / (b.width * b.height)
        if abs(np.log(area)) > _RESIZE_TOLERANCE:
            out.append("resizing")
    if a.tone and b.tone:
        ta, tb = np.array(unpack_tone(a.tone)), np.array(unpack_tone(b.tone))
        if np.abs(ta - tb).max() > _TONE_TOLERANCE:
            out.append("colour or brightness change")
    return out


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
