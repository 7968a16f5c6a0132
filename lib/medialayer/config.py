"""Configuration: one validated object built from conf/default.yaml plus an optional override file.

The defaults live in exactly one place (the YAML shipped with the package), so documentation and
behaviour cannot drift apart. Dataclasses here only give the shape and the checks.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class SparkConfig:
    master: str
    app_name: str
    driver_memory: str
    shuffle_partitions: int
    fingerprint_batch_rows: int
    log_level: str
    verify_broadcast_pairs: int
    numpy_avx512: str
    worker_malloc_retain_mb: int
    extra: dict

    def validate(self, path: str) -> None:
        _positive(self.shuffle_partitions, f"{path}.shuffle_partitions")
        _non_negative(self.verify_broadcast_pairs, f"{path}.verify_broadcast_pairs")
        _positive(self.fingerprint_batch_rows, f"{path}.fingerprint_batch_rows")
        _one_of(self.log_level, {"ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"}, f"{path}.log_level")
        _one_of(self.numpy_avx512, {"auto", "keep", "disable"}, f"{path}.numpy_avx512")
        _non_negative(self.worker_malloc_retain_mb, f"{path}.worker_malloc_retain_mb")
        for key in self.extra:
            if not str(key).startswith("spark."):
                raise ConfigError(f"{path}.extra: key {key!r} is not a spark.* setting")


MANIFEST_FIELDS = ("listing_id", "media_url", "media_type", "seller_id", "sku_id", "brand_id",
                   "category", "source", "updated_at")
REQUIRED_MANIFEST_FIELDS = ("listing_id", "media_url")


@dataclass(frozen=True)
class ManifestConfig:
    columns: dict
    null_media_url: str

    def validate(self, path: str) -> None:
        unknown = set(self.columns) - set(MANIFEST_FIELDS)
        if unknown:
            raise ConfigError(f"{path}.columns: unknown field(s) {sorted(unknown)}; known: {list(MANIFEST_FIELDS)}")
        missing = set(MANIFEST_FIELDS) - set(self.columns)
        if missing:
            raise ConfigError(f"{path}.columns: missing mapping for {sorted(missing)}")
        _one_of(self.null_media_url, {"fail", "error_row"}, f"{path}.null_media_url")


@dataclass(frozen=True)
class FetchConfig:
    connect_timeout_s: float
    read_timeout_s: float
    total_timeout_s: float
    max_bytes: int
    retries: int
    retry_backoff_s: float
    max_redirects: int
    allow_private_addresses: bool
    allow_hosts: list
    local_roots: list
    concurrency: int
    user_agent: str

    def validate(self, path: str) -> None:
        for name in ("connect_timeout_s", "read_timeout_s", "total_timeout_s", "max_bytes", "concurrency"):
            _positive(getattr(self, name), f"{path}.{name}")
        for entry in self.allow_hosts:
            host, _, port = str(entry).rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"{path}.allow_hosts: {entry!r} must be host:port (e.g. cdn.internal:443)")
        for name in ("retries", "retry_backoff_s", "max_redirects"):
            _non_negative(getattr(self, name), f"{path}.{name}")


@dataclass(frozen=True)
class RegionConfig:
    analysis_side: int
    flat_tolerance: int
    border_max_off_fraction: float
    opening_fraction: float
    min_area_fraction: float
    max_area_fraction: float
    max_block_fraction: float
    page_flat_fraction: float
    max_block_elongation: float
    min_side_px: int
    min_photo_solidity: float
    badge_corner_margin: float
    min_tilt_deg: float
    max_tilt_deg: float
    min_tilt_fill: float
    peel_below: float

    def validate(self, path: str) -> None:
        _at_least(self.analysis_side, 64, f"{path}.analysis_side")
        _positive(self.flat_tolerance, f"{path}.flat_tolerance")
        _positive(self.min_side_px, f"{path}.min_side_px")
        for name in ("border_max_off_fraction", "opening_fraction", "min_area_fraction", "max_area_fraction",
                     "max_block_fraction", "page_flat_fraction"):
            _unit(getattr(self, name), f"{path}.{name}")
        _at_least(self.max_block_elongation, 1, f"{path}.max_block_elongation")
        _unit(self.min_photo_solidity, f"{path}.min_photo_solidity")
        _unit(self.badge_corner_margin, f"{path}.badge_corner_margin")
        _in_range(self.max_tilt_deg, 0, 45, f"{path}.max_tilt_deg")
        _in_range(self.min_tilt_deg, 0, 45, f"{path}.min_tilt_deg")
        _unit(self.min_tilt_fill, f"{path}.min_tilt_fill")
        _unit(self.peel_below, f"{path}.peel_below")
        if self.min_area_fraction >= self.max_area_fraction:
            raise ConfigError(f"{path}.min_area_fraction must be below max_area_fraction")


@dataclass(frozen=True)
class LocalFeatureConfig:
    max_side: int
    max_keypoints: int
    oversample: int
    spread_grid: int
    scale_factor: float
    levels: int
    edge_px: int
    fast_threshold: int
    min_fast_threshold: int
    min_keypoints: int

    def validate(self, path: str) -> None:
        _at_least(self.max_side, 64, f"{path}.max_side")
        _in_range(self.max_keypoints, 0, 4096, f"{path}.max_keypoints")
        _in_range(self.oversample, 1, 16, f"{path}.oversample")
        _in_range(self.spread_grid, 1, 16, f"{path}.spread_grid")
        if not 1.0 < self.scale_factor <= 2.0:
            raise ConfigError(f"{path}.scale_factor must be in (1, 2], got {self.scale_factor}")
        _positive(self.levels, f"{path}.levels")
        _in_range(self.edge_px, 8, 64, f"{path}.edge_px")
        _positive(self.fast_threshold, f"{path}.fast_threshold")
        _positive(self.min_fast_threshold, f"{path}.min_fast_threshold")
        _non_negative(self.min_keypoints, f"{path}.min_keypoints")


@dataclass(frozen=True)
class ImageConfig:
    max_pixels: int
    decode_max_side: int
    detail_max_side: int
    detail_below: float
    picture_side: int
    region: RegionConfig
    local: LocalFeatureConfig

    def validate(self, path: str) -> None:
        _positive(self.max_pixels, f"{path}.max_pixels")
        _at_least(self.decode_max_side, 64, f"{path}.decode_max_side")
        _in_range(self.detail_max_side, 0, 8192, f"{path}.detail_max_side")
        _in_range(self.detail_below, 0.0, 1.0, f"{path}.detail_below")
        _in_range(self.picture_side, 0, 255, f"{path}.picture_side")


@dataclass(frozen=True)
class VideoConfig:
    max_duration_s: float
    sample_fps: float
    max_frames: int
    frame_side: int
    border_tolerance: int
    max_trim_fraction: float
    min_frame_contrast: float
    centre_crop: float
    keyframe_interval_s: float
    keyframe_side: int
    keyframe_keypoints: int
    keyframe_spread_grid: int
    keyframe_oversample: int
    max_keyframes: int

    def validate(self, path: str) -> None:
        _positive(self.max_duration_s, f"{path}.max_duration_s")
        _in_range(self.sample_fps, 0.1, 30, f"{path}.sample_fps")
        _positive(self.max_frames, f"{path}.max_frames")
        _in_range(self.frame_side, 32, 1024, f"{path}.frame_side")
        _in_range(self.border_tolerance, 0, 255, f"{path}.border_tolerance")
        _in_range(self.max_trim_fraction, 0, 0.45, f"{path}.max_trim_fraction")
        _non_negative(self.min_frame_contrast, f"{path}.min_frame_contrast")
        _in_range(self.centre_crop, 0.5, 0.95, f"{path}.centre_crop")
        _positive(self.keyframe_interval_s, f"{path}.keyframe_interval_s")
        _in_range(self.keyframe_side, 96, 1024, f"{path}.keyframe_side")
        _non_negative(self.keyframe_keypoints, f"{path}.keyframe_keypoints")
        _in_range(self.keyframe_spread_grid, 1, 16, f"{path}.keyframe_spread_grid")
        _in_range(self.keyframe_oversample, 1, 16, f"{path}.keyframe_oversample")
        _in_range(self.max_keyframes, 0, 4096, f"{path}.max_keyframes")   # candidates.KEYFRAME_ROWS


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int
    fft_size: int
    hop: int
    neighbourhood_hops: int
    neighbourhood_bins: int
    min_prominence: float
    dynamic_range_nepers: float
    min_bin: int
    max_bin: int
    peaks_per_second: float
    fan_out: int
    pair_search: int
    max_dt_hops: int
    max_df_bins: float
    freq_quantum_bins: float

    def validate(self, path: str) -> None:
        _in_range(self.sample_rate, 4000, 48000, f"{path}.sample_rate")
        if self.fft_size < 64 or self.fft_size & (self.fft_size - 1):
            raise ConfigError(f"{path}.fft_size must be a power of two >= 64, got {self.fft_size}")
        _in_range(self.hop, 16, self.fft_size, f"{path}.hop")
        _positive(self.neighbourhood_hops, f"{path}.neighbourhood_hops")
        _positive(self.neighbourhood_bins, f"{path}.neighbourhood_bins")
        _non_negative(self.min_prominence, f"{path}.min_prominence")
        _positive(self.dynamic_range_nepers, f"{path}.dynamic_range_nepers")
        _in_range(self.min_bin, 1, self.fft_size // 2 - 2, f"{path}.min_bin")
        _in_range(self.max_bin, self.min_bin, self.fft_size // 2 - 1, f"{path}.max_bin")
        _positive(self.peaks_per_second, f"{path}.peaks_per_second")
        _in_range(self.fan_out, 1, 32, f"{path}.fan_out")
        _in_range(self.pair_search, self.fan_out, 128, f"{path}.pair_search")
        _in_range(self.max_dt_hops, 2, 255, f"{path}.max_dt_hops")        # 8 bits of the landmark hash
        _in_range(self.freq_quantum_bins, 0.25, 8, f"{path}.freq_quantum_bins")
        _positive(self.max_df_bins, f"{path}.max_df_bins")
        if 2 * self.max_df_bins / self.freq_quantum_bins + 2 >= 256:
            raise ConfigError(f"{path}: max_df_bins / freq_quantum_bins must stay below 127 (8 hash bits)")


@dataclass(frozen=True)
class BandConfig:
    bands: int
    bits_per_band: int
    seed: int
    max_distance: float = -1.0
    with_dhash: bool = True

    def validate(self, path: str) -> None:
        _in_range(self.bands, 1, 256, f"{path}.bands")
        _in_range(self.bits_per_band, 4, 32, f"{path}.bits_per_band")
        if not (self.max_distance == -1 or 0.0 <= self.max_distance <= 1.0):
            raise ConfigError(f"{path}.max_distance must be in 0..1 or -1 (off), got {self.max_distance}")


@dataclass(frozen=True)
class LocalWordConfig:
    keypoints: int
    tables: int
    bits: int
    min_shared: int
    max_bucket_size: int
    angle_bins: int
    angle_probe_margin: float
    seed: int

    def validate(self, path: str) -> None:
        _non_negative(self.keypoints, f"{path}.keypoints")
        _in_range(self.tables, 1, 16, f"{path}.tables")    # the table number takes 4 bits of the join key
        _in_range(self.bits, 8, 40, f"{path}.bits")
        _positive(self.min_shared, f"{path}.min_shared")
        _at_least(self.max_bucket_size, 2, f"{path}.max_bucket_size")
        _in_range(self.angle_bins, 0, 64, f"{path}.angle_bins")
        _in_range(self.angle_probe_margin, 0.0, 0.5, f"{path}.angle_probe_margin")


@dataclass(frozen=True)
class VideoKeyConfig:
    bands: int
    bits_per_band: int
    seed: int
    min_shared: int
    max_bucket_size: int
    image_probes: bool

    def validate(self, path: str) -> None:
        _in_range(self.bands, 1, 256, f"{path}.bands")
        _in_range(self.bits_per_band, 8, 32, f"{path}.bits_per_band")
        _positive(self.min_shared, f"{path}.min_shared")
        _at_least(self.max_bucket_size, 2, f"{path}.max_bucket_size")


@dataclass(frozen=True)
class AudioKeyConfig:
    key_modulus: int
    min_shared: int
    max_bucket_size: int

    def validate(self, path: str) -> None:
        _positive(self.key_modulus, f"{path}.key_modulus")
        _positive(self.min_shared, f"{path}.min_shared")
        _at_least(self.max_bucket_size, 2, f"{path}.max_bucket_size")


@dataclass(frozen=True)
class OfferedFilterConfig:
    below: float
    bits_per_key: float
    probes: int
    max_mb: int

    def validate(self, path: str) -> None:
        _unit(self.below, f"{path}.below")
        _in_range(self.bits_per_key, 1.0, 64.0, f"{path}.bits_per_key")
        _in_range(self.probes, 1, 16, f"{path}.probes")
        _in_range(self.max_mb, 1, 4096, f"{path}.max_mb")


@dataclass(frozen=True)
class CandidatesConfig:
    image: BandConfig
    local: LocalWordConfig
    video: VideoKeyConfig
    audio: AudioKeyConfig
    max_bucket_size: int
    offered_filter: OfferedFilterConfig
    media_per_partition: int = 2000
    mirrors_asked_below: float = 0.5
    companion_max_degree: int = 16

    def validate(self, path: str) -> None:
        _at_least(self.max_bucket_size, 2, f"{path}.max_bucket_size")
        _non_negative(self.companion_max_degree, f"{path}.companion_max_degree")
        _at_least(self.media_per_partition, 1, f"{path}.media_per_partition")
        _unit(self.mirrors_asked_below, f"{path}.mirrors_asked_below")


@dataclass(frozen=True)
class ConfidenceConfig:
    high: float
    medium: float

    def validate(self, path: str) -> None:
        _unit(self.high, f"{path}.high")
        _unit(self.medium, f"{path}.medium")
        if self.medium > self.high:
            raise ConfigError(f"{path}: medium ({self.medium}) must not exceed high ({self.high})")


def _check_curve(points: list, path: str, increasing: bool, x_unit: bool = True) -> None:
    """A piecewise-linear calibration: [x, similarity] anchors, x strictly increasing."""
    if len(points) < 2 or any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in points):
        raise ConfigError(f"{path} must be a list of at least two [x, similarity] pairs")
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    if xs != sorted(xs) or len(set(xs)) != len(xs):
        raise ConfigError(f"{path}: x values must be strictly increasing, got {xs}")
    if ys != sorted(ys, reverse=not increasing):
        direction = "increase" if increasing else "decrease"
        raise ConfigError(f"{path}: similarities must {direction} along x, got {ys}")
    for x, y in zip(xs, ys):
        if x_unit:
            _unit(x, f"{path} x value")
        _unit(y, f"{path} similarity")


@dataclass(frozen=True)
class LocalMatchConfig:
    ratio: float
    max_descriptor_distance: int
    ransac_px: float
    ransac_iterations: int
    min_inliers: int
    min_scale: float
    max_scale: float
    max_rotation_deg: float
    grid: int
    occupancy_strongest: float
    min_inlier_spread: float
    min_occupancy: float
    full_occupancy: float
    occupancy_penalty: float
    min_contained_fraction: float
    min_photo_inliers: int
    confined_spread: float
    aligned_shared: float
    aligned_max_rotation_deg: float
    aligned_max_frame_distance: float
    aligned_page_min_occupancy: float
    skip_mirror_above: float
    guided_seed_inliers: int
    guided_radius_px: float
    guided_ratio: float
    min_picture_agreement: float
    picture_trim: float
    calibration: list
    picture_trusted_inliers: int = 0
    picture_trusted_spread: float = 1.0
    picture_confirm_min_inliers: int = 0
    picture_confirm_agreement: float = 1.0
    picture_confirmed_similarity: float = 0.0
    both_ways: bool = False
    aligned_trusted_to_pictures: bool = False
    aligned_page_picture_agreement: float = 0.0
    aligned_page_detail_agreement: float = 0.0
    small_fit_spread: float = 0.0
    small_fit_detail_agreement: float = 0.0
    ambiguous_max_distance: int = 0
    confined_min_detail_agreement: float = 0.0
    confined_detail_sigma: float = 1.5

    def validate(self, path: str) -> None:
        _unit(self.ratio, f"{path}.ratio")
        _in_range(self.max_descriptor_distance, 1, 256, f"{path}.max_descriptor_distance")
        _positive(self.ransac_px, f"{path}.ransac_px")
        _positive(self.ransac_iterations, f"{path}.ransac_iterations")
        _at_least(self.min_inliers, 4, f"{path}.min_inliers")
        if not 0 < self.min_scale < 1 < self.max_scale:
            raise ConfigError(f"{path}: need 0 < min_scale < 1 < max_scale")
        _in_range(self.max_rotation_deg, 0, 180, f"{path}.max_rotation_deg")
        _in_range(self.grid, 2, 16, f"{path}.grid")
        _unit(self.min_occupancy, f"{path}.min_occupancy")
        _unit(self.min_inlier_spread, f"{path}.min_inlier_spread")
        if not 0.0 < self.occupancy_strongest <= 1.0:
            raise ConfigError(f"{path}.occupancy_strongest must be in (0, 1]")
        _unit(self.full_occupancy, f"{path}.full_occupancy")
        _unit(self.occupancy_penalty, f"{path}.occupancy_penalty")
        _unit(self.min_contained_fraction, f"{path}.min_contained_fraction")
        _at_least(self.min_photo_inliers, 0, f"{path}.min_photo_inliers")
        _unit(self.confined_spread, f"{path}.confined_spread")
        _unit(self.aligned_shared, f"{path}.aligned_shared")
        _non_negative(self.aligned_max_rotation_deg, f"{path}.aligned_max_rotation_deg")
        _unit(self.aligned_max_frame_distance, f"{path}.aligned_max_frame_distance")
        _unit(self.aligned_page_min_occupancy, f"{path}.aligned_page_min_occupancy")
        _unit(self.aligned_page_picture_agreement, f"{path}.aligned_page_picture_agreement")
        _unit(self.aligned_page_detail_agreement, f"{path}.aligned_page_detail_agreement")
        _unit(self.small_fit_spread, f"{path}.small_fit_spread")
        _unit(self.small_fit_detail_agreement, f"{path}.small_fit_detail_agreement")
        _unit(self.skip_mirror_above, f"{path}.skip_mirror_above")
        if self.guided_seed_inliers != 0:
            _in_range(self.guided_seed_inliers, 3, self.min_inliers, f"{path}.guided_seed_inliers")
        _positive(self.guided_radius_px, f"{path}.guided_radius_px")
        _unit(self.guided_ratio, f"{path}.guided_ratio")
        _in_range(self.min_picture_agreement, -1.0, 1.0, f"{path}.min_picture_agreement")
        if not 0.0 <= self.picture_trim < 0.9:
            raise ConfigError(f"{path}.picture_trim must be in [0, 0.9)")
        _at_least(self.picture_trusted_inliers, 0, f"{path}.picture_trusted_inliers")
        _unit(self.picture_trusted_spread, f"{path}.picture_trusted_spread")
        if self.picture_confirm_min_inliers != 0:
            _in_range(self.picture_confirm_min_inliers, 4, self.min_inliers, f"{path}.picture_confirm_min_inliers")
            _in_range(self.picture_confirm_agreement, max(self.min_picture_agreement, 0.0), 1.0,
                      f"{path}.picture_confirm_agreement")
        _unit(self.picture_confirmed_similarity, f"{path}.picture_confirmed_similarity")
        _check_curve(self.calibration, f"{path}.calibration", increasing=True, x_unit=False)
        _in_range(self.ambiguous_max_distance, 0, 256, f"{path}.ambiguous_max_distance")
        _unit(self.confined_min_detail_agreement, f"{path}.confined_min_detail_agreement")
        _positive(self.confined_detail_sigma, f"{path}.confined_detail_sigma")


@dataclass(frozen=True)
class ImageMatchConfig:
    calibration: list
    max_frame_flat_fraction: float
    local: LocalMatchConfig
    weak_global_max_chroma: float
    weak_global_max_aspect_change: float = -1.0
    local_min_words: int = 1
    weak_global_max_detail_ratio: float = -1.0
    strong_global_max_detail_ratio: float = -1.0
    detail_inset: float = 0.2
    detail_floor_levels: float = 2.0
    global_max_brightness_ratio: float = -1.0
    brightness_floor_levels: float = 8.0
    weak_global_max_chance_share: float = -1.0
    chance_max_fine_detail_ratio: float = 3.0
    fine_detail_floor_levels: float = 0.5

    def validate(self, path: str) -> None:
        _check_curve(self.calibration, f"{path}.calibration", increasing=False)
        _unit(self.max_frame_flat_fraction, f"{path}.max_frame_flat_fraction")
        if not (self.weak_global_max_chroma == -1 or 0 <= self.weak_global_max_chroma <= 1):
            raise ConfigError(f"{path}.weak_global_max_chroma must be in [0, 1], or -1 (off)")
        if not (self.weak_global_max_aspect_change == -1 or 0 <= self.weak_global_max_aspect_change <= 2):
            raise ConfigError(f"{path}.weak_global_max_aspect_change must be in [0, 2], or -1 (off)")
        if not (self.weak_global_max_detail_ratio == -1 or self.weak_global_max_detail_ratio >= 1):
            raise ConfigError(f"{path}.weak_global_max_detail_ratio must be >= 1, or -1 (off)")
        if not (self.strong_global_max_detail_ratio == -1 or self.strong_global_max_detail_ratio >= 1):
            raise ConfigError(f"{path}.strong_global_max_detail_ratio must be >= 1, or -1 (off)")
        if not 0.0 <= self.detail_inset < 0.5:
            raise ConfigError(f"{path}.detail_inset must be in [0, 0.5)")
        _positive(self.detail_floor_levels, f"{path}.detail_floor_levels")
        if not (self.global_max_brightness_ratio == -1 or self.global_max_brightness_ratio >= 1):
            raise ConfigError(f"{path}.global_max_brightness_ratio must be >= 1, or -1 (off)")
        _positive(self.brightness_floor_levels, f"{path}.brightness_floor_levels")
        if not (self.weak_global_max_chance_share == -1 or 0 < self.weak_global_max_chance_share <= 1):
            raise ConfigError(f"{path}.weak_global_max_chance_share must be in (0, 1], or -1 (off)")
        if self.chance_max_fine_detail_ratio < 1:
            raise ConfigError(f"{path}.chance_max_fine_detail_ratio must be >= 1")
        _positive(self.fine_detail_floor_levels, f"{path}.fine_detail_floor_levels")
        if self.local_min_words < 0:
            raise ConfigError(f"{path}.local_min_words must be >= 0 (0 sends every candidate to keypoint matching)")


@dataclass(frozen=True)
class VideoMatchConfig:
    frame_max_distance: float
    speeds: list
    offset_bin_s: float
    max_gap_s: float
    min_frames: int
    min_coverage: float
    calibration: list
    frame_grab_calibration: list
    edge_snap_s: float
    grab_inside_fraction: float
    grab_max_chroma: float

    def validate(self, path: str) -> None:
        _non_negative(self.edge_snap_s, f"{path}.edge_snap_s")
        _unit(self.grab_inside_fraction, f"{path}.grab_inside_fraction")
        if not (self.grab_max_chroma == -1 or 0 <= self.grab_max_chroma <= 1):
            raise ConfigError(f"{path}.grab_max_chroma must be in [0, 1], or -1 (off)")
        _check_curve(self.frame_grab_calibration, f"{path}.frame_grab_calibration", increasing=False)
        _in_range(self.frame_max_distance, 1, 32, f"{path}.frame_max_distance")
        _check_speeds(self.speeds, f"{path}.speeds")
        _positive(self.offset_bin_s, f"{path}.offset_bin_s")
        _positive(self.max_gap_s, f"{path}.max_gap_s")
        _positive(self.min_frames, f"{path}.min_frames")
        _unit(self.min_coverage, f"{path}.min_coverage")
        _check_curve(self.calibration, f"{path}.calibration", increasing=False)


@dataclass(frozen=True)
class AudioMatchConfig:
    speeds: list
    offset_bin_hops: float
    max_gap_s: float
    max_hash_repeats: int
    min_density: float
    calibration: list
    edge_snap_s: float

    def validate(self, path: str) -> None:
        _non_negative(self.edge_snap_s, f"{path}.edge_snap_s")
        _check_speeds(self.speeds, f"{path}.speeds")
        _positive(self.offset_bin_hops, f"{path}.offset_bin_hops")
        _positive(self.max_gap_s, f"{path}.max_gap_s")
        _positive(self.max_hash_repeats, f"{path}.max_hash_repeats")
        _unit(self.min_density, f"{path}.min_density")
        _check_curve(self.calibration, f"{path}.calibration", increasing=True, x_unit=False)


def _check_speeds(speeds: list, path: str) -> None:
    if not speeds or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.5 <= s <= 2.0
                         for s in speeds):
        raise ConfigError(f"{path} must be a non-empty list of speed factors in 0.5..2.0, got {speeds!r}")
    if 1.0 not in [float(s) for s in speeds]:
        raise ConfigError(f"{path} must include 1.0 (unchanged speed), got {speeds!r}")


@dataclass(frozen=True)
class MatchingConfig:
    match_threshold: float
    record_threshold: float
    confidence: ConfidenceConfig
    image: ImageMatchConfig
    video: VideoMatchConfig
    audio: AudioMatchConfig

    def validate(self, path: str) -> None:
        _unit(self.match_threshold, f"{path}.match_threshold")
        _unit(self.record_threshold, f"{path}.record_threshold")
        if self.record_threshold > self.match_threshold:
            raise ConfigError(f"{path}.record_threshold must not exceed match_threshold")
        if self.confidence.medium < self.match_threshold:
            raise ConfigError(f"{path}.confidence.medium must be >= match_threshold")


@dataclass(frozen=True)
class ClusteringConfig:
    min_similarity: float
    max_iterations: int
    local_max_edges: int
    max_cluster_size: int
    min_cohesion: float
    cohesion_min_size: int
    split_min_similarity: float
    id_min_overlap: float

    def validate(self, path: str) -> None:
        _non_negative(self.local_max_edges, f"{path}.local_max_edges")
        _unit(self.min_similarity, f"{path}.min_similarity")
        _positive(self.max_iterations, f"{path}.max_iterations")
        _at_least(self.max_cluster_size, 2, f"{path}.max_cluster_size")
        _unit(self.min_cohesion, f"{path}.min_cohesion")
        _at_least(self.cohesion_min_size, 3, f"{path}.cohesion_min_size")
        _unit(self.split_min_similarity, f"{path}.split_min_similarity")
        if self.split_min_similarity < self.min_similarity:
            raise ConfigError(f"{path}.split_min_similarity must be >= {path}.min_similarity")
        _in_range(self.id_min_overlap, 0.5, 1.0, f"{path}.id_min_overlap")


DECISIONS = ("approve", "review", "merge", "block")


@dataclass(frozen=True)
class DecisionConfig:
    merge_min_similarity: float
    merge_match_types: list
    brand_block_min_similarity: float
    brand_review_min_similarity: float
    max_listings_per_media: int

    def validate(self, path: str) -> None:
        _unit(self.merge_min_similarity, f"{path}.merge_min_similarity")
        _unit(self.brand_block_min_similarity, f"{path}.brand_block_min_similarity")
        _unit(self.brand_review_min_similarity, f"{path}.brand_review_min_similarity")
        if self.brand_review_min_similarity > self.brand_block_min_similarity:
            raise ConfigError(f"{path}.brand_review_min_similarity must not exceed brand_block_min_similarity")
        known = {"exact", "near_duplicate", "edited_copy", "partial_copy", "mirrored", "frame_grab", "segment_copy"}
        for t in self.merge_match_types:
            _one_of(t, known, f"{path}.merge_match_types[]")
        _at_least(self.max_listings_per_media, 2, f"{path}.max_listings_per_media")


@dataclass(frozen=True)
class SkuConfig:
    max_skus: int
    max_brands: int
    high_confidence_similarity: float

    def validate(self, path: str) -> None:
        _at_least(self.max_skus, 2, f"{path}.max_skus")
        _at_least(self.max_brands, 1, f"{path}.max_brands")
        _unit(self.high_confidence_similarity, f"{path}.high_confidence_similarity")


@dataclass(frozen=True)
class ReviewConfig:
    large_cluster_size: int
    include_merges: bool
    max_reasons: int

    def validate(self, path: str) -> None:
        _at_least(self.large_cluster_size, 2, f"{path}.large_cluster_size")
        _positive(self.max_reasons, f"{path}.max_reasons")


@dataclass(frozen=True)
class WarehouseConfig:
    format: str
    keep_versions: int

    def validate(self, path: str) -> None:
        _one_of(self.format, {"parquet", "delta"}, f"{path}.format")
        _positive(self.keep_versions, f"{path}.keep_versions")


@dataclass(frozen=True)
class ApiConfig:
    host: str
    port: int
    workers: int
    token: str
    max_body_bytes: int
    max_concurrency: int
    max_queue: int
    queue_timeout_s: float
    body_timeout_s: float
    search_default_k: int
    search_max_k: int
    search_weak_candidates: int
    search_weak_min_words: int
    search_band_probes: bool
    search_prefetch: bool
    reload_interval_s: float

    def validate(self, path: str) -> None:
        _positive(self.body_timeout_s, f"{path}.body_timeout_s")
        _in_range(self.port, 0, 65535, f"{path}.port")
        _positive(self.workers, f"{path}.workers")
        _at_least(self.max_body_bytes, 256, f"{path}.max_body_bytes")
        _positive(self.max_concurrency, f"{path}.max_concurrency")
        _non_negative(self.max_queue, f"{path}.max_queue")
        _positive(self.queue_timeout_s, f"{path}.queue_timeout_s")
        _positive(self.search_default_k, f"{path}.search_default_k")
        _at_least(self.search_max_k, self.search_default_k, f"{path}.search_max_k")
        _non_negative(self.search_weak_candidates, f"{path}.search_weak_candidates")
        _positive(self.search_weak_min_words, f"{path}.search_weak_min_words")
        _positive(self.reload_interval_s, f"{path}.reload_interval_s")


@dataclass(frozen=True)
class LoggingConfig:
    level: str

    def validate(self, path: str) -> None:
        _one_of(self.level.upper(), {"DEBUG", "INFO", "WARNING", "ERROR"}, f"{path}.level")


@dataclass(frozen=True)
class Config:
    spark: SparkConfig
    manifest: ManifestConfig
    fetch: FetchConfig
    image: ImageConfig
    video: VideoConfig
    audio: AudioConfig
    candidates: CandidatesConfig
    matching: MatchingConfig
    clustering: ClusteringConfig
    decisions: DecisionConfig
    sku: SkuConfig
    review: ReviewConfig
    warehouse: WarehouseConfig
    api: ApiConfig
    logging: LoggingConfig
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict:
        return copy.deepcopy(self.raw)

    @property
    def config_hash(self) -> str:
        """Stable hash of the effective settings, recorded per run so results can be traced."""
        blob = json.dumps(self.raw, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Config":
        """A new Config with nested overrides merged in and validated like a file would be."""
        return build_config(deep_merge(self.raw, overrides))


def default_config_dict() -> dict:
    text = resources.files("medialayer").joinpath("default.yaml").read_text()
    return yaml.safe_load(text)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the file at `path`, then `overrides`; validated as a whole."""
    data = default_config_dict()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            user = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from exc
        if not isinstance(user, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        data = deep_merge(data, user)
    if overrides:
        data = deep_merge(data, overrides)
    return build_config(data)


def build_config(data: Mapping[str, Any]) -> Config:
    cfg = _build(Config, dict(data), "")
    return dataclasses.replace(cfg, raw=copy.deepcopy(dict(data)))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    """Merge `override` into a copy of `base`; mappings merge, everything else replaces.

    `spark.extra` and `manifest.columns` are mappings too, so an override adds to them.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- building and checking -------------------------------------------------------------------

def _build(cls: type, data: Any, path: str) -> Any:
    where = path or "top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "raw"]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {names}")
    missing = sorted(set(names) - set(data))
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")
    values = {}
    for name in names:
        key_path = f"{path}.{name}" if path else name
        values[name] = _coerce(hints[name], data[name], key_path)
    obj = cls(**values)
    if hasattr(obj, "validate"):
        obj.validate(path or "config")
    return obj


def _coerce(tp: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if tp is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return value
    if tp is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # a programming error, not user input


def _positive(value: float, path: str) -> None:
    if value <= 0:
        raise ConfigError(f"{path} must be > 0, got {value}")


def _non_negative(value: float, path: str) -> None:
    if value < 0:
        raise ConfigError(f"{path} must be >= 0, got {value}")


def _in_range(value: float, lo: float, hi: float, path: str) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{path} must be in {lo}..{hi}, got {value}")


def _at_least(value: float, lo: float, path: str) -> None:
    if value < lo:
        raise ConfigError(f"{path} must be >= {lo}, got {value}")


def _unit(value: float, path: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{path} must be in [0, 1], got {value}")


def _one_of(value: str, allowed: set, path: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{path} must be one of {sorted(allowed)}, got {value!r}")
