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
    av_group: str | None = None                                    # the product whose media are video/audio
    singletons: list[str] = field(default_factory=list)            # unrelated listings
    bad_listings: dict[str, str] = field(default_factory=dict)     # listing id -> expected error code
    brand_references: dict[str, str] = field(default_factory=dict)  # brand reference listing -> brand
    authorizations_path: Path | None = None                        # (brand_id, seller_id) Parquet
    authorized: list[tuple[str, str]] = field(default_factory=list)
    rows: int = 0
    photos_used: int = 0


def build_sample_catalog(out_dir: str | Path, n_groups: int = 6, n_singletons: int = 8,
                         edits: list[str] | None = None, include_bad_rows: bool = True,
                         max_side: int = 900, include_av: bool = True) -> SampleCatalog:
    """Write media files and manifest.parquet under `out_dir`; return what was planted.

    Each of `n_groups` photographs is listed by its original seller and re-listed by other sellers
    after one edit each (and one edit combination); `n_singletons` other photographs are unrelated.
    With `include_av`, a product demo video (slideshow over the last photographs, with music) is
    copied as a cropped, re-encoded excerpt, as a frame grabbed for a hero image and as an audio
    voice-over of its sound track; an unrelated audio file stands beside them.
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

    if include_av:
        if n_groups + n_singletons + 1 > len(photos) - _AV_PHOTOS:
            raise ValueError(f"the video group needs the last {_AV_PHOTOS} photographs: use at most "
                             f"{len(photos) - _AV_PHOTOS - 1} groups + singletons with include_av")
        _add_av_group(cat, rows, photos[-_AV_PHOTOS:], media)

    if include_bad_rows:
        corrupt = media / "corrupt.jpg"
        corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 2000, dtype=np.uint8)))
        html = media / "not_an_image.jpg"
        html.write_text("<!doctype html><html><body>404 page</body></html>")
        bad = [("L-bad-missing", media / "does_not_exist.jpg", "not_found", "image"),
               ("L-bad-corrupt", corrupt, "decode_error", "image"),
               ("L-bad-html", html, "unsupported_type", "image")]
        if include_av:
            from .synth import av as synth_av
            whole = (media / "v00_demo.mp4").read_bytes()
            truncated = media / "truncated.mp4"
            truncated.write_bytes(whole[: len(whole) // 3])
            silent_film = media / "sound_only.mp4"        # an MP4 container with no picture at all
            synth_av.encode_audio(silent_film, synth_av.music(3.0, seed=5), codec="aac")
            bad += [("L-bad-video-truncated", truncated, "decode_error", "video"),
                    ("L-bad-video-nostream", silent_film, "no_video_stream", "video")]
        for lid, target, code, media_type in bad:
            add(lid, target, "seller-9", "sku-bad", "brand-x", "misc")
            rows[-1]["media_type"] = media_type
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


_AV_PHOTOS = 4
AV_SECONDS = 24.0


def _add_av_group(cat: SampleCatalog, rows: list[dict], photos: list[Path], media: Path) -> None:
    """Video v00 and its copies: excerpt (cropped, re-encoded), frame grab, audio voice-over."""
    import cv2

    from .synth import av as synth_av

    fps, sr = 10.0, 16000
    pictures = [np.asarray(load_photo(p, 640)) for p in photos]
    frames = synth_av.slideshow(pictures, AV_SECONDS, fps, (320, 240), seconds_per_photo=3.0, seed=3)
    sound = synth_av.music(AV_SECONDS, sr, seed=4)
    files = {
        "video": synth_av.encode_video(media / "v00_demo.mp4", frames, fps, audio=sound, sr=sr),
        "excerpt": synth_av.encode_video(media / "v00_excerpt.mp4",
                                         synth_av.crop_frames(synth_av.retime(frames, fps, 6.0, 16.0), 0.9), fps,
                                         audio=sound[6 * sr:16 * sr], sr=sr, codec="mpeg4"),
        "voiceover": synth_av.encode_audio(media / "v00_voiceover.mp3",
                                           synth_av.mix(sound[4 * sr:16 * sr], synth_av.music(12, sr, seed=6), 6), sr),
    }
    grab = media / "v00_framegrab.jpg"
    cv2.imwrite(str(grab), cv2.cvtColor(frames[int(15.3 * fps)], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    files["framegrab"] = grab
    sellers = {"video": "seller-2", "excerpt": "seller-5", "framegrab": "seller-4", "voiceover": "seller-3"}
    types = {"video": "video", "excerpt": "video", "framegrab": "image", "voiceover": "audio"}
    ids = []
    for name, path in files.items():
        lid = f"L-v00-{name}"
        rows.append({"listing_id": lid, "media_url": str(path), "media_type": types[name], "seller_id": sellers[name],
                     "sku_id": f"sku-v00-{sellers[name]}", "brand_id": "brand-1", "category": "electronics",
                     "source": "listing"})
        ids.append(lid)
    cat.groups["v00"] = ids
    cat.av_group = "v00"
    other = synth_av.encode_audio(media / "unrelated_jingle.mp3", synth_av.music(15, sr, seed=21), sr)
    rows.append({"listing_id": "L-unrelated-audio", "media_url": str(other), "media_type": "audio",
                 "seller_id": "seller-1", "sku_id": "sku-ua", "brand_id": "brand-2", "category": "electronics",
                 "source": "listing"})
    cat.singletons.append("L-unrelated-audio")


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
