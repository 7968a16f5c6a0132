"""Fixtures shared by the API and search-index tests."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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
