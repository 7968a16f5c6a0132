"""Keypoint evidence for one pair: descriptor matches, a RANSAC similarity fit, and its guards.

The guards are what keep local matching honest on marketplace images:
- degenerate fits: too few inliers, absurd scale, large rotation;
- collapsed fits (a shared logo, watermark text or page chrome): the inliers must spread over the
  detailed parts of the area the two pictures share (grid occupancy) on at least one side, and a
  small cluster of inliers must cover all of them (or the pictures' fine detail must agree under
  it: matching.picture);
- partial overlaps (two halves of one photograph, two different crops): one picture must lie mostly
  inside the other;
- two pages (screenshots of one shop template, each with its own photo): some inliers must lie on
  a photo, not only on the page's text and chrome around it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..config import LocalMatchConfig
from .hamming import two_nearest

@dataclass(frozen=True)
class LocalSide:
    xy: np.ndarray            # (n, 2) float32, working frame
    descriptors: np.ndarray   # (n, 32) uint8
    mirrored: np.ndarray      # (n, 32) uint8
    frame_w: int
    frame_h: int
    block: tuple[float, float, float, float] | None = None   # the photo on a page (frame fractions), if any
    pasted: bool = False      # the block is a pasted photo (solid, away from the corners), not a blob


@dataclass(frozen=True)
class LocalEvidence:
    inliers: int = 0
    similarity: float = 0.0       # 0 unless every guard passed
    mirrored: bool = False
    scale: float = 1.0            # size of b's picture relative to a's (working frames)
    rotation_deg: float = 0.0
    shared_a: float = 0.0         # share of a's frame that is also in b
    shared_b: float = 0.0
    occupancy: float = 0.0        # of the better-covered side (an overlay hides the copy's detail only)
    # Of the worse-covered side: two pages of one template, or one badge on two photos, cover all the
    # detail of a side whose photo is smooth, never the other side's photo.
    occupancy_least: float = 0.0
    spread: float = 0.0           # inliers' convex hull / shared area (the smaller of the two sides)
    rejected: str = ""            # which guard failed, for diagnostics
    model: tuple[float, ...] | None = None   # the fit, a's working frame -> b's (mirrored b when `mirrored`)
    # A fit with fewer than min_inliers (at least picture_confirm_min_inliers) that passed every
    # geometric guard: the similarity it earns only if the pictures confirm it (matching.picture).
    unconfirmed: float = 0.0
    # Set when a guard would have refused the fit but let the pictures decide instead: the refusal
    # stands (with this reason) unless the pictures agree (matching.picture), at min_picture_agreement
    # or at `agreement_needed` when the guard asked for more.
    pictures_must_agree: str = ""
    agreement_needed: float = 0.0
    # ... and when set, the pictures' fine detail (each less its blur) must agree this closely as well.
    detail_needed: float = 0.0
    # A fit refused only for confined inliers (`rejected` says which guard) and handed to the pictures'
    # fine detail (matching.picture, confined_min_detail_agreement): its own similarity, which ranks
    # such fits; confirmed, it scores picture_confirmed_similarity. 0 when not handed over.
    confined: float = 0.0

    @property
    def found(self) -> bool:
        return self.similarity > 0.0

    @property
    def standing(self) -> bool:
        """A fit still in play: found, or waiting for the pictures to confirm it."""
        return self.similarity > 0.0 or self.unconfirmed > 0.0


def match_local(a: LocalSide, b: LocalSide, cfg: LocalMatchConfig) -> LocalEvidence:
    """Best of the straight and mirrored readings of `b` against `a`.

    Both readings are fitted on ratio-tested matches first. When neither makes a fit, the reading
    with more inliers is fitted once more on every nearest neighbour within
    ambiguous_max_distance: a smooth photo's weak corners, recompressed, have descriptors about as
    close to several others as to their own, so the ratio test drops the true matches with the
    false ones. RANSAC and the same guards judge that fit, and the pictures must confirm it, however
    many inliers it has (matching.picture). Only the one reading: this is the costly step for the
    unrelated pairs, which nearly all come this far.
    """
    fewest = cfg.picture_confirm_min_inliers or cfg.min_inliers     # validated: never above min_inliers
    if a.xy.shape[0] < fewest or b.xy.shape[0] < fewest:
        return LocalEvidence(rejected="too few keypoints")
    best = LocalEvidence(rejected="no consistent matches")
    leaning: tuple | None = None        # (inliers, fit arguments, two nearest) of the reading with more inliers
    for mirrored in (False, True):
        if mirrored and best.similarity >= cfg.skip_mirror_above:
            break                       # a strong straight fit: the mirrored reading cannot win
        desc_b = b.mirrored if mirrored else b.descriptors
        xy_b = b.xy.copy()
        # The two-pages guard needs a block on both sides, one of them a pasted photo: two blobs (a
        # smooth photo's one detailed patch, found again in its copy) say nothing about pages.
        block_b = b.block if a.block is not None and (a.pasted or b.pasted) else None
        if mirrored:
            xy_b[:, 0] = (b.frame_w - 1) - xy_b[:, 0]
            if block_b is not None:
                block_b = (1.0 - block_b[2], block_b[1], 1.0 - block_b[0], block_b[3])
        if desc_b.shape[0] < 2:
            continue
        dist, nidx = two_nearest(a.descriptors, desc_b)
        args = (a, xy_b, b.frame_w, b.frame_h, mirrored, cfg, block_b)
        ev = _fit(*args, *_descriptor_matches(dist, nidx, cfg), dist, nidx)
        if (ev.similarity, ev.unconfirmed, ev.confined, ev.inliers) > \
                (best.similarity, best.unconfirmed, best.confined, best.inliers):
            best = ev
        if leaning is None or ev.inliers > leaning[0]:
            leaning = (ev.inliers, args, dist, nidx)
    if best.standing or not cfg.ambiguous_max_distance or leaning is None:
        return best
    _, args, dist, nidx = leaning
    again = _fit(*args, *_descriptor_matches(dist, nidx, cfg, unique_only=False), dist, nidx)
    if not again.standing:
        return best
    # Ambiguous matches also line up on generic structure (the corners of two similar outlines on
    # white): such a fit counts only when the pictures confirm it, as one with few inliers does.
    return replace(again, similarity=0.0, unconfirmed=max(again.similarity, again.unconfirmed),
                   rejected="ambiguous matches, unconfirmed")


def trusted_fit(local: LocalEvidence, cfg: LocalMatchConfig) -> bool:
    """At least picture_trusted_inliers inliers over picture_trusted_spread of the shared area: no
    shared word, badge or logo fits that way."""
    return bool(cfg.picture_trusted_inliers) and local.inliers >= cfg.picture_trusted_inliers \
        and local.spread >= cfg.picture_trusted_spread


def _descriptor_matches(dist: np.ndarray, nidx: np.ndarray, cfg: LocalMatchConfig, unique_only: bool = True
                        ) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matches of a's descriptors to their nearest in b, from `two_nearest(a, b)`: the
    ratio-tested ones, or with `unique_only=False` every nearest neighbour within
    ambiguous_max_distance (see `match_local`). When several of a's points pick the same point of b,
    the closest keeps it (then the first). Ordered by b's index, which RANSAC's sampling sees."""
    from .hamming_kernel import one_to_one_kernel

    return one_to_one_kernel(dist, nidx, unique_only, int(cfg.max_descriptor_distance), float(cfg.ratio),
                             int(cfg.ambiguous_max_distance))


def _nearest(dist: np.ndarray, nidx: np.ndarray, cfg: LocalMatchConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of a's descriptors its nearest neighbour in b (-1 past max_descriptor_distance), the
    ratio it reached and its distance: what guided matching relaxes the ratio test on, for the
    neighbours that a fit puts in the right place. Only fits that reach guided_seed_inliers ask."""
    d1, d2 = dist[:, 0].astype(np.float64), dist[:, 1].astype(np.float64)
    near = (d1 <= cfg.max_descriptor_distance) & (nidx[:, 0] >= 0)
    return np.where(near, nidx[:, 0], -1).astype(np.int64), d1 / np.maximum(d2, 1.0), d1


def _fit(a: LocalSide, xy_b: np.ndarray, wb: int, hb: int, mirrored: bool, cfg: LocalMatchConfig,
         block_b: tuple[float, float, float, float] | None, ia: np.ndarray, ib: np.ndarray,
         dist: np.ndarray, nidx: np.ndarray) -> LocalEvidence:
    """RANSAC on the matches (ia, ib), guided matching, then the guards. `dist`, `nidx`: the two
    nearest of each of a's descriptors in b."""
    seed = cfg.guided_seed_inliers or cfg.picture_confirm_min_inliers or cfg.min_inliers
    if ia.shape[0] < seed:
        return LocalEvidence(mirrored=mirrored, rejected="too few descriptor matches")
    src, dst = a.xy[ia], xy_b[ib]
    model, mask = _ransac(src, dst, cfg)
    if model is None or mask is None:
        return LocalEvidence(mirrored=mirrored, rejected="no geometric fit")
    inl = mask.ravel().astype(bool)
    n = int(inl.sum())
    if cfg.guided_seed_inliers and n >= cfg.guided_seed_inliers and _calibrated(n, cfg) < cfg.skip_mirror_above:
        ga, gb = _guided_matches(a.xy, xy_b, _nearest(dist, nidx, cfg), model, cfg)
        if ga.shape[0] > n:
            g_model, g_mask = _ransac(a.xy[ga], xy_b[gb], cfg)
            if g_model is not None and g_mask is not None and int(g_mask.sum()) > n:
                src, dst, model, inl = a.xy[ga], xy_b[gb], g_model, g_mask.ravel().astype(bool)
                n = int(inl.sum())
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    rotation = float(np.degrees(np.arctan2(model[1, 0], model[0, 0])))
    base = dict(inliers=n, mirrored=mirrored, scale=scale, rotation_deg=rotation,
                model=tuple(model.ravel().tolist()))
    # Fewer inliers than min_inliers: a fit only the pictures can confirm, when the guards pass.
    few = n < cfg.min_inliers
    if few and not (cfg.picture_confirm_min_inliers and n >= cfg.picture_confirm_min_inliers):
        return LocalEvidence(**base, rejected="too few inliers")
    if not cfg.min_scale <= scale <= cfg.max_scale:
        return LocalEvidence(**base, rejected="degenerate scale")
    if abs(rotation) > cfg.max_rotation_deg:
        return LocalEvidence(**base, rejected="large rotation")
    # Two pages: the shared text and chrome of one shop template fit each other perfectly (shifted by
    # the photos' heights), so the photo of at least one side must carry some of the inliers.
    if a.block is not None and block_b is not None:
        on_photo = max(_inside(src[inl], a.block, a.frame_w, a.frame_h), _inside(dst[inl], block_b, wb, hb))
        if on_photo < cfg.min_photo_inliers:
            return LocalEvidence(**base, rejected="inliers on page chrome only")

    box_a = _shared_box(model, a.frame_w, a.frame_h, wb, hb, inverse=True)
    box_b = _shared_box(model, a.frame_w, a.frame_h, wb, hb, inverse=False)
    shared_a = _area(box_a) / float(a.frame_w * a.frame_h)
    shared_b = _area(box_b) / float(wb * hb)
    base.update(shared_a=shared_a, shared_b=shared_b)
    if max(shared_a, shared_b) < cfg.min_contained_fraction:
        return LocalEvidence(**base, rejected="partial overlap")
    # Inliers confined to a small patch (a sticker, a badge, a logo) are not a copy of the picture.
    spread = min(_hull_fraction(src[inl], box_a), _hull_fraction(dst[inl], box_b))
    base.update(spread=spread)
    # Keypoints are stored strongest first: the strong ones say where the picture has detail.
    strong_a = a.xy[: max(cfg.min_inliers, int(len(a.xy) * cfg.occupancy_strongest))]
    strong_b = xy_b[: max(cfg.min_inliers, int(len(xy_b) * cfg.occupancy_strongest))]
    # The better-covered side counts: an overlay hides the copy's detail, never the original's, while
    # a shared logo or page chrome leaves both sides' own detail unmatched.
    occ_a, occ_b = _occupancy(strong_a, src[inl], box_a, cfg.grid), _occupancy(strong_b, dst[inl], box_b, cfg.grid)
    occ = max(occ_a, occ_b)
    base.update(occupancy=occ, occupancy_least=min(occ_a, occ_b))
    if spread < cfg.min_inlier_spread:
        confined = "inliers confined to a small patch"     # whatever the occupancy
    elif occ < cfg.min_occupancy:
        return LocalEvidence(**base, rejected="inliers clustered")
    # A small cluster of inliers is a copy only when it is where all of one picture's detail is (a
    # smooth photo's one textured patch); a badge or watermark word shared by two photos leaves
    # both photos' own detail uncovered.
    elif spread < cfg.confined_spread and occ < cfg.full_occupancy:
        confined = "confined inliers leave detail uncovered"
    else:
        confined = ""
    # Fewer covered cells than a clean copy shows: part of the agreement may be a shared overlay.
    similarity = max(_calibrated(n, cfg) - cfg.occupancy_penalty * max(0.0, cfg.full_occupancy - occ), 1e-6)
    if confined:
        # A smooth photo's copy fits on its one textured patch too: the pictures' fine detail
        # settles it (matching.picture), where a badge or a word shared by two photos leaves the
        # rest of their detail disagreeing.
        waits = occ >= cfg.min_occupancy and cfg.confined_min_detail_agreement > 0.0
        return LocalEvidence(**base, rejected=confined, confined=similarity if waits else 0.0)
    if few:
        return LocalEvidence(**base, unconfirmed=similarity, rejected="too few inliers")
    return LocalEvidence(**base, similarity=similarity)


def _calibrated(inliers: int, cfg: LocalMatchConfig) -> float:
    return float(np.interp(inliers, [float(p[0]) for p in cfg.calibration], [float(p[1]) for p in cfg.calibration]))


def _ransac(src: np.ndarray, dst: np.ndarray, cfg: LocalMatchConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    return cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=cfg.ransac_px,
                                       maxIters=cfg.ransac_iterations, confidence=0.995, refineIters=5)


def _guided_matches(xy_a: np.ndarray, xy_b: np.ndarray, nearest: tuple[np.ndarray, np.ndarray, np.ndarray],
                    model: np.ndarray, cfg: LocalMatchConfig) -> tuple[np.ndarray, np.ndarray]:
    """Matches that agree with `model` under a relaxed ratio test: a keypoint of a whose nearest
    descriptor in b lies within guided_radius_px of where the fit maps it, at a ratio below
    guided_ratio, one-to-one.

    Re-encoding, tone changes and overlays push many true matches just past the strict ratio test;
    the fit's position vouches for them. A repeated pattern (the letters of a tiled watermark that
    two photos share) still fails: its nearest and second-nearest descriptors are equally close.
    """
    nb, ratio, d1 = nearest
    ok = (nb >= 0) & (ratio < cfg.guided_ratio)
    ia = np.flatnonzero(ok)
    if ia.size == 0:
        return ia, ia
    ib = nb[ia]
    mapped = xy_a[ia].astype(np.float64) @ model[:, :2].T + model[:, 2]
    close = ((mapped - xy_b[ib].astype(np.float64)) ** 2).sum(axis=1) <= cfg.guided_radius_px ** 2
    ia, ib = ia[close], ib[close]
    order = np.argsort(d1[ia], kind="stable")
    ia, ib = ia[order], ib[order]
    first = np.zeros(ib.size, dtype=bool)
    first[np.unique(ib, return_index=True)[1]] = True
    return ia[first], ib[first]


def _shared_box(model: np.ndarray, wa: int, ha: int, wb: int, hb: int, inverse: bool) -> tuple[float, float, float, float]:
    """Axis-aligned box, in a's frame (inverse) or b's, of where the two frames overlap."""
    (p, q, tx), (r, s, ty) = np.asarray(model, dtype=np.float64).tolist()
    if inverse:
        # The 2x3 affine's inverse in closed form (plain floats: numpy's inv of a 3x3 costs 20 us).
        det = p * s - q * r
        p, q, r, s = s / det, -q / det, -r / det, p / det
        tx, ty = -(p * tx + q * ty), -(r * tx + s * ty)
        src_w, src_h, dst_w, dst_h = wb, hb, wa, ha
    else:
        src_w, src_h, dst_w, dst_h = wa, ha, wb, hb
    xs = [p * x + q * y + tx for x, y in ((0, 0), (src_w, 0), (0, src_h), (src_w, src_h))]
    ys = [r * x + s * y + ty for x, y in ((0, 0), (src_w, 0), (0, src_h), (src_w, src_h))]
    return max(0.0, min(xs)), max(0.0, min(ys)), min(float(dst_w), max(xs)), min(float(dst_h), max(ys))


def _hull_fraction(points: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Area of the inliers' convex hull as a share of the shared box."""
    if points.shape[0] < 3 or _area(box) <= 0:
        return 0.0
    hull = cv2.convexHull(points.astype(np.float32).reshape(-1, 1, 2))
    return float(cv2.contourArea(hull)) / _area(box)


def _inside(points: np.ndarray, block: tuple[float, float, float, float], w: int, h: int) -> int:
    x0, y0, x1, y1 = block[0] * w, block[1] * h, block[2] * w, block[3] * h
    return int(((points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)).sum())


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _occupancy(all_xy: np.ndarray, inlier_xy: np.ndarray, box: tuple[float, float, float, float], grid: int) -> float:
    """Share of the grid cells over `box` that hold >= 2 keypoints and also hold an inlier."""
    x0, y0, x1, y1 = box
    if x1 - x0 < 1 or y1 - y0 < 1:
        return 0.0

    def cells(xy: np.ndarray) -> np.ndarray:
        inside = (xy[:, 0] >= x0) & (xy[:, 0] < x1) & (xy[:, 1] >= y0) & (xy[:, 1] < y1)
        p = xy[inside]
        # Never negative (inside), so only the top needs bounding: np.clip costs more than the rest.
        cx = np.minimum(((p[:, 0] - x0) / (x1 - x0) * grid).astype(int), grid - 1)
        cy = np.minimum(((p[:, 1] - y0) / (y1 - y0) * grid).astype(int), grid - 1)
        return np.bincount(cy * grid + cx, minlength=grid * grid)

    populated = cells(all_xy) >= 2
    if not populated.any():
        return 0.0
    hit = cells(inlier_xy) >= 1
    return float((hit & populated).sum()) / float(populated.sum())
