"""Image fingerprints, computed for a batch at once: global hashes of the frame and of its content
region, plus local keypoint features.

pHash (low-frequency DCT signs) survives recompression, resizing and tone changes; dHash
(horizontal gradient signs) is an independent second opinion that cuts false positives. Both are
also stored for the mirrored image, so a flipped copy is one XOR away. The mirrored pHash needs no
second DCT: mirroring a row reverses it, which flips the sign of every odd horizontal frequency.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from ..config import ImageConfig
from ..decoding.image import shrink
from .bits import pack_bits
from .local import LocalFeatures, extract_local_features, pack_angles, pack_xy, working_gray
from .region import BLOCK, TILTED, content_region, flat_fraction, off_background, straighten, tilted_photo

# v4: the grey picture (`picture`) that keypoint fits are checked against; v3 rows have none and are refetched.
# v5: keypoints spread over an 8x8 grid (was 4x4), so an overlay no longer takes most of the slots; a
# photo turned on a filled canvas gets a region (kind TILTED), hashed straightened; the tone word's
# colour and contrast are the content region's.
# v6: a small photo pasted on a page (a screenshot) takes its keypoints from a larger second decode.
# v7: a padded frame's content region loses its mostly-background edge lines (a corner badge reaching
# into the padding is no longer part of the box).
FINGERPRINT_VERSION = "image-v7"
HASH_COLUMNS = ("phash", "phash_mirror", "dhash", "dhash_mirror")
# The same four hashes of the content region; equal to the frame's when no region was found.
REGION_HASH_COLUMNS = tuple(f"region_{c}" for c in HASH_COLUMNS)
# Not a hash: mean R, G, B, luma standard deviation and flat-background share, one byte each, so a
# reason can say "colour or brightness change" (the hashes are deliberately blind to tone) and
# matching can tell a layout-dominated frame.
TONE_COLUMN = "tone"

_DCT_SIZE = 32
_LOW = 8


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_D = _dct_matrix(_DCT_SIZE)
# Low-frequency block, with the DC term (which carries brightness, not structure) swapped for C[0, 8].
_ROWS, _COLS = np.meshgrid(np.arange(_LOW), np.arange(_LOW), indexing="ij")
_ROWS, _COLS = _ROWS.ravel().copy(), _COLS.ravel().copy()
_COLS[0] = _LOW
_MIRROR_SIGN = np.where(_COLS % 2 == 1, -1.0, 1.0)


def area_resize(gray: np.ndarray, size: tuple[int, int], integral: np.ndarray | None = None) -> np.ndarray:
    """`gray` resized to `size` (w, h) by area averaging: what cv2.INTER_AREA gives (a near-tie may
    round one grey level the other way), in about half its time.

    OpenCV's area resize at a non-integer ratio costs a few ns per source pixel: 0.44 ms from a
    400-px frame, and every image makes three (two 32x32 hash thumbnails and the 48-px picture);
    this way 0.24 ms (2026-12-01), and 0.06 compiled (2026-12-07). A block's sum is four reads of the
    integral image, and the integral image of a piecewise-constant picture is exactly bilinear
    between pixel corners, so blocks with fractional edges are read by linear interpolation.
    `integral`: `frame_integral(gray)`, when the caller makes several sizes of one frame."""
    h, w = gray.shape
    if w < size[0] or h < size[1]:                           # enlarging: OpenCV interpolates
        return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    from .pixel_kernels import area_from_integral

    return area_from_integral(frame_integral(gray) if integral is None else integral, size[0], size[1], w, h)


def frame_integral(gray: np.ndarray) -> np.ndarray:
    """(h+1, w+1) float64 sums of gray[:y, :x]: what `area_resize` reads."""
    return cv2.integral(gray, sdepth=cv2.CV_64F)


def grayscale_thumbs(gray: np.ndarray, integral: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The two small grey images the hashes are computed from: 32x32 for pHash, 9x8 for dHash."""
    big8 = area_resize(gray, (_DCT_SIZE, _DCT_SIZE), integral)
    # 9x8 from the 32x32, not from the frame: same picture, a fraction of OpenCV's area-resize cost.
    small = cv2.resize(big8, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    return big8.astype(np.float32), small


def phash_from_thumbs(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 32, 32) grey -> (phash, phash_mirror) as uint64 arrays."""
    # Two batched matmuls (D X D^T); einsum would plan its contraction afresh on every call.
    coeffs = _D @ thumbs.astype(np.float64) @ _D.T
    low = coeffs[:, _ROWS, _COLS]                       # (n, 64)
    mirrored = low * _MIRROR_SIGN
    bits = low > np.median(low, axis=1, keepdims=True)
    bits_m = mirrored > np.median(mirrored, axis=1, keepdims=True)
    return pack_bits(bits), pack_bits(bits_m)


def dhash_from_thumbs(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 8, 9) grey -> (dhash, dhash_mirror) as uint64 arrays."""
    diff = thumbs[:, :, 1:] > thumbs[:, :, :-1]
    flipped = thumbs[:, :, ::-1]
    diff_m = flipped[:, :, 1:] > flipped[:, :, :-1]
    n = thumbs.shape[0]
    return pack_bits(diff.reshape(n, 64)), pack_bits(diff_m.reshape(n, 64))


def global_hashes(grays: Sequence[np.ndarray], tones: Sequence[int],
                  thumbs: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
    """Grey images -> {column: uint64 array} for HASH_COLUMNS and the tone signature. `thumbs`: their
    `grayscale_thumbs`, when the caller has them."""
    if len(grays) == 0:
        return {c: np.zeros(0, dtype=np.uint64) for c in (*HASH_COLUMNS, TONE_COLUMN)}
    bigs, smalls = zip(*(thumbs if thumbs is not None else (grayscale_thumbs(g) for g in grays)))
    phash, phash_m = phash_from_thumbs(np.stack(bigs))
    dhash, dhash_m = dhash_from_thumbs(np.stack(smalls))
    return {"phash": phash, "phash_mirror": phash_m, "dhash": dhash, "dhash_mirror": dhash_m,
            TONE_COLUMN: np.asarray(tones, dtype=np.uint64)}


@dataclass(frozen=True)
class ImageFingerprints:
    hashes: dict[str, np.ndarray]          # HASH_COLUMNS, REGION_HASH_COLUMNS, TONE_COLUMN: uint64 (n,)
    # content region [x0, y0, x1, y1, kind, pasted]: frame fractions, BORDERS/BLOCK/TILTED (the box
    # around a tilted photo, hashed straightened), and 1.0 for a
    # pasted photo (a solid block away from the corners, the only source of its keypoints)
    region_fractions: list[tuple[float, ...] | None]
    local: list[LocalFeatures]
    pictures: list[bytes | None]           # small grey picture (pack_picture), None when image.picture_side is 0


Detail = Callable[[int], "np.ndarray | None"]


def image_fingerprints(images: Sequence[np.ndarray], cfg: ImageConfig,
                       details: Sequence[Detail | None] | None = None) -> ImageFingerprints:
    """Every fingerprint of a batch of decoded RGB images (the fetch/decode step bounds their size).

    All work happens on two reduced copies: a grey working frame (keypoints, hashes) and a small
    colour thumbnail (content region, tone), so the cost per image is nearly independent of its size.
    `details[i](side)`, when given, decodes image i again with its long side up to `side` (None when
    the file holds no more pixels): a small photo pasted on a page takes its keypoints from there.
    """
    grays, tones, fractions, region_grays, local, pictures, thumbs = [], [], [], [], [], [], []
    for i, rgb in enumerate(images):
        gray = working_gray(rgb, cfg.local.max_side)
        thumb = shrink(rgb, cfg.region.analysis_side)
        off = off_background(thumb, cfg.region)
        box = content_region(thumb, cfg.region, off)
        gh, gw = gray.shape
        th, tw = thumb.shape[:2]
        within, only_within = None, True
        content = None                     # the content region on the thumbnail: the tone is its tone
        tilt = tilted_photo(thumb, cfg.region, off) if box is None else None
        if tilt is not None:
            corners = tilt.corners()
            content = tilt.mask(th, tw)
            frac = (max(0.0, corners[:, 0].min() / tw), max(0.0, corners[:, 1].min() / th),
                    min(1.0, corners[:, 0].max() / tw), min(1.0, corners[:, 1].max() / th))
            region_grays.append(straighten(gray, tilt, gw / float(tw)))
            fractions.append((*frac, float(TILTED), 0.0))
        elif box is None:
            fractions.append(None)
            region_grays.append(None)
        else:
            content = np.zeros((th, tw), dtype=np.uint8)
            content[box.y0:box.y1, box.x0:box.x1] = 1
            frac = (box.x0 / tw, box.y0 / th, box.x1 / tw, box.y1 / th)
            x0, y0 = int(frac[0] * gw), int(frac[1] * gh)
            x1, y1 = max(x0 + 1, int(round(frac[2] * gw))), max(y0 + 1, int(round(frac[3] * gh)))
            region_grays.append(gray[y0:y1, x0:x1])
            if box.kind == BLOCK:
                within = (x0, y0, x1, y1)
                # A solid block in a corner of the frame is a badge stuck on the photo, not a photo on a page.
                m = cfg.region.badge_corner_margin
                corner = (frac[0] <= m or frac[2] >= 1 - m) and (frac[1] <= m or frac[3] >= 1 - m)
                only_within = box.solidity >= cfg.region.min_photo_solidity and not corner
            fractions.append((*frac, float(box.kind), float(box.kind == BLOCK and only_within)))
        grays.append(gray)
        tones.append(pack_tone(thumb, flat_fraction(thumb, cfg.region, off), content))
        detail = details[i] if details is not None else None
        zoomed = (_pasted_photo_features(gray.shape, within, detail, cfg)
                  if within is not None and only_within and detail is not None else None)
        local.append(zoomed if zoomed is not None else extract_local_features(gray, cfg.local, within, only_within))
        # The frame's hash thumbnail and its picture are both area averages of it: one integral image.
        integral = frame_integral(gray)
        thumbs.append(grayscale_thumbs(gray, integral))
        pictures.append(pack_picture(shrink_gray(gray, cfg.picture_side, integral)) if cfg.picture_side else None)
    hashes = global_hashes(grays, tones, thumbs)
    # Without a region the region hashes are the frame's: hash only the frames that have one.
    with_region = [i for i, f in enumerate(fractions) if f is not None]
    region_hashes = global_hashes([region_grays[i] for i in with_region], [tones[i] for i in with_region])
    for c in HASH_COLUMNS:
        column = hashes[c].copy()
        column[with_region] = region_hashes[c]
        hashes[f"region_{c}"] = column
    return ImageFingerprints(hashes, fractions, local, pictures)


def _pasted_photo_features(frame_shape: tuple[int, int], box: tuple[int, int, int, int], detail: Detail,
                           cfg: ImageConfig) -> LocalFeatures | None:
    """Keypoints of a pasted photo `box` (x0, y0, x1, y1 in the working frame) taken from a larger
    decode of the file, in working-frame coordinates; None when the photo is large enough already
    or the file holds no more detail.

    A screenshot shows the photo at a third of the page, so in the 400-px working frame it is 130-200
    px across: ORB finds only the coarse corners there, and the original's finer ones have nothing to
    meet. The second decode is paid only for such pages.
    """
    h, w = frame_shape
    x0, y0, x1, y1 = box
    long_side = max(x1 - x0, y1 - y0)
    if not cfg.detail_max_side or long_side >= cfg.detail_below * cfg.local.max_side:
        return None
    side = min(cfg.detail_max_side, int(round(max(h, w) * cfg.local.max_side / max(1, long_side))))
    hi = detail(side)
    if hi is None:
        return None
    hh, hw = hi.shape[:2]
    sx, sy = hw / float(w), hh / float(h)
    crop = hi[int(y0 * sy):max(int(y0 * sy) + 1, int(round(y1 * sy))),
              int(x0 * sx):max(int(x0 * sx) + 1, int(round(x1 * sx)))]
    if max(crop.shape[:2]) < 1.25 * long_side:
        return None                        # not enough more pixels to be worth a second detection
    gray = working_gray(crop, cfg.local.max_side)
    features = extract_local_features(gray, cfg.local)
    if features.count == 0:
        return None
    gh, gw = gray.shape
    xy = features.xy * np.array([(x1 - x0) / float(gw), (y1 - y0) / float(gh)], dtype=np.float32)
    xy += np.array([x0, y0], dtype=np.float32)
    return LocalFeatures(xy, features.descriptors, features.mirrored, w, h, features.angles)


def shrink_gray(gray: np.ndarray, side: int, integral: np.ndarray | None = None) -> np.ndarray:
    """Area-averaged copy of a grey frame with its long side `side` (never enlarged).

    Not `decoding.image.shrink` (halvings, then bilinear): at 48 px every pixel should be the mean of
    its block, and the picture check found 6 fewer copies in bench-accuracy with `shrink` (1428 vs 1434).
    """
    h, w = gray.shape
    scale = min(1.0, side / float(max(h, w)))
    return area_resize(gray, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))), integral)


def pack_picture(picture: np.ndarray) -> bytes:
    """Width byte, then the grey pixels row by row (width <= 255)."""
    return bytes([picture.shape[1]]) + np.ascontiguousarray(picture, dtype=np.uint8).tobytes()


def unpack_picture(blob: bytes | None) -> np.ndarray | None:
    if not blob or len(blob) < 2 or blob[0] == 0 or (len(blob) - 1) % blob[0]:
        return None
    return np.frombuffer(blob, dtype=np.uint8, offset=1).reshape(-1, blob[0])


def local_columns(features: Sequence[LocalFeatures]) -> dict[str, list]:
    """Keypoints as stored: counts, working-frame size and packed coordinate/descriptor blobs."""
    return {
        "kp_count": [f.count for f in features],
        "kp_frame_w": [f.frame_w for f in features],
        "kp_frame_h": [f.frame_h for f in features],
        "kp_xy": [pack_xy(f.xy) for f in features],
        "kp_desc": [f.descriptors.tobytes() for f in features],
        "kp_desc_mirror": [f.mirrored.tobytes() for f in features],
        "kp_angle": [pack_angles(f.angles) if f.angles is not None else b"" for f in features],
    }


def pack_tone(thumb: np.ndarray, flat: float = 0.0, content: np.ndarray | None = None) -> int:
    """Tone word of a small RGB thumbnail: mean colour, grey contrast, flat-background share.

    Colour and contrast are those of `content` (a uint8 mask of the content region) when given: the
    white bars of a padded copy or the filled corners of a turned one are not a colour change.
    """
    if content is not None and not content.any():
        content = None
    r, g, b = (int(round(v)) for v in cv2.mean(thumb, mask=content)[:3])
    grey = cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY)
    contrast = min(255, int(round(float(cv2.meanStdDev(grey, mask=content)[1][0, 0]))))
    return r | (g << 8) | (b << 16) | (contrast << 24) | (int(round(255 * flat)) << 32)


def unpack_tone(tone: int) -> tuple[int, int, int, int]:
    """(mean R, mean G, mean B, grey contrast), 8-bit each."""
    t = int(tone)
    return t & 255, (t >> 8) & 255, (t >> 16) & 255, (t >> 24) & 255


def unpack_flat(tone: np.ndarray) -> np.ndarray:
    """Flat-background share of each frame (see region.flat_fraction), from packed tone values."""
    return ((np.asarray(tone).astype(np.int64) >> 32) & 255) / 255.0
