import io

import cv2
import numpy as np
import pytest
from PIL import Image

from medialayer.fingerprints import local
from medialayer.fingerprints.local import _orb, extract_local_features, working_gray
from medialayer.fingerprints.orb_descriptors import _probe_pattern, describer


def _frame(img: Image.Image, cfg) -> np.ndarray:
    """A photo through real JPEG encoding and decoding, as the grey working frame."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=85)
    rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return working_gray(rgb, cfg.image.local.max_side)


def _detected(gray, lc):
    orb = _orb(lc)
    keypoints = orb.detect(gray, None)
    xy = cv2.KeyPoint_convert(keypoints).astype(np.float32).reshape(-1, 2)
    angles = np.array([k.angle for k in keypoints], dtype=np.float32)
    octaves = np.array([k.octave for k in keypoints], dtype=np.int64)
    return orb, keypoints, xy, angles, octaves


def _bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.unpackbits(a ^ b, axis=1).sum(axis=1)


def test_the_compiled_describer_passes_its_check_here(cfg):
    # Else every image would silently take OpenCV's slower path.
    lc = cfg.image.local
    assert describer(lc.levels, lc.scale_factor, lc.edge_px) is not None


def test_descriptors_equal_opencvs_bit_for_bit_on_real_photos(photos, cfg):
    lc = cfg.image.local
    describe = describer(lc.levels, lc.scale_factor, lc.edge_px)
    levels_seen = set()
    for img in photos[:6]:
        gray = _frame(img, cfg)
        orb, keypoints, xy, angles, octaves = _detected(gray, lc)
        kept, expected = orb.compute(gray, keypoints)
        assert len(kept) == len(keypoints)
        # compute() groups its output by pyramid level; put ours in the same order.
        order = np.argsort(octaves, kind="stable")
        ours, mirrored = describe(gray, xy, angles, octaves, True)
        assert np.array_equal(ours[order], expected)
        assert mirrored.shape == ours.shape
        levels_seen.update(octaves.tolist())
    assert levels_seen == set(range(lc.levels))


def test_mirrored_descriptors_are_those_of_the_flipped_frame(photos, cfg):
    lc = cfg.image.local
    describe = describer(lc.levels, lc.scale_factor, lc.edge_px)
    for img in photos[:4]:
        gray = _frame(img, cfg)
        orb, keypoints, xy, angles, octaves = _detected(gray, lc)
        _, mirrored = describe(gray, xy, angles, octaves, True)
        w = gray.shape[1]
        flipped_kps = [cv2.KeyPoint(w - 1 - k.pt[0], k.pt[1], k.size, (180.0 - k.angle) % 360.0, k.response, k.octave)
                       for k in keypoints]
        kept, theirs = orb.compute(cv2.flip(gray, 1), flipped_kps)
        assert len(kept) == len(keypoints)
        theirs = theirs[np.argsort(np.argsort(octaves, kind="stable"))]     # back to input order
        distance = _bits(mirrored, theirs)
        # Equal but for the odd grey level that the resize rounds the other way.
        assert np.mean(distance == 0) >= 0.99 and distance.max() <= 8
        assert np.median(_bits(mirrored, np.roll(theirs, 1, axis=0))) > 80


def test_the_pattern_is_read_back_for_other_patch_sizes_too(cfg):
    # OpenCV draws a random pattern when the patch is not 31 px; the probe and the check follow it.
    for patch in (31, 25):
        pattern = _probe_pattern(patch)
        assert pattern.shape == (512, 2)
        assert np.abs(pattern).max() <= patch // 2
        assert np.all(np.any(pattern[0::2] != pattern[1::2], axis=1))   # every pair is two points
        assert describer(6, 1.3, patch) is not None


def test_features_equal_the_opencv_path(photos, cfg, monkeypatch):
    lc = cfg.image.local
    grays = [_frame(img, cfg) for img in photos[:4]]
    fast = [extract_local_features(g, lc) for g in grays]
    monkeypatch.setattr(local, "describer", lambda *args: None)
    slow = [extract_local_features(g, lc) for g in grays]
    for a, b in zip(fast, slow):
        assert a.count == b.count > 100
        assert np.array_equal(a.xy, b.xy) and np.array_equal(a.angles, b.angles)
        assert np.array_equal(a.descriptors, b.descriptors)
        assert np.mean(_bits(a.mirrored, b.mirrored) == 0) >= 0.99


def test_keypoints_off_the_frame_are_bounded_not_read_out_of_memory(cfg):
    lc = cfg.image.local
    describe = describer(lc.levels, lc.scale_factor, lc.edge_px)
    gray = np.random.default_rng(1).integers(0, 256, (120, 160), dtype=np.uint8)
    xy = np.array([[0, 0], [159, 119], [-50, 500], [80, 60]], dtype=np.float32)
    desc, mirrored = describe(gray, xy, np.array([0, 90, 45, 200], np.float32),
                              np.array([0, 5, 3, 2], np.int64), True)
    assert desc.shape == mirrored.shape == (4, 32)
    # The last keypoint is well inside: its descriptor is not constant.
    assert 0 < np.unpackbits(desc[3]).sum() < 256


@pytest.mark.parametrize("mirrored", [True, False])
def test_video_keyframes_skip_the_mirror(photos, cfg, mirrored):
    f = extract_local_features(_frame(photos[0], cfg), cfg.image.local, mirrored=mirrored)
    assert f.count > 100
    assert f.mirrored.shape == ((f.count, 32) if mirrored else (0, 32))


def test_a_compiled_path_that_fails_its_check_or_cannot_be_built_is_refused_with_a_warning(caplog):
    from medialayer.fingerprints.orb_descriptors import checked_or_none

    def compiled(x):
        return x

    assert checked_or_none("thing", "doing it", lambda: compiled, lambda f: f(2) == 2) is compiled
    with caplog.at_level("WARNING"):
        assert checked_or_none("thing", "doing it", lambda: compiled, lambda f: f(2) == 3) is None
        assert checked_or_none("thing", "doing it", lambda: 1 / 0, lambda f: True) is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("results differ from OpenCV" in m and "doing it with OpenCV" in m for m in messages)
    assert any("unavailable (ZeroDivisionError" in m for m in messages)
