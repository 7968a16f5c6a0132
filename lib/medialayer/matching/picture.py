"""Do the pictures agree where a keypoint fit lays them on each other?

Keypoints can agree on something both images carry while the photos differ: a seller's watermark
word, a logo, a shop template. The stored grey pictures (image.picture_side) settle it: warp one onto
the other with the fit and correlate the pixels they share. Overlays on a true copy (a banner, a
sticker, watermark text) are the worst-fitting pixels; a share of those is set aside first.
Close agreement is evidence too: it confirms a fit with too few inliers to match on their own,
and, with the pictures' fine detail agreeing as well, a fit whose inliers are confined.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from ..config import LocalMatchConfig
from ..fingerprints.image import unpack_picture
from .local import LocalEvidence, LocalSide, trusted_fit

_MIN_PIXELS = 24          # fewer shared pixels than this say nothing either way


def check_pictures(ev: LocalEvidence, picture_a: bytes | None, picture_b: bytes | None, a: LocalSide, b: LocalSide,
                   cfg: LocalMatchConfig, page_like: bool = False) -> LocalEvidence:
    """Weigh a keypoint fit by whether the two stored pictures correlate under it.

    - Disagreement (below min_picture_agreement) refuses a found fit.
    - A found fit whose inliers' hull covers under small_fit_spread of the shared area must also
      agree in fine detail (each picture less its blur, trimmed alike) at small_fit_detail_agreement
      (not on mostly-background frames, which check_aligned's page rule covers). A watermark word
      or a badge that two smooth photos share fits that small, and smooth photos' grey levels
      correlate under nearly any fit; their print and edges do not. A copy fitted on a small patch
      keeps the patch's detail and the rest of its picture.
    - Close agreement (picture_confirm_agreement) confirms a fit that has too few inliers, or too
      little occupancy, to reach the threshold alone: its similarity is raised to
      picture_confirmed_similarity. Not on mostly-background frames (`page_like`): two products
      on one white canvas agree wherever their outlines and the white around them do.
    - A fit with picture_trusted_inliers spread over picture_trusted_spread of the shared area
      is not checked: no shared word or logo fits that way, while a photo that fills a small part
      of a screenshot is only a few pixels of its 48-pixel picture, too few to correlate well.
      Unless a guard handed the fit over (`pictures_must_agree`): then the pictures decide it, and
      without them the guard's refusal stands.
    """
    if ev.model is None:
        return ev
    if ev.confined and not ev.standing:
        return _confined_detail(ev, picture_a, picture_b, a, b, cfg, page_like)
    if not ev.standing:
        return ev
    if ev.pictures_must_agree:
        return _pictures_decide(ev, picture_a, picture_b, a, b, cfg)
    if ev.found and trusted_fit(ev, cfg):
        return ev
    confirming = cfg.picture_confirm_min_inliers > 0 and not page_like
    if cfg.min_picture_agreement <= -1.0 and not confirming:
        return ev
    score = _agreement(ev, picture_a, picture_b, a, b, cfg)
    if score is None:
        return ev
    if ev.found and score < cfg.min_picture_agreement:
        return replace(ev, similarity=0.0, rejected=f"pictures disagree under the fit ({score:.2f})")
    small = ev.found and not page_like and ev.spread < cfg.small_fit_spread
    if small and cfg.small_fit_detail_agreement > 0 and cfg.min_picture_agreement > -1.0:
        why = _detail_refusal(ev, picture_a, picture_b, a, b, cfg, cfg.small_fit_detail_agreement, False)
        if why:
            return replace(ev, similarity=0.0, rejected=why)
    if confirming and score >= cfg.picture_confirm_agreement:
        return replace(ev, similarity=max(ev.similarity, cfg.picture_confirmed_similarity), unconfirmed=0.0,
                       rejected="")
    return ev


def _pictures_decide(ev: LocalEvidence, picture_a: bytes | None, picture_b: bytes | None, a: LocalSide,
                     b: LocalSide, cfg: LocalMatchConfig) -> LocalEvidence:
    """A fit a guard handed over (`pictures_must_agree`): found only if the pictures agree (at
    min_picture_agreement, or at the guard's `agreement_needed` when higher), and their fine detail
    (trimmed alike) at the guard's `detail_needed` when it asks; without pictures, or with the check
    off, the guard's refusal stands."""
    score = _agreement(ev, picture_a, picture_b, a, b, cfg) if cfg.min_picture_agreement > -1.0 else None
    if score is None:
        return replace(ev, similarity=0.0, unconfirmed=0.0, rejected=ev.pictures_must_agree)
    if score < max(cfg.min_picture_agreement, ev.agreement_needed):
        return replace(ev, similarity=0.0, unconfirmed=0.0, rejected=f"pictures disagree under the fit ({score:.2f})")
    why = _detail_refusal(ev, picture_a, picture_b, a, b, cfg, ev.detail_needed, True) if ev.detail_needed > 0 else ""
    if why:
        return replace(ev, similarity=0.0, unconfirmed=0.0, rejected=why)
    return ev


def _detail_refusal(ev: LocalEvidence, picture_a: bytes | None, picture_b: bytes | None, a: LocalSide,
                    b: LocalSide, cfg: LocalMatchConfig, needed: float, unmeasured_refuses: bool) -> str:
    """Why the pictures' fine detail (each less its blur of confined_detail_sigma, trimmed by
    picture_trim) refuses the fit: it agrees less than `needed`, or cannot be measured and
    `unmeasured_refuses` (a guard's refusal stands without it). '' when it does not refuse."""
    detail = _agreement(ev, picture_a, picture_b, a, b, cfg, cfg.confined_detail_sigma)
    if detail is None:
        return "fine detail disagrees under the fit (too few pixels)" if unmeasured_refuses else ""
    return f"fine detail disagrees under the fit ({detail:.2f})" if detail < needed else ""


def _confined_detail(ev: LocalEvidence, picture_a: bytes | None, picture_b: bytes | None, a: LocalSide,
                     b: LocalSide, cfg: LocalMatchConfig, page_like: bool) -> LocalEvidence:
    """A fit refused only for confined inliers: confirmed (at picture_confirmed_similarity) when the
    pictures agree as closely as picture confirmation asks AND their fine detail (each picture less
    its blur) correlates, untrimmed, at confined_min_detail_agreement. Grey levels alone do not
    tell a smooth photo's copy from another smooth photo: gradients correlate under nearly any fit.
    Not on mostly-flat frames, as for picture confirmation."""
    if page_like or not cfg.picture_confirm_min_inliers or cfg.min_picture_agreement <= -1.0:
        return ev
    pa_, pb_ = unpack_picture(picture_a), unpack_picture(picture_b)
    if pa_ is None or pb_ is None:
        return ev
    frames = (a.frame_w, a.frame_h), (b.frame_w, b.frame_h)
    grey = picture_agreement(pa_, pb_, ev.model, *frames, ev.mirrored, cfg.picture_trim)
    if grey is None or grey < cfg.picture_confirm_agreement:
        return ev
    detail = picture_agreement(pa_, pb_, ev.model, *frames, ev.mirrored, 0.0, cfg.confined_detail_sigma)
    if detail is None or detail < cfg.confined_min_detail_agreement:
        return ev
    return replace(ev, similarity=cfg.picture_confirmed_similarity, confined=0.0, rejected="")


def _agreement(ev: LocalEvidence, picture_a: bytes | None, picture_b: bytes | None, a: LocalSide, b: LocalSide,
               cfg: LocalMatchConfig, detail_sigma: float = 0.0) -> float | None:
    """The pictures' trimmed agreement under the fit (of their fine detail with `detail_sigma`)."""
    pa_, pb_ = unpack_picture(picture_a), unpack_picture(picture_b)
    if pa_ is None or pb_ is None or ev.model is None:
        return None
    return picture_agreement(pa_, pb_, ev.model, (a.frame_w, a.frame_h), (b.frame_w, b.frame_h), ev.mirrored,
                             cfg.picture_trim, detail_sigma)


def picture_agreement(picture_a: np.ndarray, picture_b: np.ndarray, model: tuple[float, ...],
                      frame_a: tuple[int, int], frame_b: tuple[int, int], mirrored: bool, trim: float,
                      detail_sigma: float = 0.0) -> float | None:
    """Trimmed correlation of the two pictures under `model` (a's working frame -> b's, b mirrored when
    `mirrored`), the better of the two warping directions; None when they share too few pixels.
    With `detail_sigma`, of their fine detail instead: each picture less its Gaussian blur.

    `frame_a`, `frame_b`: the working frames' (width, height) that the fit's coordinates are in.
    """
    pa = picture_a.astype(np.float32)
    pb = (picture_b[:, ::-1] if mirrored else picture_b).astype(np.float32)
    if detail_sigma:
        pa = pa - cv2.GaussianBlur(pa, (0, 0), detail_sigma)
        pb = pb - cv2.GaussianBlur(pb, (0, 0), detail_sigma)
    to_a = np.diag([pa.shape[1] / max(1, frame_a[0]), pa.shape[0] / max(1, frame_a[1]), 1.0])
    to_b = np.diag([pb.shape[1] / max(1, frame_b[0]), pb.shape[0] / max(1, frame_b[1]), 1.0])
    fit = np.vstack([np.asarray(model, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])
    a_to_b = to_b @ fit @ np.linalg.inv(to_a)
    best = None
    for src, dst, m in ((pb, pa, a_to_b), (pa, pb, np.linalg.inv(a_to_b))):
        score = _trimmed_correlation(src, dst, m, trim)
        if score is not None and (best is None or score > best):
            best = score
    return best


def _trimmed_correlation(src: np.ndarray, dst: np.ndarray, dst_to_src: np.ndarray, trim: float) -> float | None:
    """Correlation of `dst` with `src` sampled where `dst_to_src` maps dst's pixels, after the `trim`
    share of pixels furthest from a linear fit of one on the other (tone changes are linear) is dropped."""
    size = (dst.shape[1], dst.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(src, dst_to_src[:2], size, flags=flags)
    inside = cv2.warpAffine(np.ones_like(src), dst_to_src[:2], size, flags=flags) > 0.99
    if int(inside.sum()) < _MIN_PIXELS:
        return None
    x, y = dst[inside].astype(np.float64), warped[inside].astype(np.float64)
    # The least-squares line of y on x in closed form, and the residual quantile by a partition:
    # np.polyfit and np.quantile cost 0.2 ms a call in overhead alone on these ~2,000 pixels, and
    # true pairs (a million-media run verifies ~130k) come here twice each.
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy = float(dx @ dx), float(dy @ dy)
    if sxx < 1e-12 * x.size or syy < 1e-12 * y.size:          # a flat side: std below 1e-6
        return None
    residual = np.abs(dy - (float(dx @ dy) / sxx) * dx)
    keep = residual <= _quantile(residual, 1.0 - trim)
    x, y = x[keep] - x[keep].mean(), y[keep] - y[keep].mean()
    norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / norm) if norm > 0 else None


def _quantile(v: np.ndarray, q: float) -> float:
    """np.quantile(v, q) (its default, linear interpolation between order statistics), by partition."""
    pos = (v.size - 1) * q
    lo = int(np.floor(pos))
    hi = min(lo + 1, v.size - 1)
    part = np.partition(v, [lo, hi]) if hi != lo else np.partition(v, lo)
    a, b, t = float(part[lo]), float(part[hi]), pos - lo
    return b - (b - a) * (1.0 - t) if t >= 0.5 else a + (b - a) * t
