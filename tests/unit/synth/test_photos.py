from pathlib import Path

import pytest
from PIL import Image

from medialayer.synth.photos import photos_in


def test_own_photos_are_the_raster_files_of_the_directory_by_name(tmp_path: Path) -> None:
    for name, fmt in (("b.JPG", "JPEG"), ("a.png", "PNG"), ("c.webp", "WEBP")):
        Image.new("RGB", (8, 8), "red").save(tmp_path / name, format=fmt)
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "sub" / "d.jpg")
    assert [p.name for p in photos_in(tmp_path)] == ["a.png", "b.JPG", "c.webp"]


def test_a_missing_photo_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        photos_in(tmp_path / "nowhere")
