"""Fingerprint versions: which code and which settings made a fingerprint row.

A row made by another version is fetched and fingerprinted again by the next run
(`pipeline._media_to_fetch`), so that a catalog never compares fingerprints made two ways. The code's
version names the algorithm (`image-v7`); a team that changes a setting that shapes fingerprints
(`image.local.max_side`, say) changes them just as much, so the settings are part of the version:
`image-v7` under the default settings, `image-v7/<8 hex digits>` under any others. Settings that
only refuse media (size and duration limits) are left out: changing them re-fetches nothing.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json

from .config import Config, load_config
from .fingerprints.audio import AUDIO_FINGERPRINT_VERSION
from .fingerprints.image import FINGERPRINT_VERSION as IMAGE_FINGERPRINT_VERSION
from .fingerprints.video import VIDEO_FINGERPRINT_VERSION

# Each media type's code version.
CODE_VERSIONS = {"image": IMAGE_FINGERPRINT_VERSION, "video": VIDEO_FINGERPRINT_VERSION,
                 "audio": AUDIO_FINGERPRINT_VERSION}

# The config sections (dotted paths) whose settings shape each type's fingerprints: a video row
# holds its audio track's peaks and keyframe keypoints made with the image's ORB settings.
_SHAPING = {"image": ("image",), "video": ("video", "audio", "image.local"), "audio": ("audio",)}
# Limits that refuse a media item without changing anyone else's fingerprint.
_LIMITS = ("image.max_pixels", "video.max_duration_s")


def fingerprint_versions(cfg: Config | None = None) -> dict[str, str]:
    """{media type: version} under `cfg` (the defaults when None)."""
    if cfg is None:
        return dict(CODE_VERSIONS)
    mine, default = _shaping_settings(cfg), _default_settings()
    out = {}
    for media_type, code in CODE_VERSIONS.items():
        if mine[media_type] == default[media_type]:
            out[media_type] = code
        else:
            blob = json.dumps(mine[media_type], sort_keys=True, default=str).encode()
            out[media_type] = f"{code}/{hashlib.sha256(blob).hexdigest()[:8]}"
    return out


def run_version(cfg: Config | None = None) -> str:
    """Every type's version in one string, as the runs table records it."""
    return "+".join(fingerprint_versions(cfg).values())


@functools.lru_cache(maxsize=1)
def _default_settings() -> dict[str, dict]:
    return _shaping_settings(load_config())


def _shaping_settings(cfg: Config) -> dict[str, dict]:
    """The shaping settings of each media type, as validated values (a float setting written 1 or 1.0 agrees)."""
    sections = {}
    for path in {p for paths in _SHAPING.values() for p in paths}:
        node = cfg
        for part in path.split("."):
            node = getattr(node, part)
        values = dataclasses.asdict(node)
        for limit in _LIMITS:
            section, _, key = limit.rpartition(".")
            if section == path:
                values.pop(key, None)
        sections[path] = values
    return {media_type: {path: sections[path] for path in paths} for media_type, paths in _SHAPING.items()}
