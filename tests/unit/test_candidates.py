import numpy as np
import pytest

from medialayer.candidates import band_keys, band_positions, collision_probability
from medialayer.config import load_config


def _flip_bits(h: np.ndarray, n_bits: int, rng) -> np.ndarray:
    out = h.copy()
    for i in range(len(out)):
        for bit in rng.choice(64, n_bits, replace=False):
            out[i] ^= np.uint64(1) << np.uint64(bit)
    return out


def test_positions_are_deterministic_and_in_range():
    cfg = load_config().candidates.image
    p1, p2 = band_positions(cfg), band_positions(cfg)
    assert np.array_equal(p1, p2)
    assert p1.shape == (cfg.bands, cfg.bits_per_band)
    assert p1.min() >= 0 and p1.max() < 64


def test_identical_hashes_share_every_band_and_bands_do_not_mix():
    cfg = load_config().candidates.image
    pos = band_positions(cfg)
    h = np.array([0x0123456789ABCDEF, 0x0123456789ABCDEF], dtype=np.uint64)
    keys = band_keys(h, pos)
    assert np.array_equal(keys[0], keys[1])
    band_ids = keys.view(np.uint64) >> np.uint64(32)
    assert band_ids[0].tolist() == list(range(cfg.bands))


def test_band_buckets_are_the_sampled_bits_of_the_hashes():
    """Bucket bit k of band b is bit positions[b, k] of the hash (of the dHash from position 64 on),
    checked one bit at a time against the table lookups."""
    from dataclasses import replace

    rng = np.random.default_rng(12)
    ph = rng.integers(0, 2**64, size=40, dtype=np.uint64)
    dh = rng.integers(0, 2**64, size=40, dtype=np.uint64)
    for cfg, second in ((load_config().candidates.image, None),
                        (replace(load_config().candidates.image, bands=128, bits_per_band=24), dh)):
        pos = band_positions(cfg, 64 if second is None else 128)
        keys = band_keys(ph, pos, second).view(np.uint64)
        for i in range(ph.size):
            bits = int(ph[i]) | (0 if second is None else int(second[i]) << 64)
            for b in range(pos.shape[0]):
                want = sum(((bits >> int(p)) & 1) << k for k, p in enumerate(pos[b]))
                assert int(keys[i, b]) == (b << 32) | want


def test_measured_collision_rate_matches_the_formula():
    cfg = load_config().candidates.image
    pos = band_positions(cfg)
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, size=3000, dtype=np.uint64)
    for d in (4, 10, 32):
        near = _flip_bits(base, d, rng)
        shared = (band_keys(base, pos) == band_keys(near, pos)).any(axis=1).mean()
        assert abs(shared - collision_probability(d, cfg)) < 0.05, d


def test_bands_over_both_hashes_sample_their_joint_distance():
    # With dHash as positions 64-127, a band agrees as often as the 128-bit distance says: a copy
    # whose pHash is 16 bits off but whose dHash is close meets far more often than by pHash alone.
    from dataclasses import replace

    cfg = replace(load_config().candidates.image, with_dhash=True)
    pos, pos64 = band_positions(cfg, 128), band_positions(cfg)
    assert pos.min() >= 0 and pos.max() < 128 and (pos >= 64).any() and (pos < 64).any()
    rng = np.random.default_rng(4)
    ph = rng.integers(0, 2**63, size=3000, dtype=np.uint64)
    dh = rng.integers(0, 2**63, size=3000, dtype=np.uint64)
    ph_near, dh_near = _flip_bits(ph, 16, rng), _flip_bits(dh, 2, rng)
    joint = (band_keys(ph, pos, dh) == band_keys(ph_near, pos, dh_near)).any(axis=1).mean()
    assert abs(joint - collision_probability(18, cfg, nbits=128)) < 0.05
    alone = (band_keys(ph, pos64) == band_keys(ph_near, pos64)).any(axis=1).mean()
    assert joint > alone + 0.2, (joint, alone)
    # Unrelated pairs stay apart.
    other = rng.integers(0, 2**63, size=3000, dtype=np.uint64)
    assert (band_keys(ph, pos, dh) == band_keys(other, pos, other[::-1])).any(axis=1).mean() < 0.01


def test_default_layout_finds_near_duplicates_and_rejects_random_pairs():
    cfg = load_config().candidates.image
    assert collision_probability(8, cfg) > 0.97      # recompress/resize/mirror/watermark territory
    assert collision_probability(32, cfg) < 0.001    # unrelated hashes


# --- the full key set of real fingerprints, and the join semantics --------------------------------

def test_heavy_crops_screenshots_and_mirrors_become_candidates(photos, cfg, fingerprinted):
    from medialayer.candidates import candidate_pairs_in_memory, image_keys
    from medialayer.synth.edits import crop_heavy, mirror, screenshot

    rng = np.random.default_rng(11)
    subjects = [photos[k] for k in (0, 1, 2, 4, 5, 6)]
    copies = []
    for img in subjects:
        copies += [crop_heavy(img, rng), screenshot(img, rng), mirror(crop_heavy(img, rng), rng)]
    table = fingerprinted(subjects + copies, cfg, "i", quality=88)
    keys = image_keys(table, cfg.candidates)
    a, b, _ = candidate_pairs_in_memory(keys, cfg.candidates)
    pairs = set(zip(a.tolist(), b.tolist()))
    n = len(subjects)
    expected = {(s, n + 3 * s + c) for s in range(n) for c in range(3)}
    found = len(expected & pairs) / len(expected)
    assert found >= 0.8, sorted(expected - pairs)


def test_hash_bands_alone_keep_unrelated_photos_apart(photos, cfg, fingerprinted):
    """Keypoint words are selective only through the common-word cap, which needs a catalog-sized
    corpus; the hash bands are selective on their own."""
    from medialayer.candidates import candidate_pairs_in_memory, image_keys

    bands_only = cfg.with_overrides({"candidates": {"local": {"keypoints": 0}}})
    table = fingerprinted(photos, bands_only, "i", quality=88)
    a, _, _ = candidate_pairs_in_memory(image_keys(table, bands_only.candidates), bands_only.candidates)
    n = len(photos)
    assert len(a) <= 0.02 * n * (n - 1) / 2      # textures (brick, gravel, grass) may share a band


def test_bands_over_both_hashes_find_watermarked_copies_and_keep_unrelated_photos_apart(photos, cfg, fingerprinted):
    """candidates.image.with_dhash (the default) through real fingerprints: bands alone (no keypoint
    words) still find watermarked and bannered copies, and stay selective between different photos."""
    from medialayer.candidates import candidate_pairs_in_memory, image_keys
    from medialayer.synth.edits import text_overlay, watermark

    joint = cfg.with_overrides({"candidates": {"local": {"keypoints": 0}, "image": {"with_dhash": True}}})
    rng = np.random.default_rng(5)
    subjects = [photos[k] for k in (0, 1, 2, 4, 5, 6)]
    copies = [edit(img, rng) for img in subjects for edit in (watermark, text_overlay)]
    table = fingerprinted(subjects + copies, joint, "j", quality=88)
    keys = image_keys(table, joint.candidates)
    assert not np.array_equal(np.sort(keys.key), np.sort(image_keys(table, cfg.with_overrides(
        {"candidates": {"local": {"keypoints": 0}, "image": {"with_dhash": False}}}).candidates).key))  # other bits
    a, b, _ = candidate_pairs_in_memory(keys, joint.candidates)
    pairs = set(zip(a.tolist(), b.tolist()))
    n = len(subjects)
    expected = {(s, n + 2 * s + c) for s in range(n) for c in range(2)}
    assert len(expected & pairs) >= 0.8 * len(expected), sorted(expected - pairs)
    unrelated = {(i, j) for i in range(n) for j in range(i + 1, n)}
    assert not (unrelated & pairs)


def test_bands_over_both_hashes_refuse_a_batch_without_dhash(photos, cfg, fingerprinted):
    """Keys made from the pHash alone would never meet the catalog's keys over both hashes: a batch
    without the dHash columns is refused, naming them, rather than keyed differently."""
    from medialayer.candidates import image_keys

    table = fingerprinted(photos[:2], cfg, "i", quality=88)
    partial = table.drop_columns(["region_dhash", "region_dhash_mirror"])
    with pytest.raises(ValueError, match="region_dhash, region_dhash_mirror"):
        image_keys(partial, cfg.candidates)
    phash_only = cfg.with_overrides({"candidates": {"image": {"with_dhash": False}}}).candidates
    assert image_keys(partial, phash_only).key.size > 0


def test_mirrored_keys_serve_only_the_index_side(photos, cfg, fingerprinted):
    from medialayer.candidates import image_keys

    table = fingerprinted(photos[:2], cfg, "i", quality=88)
    keys = image_keys(table, cfg.candidates)
    assert keys.query.any() and (~keys.query).any()
    assert set(keys.row.tolist()) == {0, 1}
    # Words carry the flag bit, band keys never do, so the two kinds cannot collide.
    from medialayer.candidates import WORD_FLAG
    assert ((keys.key[keys.word] & WORD_FLAG) != 0).all()
    assert ((keys.key[~keys.word] & WORD_FLAG) == 0).all()


def test_mirrored_keys_asked_instead_of_offered(photos, cfg, fingerprinted):
    """mirrors_indexed=False: the mirrored keys (bands and words) move to the query side with their
    probes, and the indexed keys are exactly the straight ones."""
    from medialayer.candidates import image_keys

    table = fingerprinted(photos[:2], cfg, "i", quality=88)
    offered = image_keys(table, cfg.candidates)
    asked = image_keys(table, cfg.candidates, mirrors_indexed=False)

    def keyset(k, mask):
        return set(zip(k.row[mask].tolist(), k.key[mask].tolist()))

    only_mirrored = keyset(offered, offered.indexed & ~offered.query)     # offered, never asked
    assert only_mirrored and only_mirrored <= keyset(asked, asked.query & ~asked.indexed)
    assert keyset(asked, asked.indexed) < keyset(offered, offered.indexed)
    assert not (asked.indexed & ~asked.query).any()                 # every offered key is a straight one, asked too
    assert keyset(offered, offered.query | offered.indexed) <= keyset(asked, asked.query)
    # The mirrored words' probes: asked keys beyond everything the offering scheme makes.
    extra = keyset(asked, asked.query) - keyset(offered, offered.query | offered.indexed)
    assert extra and asked.word[np.isin(asked.key, [k for _, k in extra])].all()


def test_offer_only_keys_are_exactly_the_offered_ones(photos, cfg, fingerprinted):
    """offer_only (old media of an incremental run) makes the same indexed keys as the full set, and
    none that only ask, in either mirror scheme; with video frame keys too."""
    from medialayer.candidates import media_keys

    table = fingerprinted(photos[:2], cfg, "o", quality=88)

    def keyset(k, mask):
        return set(zip(k.row[mask].tolist(), k.key[mask].tolist()))

    for mirrors_indexed in (True, False):
        full = media_keys(table, cfg, image_frames=True, mirrors_indexed=mirrors_indexed)
        offer = media_keys(table, cfg, image_frames=True, mirrors_indexed=mirrors_indexed, offer_only=True)
        assert keyset(offer, offer.indexed) == keyset(full, full.indexed)
        assert offer.indexed.all() and offer.row.size < 0.8 * full.row.size


def test_common_words_are_skipped_and_counted(cfg):
    from medialayer.candidates import ImageKeys, candidate_pairs_in_memory

    n = cfg.candidates.local.max_bucket_size + 5
    rows = np.arange(n, dtype=np.int64)
    common = np.full(n, 7, dtype=np.int64) | (np.int64(1) << np.int64(62))
    keys = ImageKeys(rows, common, np.ones(n, dtype=bool), np.ones(n, dtype=bool))
    a, b, oversized = candidate_pairs_in_memory(keys, cfg.candidates)
    assert len(a) == 0 and oversized == 1


def test_orientation_bins_and_their_neighbour_probe():
    from medialayer.candidates import angle_bins

    exact, probe = angle_bins(np.array([1.0, 29.0, 359.0, 185.0, 195.0, 190.0]), 12)     # 30-degree bins
    assert exact.tolist() == [0, 0, 11, 6, 6, 6]
    assert probe.tolist() == [11, 1, 0, 5, 7, 5]    # the neighbour on the nearer side, wrapping round
    # A margin of a quarter bin (7.5 degrees) probes only keypoints that near an edge.
    _, near = angle_bins(np.array([1.0, 29.0, 359.0, 185.0, 195.0, 190.0]), 12, 0.25)
    assert near.tolist() == [11, 1, 0, 5, -1, -1]


def test_a_probe_margin_probes_only_keypoints_near_a_bin_edge(photos, cfg, fingerprinted):
    from medialayer.candidates import image_keys
    from medialayer.fingerprints.local import unpack_angles

    table = fingerprinted(photos[:2], cfg, "i", quality=88)
    counts = {}
    for margin in (0.5, 0.25, 0.0):
        c = cfg.with_overrides({"candidates": {"local": {"angle_probe_margin": margin}}}).candidates
        keys = image_keys(table, c)
        counts[margin] = int((keys.query & ~keys.indexed).sum())
        stored = int((keys.word & keys.indexed & keys.query).sum())
    lw = cfg.candidates.local
    angles = [unpack_angles(b)[:lw.keypoints] for b in table.column("kp_angle").to_pylist()]
    frac = np.concatenate(angles) / (360.0 / lw.angle_bins) % 1.0
    quarter = int((np.minimum(frac, 1 - frac) < 0.25).sum()) * lw.tables
    # Every keypoint probes at 0.5 (a probe word equal to a stored word of the image merges with
    # it, hence not quite all), a quarter-bin margin about half of them, none at 0.
    assert counts[0.5] > 0.9 * stored
    assert abs(counts[0.25] - quarter) <= 0.02 * quarter and 0.35 * counts[0.5] < counts[0.25] < 0.65 * counts[0.5]
    assert counts[0.0] == 0


def test_probe_keys_are_asked_but_never_stored(photos, cfg, fingerprinted):
    from medialayer.candidates import image_keys

    keys = image_keys(fingerprinted(photos[:2], cfg, "i", quality=88), cfg.candidates)
    probes = keys.query & ~keys.indexed
    mirrored = ~keys.query & keys.indexed
    assert probes.any() and mirrored.any()
    assert keys.word[probes].all()                  # only keypoint words are probed
    straight_stored = set(keys.key[keys.indexed & keys.query & (keys.row == 0)].tolist())
    assert not straight_stored & set(keys.key[probes & (keys.row == 0)].tolist())


def test_video_excerpts_voice_overs_and_frame_grabs_become_candidates(av_clips, cfg, tmp_path):
    """A 10 s cropped excerpt, a sped-up voice-over and a grabbed frame all meet the 40 s source
    through the join keys alone (no all-pairs comparison)."""
    import cv2

    from medialayer.candidates import KIND_FRAME, KIND_LANDMARK, candidate_pairs_in_memory, media_keys
    from medialayer.fetching import Fetcher
    from medialayer.media import fingerprint_table
    from medialayer.synth import av as synth_av

    fps, sr, demo = av_clips["fps"], av_clips["sr"], av_clips["demo"]
    excerpt = synth_av.encode_video(tmp_path / "ex.mp4",
                                    synth_av.crop_frames(synth_av.retime(demo["frames"], fps, 20, 30), 0.9), fps,
                                    codec="mpeg4")
    voice = synth_av.encode_audio(tmp_path / "vo.mp3", synth_av.change_speed(demo["sound"][5 * sr:15 * sr], 1.03), sr)
    grab = tmp_path / "grab.jpg"
    cv2.imwrite(str(grab), cv2.cvtColor(demo["frames"][333], cv2.COLOR_RGB2BGR))
    urls = [str(demo["path"]), str(av_clips["other"]["path"]), str(excerpt), str(voice), str(grab)]
    table = fingerprint_table(urls, [None] * len(urls), cfg, Fetcher(cfg.fetch, trusted_local=True))
    keys = media_keys(table, cfg)
    assert (keys.kind[keys.row == 2] == KIND_FRAME).any() and (keys.kind[keys.row == 3] == KIND_LANDMARK).all()
    a, b, _ = candidate_pairs_in_memory(keys, cfg.candidates, query_rows=np.array([2, 3, 4]))
    pairs = set(zip(a.tolist(), b.tolist()))
    assert {(0, 2), (0, 3), (0, 4)} <= pairs, pairs
    # Without videos to meet, an image needs no frame keys (the batch job leaves them out then).
    no_frames = media_keys(table, cfg, image_frames=False)
    assert not (no_frames.kind[no_frames.row == 4] == KIND_FRAME).any()
    assert (keys.kind[keys.row == 4] == KIND_FRAME).any()


def test_distinct_keys_count_a_media_once_per_key_and_merge_its_flags():
    from medialayer.candidates import ImageKeys, distinct_keys

    rows = np.array([0, 0, 1, 0, 1], dtype=np.int64)
    keys = np.array([5, 5, 5, 9, 5], dtype=np.int64)
    query = np.array([True, False, False, False, False])
    indexed = np.array([False, True, True, True, True])
    row, key, q, ix, kind = distinct_keys(ImageKeys(rows, keys, query, np.zeros(5, dtype=bool), indexed))
    got = {(int(r), int(k)): (bool(a), bool(b)) for r, k, a, b in zip(row, key, q, ix)}
    assert got == {(0, 5): (True, True), (0, 9): (False, True), (1, 5): (False, True)}
    assert kind.shape == row.shape


def test_a_cropped_frame_grab_meets_its_video_through_keyframe_words(av_clips, cfg, tmp_path):
    """Keyframe words count per keyframe (pseudo rows): the grab meets its own video, and a video's
    thousands of words together do not meet an unrelated one by chance."""
    import cv2

    from medialayer.candidates import KIND_WORD, ImageKeys, candidate_pairs_in_memory, media_keys, real_rows
    from medialayer.fetching import Fetcher
    from medialayer.media import fingerprint_table

    frame = av_clips["demo"]["frames"][274]
    h, w = frame.shape[:2]
    grab = tmp_path / "grab.jpg"                    # the left 3/4 and top 4/5 of a frame, resized
    cv2.imwrite(str(grab), cv2.cvtColor(cv2.resize(np.ascontiguousarray(frame[: int(h * 0.8), : int(w * 0.75)]),
                                                   (600, 480)), cv2.COLOR_RGB2BGR))
    urls = [str(av_clips["demo"]["path"]), str(av_clips["other"]["path"]), str(grab)]
    table = fingerprint_table(urls, [None] * len(urls), cfg, Fetcher(cfg.fetch, trusted_local=True))
    keys = media_keys(table, cfg)
    words = keys.kind == KIND_WORD
    video_words = words & (keys.row < 0)
    assert set(real_rows(keys.row[video_words]).tolist()) == {0, 1}
    for video in (0, 1):                            # each distinct word once per video (buckets count media)
        mine = keys.key[video_words & (real_rows(keys.row) == video)]
        assert mine.size > 500 and np.unique(mine).size == mine.size
    only_words = ImageKeys(*(getattr(keys, f)[words] for f in ("row", "key", "query", "word", "indexed", "kind")))
    a, b, _ = candidate_pairs_in_memory(only_words, cfg.candidates, query_rows=np.array([2]))
    assert set(zip(a.tolist(), b.tolist())) == {(0, 2)}


def test_bucket_hits_over_key_partitions_equal_the_in_memory_join(cfg):
    """The Spark stage's per-partition join (bucket_hits), summed over partitions split by key,
    gives the in-memory join's pairs and oversized buckets, on keys with every flag combination."""
    from medialayer.candidates import (KIND_BAND, KIND_FRAME, KIND_WORD, ImageKeys, bucket_hits,
                                       candidate_pairs_in_memory, distinct_keys, kind_rules, pairs_meeting_rules)

    rng = np.random.default_rng(3)
    c = cfg.with_overrides({"candidates": {"max_bucket_size": 6, "local": {"max_bucket_size": 4, "min_shared": 3},
                                           "video": {"min_shared": 2}}}).candidates
    rules = kind_rules(c)
    n_rows, n_media = 6000, 60
    kind = rng.choice([KIND_BAND, KIND_WORD, KIND_FRAME], n_rows).astype(np.int8)
    # Few distinct keys per kind, so buckets hold several media and some overflow their cap.
    key = rng.integers(0, 400, n_rows) | (kind.astype(np.int64) << np.int64(56))
    row = rng.integers(0, n_media, n_rows)
    query, indexed = rng.random(n_rows) < 0.6, rng.random(n_rows) < 0.7
    indexed[~query & ~indexed] = True
    r, k, q, i, kd = distinct_keys(ImageKeys(row, key, query, np.zeros(n_rows, bool), indexed, kind))
    # Each media's band rows carry its hashes: media of one family lie a few bits apart, families
    # lie far apart, so the band distance rule drops the meetings across families.
    family = rng.integers(0, 12, n_media)
    near = lambda base: base[family] ^ (np.int64(1) << rng.integers(0, 63, n_media))   # noqa: E731
    ph_m, dh_m = near(rng.integers(0, 1 << 62, 12)), near(rng.integers(0, 1 << 62, 12))
    ph, dh = np.where(kd == KIND_BAND, ph_m[r], 0), np.where(kd == KIND_BAND, dh_m[r], 0)
    a, b, n_over = candidate_pairs_in_memory(ImageKeys(r, k, q, kd == KIND_WORD, i, kd, ph, dh), c)
    want = set(zip(a.tolist(), b.tolist()))
    a0, b0, _ = candidate_pairs_in_memory(ImageKeys(r, k, q, kd == KIND_WORD, i, kd), c)
    dropped = set(zip(a0.tolist(), b0.tolist())) - want
    assert len(dropped) > 20 and want <= set(zip(a0.tolist(), b0.tolist()))
    assert all(family[x] != family[y] for x, y in dropped)

    part = (k * 7919) % 5                       # five partitions, each holding all rows of its keys
    hits = [bucket_hits(k[part == p], r[part == p], q[part == p], i[part == p], kd[part == p], rules,
                        ph[part == p], dh[part == p], c.image.max_distance)
            for p in range(5)]
    counts: dict = {}
    for h in hits:
        for x, y, kk, n in zip(h.x.tolist(), h.y.tolist(), h.kind.tolist(), h.n.tolist()):
            assert x < y
            counts[(x, y, kk)] = counts.get((x, y, kk), 0) + n
    got = {(x, y) for (x, y, kk), n in counts.items() if n >= rules[kk][0]}
    assert got == want and len(want) > 20
    # The Spark stage's second step sums each pair's hits from every partition the same way.
    px, py, words = pairs_meeting_rules(*(np.concatenate([getattr(h, f) for h in hits]) for f in ("x", "y", "kind", "n")),
                                        rules)
    assert set(zip(px.tolist(), py.tolist())) == want and len(px) == len(want)
    assert words.tolist() == [sum(n for (x, y, kk), n in counts.items() if (x, y) == pair and kk == KIND_WORD)
                              for pair in zip(px.tolist(), py.tolist())]
    assert sum(h.over_key.size for h in hits) == n_over > 0
    assert all((h.over_size > np.array([rules[kk][1] for kk in h.over_kind.tolist()], dtype=np.int64)).all()
               for h in hits if h.over_key.size)


def test_a_band_meeting_counts_only_between_near_hashes():
    """pHash plus dHash bits apart, out of 128, against candidates.image.max_distance; hashes with
    the sign bit set count like any other (numpy counts a negative int64's absolute value)."""
    from medialayer.candidates import band_meeting_near

    base = np.array([-5697386930534658231, 0x0123456789ABCDEF, -1], dtype=np.int64)
    # n top bits flipped: the XOR has the sign bit set
    flip = lambda x, n: x ^ np.array([((1 << n) - 1) << (64 - n)], dtype=np.uint64).view(np.int64)[0]  # noqa: E731
    assert band_meeting_near(base, base, flip(base, 16), base, 0.30).all()             # 16 bits
    assert band_meeting_near(base, base, flip(base, 20), flip(base, 18), 0.30).all()   # 38 = floor(0.30 * 128)
    assert not band_meeting_near(base, base, flip(base, 20), flip(base, 19), 0.30).any()
    assert band_meeting_near(base, base, ~base, ~base, -1).all()                       # off
    assert not band_meeting_near(base, base, ~base, base, 0.30).any()


def test_descriptor_words_sample_the_bits_np_unpackbits_numbers():
    from medialayer.fingerprints.local import descriptor_words, word_tables

    rng = np.random.default_rng(8)
    desc = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    for n_tables, bits in ((4, 22), (3, 40), (16, 8)):
        tables = word_tables(n_tables, bits, 77)
        bitmat = np.unpackbits(desc, axis=1)                         # (n, 256), bit p of the descriptor
        want = np.zeros((desc.shape[0], n_tables), dtype=np.int64)
        for t in range(n_tables):
            for k, p in enumerate(tables[t]):
                want[:, t] |= bitmat[:, p].astype(np.int64) << k
            want[:, t] |= np.int64(t) << np.int64(40)
        assert np.array_equal(descriptor_words(desc, tables), want)
    assert descriptor_words(desc[:0], word_tables(4, 22, 77)).shape == (0, 4)


def _emitted(row, key, query, indexed, word, ph, dh) -> dict:
    """Per-row keys as image_keys emits them: groups of one kind and one pair of flags."""
    out: dict = {False: [], True: []}
    for w in (False, True):
        for q in (False, True):
            for i in (False, True):
                m = (word == w) & (query == q) & (indexed == i)
                if m.any():
                    out[w].append((row[m], key[m], q, i, None if w else ph[m], None if w else dh[m]))
    return out


def test_image_keys_fast_dedupe_equals_the_general_one():
    """image_keys' packed sort gives what distinct_keys gives: each (row, key) once, flags OR-ed,
    for words (table and orientation bin moved and restored) and bands alike."""
    from medialayer.candidates import WORD_FLAG, ImageKeys, _distinct_image_keys, distinct_keys

    rng = np.random.default_rng(4)
    n = 20000
    word = rng.random(n) < 0.7
    sampled = rng.integers(0, 1 << 22, n // 50)[rng.integers(0, n // 50, n)]   # repeats on purpose
    key = np.where(word, WORD_FLAG | (rng.integers(0, 4, n) << 40) | (rng.integers(0, 12, n) << 44) | sampled,
                   (rng.integers(0, 64, n) << 32) | (sampled & 0xFFFF))
    row = rng.integers(0, 300, n)
    query, indexed = rng.random(n) < 0.5, rng.random(n) < 0.5
    indexed[~query] = True
    # A band row carries its hashes (here a function of (row, key), so every copy carries the same).
    ph = np.where(word, 0, key ^ (row << 20))
    dh = ph * 3
    fast = _distinct_image_keys(_emitted(row, key, query, indexed, word, ph, dh), 22)
    r, k, q, i, kind = distinct_keys(ImageKeys(row, key, query, word, indexed))
    order = np.lexsort((fast.row, fast.key))
    assert r.size < n
    want_ph = np.where(kind == 0, k ^ (r << 20), 0)
    for got, want in ((fast.row, r), (fast.key, k), (fast.query, q), (fast.indexed, i), (fast.kind, kind),
                      (fast.ph, want_ph), (fast.dh, want_ph * 3)):
        assert np.array_equal(got[order], want)
    # Rows past what packs fall back to the general sort, with the same result.
    slow = _distinct_image_keys(_emitted(row + (1 << 16), key, query, indexed, word, ph, dh), 22)
    order = np.lexsort((slow.row, slow.key))
    assert np.array_equal(slow.row[order], r + (1 << 16))
    assert np.array_equal(slow.ph[order], want_ph) and np.array_equal(slow.dh[order], want_ph * 3)
    # One band key reached from two hashes (say frame and region) stays once per hash, flags merged
    # only between copies of one hash: each meeting is judged by the hash that made it.
    two = _distinct_image_keys(_emitted(np.zeros(3, np.int64), np.full(3, 5, np.int64), np.array([True, False, False]),
                                        np.ones(3, bool), np.zeros(3, bool), np.array([7, 9, 7]), np.array([1, 1, 1])),
                               22)
    assert sorted(zip(two.ph.tolist(), two.query.tolist())) == [(7, True), (9, False)]


def test_count_pairs_sums_each_triple_once(monkeypatch):
    from medialayer import search_keys
    from medialayer.candidates import count_pairs

    rng = np.random.default_rng(6)
    x, y = rng.integers(0, 30, 5000), rng.integers(30, 60, 5000)
    kind, n = rng.integers(0, 3, 5000).astype(np.int8), rng.integers(1, 4, 5000)
    want: dict = {}
    for t in zip(x.tolist(), y.tolist(), kind.tolist(), n.tolist()):
        want[t[:3]] = want.get(t[:3], 0) + t[3]
    for hashed in (True, False):
        if not hashed:      # every triple under one hash: the exact fallback must give the same sums
            monkeypatch.setattr(search_keys, "key_hash", lambda k, r: np.zeros(np.asarray(k).shape, np.uint64))
        cx, cy, ck, cn = count_pairs(x, y, kind, n)
        assert dict(zip(zip(cx.tolist(), cy.tolist(), ck.tolist()), cn.tolist())) == want
        assert len(cx) == len(want)


def test_companion_pairs_join_the_neighbours_of_small_hubs_only():
    from medialayer.candidates import companion_pairs

    # 0 matches 1, 2, 3 (a photo and three edits); 5 matches 6 and 7; 9 matches 10 only; 20 is a hub
    # matching 21..40.
    x = np.array([0, 0, 0, 5, 7, 9] + [20] * 20)
    y = np.array([1, 2, 3, 6, 5, 10] + list(range(21, 41)))
    a, b = companion_pairs(x, y, max_degree=16)
    assert sorted(zip(a.tolist(), b.tolist())) == [(1, 2), (1, 3), (2, 3), (6, 7)]
    a, b = companion_pairs(x, y, max_degree=20)                       # the hub now counts
    assert len(a) == 4 + 190 and (a < b).all()
    a, b = companion_pairs(x, y, max_degree=2)
    assert list(zip(a.tolist(), b.tolist())) == [(6, 7)]
    assert companion_pairs(x, y, max_degree=0)[0].size == 0


def test_companion_pairs_leave_out_verified_pairs_and_pairs_of_old_media():
    from medialayer.candidates import companion_pairs

    x, y = np.array([0, 0, 0, 0]), np.array([1, 2, 3, 4])
    a, b = companion_pairs(x, y, 16, seen=(np.array([2, 4]), np.array([1, 3])))   # either order
    assert sorted(zip(a.tolist(), b.tolist())) == [(1, 3), (1, 4), (2, 3), (2, 4)]
    new = np.zeros(5, dtype=bool)
    new[4] = True
    a, b = companion_pairs(x, y, 16, new=new)
    assert sorted(zip(a.tolist(), b.tolist())) == [(1, 4), (2, 4), (3, 4)]
