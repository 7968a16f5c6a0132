"""ORB's image pyramid, built once for both detection (`orb_detection`) and description
(`orb_descriptors`), and its mask pyramid: OpenCV's sizes and resizes, so the keypoints and
descriptors computed on it are OpenCV's."""
from __future__ import annotations

import cv2
import numpy as np


def level_scales(levels: int, scale_factor: float) -> np.ndarray:
    """Each level's scale, float32: the float32 scale factor to the level's power (OpenCV 5's keypoint
    positions are level pixels times this)."""
    return np.array([float(np.float32(scale_factor)) ** level for level in range(levels)], dtype=np.float32)


def pyramid(gray: np.ndarray, levels: int, scale_factor: float) -> list[np.ndarray]:
    """ORB's unblurred pyramid: level l is `level_scales` smaller, rounded, each resized from the one
    before (INTER_LINEAR_EXACT)."""
    h, w = gray.shape
    out = [np.ascontiguousarray(gray, dtype=np.uint8)]
    for level, scale in enumerate(level_scales(levels, scale_factor)[1:], start=1):
        size = (int(np.rint(np.float32(w) / scale)), int(np.rint(np.float32(h) / scale)))
        out.append(cv2.resize(out[-1], size, interpolation=cv2.INTER_LINEAR_EXACT))
    return out


def mask_pyramid(mask: np.ndarray, levels: list[np.ndarray]) -> list[np.ndarray]:
    """ORB's mask at each level: resized from the level before, then anything short of 255 dropped."""
    out = [np.ascontiguousarray(mask, dtype=np.uint8)]
    for level in levels[1:]:
        resized = cv2.resize(out[-1], (level.shape[1], level.shape[0]), interpolation=cv2.INTER_LINEAR_EXACT)
        out.append(np.where(resized > 254, resized, 0).astype(np.uint8))
    return out
