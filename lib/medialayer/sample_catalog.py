"""The bundled sample catalog: real photographs that installed packages ship, edited the way sellers
edit them, spread over sellers, SKUs and brands, written as a Parquet manifest.

Generated at demo/test time (nothing binary is committed). Photographs come from scikit-image's
data directory and scikit-learn's sample images, located without importing either library.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .synth.edits import EDITS as _SYNTH_EDITS
from .synth.photos import load_photo, package_photos

# The edits the sample catalog plants, one listing each (plus one chained pair per product).
DEFAULT_EDITS = ["recompress", "resize", "tone", "mirror", "crop_heavy", "watermark", "sticker", "screenshot"]


def photo_paths() -> list[Path]:
    """Photographs the Python packages ship (no Debian packages needed for the demo and tests)."""
    return package_photos()


@dataclass
class SampleCatalog:
    root: Path
    manifest_path: Path
    media_dir: Path
    groups: dict[str, list[str]] = field(default_factory=dict)     # product -> listing ids that copy it
    singletons: list[str] = field(default_factory=list)            # unrelated listings
    bad_listings: dict[str, str] = field(default_factory=dict)     # listing id -> expected error code
    rows: int = 0


def build_sample_catalog(out_dir: str | Path, n_groups: int = 6, n_singletons: int = 8,
                         edits: list[str] | None = None, include_bad_rows: bool = True,
                         max_side: int = 900) -> SampleCatalog:
    """Write media files and manifest.parquet under `out_dir`; return what was planted.

    Each of `n_groups` photographs is listed by its original seller and re-listed by other sellers
    after one edit each (and one edit combination); `n_singletons` other photographs are unrelated.
    """
    edits = edits or list(DEFAULT_EDITS)
    photos = photo_paths()
    if len(photos) < n_groups + n_singletons:
        raise RuntimeError(f"need {n_groups + n_singletons} photographs, found {len(photos)}: "
                           "install scikit-image and scikit-learn (make setup does)")
    root = Path(out_dir).resolve()
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    cat = SampleCatalog(root=root, manifest_path=root / "manifest.parquet", media_dir=media)
    rows: list[dict] = []
    rng = np.random.default_rng(7)

    def add(listing_id: str, path: Path | str, seller: str, sku: str, brand: str, category: str) -> None:
        rows.append({"listing_id": listing_id, "media_url": str(path), "media_type": "image",
                     "seller_id": seller, "sku_id": sku, "brand_id": brand, "category": category,
                     "source": "listing"})

    categories = ["home", "toys", "apparel", "electronics", "garden"]
    for g, path in enumerate(photos[:n_groups]):
        product = f"p{g:02d}"
        brand, category = f"brand-{g % 3}", categories[g % len(categories)]
        original = load_photo(path, max_side)
        listing_ids = []
        orig_path = media / f"{product}_original.jpg"
        original.save(orig_path, quality=92)
        lid = f"L-{product}-orig"
        add(lid, orig_path, f"seller-{g % 4}", f"sku-{product}", brand, category)
        listing_ids.append(lid)
        variants = [[e] for e in edits] + [[edits[int(rng.integers(len(edits)))], "recompress"]]
        for v, chain in enumerate(variants):
            img = original
            for name in chain:
                img = _SYNTH_EDITS[name](img, rng)
            name = "+".join(chain)
            file = media / f"{product}_{v:02d}_{name.replace('+', '_')}.jpg"
            img.save(file, quality=85)
            lid = f"L-{product}-{name}"
            seller = f"seller-{(g + v + 1) % 6}"
            add(lid, file, seller, f"sku-{product}-{seller}", brand, category)
            listing_ids.append(lid)
        cat.groups[product] = listing_ids
        # The same media URL listed twice (a seller re-listing the identical file): one fingerprint row.
        lid = f"L-{product}-relist"
        add(lid, orig_path, f"seller-{g % 4}", f"sku-{product}", brand, category)
        listing_ids.append(lid)

    for s, path in enumerate(photos[n_groups:n_groups + n_singletons]):
        file = media / f"unrelated_{s:02d}.jpg"
        load_photo(path, max_side).save(file, quality=90)
        lid = f"L-unrelated-{s:02d}"
        add(lid, file, f"seller-{s % 5}", f"sku-u{s:02d}", f"brand-{s % 4}", categories[s % len(categories)])
        cat.singletons.append(lid)

    if include_bad_rows:
        corrupt = media / "corrupt.jpg"
        corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 2000, dtype=np.uint8)))
        html = media / "not_an_image.jpg"
        html.write_text("<!doctype html><html><body>404 page</body></html>")
        for lid, target, code in (("L-bad-missing", media / "does_not_exist.jpg", "not_found"),
                                  ("L-bad-corrupt", corrupt, "decode_error"),
                                  ("L-bad-html", html, "unsupported_type")):
            add(lid, target, "seller-9", "sku-bad", "brand-x", "misc")
            cat.bad_listings[lid] = code

    table = pa.Table.from_pylist(rows)
    pq.write_table(table, cat.manifest_path)
    cat.rows = len(rows)
    return cat
