"""Shared fixtures: real photographs (shipped by scikit-image / scikit-learn) and the default config."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from medialayer.config import Config, load_config
from medialayer.sample_catalog import load_photo, photo_paths


@pytest.fixture(scope="session")
def cfg() -> Config:
    return load_config()


@pytest.fixture(scope="session")
def photos() -> list[Image.Image]:
    paths = photo_paths()
    assert len(paths) >= 10, "scikit-image and scikit-learn sample photographs are needed"
    return [load_photo(p, max_side=640) for p in paths]


@pytest.fixture
def fingerprinted(tmp_path: Path):
    """fingerprinted(images, cfg, prefix, quality=90) -> the fingerprints table of `images`, each
    saved as a JPEG under `tmp_path` first (real encoding and decoding, local files trusted)."""
    from medialayer.fetching import Fetcher
    from medialayer.media import fingerprint_table

    def _fingerprinted(images, cfg: Config, prefix: str, quality: int = 90):
        paths = []
        for k, img in enumerate(images):
            p = tmp_path / f"{prefix}{k}.jpg"
            img.save(p, quality=quality)
            paths.append(str(p))
        return fingerprint_table(paths, ["image"] * len(paths), cfg, Fetcher(cfg.fetch, trusted_local=True))
    return _fingerprinted


@pytest.fixture
def save(tmp_path: Path):
    """save(img, name, **pillow_options) -> path of the written file."""
    def _save(img: Image.Image, name: str, **options) -> str:
        path = tmp_path / name
        img.save(path, **options)
        return str(path)
    return _save


@pytest.fixture(scope="session")
def av_clips(tmp_path_factory, photos):
    """A 40 s product demo (eight real photographs, 5 s each with a pan and zoom, music track) and
    an unrelated one, as decoded frames/samples plus their MP4 files."""
    import numpy as np

    from medialayer.synth import av as synth_av

    root = tmp_path_factory.mktemp("av")
    fps, sr = 10.0, 16000
    pictures = [np.asarray(p) for p in photos]
    clips = {}
    for name, pics, seed in (("demo", pictures[:8], 1), ("other", pictures[8:16], 2)):
        frames = synth_av.slideshow(pics, 40.0, fps, (320, 240), seconds_per_photo=5.0, seed=seed)
        sound = synth_av.music(40.0, sr, seed=seed + 10)
        path = synth_av.encode_video(root / f"{name}.mp4", frames, fps, audio=sound, sr=sr)
        clips[name] = {"frames": frames, "sound": sound, "path": path}
    return {"root": root, "fps": fps, "sr": sr, **clips}
