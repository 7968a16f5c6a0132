import numpy as np
import pyarrow as pa

from medialayer.fetching import Fetcher
from medialayer.media import fingerprint_table
from medialayer.synth.edits import recompress
from medialayer.verification import PREFILTER_COLUMNS, global_prefilter, pair_batch, verify_batch


def test_global_prefilter_keeps_hash_copies_and_drops_strangers(photos, cfg, tmp_path):
    """Pairs without shared keypoint words go on to keypoint matching only when their global hashes
    already score record_threshold; the prefilter must agree with full verification on those."""
    rng = np.random.default_rng(3)
    images = [photos[0], recompress(photos[0], rng), photos[7], photos[12]]
    paths = []
    for k, img in enumerate(images):
        p = tmp_path / f"p{k}.jpg"
        img.save(p, quality=90)
        paths.append(str(p))
    table = fingerprint_table(paths, ["image"] * 4, cfg, Fetcher(cfg.fetch, trusted_local=True))
    a, b = np.array([0, 0, 2]), np.array([1, 2, 3])
    full = pair_batch(table, a, b)
    slim = full.select([f"{c}_{s}" for s in "ab" for c in PREFILTER_COLUMNS])
    keep = global_prefilter(slim, cfg)
    assert keep.tolist() == [True, False, False]
    verified = verify_batch(full, cfg, keep_below_record=True).column("similarity").to_numpy()
    assert verified[0] >= cfg.matching.record_threshold

    # A pair with a video or audio side is never decided by image hashes.
    video = slim.set_column(slim.schema.get_field_index("media_type_b"), "media_type_b",
                            pa.array(["video"] * 3))
    assert global_prefilter(video, cfg).all()
