import io

import cv2
import numpy as np
import pytest
from PIL import Image

from medialayer.fingerprints import local
from medialayer.fingerprints.local import _orb, extract_local_features, working_gray
from medialayer.fingerprints.orb_detection import detector, features_per_level, oriented
from medialayer.fingerprints.orb_pyramid import mask_pyramid, pyramid


def _frame(img: Image.Image, cfg) -> np.ndarray:
    """A photo through real JPEG encoding and decoding, as the grey working frame."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=85)
    rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return working_gray(rgb, cfg.image.local.max_side)


def _detect(lc):
    """Our detection, oriented: what cv2.ORB.detect returns."""
    detect = detector(lc.max_keypoints * lc.oversample, lc.scale_factor, lc.levels, lc.edge_px, lc.edge_px,
                      lc.fast_threshold)
    if detect is None:
        return None
    return lambda levels, *args: oriented(levels, detect(levels, *args), lc.edge_px)


def _rows(octave, xy, response, angle) -> np.ndarray:
    """Keypoints as (level, y, x, response, angle) rows in one order (OpenCV's within a level is
    nth_element's)."""
    rows = np.column_stack([octave, xy[:, 1], xy[:, 0], response, angle]).astype(np.float32)
    return rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))]


def _opencv_rows(keypoints) -> np.ndarray:
    kp = list(keypoints)
    return _rows(np.array([k.octave for k in kp]), np.array([k.pt for k in kp]).reshape(-1, 2),
                 np.array([k.response for k in kp]), np.array([k.angle for k in kp]))


def test_the_compiled_detector_passes_its_check_here(cfg):
    # Without this the pipeline silently runs OpenCV's slower detection.
    assert _detect(cfg.image.local) is not None


@pytest.mark.parametrize("threshold", [12, 6, 3])
def test_keypoints_equal_opencv_orb_detect_on_photos(photos, cfg, threshold):
    lc = cfg.image.local
    detect = _detect(lc)
    orb = _orb(lc)
    orb.setFastThreshold(threshold)
    levels_seen = set()
    for img in photos[:6]:
        gray = _frame(img, cfg)
        h, w = gray.shape
        block = np.zeros_like(gray)
        block[h // 5:4 * h // 5, w // 6:5 * w // 6] = 255
        levels = pyramid(gray, lc.levels, lc.scale_factor)
        corners = {}
        for mask in (None, block, cv2.bitwise_not(block)):
            ours = detect(levels, mask_pyramid(mask, levels) if mask is not None else None, threshold, corners)
            expected = _opencv_rows(orb.detect(gray, mask))
            assert ours.count == len(expected) > 0
            assert np.array_equal(_rows(ours.octave, ours.xy, ours.response, ours.angle), expected)
            levels_seen.update(ours.octave.tolist())
    assert levels_seen == set(range(lc.levels))


def test_level_quotas_are_orbs():
    quotas = features_per_level(1024, 1.3, 6)
    assert sum(quotas) == 1024 and quotas == sorted(quotas, reverse=True)
    orb = cv2.ORB_create(nfeatures=1024, scaleFactor=1.3, nlevels=6, fastThreshold=1, edgeThreshold=31)
    rng = np.random.default_rng(3)
    noise = cv2.resize(rng.integers(0, 256, (150, 200), dtype=np.uint8), (800, 600), interpolation=cv2.INTER_CUBIC)
    per_level = np.bincount([k.octave for k in orb.detect(noise, None)], minlength=6)
    # A busy frame fills every level's quota (ties at the cut may add a few).
    assert all(n >= q for n, q in zip(per_level, quotas)), (per_level, quotas)


def test_frames_too_small_for_the_coarse_levels_still_detect(cfg):
    lc = cfg.image.local
    detect = _detect(lc)
    rng = np.random.default_rng(5)
    gray = cv2.GaussianBlur(cv2.resize(rng.integers(0, 256, (20, 25), dtype=np.uint8), (110, 90)), (3, 3), 0)
    levels = pyramid(gray, lc.levels, lc.scale_factor)
    ours = detect(levels, None, 3)
    orb = _orb(lc)
    orb.setFastThreshold(3)
    expected = _opencv_rows(orb.detect(gray, None))
    assert np.array_equal(_rows(ours.octave, ours.xy, ours.response, ours.angle), expected)
    big_enough = {i for i, level in enumerate(levels) if min(level.shape) > 2 * lc.edge_px}
    assert len(big_enough) < lc.levels and set(ours.octave.tolist()) == big_enough


def test_features_equal_the_opencv_detection_path(photos, cfg, monkeypatch):
    lc = cfg.image.local
    grays = [_frame(img, cfg) for img in photos[:4]]
    h, w = grays[0].shape
    calls = [dict(), dict(within=(w // 4, h // 4, 3 * w // 4, 3 * h // 4), only_within=False)]
    fast = [extract_local_features(g, lc, **kw) for g in grays for kw in calls]
    monkeypatch.setattr(local, "detector", lambda *args: None)
    slow = [extract_local_features(g, lc, **kw) for g in grays for kw in calls]
    for a, b in zip(fast, slow):
        assert a.count == b.count > 100
        assert np.array_equal(a.xy, b.xy) and np.array_equal(a.angles, b.angles)
        assert np.array_equal(a.descriptors, b.descriptors) and np.array_equal(a.mirrored, b.mirrored)


def test_a_smooth_frame_retries_lower_thresholds_as_the_opencv_path_does(photos, cfg, monkeypatch):
    lc = cfg.image.local
    gray = _frame(photos[0], cfg)
    smooth = cv2.GaussianBlur(((gray.astype(np.float32) - 128) * 0.15 + 128).astype(np.uint8), (0, 0), 2.5)
    orb = _orb(lc)
    assert len(orb.detect(smooth, None)) < lc.min_keypoints       # the default threshold finds too few
    fast = extract_local_features(smooth, lc)
    monkeypatch.setattr(local, "detector", lambda *args: None)
    slow = extract_local_features(smooth, lc)
    assert fast.count == slow.count >= lc.min_keypoints
    assert np.array_equal(fast.xy, slow.xy) and np.array_equal(fast.descriptors, slow.descriptors)


def test_corners_found_at_a_low_threshold_give_each_higher_thresholds_keypoints(photos, cfg):
    lc = cfg.image.local
    detect = _detect(lc)
    orb = _orb(lc)
    gray = _frame(photos[1], cfg)
    smooth = cv2.GaussianBlur(gray, (0, 0), 2.0)
    for frame in (gray, smooth):
        levels = pyramid(frame, lc.levels, lc.scale_factor)
        corners = {}
        for threshold in (6, 4, 3):
            ours = detect(levels, None, threshold, corners, 3)       # one FAST pass, at 3
            orb.setFastThreshold(threshold)
            assert np.array_equal(_rows(ours.octave, ours.xy, ours.response, ours.angle),
                                  _opencv_rows(orb.detect(frame, None)))
        assert list(corners) == [3]


def test_fast_atan2_is_opencvs_to_the_bit():
    from medialayer.fingerprints.orb_detect_kernel import fast_atan2

    rng = np.random.default_rng(2)
    ys = np.concatenate([rng.integers(-400000, 400000, 3000), [0, 0, 5, -5, 0, 7, -7]])
    xs = np.concatenate([rng.integers(-400000, 400000, 3000), [0, 5, 0, 0, -5, 7, -7]])
    for y, x in zip(ys.astype(np.float32), xs.astype(np.float32)):
        assert np.float32(fast_atan2(y, x)) == np.float32(cv2.fastAtan2(float(y), float(x))), (y, x)
