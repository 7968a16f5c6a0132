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
    brand_references: dict[str, str] = field(default_factory=dict)  # brand reference listing -> brand
    authorizations_path: Path | None = None                        # (brand_id, seller_id) Parquet
    authorized: list[tuple[str, str]] = field(default_factory=list)
    rows: int = 0
    photos_used: int = 0


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
        if g == 0:
            # The brand's own reference image (the original, kept at higher quality by the brand).
            ref_path = media / f"{product}_brand_reference.jpg"
            original.save(ref_path, quality=97)
            lid = f"L-{product}-brandref"
            rows.append({"listing_id": lid, "media_url": str(ref_path), "media_type": "image",
                         "seller_id": f"{brand}-official", "sku_id": None, "brand_id": brand, "category": category,
                         "source": "brand_reference"})
            listing_ids.append(lid)
            cat.brand_references[lid] = brand
            cat.authorized.append((brand, "seller-1"))

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

    table = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
    pq.write_table(table, cat.manifest_path)
    cat.rows = len(rows)
    cat.photos_used = n_groups + n_singletons
    cat.authorizations_path = root / "authorizations.parquet"
    pq.write_table(pa.Table.from_pylist([{"brand_id": b, "seller_id": s} for b, s in cat.authorized],
                                        schema=pa.schema([("brand_id", pa.string()), ("seller_id", pa.string())])),
                   cat.authorizations_path)
    return cat


MANIFEST_SCHEMA = pa.schema([(c, pa.string()) for c in (
    "listing_id", "media_url", "media_type", "seller_id", "sku_id", "brand_id", "category", "source")])


@dataclass
class DayTwo:
    """The second day's manifest (only new listings, as a nightly feed delivers them) and what it plants."""
    manifest_path: Path
    new_listings: list[str]
    joins_group: dict[str, str]          # new listing -> product group it copies
    blocked: str                         # unauthorized copy of a brand reference
    approved: str                        # authorized seller's copy of the same reference
    merge_pair: tuple[str, str]          # same-seller near-duplicates
    unrelated: str


def build_day_two(cat: SampleCatalog, max_side: int = 900) -> DayTwo:
    """New listings for the day after `cat`: copies that must join existing clusters, a brand
    reference copied by an unauthorized and by an authorized seller, a same-seller duplicate."""
    if len(cat.groups) < 3:
        raise ValueError("day two needs a catalog with at least 3 product groups")
    media = cat.media_dir
    rng = np.random.default_rng(11)
    products = sorted(cat.groups)
    rows: list[dict] = []

    def original(product: str):
        from PIL import Image
        with Image.open(media / f"{product}_original.jpg") as im:
            return im.convert("RGB")

    def add(listing_id: str, img, seller: str, sku: str, brand: str, quality: int = 88) -> None:
        path = media / f"day2_{listing_id}.jpg"
        img.save(path, quality=quality)
        rows.append({"listing_id": listing_id, "media_url": str(path), "media_type": "image", "seller_id": seller,
                     "sku_id": sku, "brand_id": brand, "category": "home", "source": "listing"})

    ref_product = products[0]
    ref_brand = next(iter(cat.brand_references.values()))
    authorized_seller = next(s for b, s in cat.authorized if b == ref_brand)
    blocked, approved = f"L-{ref_product}-day2-unauthorized", f"L-{ref_product}-day2-authorized"
    add(blocked, _SYNTH_EDITS["resize"](original(ref_product), rng), "seller-7", "sku-d2-knockoff", ref_brand)
    add(approved, _SYNTH_EDITS["recompress"](original(ref_product), rng), authorized_seller, "sku-d2-authorized",
        ref_brand)
    copier = f"L-{products[1]}-day2-copy"
    add(copier, _SYNTH_EDITS["tone"](original(products[1]), rng), "seller-8", "sku-d2-copy", "brand-1")
    # The original seller of product 2 lists it again under a new SKU (a near-duplicate to merge).
    dup = f"L-{products[2]}-day2-relisted"
    orig_row = f"L-{products[2]}-orig"
    seller_2 = f"seller-{2 % 4}"
    add(dup, _SYNTH_EDITS["recompress"](original(products[2]), rng), seller_2, f"sku-{products[2]}-v2", "brand-2")
    unrelated = "L-day2-unrelated"
    photos = photo_paths()
    add(unrelated, load_photo(photos[cat.photos_used % len(photos)], max_side), "seller-3", "sku-d2-u", "brand-3")

    path = cat.root / "manifest_day2.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), path)
    return DayTwo(manifest_path=path, new_listings=[r["listing_id"] for r in rows],
                  joins_group={blocked: ref_product, approved: ref_product, copier: products[1], dup: products[2]},
                  blocked=blocked, approved=approved, merge_pair=(orig_row, dup), unrelated=unrelated)
