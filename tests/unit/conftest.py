"""Fixtures shared by the unit tests: a catalog for the API and search-index tests, and drawn pictures."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from medialayer.config import load_config
from medialayer.fetching import Fetcher
from medialayer.media import fingerprint_table
from medialayer.synth.edits import EDITS
from medialayer.synth.photos import load_photo, package_photos


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """A warehouse whose fingerprints table holds 8 originals; edited copies stay outside it."""
    root = tmp_path_factory.mktemp("api")
    media = root / "media"
    media.mkdir()
    rng = np.random.default_rng(5)
    originals, copies = [], {}
    for i, path in enumerate(package_photos()[:8]):
        img = load_photo(path, 640)
        orig = media / f"orig_{i}.jpg"
        img.save(orig, quality=92)
        originals.append(str(orig))
        for edit in ("mirror", "crop", "watermark"):
            copy = media / f"copy_{i}_{edit}.jpg"
            EDITS[edit](img, rng).save(copy, quality=85)
            copies[(i, edit)] = str(copy)
    cfg = load_config(overrides={"fetch": {"local_roots": [str(media)]}})
    fps = fingerprint_table(originals, ["image"] * len(originals), cfg, Fetcher(cfg.fetch), 8)
    assert fps.column("status").to_pylist() == ["ok"] * len(originals)
    wh = root / "warehouse"
    (wh / "fingerprints").mkdir(parents=True)
    (wh / "listing_media").mkdir()
    pq.write_table(fps, wh / "fingerprints" / "part-0.parquet")
    listing = pa.table({"listing_id": [f"L{i}" for i in range(len(originals))],
                        "media_key": fps.column("media_key"),
                        "seller_id": [f"seller-{i % 3}" for i in range(len(originals))],
                        "sku_id": [f"sku-{i}" for i in range(len(originals))],
                        "brand_id": ["acme"] * len(originals)})
    pq.write_table(listing, wh / "listing_media" / "part-0.parquet")
    return {"root": root, "media": media, "warehouse": wh, "originals": originals, "copies": copies}


@pytest.fixture(scope="session")
def gradient():
    """gradient(w, h, colour, wave) -> a smooth picture: light rising left to right, tinted by
    `colour`, with a horizontal wave. Next to no corners of its own."""
    def _gradient(w: int, h: int, colour: tuple[float, float, float], wave: float) -> Image.Image:
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        light = 50 + 140 * (x / w) * (0.6 + 0.4 * y / h) + wave * np.sin(2 * np.pi * y / h)
        rgb = np.clip(light[..., None] * np.asarray(colour)[None, None, :], 0, 255).astype(np.uint8)
        return Image.fromarray(rgb)
    return _gradient


@pytest.fixture(scope="session")
def padded_with_badge():
    """padded_with_badge(img) -> (canvas, photo box in canvas pixels): `img` centred on a white
    square canvas 1.5x its long side, and a round badge on the canvas's lower-left corner that
    covers the photo's corner and reaches into the padding."""
    def _padded(img: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int]]:
        side = int(max(img.size) * 1.5)
        canvas = Image.new("RGB", (side, side), (255, 255, 255))
        x0, y0 = (side - img.width) // 2, (side - img.height) // 2
        canvas.paste(img, (x0, y0))
        r = side // 7
        ImageDraw.Draw(canvas).ellipse((5, side - 5 - 2 * r, 5 + 2 * r, side - 5), fill=(200, 30, 40))
        return canvas, (x0, y0, x0 + img.width, y0 + img.height)
    return _padded
