"""The compiled pixel loops give exactly what the numpy and OpenCV calls they replace gave."""
import cv2
import numpy as np
import pytest

from medialayer.fingerprints.image import area_resize
from medialayer.fingerprints.local import working_gray
from medialayer.fingerprints.pixel_kernels import component_stats


def _numpy_area_resize(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The numpy version `area_resize` had until 2026-12-07 (same operations, same order)."""
    h, w = gray.shape
    integral = cv2.integral(gray, sdepth=cv2.CV_64F)
    sx, sy = w / size[0], h / size[1]
    xs, ys = np.arange(size[0] + 1) * sx, np.arange(size[1] + 1) * sy
    x0, y0 = np.minimum(xs.astype(np.int64), w - 1), np.minimum(ys.astype(np.int64), h - 1)
    fx, fy = xs - x0, (ys - y0)[:, None]
    rows = integral[y0] * (1 - fy) + integral[y0 + 1] * fy
    corners = rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx
    sums = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    return np.clip(np.rint(sums / (sx * sy)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [(32, 32), (9, 8), (48, 36), (37, 29), (400, 300)])
def test_area_resize_equals_the_numpy_version_and_opencvs_area_mean(photos, cfg, size):
    rng = np.random.default_rng(3)
    frames = [working_gray(np.asarray(p), cfg.image.local.max_side) for p in photos[:6]]
    frames += [rng.integers(0, 256, (301, 417), dtype=np.uint8), np.full((64, 80), 255, dtype=np.uint8)]
    for gray in frames:
        if gray.shape[1] < size[0] or gray.shape[0] < size[1]:
            continue
        ours = area_resize(gray, size)
        assert ours.shape == (size[1], size[0])
        assert np.array_equal(ours, _numpy_area_resize(gray, size))
        opencv = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        assert np.abs(ours.astype(int) - opencv.astype(int)).max() <= 1


def test_component_stats_equal_opencvs(photos):
    rng = np.random.default_rng(4)
    masks = [(cv2.cvtColor(np.asarray(p.resize((160, 120))), cv2.COLOR_RGB2GRAY) > 128).astype(np.uint8)
             for p in photos[:6]]
    masks += [(rng.random((90, 130)) < 0.5).astype(np.uint8), np.zeros((20, 30), np.uint8),
              np.ones((20, 30), np.uint8)]
    for mask in masks:
        count, labels, expected, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        ours = component_stats(labels, count)
        # With no background pixel OpenCV leaves sentinels in label 0's row; ours stays zero.
        first = 0 if (labels == 0).any() else 1
        assert np.array_equal(ours[first:], expected[first:])
    assert count == 2 and expected[1, cv2.CC_STAT_AREA] == 600
