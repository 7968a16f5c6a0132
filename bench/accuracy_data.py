"""The image-accuracy benchmark set: real photographs that packages ship, edited like sellers do.

Layout (all generated, cached under bench/.cache; nothing binary is committed):
- every distinct photo, resized to a 800-1200 px long side and saved as the "original" listing image;
- one copy per edit family and per combination (medialayer.synth.edits), parameters drawn per copy;
- hard negatives: the left and right halves of a photo; different "products" (a cut-out of a photo)
  on the same white background; one photo recoloured to another's palette.

Each item has a group; pairs in one group are copies, pairs across groups are negatives, except pairs
across "related" groups (a half and its whole photo, say), which are ambiguous and not scored.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from medialayer.synth.edits import COMBOS, EDITS, apply_chain, family_of, product_on_white
from medialayer.synth.photos import DEBIAN_PACKAGES, all_photos, load_photo, photos_in

GENERATOR_VERSION = 4
MIN_PHOTOS = 60
MIN_OWN_PHOTOS = 10       # a directory of one's own photos (--photos): enough for pairs to mean something
_MIN_DETAIL_STD = 5.0     # near-blank artworks (flattened transparent PNGs) are not photographs


@dataclass
class Item:
    id: int
    path: str
    group: str
    role: str                      # original | copy | half | product | recolour
    family: str = ""               # the edit family of a copy
    related: list[str] = field(default_factory=list)


def informative(img: Image.Image) -> bool:
    g = np.asarray(img.convert("L").resize((128, 128)), dtype=np.float32)
    return float(g.std()) >= _MIN_DETAIL_STD


def _recolour(src: Image.Image, palette: Image.Image) -> Image.Image:
    """`src` with each channel's mean and spread moved to `palette`'s (Reinhard-style transfer)."""
    a = np.asarray(src, dtype=np.float32)
    b = np.asarray(palette, dtype=np.float32)
    out = (a - a.mean((0, 1))) / (a.std((0, 1)) + 1e-3) * b.std((0, 1)) + b.mean((0, 1))
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def build(cache: Path, seed: int = 2026, log=print, photos_dir: Path | None = None) -> list[Item]:
    """Generate (or reuse) the benchmark set under `cache`; return its items.

    `photos_dir`: make the set from the photos in this directory instead of the packaged ones, to
    measure on pictures no rule was tuned on (each file must be a distinct picture). Its sets are
    cached apart, by the directory's listing."""
    name = f"accuracy-v{GENERATOR_VERSION}-s{seed}"
    paths = None                                  # the packaged photographs, found only on a cache miss
    if photos_dir is not None:
        try:
            paths = photos_in(photos_dir)
        except FileNotFoundError as exc:
            sys.exit(f"--photos: {exc}")
        listing = "\n".join(f"{p.name}:{p.stat().st_size}" for p in paths)
        name += "-own-" + hashlib.sha256(listing.encode()).hexdigest()[:12]
    root = cache.resolve() / name
    index = root / "items.json"
    if index.is_file():
        return [Item(**d) for d in json.loads(index.read_text())]
    photos = []
    for path in (paths if paths is not None else all_photos()):
        try:
            img = load_photo(path, 1200)
        except (OSError, ValueError) as exc:       # one's own directory may hold a broken file
            log(f"  skipped {path.name}: {exc}")
            continue
        if informative(img):
            photos.append(img)
    if paths is not None and len(photos) < MIN_OWN_PHOTOS:
        sys.exit(f"--photos {photos_dir}: found {len(photos)} usable photographs (of {len(paths)} image files); "
                 f"the benchmark needs >= {MIN_OWN_PHOTOS}")
    if paths is None and len(photos) < MIN_PHOTOS:
        sys.exit(f"bench-accuracy needs >= {MIN_PHOTOS} distinct photographs, found {len(photos)}. "
                 f"Install Debian's {', '.join(DEBIAN_PACKAGES)} (make bench-accuracy does this when run as root).")
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items: list[Item] = []

    def save(img: Image.Image, name: str, group: str, role: str, family: str = "", related=()) -> None:
        path = media / name
        if path.suffix == ".png":
            img.save(path)
        else:
            img.save(path, quality=int(rng.integers(80, 95)))
        items.append(Item(len(items), str(path), group, role, family, list(related)))

    families = list(EDITS) + list(COMBOS)
    log(f"generating the benchmark set from {len(photos)} photographs into {root} ...")
    for s, photo in enumerate(photos):
        side = int(rng.integers(800, 1201))
        original = photo.copy()
        original.thumbnail((side, side), Image.Resampling.LANCZOS)
        group = f"s{s:03d}"
        save(original, f"{group}_original.jpg", group, "original")
        for fam in families:
            copy = apply_chain(original, family_of(fam), rng)
            ext = ".png" if fam == "screenshot" and rng.random() < 0.5 else ".jpg"
            save(copy, f"{group}_{fam.replace('+', '_')}{ext}", group, "copy", fam)

    # Hard negatives. Halves of one photograph (no overlap) must not match each other.
    for s in range(0, len(photos), 2):
        w, h = photos[s].size
        save(photos[s].crop((0, 0, w // 2, h)), f"s{s:03d}_half_left.jpg", f"s{s:03d}L", "half", related=[f"s{s:03d}"])
        save(photos[s].crop((w // 2, 0, w, h)), f"s{s:03d}_half_right.jpg", f"s{s:03d}R", "half",
             related=[f"s{s:03d}"])
    # Different products on the same white background; their copies must still match them.
    for p, s in enumerate(range(1, len(photos), 2)):
        group = f"p{p:03d}"
        prod = product_on_white(photos[s], rng)
        save(prod, f"{group}_product.jpg", group, "original", related=[f"s{s:03d}"])
        for fam in ("recompress", "crop", "screenshot", "sticker"):
            save(apply_chain(prod, (fam,), rng), f"{group}_{fam}.jpg", group, "copy", f"white_background:{fam}",
                 related=[f"s{s:03d}"])
    # A photo recoloured to another photo's palette: similar colours, different picture.
    for s in range(0, len(photos) - 1, 2):
        save(_recolour(photos[s + 1], photos[s]), f"s{s + 1:03d}_recoloured.jpg", f"s{s + 1:03d}C", "recolour",
             related=[f"s{s + 1:03d}"])
    index.write_text(json.dumps([asdict(i) for i in items]))
    log(f"  {len(items)} images")
    return items


def pair_labels(items: list[Item], ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """"pos", "neg" or "ignore" for the pairs (items[ii[k]], items[jj[k]]), all at once.

    Same group: a copy of its original ("pos"; copy against copy is "ignore"). Groups related
    either way (a half and its whole photo), or through a shared related group, except the two
    halves of one photo: "ignore". Everything else: "neg".
    """
    groups = sorted({i.group for i in items} | {r for i in items for r in i.related})
    code = {g: k for k, g in enumerate(groups)}
    g = np.array([code[i.group] for i in items])
    original = np.array([i.role == "original" for i in items])
    rel = np.zeros((len(groups), len(groups)), dtype=bool)      # group -> groups it is related to
    for it in items:
        for r in it.related:
            rel[code[it.group], code[r]] = True
    shared = (rel.astype(np.int32) @ rel.T.astype(np.int32)) > 0
    half = np.array([i.role == "half" for i in items])
    gi, gj = g[ii], g[jj]
    same = gi == gj
    # Two items derived from one photo are ambiguous (a product cut out of it against a recoloured
    # copy of it), except its two halves: disjoint by construction, they are the hard negative.
    related = rel[gi, gj] | rel[gj, gi] | (shared[gi, gj] & ~(half[ii] & half[jj]))
    out = np.full(ii.shape[0], "neg", dtype=object)
    out[~same & related] = "ignore"
    out[same] = np.where(original[ii[same]] | original[jj[same]], "pos", "ignore")
    return out.astype(str)


def hard_kinds(items: list[Item], ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """The hard-negative kind of each pair ("" for an ordinary one); the first rule that fits wins."""
    role = np.array([i.role for i in items])
    group = np.array([i.group for i in items])
    family = np.array([i.family for i in items])
    product = np.char.startswith(group, "p")
    shot = np.char.endswith(family, "screenshot")
    mark = np.char.endswith(family, "watermark")
    rules = [
        ("halves of one photo", (role[ii] == "half") & (role[jj] == "half")
         & (np.char.rstrip(group[ii], "LR") == np.char.rstrip(group[jj], "LR"))),
        ("products on white", product[ii] & product[jj]),
        ("recoloured to the other's palette", (role[ii] == "recolour") | (role[jj] == "recolour")),
        ("same screenshot template", shot[ii] & shot[jj]),
        ("same watermark style", mark[ii] & mark[jj]),
    ]
    out = np.full(ii.shape[0], "", dtype=object)
    for name, hit in reversed(rules):
        out[hit] = name
    return out.astype(str)
