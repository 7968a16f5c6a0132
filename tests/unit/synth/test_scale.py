"""The synthetic catalog generator keeps planted pairs' verdicts and makes everything else unrelated."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from medialayer.candidates import candidate_pairs_in_memory, media_keys
from medialayer.sample_catalog import photo_paths
from medialayer.synth.scale import build_pool, load_pool, plan, planted_pairs, save_pool, synthesize
from medialayer.verification import pair_batch, verify_batch


@pytest.fixture(scope="module")
def pool(tmp_path_factory, cfg):
    work = tmp_path_factory.mktemp("pool")
    built = build_pool(photo_paths()[:3], cfg, work / "media", max_side=480, n_blank=2)
    save_pool(built, work / "pool.parquet")
    return load_pool(work / "pool.parquet")


def _scores(table: pa.Table, a, b, cfg) -> np.ndarray:
    out = verify_batch(pair_batch(table, np.asarray(a), np.asarray(b)), cfg, keep_below_record=True)
    return np.asarray(out.column("similarity").to_pylist())


def test_planted_pairs_verify_as_their_pool_pairs_do(pool, cfg):
    layout = plan(pool, 400, planted_share=0.3, hot_share=0.02, seed=3)
    table = synthesize(pool, layout, 0, 400, seed=11)
    assert table.num_rows == 400 and len(set(table.column("media_key").to_pylist())) == 400
    pairs = np.array(list(planted_pairs(layout)))
    assert len(pairs) >= 40
    synthetic = _scores(table, pairs[:, 0], pairs[:, 1], cfg)
    original = _scores(pool.table, layout.pool_row[pairs[:, 0]], layout.pool_row[pairs[:, 1]], cfg)
    np.testing.assert_allclose(synthetic, original, atol=1e-6)
    assert (synthetic >= cfg.matching.match_threshold).mean() > 0.5


def test_rows_under_different_masks_do_not_match(pool, cfg):
    layout = plan(pool, 300, planted_share=0.0, hot_share=0.0, seed=5)
    table = synthesize(pool, layout, 0, 300, seed=11)
    same_source = [(i, j) for i in range(300) for j in range(i + 1, 300)
                   if layout.pool_row[i] == layout.pool_row[j]][:200]
    assert len(same_source) >= 50            # the same real picture, under two masks
    a, b = np.array(same_source).T
    assert _scores(table, a, b, cfg).max() < cfg.matching.match_threshold
    # ... and the candidate join does not even pair most of them.
    keys = media_keys(table, cfg)
    ca, cb, _ = candidate_pairs_in_memory(keys, cfg.candidates)
    assert ca.size < 0.01 * 300 * 299 / 2


def test_hot_rows_share_buckets_and_chunks_agree(pool, cfg):
    layout = plan(pool, 200, planted_share=0.2, hot_share=0.1, seed=9)
    hot = np.flatnonzero(layout.group < 0)
    assert hot.size == 20
    whole = synthesize(pool, layout, 0, 200, seed=11)
    parts = pa.concat_tables([synthesize(pool, layout, s, s + 50, seed=11) for s in range(0, 200, 50)])
    assert whole.equals(parts)                 # masks depend on the group alone, not on the chunk
    ph = whole.column("phash").to_numpy()[hot]
    assert np.unique(ph).size <= 2             # unmasked near-blank pictures: the same hash again and again


def test_a_pool_saved_before_a_column_was_added_loads_with_it_as_nulls(pool, tmp_path):
    from medialayer.media import FINGERPRINT_SCHEMA

    old = pool.table.drop_columns(["kf_times", "kf_counts"])
    save_pool(type(pool)(old, pool.family, pool.variant, pool.hot), tmp_path / "old.parquet")
    loaded = load_pool(tmp_path / "old.parquet")
    assert loaded.table.schema == FINGERPRINT_SCHEMA
    assert loaded.table.column("kf_times").null_count == loaded.table.num_rows
    assert loaded.table.column("kp_desc").equals(pool.table.column("kp_desc"))
