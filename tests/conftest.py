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
def save(tmp_path: Path):
    """save(img, name, **pillow_options) -> path of the written file."""
    def _save(img: Image.Image, name: str, **options) -> str:
        path = tmp_path / name
        img.save(path, **options)
        return str(path)
    return _save
