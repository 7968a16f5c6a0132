"""Where the picture is: the content region inside borders, letterbox bars or a screenshot's page.

Sellers pad photos to a square, letterbox them, or re-upload a screenshot of a product page. The
global hashes of the whole frame then describe the frame, not the photo; hashing the content region
as well restores them. Two passes, both cheap on the decoded (<= 512 px) image:

1. trim flat borders: rows and columns that are all (nearly) the border colour;
   a photo turned a few degrees on a flat canvas (filled corners) is found as a tilted rectangle
   instead, and hashed straightened (`tilted_photo`);
2. in what is left (on a small thumbnail), find the largest solid block that differs from the page background. Text and
   thin UI strokes are removed by a morphological opening, so a product photo wins over the lines of
   text around it. The block is kept only when it is a sizeable, not-whole part of the frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..config import RegionConfig


BORDERS, BLOCK, TILTED = 0, 1, 2


def region_kind(region: list[float] | tuple[float, ...] | None) -> int | None:
    """BORDERS, BLOCK or TILTED of a stored content region ([x0, y0, x1, y1, kind, ...]); None without one."""
    return int(region[4]) if region is not None and len(region) > 4 else None


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int
    kind: int = BORDERS       # BORDERS: flat margins trimmed (padding, letterbox); BLOCK: a photo on a page
    solidity: float = 1.0     # share of the box the block itself covers (a pasted photo: ~1; a blob: less)

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def area_fraction(self, width: int, height: int) -> float:
        return (self.width * self.height) / float(max(1, width * height))


def _border_colour(rgb: np.ndarray) -> np.ndarray:
    """The commonest colour of the outer ring (a page's background, a letterbox bar's colour).

    A mode, not a median: a coloured header bar on top of a white page must not blend into a colour
    that is neither.
    """
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int16)
    bins = (ring[:, 0] >> 4) * 256 + (ring[:, 1] >> 4) * 16 + (ring[:, 2] >> 4)
    common = np.bincount(bins).argmax()
    return ring[bins == common].mean(axis=0)


def off_background(rgb: np.ndarray, cfg: RegionConfig, colour: np.ndarray | None = None) -> np.ndarray:
    """Pixels that differ from the border colour by more than the flat tolerance (bool, h x w)."""
    colour = (_border_colour(rgb) if colour is None else colour).astype(np.int16)
    # |pixel - colour| <= tolerance in every channel is one inRange call (a fifth of numpy's cost).
    lo = tuple(float(c - cfg.flat_tolerance) for c in colour)
    hi = tuple(float(c + cfg.flat_tolerance) for c in colour)
    return cv2.inRange(np.ascontiguousarray(rgb), lo, hi) == 0


def trim_borders(rgb: np.ndarray, cfg: RegionConfig, off: np.ndarray | None = None) -> Box:
    """Bounding box after removing outer rows/columns that are flat and of the border colour."""
    h, w = rgb.shape[:2]
    off = off_background(rgb, cfg) if off is None else off
    rows = np.count_nonzero(off, axis=1) / off.shape[1] > cfg.border_max_off_fraction   # the rows' mean, cheaper
    cols = np.count_nonzero(off, axis=0) / off.shape[0] > cfg.border_max_off_fraction
    if not rows.any() or not cols.any():
        return Box(0, 0, w, h)
    ys, xs = np.flatnonzero(rows), np.flatnonzero(cols)
    return Box(int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)


def peel_sparse_edges(off: np.ndarray, box: Box, below: float) -> Box:
    """`box` without its outer rows and columns that are mostly background: the edge line with the
    smallest off-background share (of the current box's width or height) is peeled while that
    share is under `below`.

    A badge stuck on a padded photo's corner reaches into the padding, so the trimmed borders
    enclose badge and photo; the lines that cross only the badge are mostly padding, the photo's
    are not. Peeling the sparsest edge first keeps a badge's short side from holding up its long one.
    """
    solid = off.astype(np.int32)
    rows = np.zeros((solid.shape[0], solid.shape[1] + 1), dtype=np.int32)   # rows[y, x]: off pixels in row y left of x
    np.cumsum(solid, axis=1, out=rows[:, 1:])
    cols = np.zeros((solid.shape[1], solid.shape[0] + 1), dtype=np.int32)   # cols[x, y]: same, down column x
    np.cumsum(solid.T, axis=1, out=cols[:, 1:])
    x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
    while x1 - x0 > 2 and y1 - y0 > 2:
        w, h = float(x1 - x0), float(y1 - y0)
        shares = ((rows[y0, x1] - rows[y0, x0]) / w, (rows[y1 - 1, x1] - rows[y1 - 1, x0]) / w,
                  (cols[x0, y1] - cols[x0, y0]) / h, (cols[x1 - 1, y1] - cols[x1 - 1, y0]) / h)
        edge = int(np.argmin(shares))
        if shares[edge] >= below:
            break
        if edge == 0:
            y0 += 1
        elif edge == 1:
            y1 -= 1
        elif edge == 2:
            x0 += 1
        else:
            x1 -= 1
    return Box(x0, y0, x1, y1, box.kind, box.solidity)


def largest_block(rgb: np.ndarray, cfg: RegionConfig, off: np.ndarray | None = None) -> Box | None:
    """The largest solid non-background block (a photo on a page), or None when there is none.

    `off` is the off-background mask against the page colour of the whole frame's ring (after
    trimming, the inner ring may be mostly a header bar or the photo itself).
    """
    h, w = rgb.shape[:2]
    off = (off_background(rgb, cfg) if off is None else off).astype(np.uint8)
    k = max(3, int(round(max(h, w) * cfg.opening_fraction)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    # Opening only: text and thin rules vanish, and the narrow gap between a header bar and the
    # photo stays open (any closing step would weld them together).
    solid = cv2.morphologyEx(off, cv2.MORPH_OPEN, kernel)
    from .pixel_kernels import component_stats

    count, labels = cv2.connectedComponents(solid, connectivity=4)
    stats = component_stats(labels, count)          # connectedComponentsWithStats' table, 3x faster
    if count <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.int64)
    # Header bars and rules are long thin strips, never the product photo.
    thin = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]) > \
        cfg.max_block_elongation * np.minimum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    areas[thin] = 0
    if areas.max() == 0:
        return None
    best = 1 + int(np.argmax(areas))
    x, y, bw, bh, area = (int(v) for v in stats[best])
    # A page is mostly background around the photo; a photo's own texture around a blob is not.
    outside = h * w - bw * bh
    if outside and 1.0 - (int(off.sum()) - int(off[y:y + bh, x:x + bw].sum())) / outside < cfg.page_flat_fraction:
        return None
    return Box(x, y, x + bw, y + bh, BLOCK, area / float(bw * bh))


@dataclass(frozen=True)
class Tilt:
    """A photo turned on a flat canvas: its rotated rectangle (thumbnail pixels, degrees)."""
    cx: float
    cy: float
    width: float
    height: float
    angle: float              # the rectangle's tilt; rotating the picture by it straightens the photo

    def corners(self) -> np.ndarray:
        return cv2.boxPoints(((self.cx, self.cy), (self.width, self.height), self.angle))

    def mask(self, h: int, w: int) -> np.ndarray:
        """uint8 (h, w): 1 inside the rectangle."""
        inside = np.zeros((h, w), dtype=np.uint8)
        cv2.fillConvexPoly(inside, np.round(self.corners()).astype(np.int32), 1)
        return inside


def tilted_photo(rgb: np.ndarray, cfg: RegionConfig, off: np.ndarray | None = None) -> Tilt | None:
    """The photo of a copy that was rotated a little on a flat canvas (its corners filled with the
    canvas colour), or None.

    Border trimming cannot remove triangular corners, so such a copy has no content region and its
    frame hashes see a rotated picture. Everything that differs from the canvas must fill one
    rotated rectangle, tilted between min_tilt_deg and max_tilt_deg, with flat canvas around it.
    """
    if cfg.max_tilt_deg <= 0:
        return None
    h, w = rgb.shape[:2]
    off = (off_background(rgb, cfg) if off is None else off).astype(np.uint8)
    if off[0, 0] or off[0, -1] or off[-1, 0] or off[-1, -1]:
        return None                        # a full-bleed photo (the common case) stops here
    if cv2.countNonZero(off) < cfg.min_side_px ** 2:
        return None
    # The outer boundary pixels have the same convex hull as all the pixels, so the same rectangle,
    # at a fraction of minAreaRect's cost on a filled photo (0.5 ms on the 160-px thumbnail).
    outlines, _ = cv2.findContours(off, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    (cx, cy), (rw, rh), angle = cv2.minAreaRect(np.concatenate(outlines))
    while angle > 45.0 or angle <= -45.0:  # OpenCV's range depends on its version: take the smaller turn
        angle += -90.0 if angle > 45.0 else 90.0
        rw, rh = rh, rw
    if not cfg.min_tilt_deg <= abs(angle) <= cfg.max_tilt_deg or min(rw, rh) < cfg.min_side_px:
        return None
    tilt = Tilt(float(cx), float(cy), float(rw), float(rh), float(angle))
    inside = tilt.mask(h, w).astype(bool)
    if inside.mean() < 1.0 - cfg.max_area_fraction or (~inside).mean() < cfg.min_area_fraction:
        return None
    # The photo fills its rectangle (a product on white does not), and only canvas lies around it.
    if off[inside].mean() < cfg.min_tilt_fill or off[~inside].mean() > cfg.border_max_off_fraction:
        return None
    return tilt


def straighten(gray: np.ndarray, tilt: Tilt, scale: float) -> np.ndarray:
    """The tilted photo of `gray`, turned upright and cut out; `scale` maps thumbnail pixels to
    `gray`'s."""
    # Pixel centres scale about the pixels' corner; the rectangle through the outermost off-canvas
    # pixel centres is about one thumbnail pixel wider than the photo (edge pixels are blends).
    cx, cy = (tilt.cx + 0.5) * scale - 0.5, (tilt.cy + 0.5) * scale - 0.5
    rw, rh = max(1.0, tilt.width - 1.0) * scale, max(1.0, tilt.height - 1.0) * scale
    m = cv2.getRotationMatrix2D((cx, cy), tilt.angle, 1.0)
    m[:, 2] += (rw / 2.0 - cx, rh / 2.0 - cy)
    # A pixel's worth inside the edge: the rectangle's own border blends with the canvas.
    out_w, out_h = max(1, int(rw) - 2), max(1, int(rh) - 2)
    m[:, 2] -= 1.0
    return cv2.warpAffine(gray, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def flat_fraction(rgb: np.ndarray, cfg: RegionConfig, off: np.ndarray | None = None) -> float:
    """Share of the picture that is flat background of the border colour (0 for a full-bleed photo).

    A frame that is mostly background (a small product on white, a page) has global hashes that
    describe its layout, not its content; matching uses this to distrust them.
    """
    off = off_background(rgb, cfg) if off is None else off
    return 1.0 - np.count_nonzero(off) / off.size


def content_region(rgb: np.ndarray, cfg: RegionConfig, off: np.ndarray | None = None) -> Box | None:
    """The content region when it differs meaningfully from the whole frame, else None.

    `rgb` is a small analysis thumbnail (image.region.analysis_side); the box is in its pixels.
    `off` is its off-background mask, when the caller has it already.
    """
    h, w = rgb.shape[:2]
    if min(h, w) < cfg.min_side_px:
        return None
    off = off_background(rgb, cfg) if off is None else off
    box = trim_borders(rgb, cfg, off)
    trimmed = (box.x0, box.y0, box.x1, box.y1) != (0, 0, w, h)
    inner = rgb[box.y0:box.y1, box.x0:box.x1]
    if min(inner.shape[:2]) >= cfg.min_side_px:
        block = largest_block(inner, cfg, off[box.y0:box.y1, box.x0:box.x1])
        if block is not None and cfg.min_area_fraction <= block.area_fraction(inner.shape[1], inner.shape[0]) \
                <= cfg.max_block_fraction:
            box = Box(box.x0 + block.x0, box.y0 + block.y0, box.x0 + block.x1, box.y0 + block.y1, BLOCK,
                      block.solidity)
    if (box.kind == BORDERS and trimmed and cfg.peel_below > 0 and box.area_fraction(w, h) <= cfg.max_area_fraction
            and tilted_photo(rgb, cfg, off) is None):
        # Only a region that trimming found already (padding, letterbox) is refined: peeling never
        # makes one (a smooth photo's edges are sparse against its own border colour, and a region
        # on both sides stops the frames from being compared). Not before the block search: a
        # page's text lines are sparse too, and peeling them would leave the header bar as most of
        # what surrounds the photo. A turned photo's filled corners are sparse as well, and it has
        # its own region (`tilted_photo`).
        box = peel_sparse_edges(off, box, cfg.peel_below)
    frac = box.area_fraction(w, h)
    if frac > cfg.max_area_fraction or frac < cfg.min_area_fraction or min(box.width, box.height) < cfg.min_side_px:
        return None
    return box
