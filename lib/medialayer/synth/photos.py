"""Real photographs that installed packages ship: the raw material of test data and benchmarks.

Nothing is downloaded. Sources: scikit-image's and scikit-learn's sample images (PyPI), and Debian's
wallpaper packages (plasma-workspace-wallpapers, gnome-backgrounds, mate-backgrounds) when installed.
Variants of one artwork (light/dark, several sizes) are reduced to one, so every path returned is a
distinct picture.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from PIL import Image

# Colour or rich greyscale photographs from the Python packages (no test patterns or line art).
_PACKAGE_PHOTOS = [
    ("skimage", "data/astronaut.png"), ("skimage", "data/chelsea.png"), ("skimage", "data/coffee.png"),
    ("skimage", "data/rocket.jpg"), ("skimage", "data/motorcycle_left.png"), ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"), ("skimage", "data/hubble_deep_field.jpg"),
    ("skimage", "data/retina.jpg"), ("skimage", "data/ihc.png"), ("skimage", "data/camera.png"),
    ("skimage", "data/moon.png"), ("skimage", "data/coins.png"), ("skimage", "data/page.png"),
    ("skimage", "data/cell.png"), ("skimage", "data/brick.png"), ("skimage", "data/grass.png"),
    ("skimage", "data/gravel.png"), ("skimage", "data/color.png"), ("skimage", "data/immunohistochemistry.png"),
]

DEBIAN_PACKAGES = ("plasma-workspace-wallpapers", "gnome-backgrounds", "mate-backgrounds")
_WALLPAPER_DIRS = ("/usr/share/wallpapers", "/usr/share/backgrounds")
_RASTER = {".jpg", ".jpeg", ".png", ".webp"}
# Artworks shipped as recoloured variants of one design: keep one of each family.
_VARIANT_FAMILIES = [r"ubuntu-mate-.*", r".*stripes.*", r"elephants.*"]


def package_photos() -> list[Path]:
    """Photographs from scikit-image and scikit-learn that exist on this machine."""
    out = []
    for package, rel in _PACKAGE_PHOTOS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(list(spec.submodule_search_locations)[0]) / rel
        if path.is_file():
            out.append(path)
    return out


def _family(path: Path) -> str:
    """A key shared by variants of one artwork: KDE's per-resolution files, GNOME's -l/-d pairs."""
    parts = path.parts
    if "contents" in parts:                       # KDE: /usr/share/wallpapers/<Name>/contents/images*/WxH.ext
        return "kde:" + parts[parts.index("contents") - 1].lower()
    stem = path.stem.lower()
    stem = re.sub(r"[-_](d|l|dark|light|day|night)$", "", stem)
    stem = re.sub(r"[-_]?\d{3,5}x\d{3,5}$", "", stem)
    for pattern in _VARIANT_FAMILIES:
        if re.fullmatch(pattern, stem):
            return "family:" + pattern
    return stem


def wallpaper_photos() -> list[Path]:
    """One raster file per distinct wallpaper artwork (the largest), from the Debian packages present."""
    best: dict[str, tuple[int, Path]] = {}
    for root in _WALLPAPER_DIRS:
        base = Path(root)
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix.lower() not in _RASTER or not path.is_file() or path.name.startswith("screenshot"):
                continue
            if "images_dark" in path.parts:
                continue
            size = path.stat().st_size
            key = _family(path)
            if key not in best or size > best[key][0]:
                best[key] = (size, path)
    return [p for _, p in sorted(best.values(), key=lambda t: str(t[1]))]


def all_photos() -> list[Path]:
    return package_photos() + wallpaper_photos()


def photos_in(directory: Path) -> list[Path]:
    """The raster files directly in `directory`, by name (a benchmark's own pool of photos)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no such directory: {directory}")
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in _RASTER)


def load_photo(path: Path, max_side: int = 1000) -> Image.Image:
    """Open any shipped photo as RGB with its long side bounded (wallpapers are up to 5640 px)."""
    with Image.open(path) as img:
        img.draft("RGB", (max_side * 2, max_side * 2))
        rgb = img.convert("RGB")
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb
