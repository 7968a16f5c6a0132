"""Synthetic catalogs of any size, made from a small pool of real fingerprints.

A scale run needs a million fingerprints but not a million photographs. The pool holds the real
fingerprints of a few photographs and of their seller-style edits (one *family* per photograph).
Every synthetic row is a pool row XOR-ed with its group's random mask: the same 64-bit mask on
every hash column and the same 32-byte mask on every keypoint descriptor. XOR with one mask keeps
every Hamming distance inside a group exactly, so a planted pair verifies exactly as its pool pair
does, while rows under different masks are as unrelated as random hashes. Unmasked near-blank rows
make the hot buckets a real catalog has.

Pure numpy/Arrow, written in chunks, so a million rows never sit in memory at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..fingerprints.image import HASH_COLUMNS, REGION_HASH_COLUMNS
from ..fingerprints.local import DESCRIPTOR_BYTES

MASKED_HASHES = (*HASH_COLUMNS, *REGION_HASH_COLUMNS)
MASKED_DESCRIPTORS = ("kp_desc", "kp_desc_mirror")


@dataclass(frozen=True)
class Pool:
    """Real fingerprints: `table` rows, each with its family (photograph) and variant (edit) label."""
    table: pa.Table
    family: np.ndarray          # int64 per row
    variant: list[str]          # edit name per row ("original" for the photograph itself)
    hot: np.ndarray             # bool per row: a near-blank picture (replicated unmasked)

    def family_rows(self, f: int) -> np.ndarray:
        return np.flatnonzero((self.family == f) & ~self.hot)


@dataclass(frozen=True)
class Layout:
    """Which pool row and which mask group every synthetic row takes (row i is media `prefix-i`)."""
    pool_row: np.ndarray        # int64 (n,)
    group: np.ndarray           # int64 (n,): rows of one planted group share it; -1 = hot (unmasked)
    planted: np.ndarray         # bool (n,): member of a planted near-duplicate group


def plan(pool: Pool, n: int, planted_share: float = 0.10, group_sizes: tuple[int, int] = (2, 5),
         hot_share: float = 0.002, seed: int = 0) -> Layout:
    """Lay out n rows: planted groups (an original and some of its edits under one mask), near-blank
    hot rows, and fillers (one random pool row each, under a mask of its own)."""
    rng = np.random.default_rng(seed)
    families = np.unique(pool.family[~pool.hot])
    hot_rows = np.flatnonzero(pool.hot)
    pool_row = np.empty(n, dtype=np.int64)
    group = np.empty(n, dtype=np.int64)
    planted = np.zeros(n, dtype=bool)
    i = g = 0
    target = int(round(n * planted_share))
    while i < target:
        fam = pool.family_rows(int(rng.choice(families)))
        originals = [r for r in fam if pool.variant[r] == "original"]
        edits = [r for r in fam if pool.variant[r] != "original"]
        size = int(min(rng.integers(group_sizes[0], group_sizes[1] + 1), len(edits) + 1, n - i))
        members = originals[:1] + list(rng.choice(edits, size=size - 1, replace=False))
        pool_row[i:i + size] = members
        group[i:i + size] = g
        planted[i:i + size] = True
        i += size
        g += 1
    n_hot = int(round(n * hot_share)) if hot_rows.size else 0
    n_hot = min(n_hot, n - i)
    pool_row[i:i + n_hot] = rng.choice(hot_rows, size=n_hot) if n_hot else []
    group[i:i + n_hot] = -1
    i += n_hot
    plain = np.flatnonzero(~pool.hot)
    pool_row[i:] = rng.choice(plain, size=n - i)
    group[i:] = np.arange(g, g + n - i)
    # Shuffle so planted groups and hot rows are spread over every partition, as in a real catalog.
    order = rng.permutation(n)
    return Layout(pool_row[order], group[order], planted[order])


def group_masks(groups: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(int64 hash mask, (k, 32) uint8 descriptor mask) per group id, derived from the id alone so
    any chunk of any run gets the same mask for the same group; group -1 gets zero masks."""
    g = np.asarray(groups, dtype=np.int64)
    ss = np.random.SeedSequence([seed, 0x5CA1E])
    base = ss.generate_state(2, dtype=np.uint64)
    # SplitMix64 of the group id: cheap, vectorised, well mixed (wrap-around is intended).
    with np.errstate(over="ignore"):
        z = (g.astype(np.uint64) + base[0]) * np.uint64(0x9E3779B97F4A7C15)
        hash_mask = _splitmix(z)
        words = np.stack([_splitmix(z ^ (base[1] + np.uint64(k) * np.uint64(0xBF58476D1CE4E5B9)))
                          for k in range(4)], 1)
    desc_mask = words.view(np.uint8).reshape(g.size, DESCRIPTOR_BYTES)
    hot = g < 0
    hash_mask[hot] = 0
    desc_mask[hot] = 0
    return hash_mask.view(np.int64), desc_mask


def _splitmix(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def synthesize(pool: Pool, layout: Layout, start: int, stop: int, seed: int, prefix: str = "syn") -> pa.Table:
    """Rows start..stop of the synthetic fingerprint table (FINGERPRINT_SCHEMA, pool's columns)."""
    rows = layout.pool_row[start:stop]
    groups = layout.group[start:stop]
    out = pool.table.take(pa.array(rows))
    hash_mask, desc_mask = group_masks(groups, seed)
    cols = {name: out.column(name) for name in out.column_names}
    for c in MASKED_HASHES:
        v = cols[c].combine_chunks()
        valid = v.is_valid()
        x = v.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) ^ hash_mask
        cols[c] = pc.if_else(valid, pa.array(x, type=pa.int64()), pa.nulls(len(x), pa.int64()))
    for c in MASKED_DESCRIPTORS:
        cols[c] = _xor_blobs(cols[c].combine_chunks(), desc_mask)
    ids = np.arange(start, stop)
    keys = pa.array([f"{prefix}-{i:09d}" for i in ids])
    cols["media_key"] = keys
    cols["media_url"] = pc.binary_join_element_wise(pa.scalar("synthetic://"), keys, "")
    cols["content_sha256"] = keys      # distinct per row: no two synthetic rows are byte-identical
    return pa.table([cols[n] for n in pool.table.column_names], schema=pool.table.schema)


def _xor_blobs(blobs: pa.BinaryArray, masks: np.ndarray) -> pa.BinaryArray:
    """XOR every 32-byte descriptor of row r with masks[r], in one vectorised pass over the buffer."""
    if blobs.null_count == len(blobs):
        return blobs
    offsets = np.frombuffer(blobs.buffers()[1], dtype=np.int32)[blobs.offset:blobs.offset + len(blobs) + 1]
    offsets = offsets.astype(np.int64)
    data = np.frombuffer(blobs.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].copy()
    lengths = np.diff(offsets)
    owner = np.repeat(np.arange(len(blobs)), lengths)
    pos = np.arange(data.size) - np.repeat(offsets[:-1] - offsets[0], lengths)
    data ^= masks[owner, pos % DESCRIPTOR_BYTES]
    validity = np.asarray(blobs.is_valid())
    return pa.Array.from_buffers(pa.binary(), len(blobs),
                                 [pa.array(validity).buffers()[1], pa.py_buffer((offsets - offsets[0]).astype(np.int32)),
                                  pa.py_buffer(data)], null_count=blobs.null_count)


def write_table(pool: Pool, layout: Layout, out_dir: Path, seed: int, chunk_rows: int = 20000,
                prefix: str = "syn") -> Path:
    """The whole synthetic fingerprint table as Parquet files of chunk_rows each."""
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    n = layout.pool_row.size
    for k, start in enumerate(range(0, n, chunk_rows)):
        table = synthesize(pool, layout, start, min(n, start + chunk_rows), seed, prefix)
        pq.write_table(table, out_dir / f"part-{k:05d}.parquet", compression="zstd")
    return out_dir


def planted_pairs(layout: Layout) -> Iterator[tuple[int, int]]:
    """(i, j), i < j, of rows that share a planted group."""
    idx = np.flatnonzero(layout.planted)
    order = idx[np.argsort(layout.group[idx], kind="stable")]
    g = layout.group[order]
    bounds = np.flatnonzero(np.diff(g)) + 1
    for members in np.split(order, bounds):
        members = np.sort(members)
        for a in range(members.size):
            for b in range(a + 1, members.size):
                yield int(members[a]), int(members[b])


# --- the pool: real fingerprints of real photographs and their edits ------------------------------

POOL_EDITS = ("recompress", "resize", "tone", "mirror", "crop", "crop_heavy", "pad", "rotate", "watermark",
              "sticker", "text_overlay", "screenshot", "mirror+crop", "crop_heavy+recompress")


def build_pool(photos: list[Path], cfg, workdir: Path, max_side: int = 800, n_blank: int = 4,
               seed: int = 7) -> Pool:
    """Fingerprint every photo and its POOL_EDITS, plus n_blank near-blank pictures (hot rows)."""
    from PIL import Image

    from ..fetching import Fetcher
    from ..media import fingerprint_table
    from .edits import apply_chain, family_of
    from .photos import load_photo

    rng = np.random.default_rng(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    paths, family, variant, hot = [], [], [], []
    for f, photo in enumerate(photos):
        img = load_photo(photo, max_side)
        for name in ("original", *POOL_EDITS):
            out = img if name == "original" else apply_chain(img, family_of(name), rng)
            p = workdir / f"f{f:03d}_{name.replace('+', '_')}.jpg"
            out.convert("RGB").save(p, quality=88)
            paths.append(str(p))
            family.append(f)
            variant.append(name)
            hot.append(False)
    for b in range(n_blank):
        # Near-blank: a flat light canvas with a faint gradient and sensor noise.
        h, w = 600, 600
        tone = 235 + 5 * b
        grad = np.linspace(0, 3, w)[None, :, None]
        arr = np.clip(tone + grad + rng.normal(0, 0.8, (h, w, 3)), 0, 255).astype(np.uint8)
        p = workdir / f"blank_{b}.jpg"
        Image.fromarray(arr).save(p, quality=90)
        paths.append(str(p))
        family.append(len(photos) + b)
        variant.append("blank")
        hot.append(True)
    table = fingerprint_table(paths, ["image"] * len(paths), cfg, Fetcher(cfg.fetch, trusted_local=True))
    ok = np.asarray(pc.equal(table.column("status"), "ok").fill_null(False))
    keep = np.flatnonzero(ok)
    return Pool(table.take(pa.array(keep)), np.asarray(family)[keep], [variant[k] for k in keep],
                np.asarray(hot)[keep])


def save_pool(pool: Pool, path: Path) -> None:
    import pyarrow.parquet as pq

    t = pool.table.append_column("_family", pa.array(pool.family)).append_column(
        "_variant", pa.array(pool.variant)).append_column("_hot", pa.array(pool.hot))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, path)


def load_pool(path: Path) -> Pool:
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    return Pool(conform(t.drop_columns(["_family", "_variant", "_hot"])), t.column("_family").to_numpy(),
                t.column("_variant").to_pylist(), t.column("_hot").to_numpy(zero_copy_only=False))


def conform(table: pa.Table) -> pa.Table:
    """`table` in FINGERPRINT_SCHEMA: a pool saved before a column was added gets it as nulls (the
    pool holds images, and columns added since, such as videos' keyframes, are null on images)."""
    from ..media import FINGERPRINT_SCHEMA

    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type) for f in FINGERPRINT_SCHEMA]
    return pa.Table.from_arrays(cols, schema=FINGERPRINT_SCHEMA)
