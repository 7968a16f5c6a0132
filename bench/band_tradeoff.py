"""What a hash band layout costs and buys at catalog scale, computed on the scale pool (no Spark).

For every true pair of the pool (real photographs and their edits that verify as matches), and for
each (bands, bits_per_band) layout: the probability that the pair becomes a candidate, from the
keypoint words (counted exactly with the configured word keys) or from any band of any of its
(query hash, indexed hash) pairings (the exact bit-sampling formula at each pairing's distance).
Beside it, the expected chance candidates: unrelated hashes agree on a band with probability
2^-bits, and each image pair has about `pairings` hash pairings, so a catalog of N media gets
about N^2/2 * pairings * bands * 2^-bits of them: the join's volume, which is what grows as N^2.

    .venv/bin/python bench/band_tradeoff.py            # builds bench-scale's pool if missing (a few minutes)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import pool, pool_truth  # noqa: E402

from medialayer.candidates import (KIND_WORD, ImageKeys, band_meeting_near,  # noqa: E402
                                  candidate_pairs_in_memory, collision_probability, image_keys)
from medialayer.config import BandConfig, load_config  # noqa: E402
from medialayer.fingerprints.bits import to_unsigned  # noqa: E402

LAYOUTS = [(64, 16), (48, 18), (64, 18), (64, 20), (96, 20), (128, 22), (128, 24), (0, 0)]
QUERY = ("phash", "region_phash")
INDEXED = ("phash", "phash_mirror", "region_phash", "region_phash_mirror")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conf", default=None, help="a conf overlay (for example conf/scale.yaml)")
    ap.add_argument("--keypoints", type=int, default=None, help="candidates.local.keypoints")
    args = ap.parse_args(argv)
    cfg = load_config(args.conf)
    p = pool(cfg)
    truth = pool_truth(p, cfg)              # what verifies does not depend on the candidate keys
    if args.keypoints is not None:
        cfg = cfg.with_overrides({"candidates": {"local": {"keypoints": args.keypoints}}})
    pairs = sorted({(i, j) for (i, j), m in truth.items() if m and i < j})
    t = p.table
    keys = image_keys(t, cfg.candidates)
    words_only = keys.kind == KIND_WORD
    wk = ImageKeys(keys.row[words_only], keys.key[words_only], keys.query[words_only], keys.word[words_only],
                   keys.indexed[words_only], keys.kind[words_only])
    a, b, _ = candidate_pairs_in_memory(wk, cfg.candidates)
    by_words = set(zip(a.tolist(), b.tolist()))

    has_region = np.asarray(t.column("region").is_valid())
    columns = INDEXED + tuple(c.replace("phash", "dhash") for c in INDEXED)
    h = {c: to_unsigned(t.column(c).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)) for c in columns}
    valid = {c: has_region if c.startswith("region") else np.ones(t.num_rows, bool) for c in INDEXED}
    ii = np.array([i for i, _ in pairs])
    jj = np.array([j for _, j in pairs])
    # Bands sample the pHash's 64 bits, or with candidates.image.with_dhash pHash and dHash's 128;
    # either way the join keeps a meeting only when the two hashes (pHash + dHash) that met lie
    # within max_distance of their 128 bits.
    image_bands = cfg.candidates.image
    nbits = 128 if image_bands.with_dhash else 64
    limit = image_bands.max_distance * 128 if image_bands.max_distance >= 0 else np.inf   # for the printout
    dists = []                                  # one (n_pairs,) distance array per pairing, inf when absent
    for x, y in ((ii, jj), (jj, ii)):
        for qc in QUERY:
            for ic in INDEXED:
                qd, idh = qc.replace("phash", "dhash"), ic.replace("phash", "dhash")
                dp = np.bitwise_count(h[qc][x] ^ h[ic][y]).astype(np.float64)
                d = dp + np.bitwise_count(h[qd][x] ^ h[idh][y]) if image_bands.with_dhash else dp
                near = band_meeting_near(*(h[c][s].view(np.int64) for c, s in ((qc, x), (qd, x), (ic, y), (idh, y))),
                                         image_bands.max_distance)
                d[~(valid[qc][x] & valid[ic][y]) | ~near] = np.inf
                dists.append(d)
    dists = np.stack(dists, 1)
    word = np.array([(i, j) in by_words for i, j in pairs])
    per_image_keys = {c: valid[c].mean() for c in INDEXED}
    n_query_hashes = per_image_keys["phash"] + per_image_keys["region_phash"]
    n_indexed_hashes = sum(per_image_keys.values())
    # Unrelated image pair (either direction): query hashes of one x indexed hashes of the other.
    chance_pairings = 2 * n_query_hashes * n_indexed_hashes

    n_words = int(((keys.kind == KIND_WORD) & keys.query).sum() + ((keys.kind == KIND_WORD) & keys.indexed).sum())
    print(f"pool: {t.num_rows} fingerprints, {len(pairs):,} true pairs; keypoint words "
          f"({cfg.candidates.local.keypoints} keypoints, {n_words / t.num_rows:.0f} word keys per image) alone "
          f"make {word.mean():.3f} of them candidates; {chance_pairings:.1f} hash pairings per image pair")
    # Unrelated images' words (uniform, as the synthetic catalogs' masked descriptors are) meet in a
    # bucket with probability q * i / keyspace: each such meeting is a row the join counts.
    lw = cfg.candidates.local
    q_words = ((keys.kind == KIND_WORD) & keys.query).sum() / t.num_rows
    i_words = ((keys.kind == KIND_WORD) & keys.indexed).sum() / t.num_rows
    lam = 2 * q_words * i_words / (2.0 ** lw.bits * lw.tables * max(1, lw.angle_bins))
    p_chance = 1 - sum(np.exp(-lam) * lam ** k / np.prod(range(1, k + 1)) for k in range(lw.min_shared))
    print(f"words of unrelated images: {lam:.2e} shared per pair; at 1M media {lam * 5e11:.2g} chance word "
          f"meetings, {p_chance * 5e11:.2g} chance pairs with {lw.min_shared}+ words (if words were independent; an "
          f"image's descriptors are alike, so real chance pairs are many more: conf/scale.yaml)")
    print(f"\nbands over {'pHash and dHash (128 bits)' if image_bands.with_dhash else 'pHash (64 bits)'}, meetings "
          f"kept within {limit:g} bits of both hashes")
    print(f"{'bands x bits':>12s} {'band keys/img':>13s} {'recall bands':>12s} {'recall any':>10s} "
          f"{'chance pairs at 1M':>18s} {'at 100k':>10s}")
    for bands, bits in LAYOUTS:
        if bands == 0:
            p_band = np.zeros(len(pairs))
            chance = 0.0
        else:
            miss = np.ones(len(pairs))
            for k in range(dists.shape[1]):
                d = dists[:, k]
                ok = np.isfinite(d)
                miss[ok] *= 1 - collision_probability(d[ok], BandConfig(bands, bits, 0), nbits)
            p_band = 1 - miss
            chance = chance_pairings * bands * 2.0 ** -bits
        recall_any = np.where(word, 1.0, p_band).mean()
        keys_per_image = bands * (n_indexed_hashes + n_query_hashes)
        label = f"{bands} x {bits}" if bands else "words only"
        print(f"{label:>12s} {keys_per_image:13.0f} {p_band.mean():12.3f} {recall_any:10.3f} "
              f"{chance * 1e12 / 2:18.3g} {chance * 1e10 / 2:10.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
