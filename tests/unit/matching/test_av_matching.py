"""Video, audio and frame-grab matching on real photographs made into clips: every edit a seller
makes to a copied clip still matches, with segment boundaries within a second; unrelated clips do not."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from medialayer.decoding.av import decode_av
from medialayer.fingerprints.audio import spectral_peaks
from medialayer.fingerprints.video import frame_hashes
from medialayer.matching.av import match_audio, match_video
from medialayer.pairwise import match
from medialayer.synth import av as synth_av

START, END = 12.0, 24.0          # the excerpt sellers copy, in the source's seconds


def _video_print(path, cfg):
    d = decode_av(open(path, "rb").read(), "video", cfg.video, cfg.audio)
    return frame_hashes(d.frame_times, d.frames, cfg.video), spectral_peaks(d.audio, cfg.audio)


@pytest.fixture(scope="module")
def references(av_clips, cfg):
    return {name: _video_print(av_clips[name]["path"], cfg) for name in ("demo", "other")}


VIDEO_EDITS = {
    "excerpt": lambda f, fps: synth_av.retime(f, fps, START, END),
    "crop_90": lambda f, fps: synth_av.crop_frames(synth_av.retime(f, fps, START, END), 0.9),
    "crop_80": lambda f, fps: synth_av.crop_frames(synth_av.retime(f, fps, START, END), 0.8),
    "half_size": lambda f, fps: synth_av.scale_frames(synth_av.retime(f, fps, START, END), 0.5),
    "letterbox": lambda f, fps: synth_av.letterbox_frames(synth_av.retime(f, fps, START, END)),
    "logo": lambda f, fps: synth_av.logo_frames(synth_av.retime(f, fps, START, END)),
    "faster_4pct": lambda f, fps: synth_av.retime(f, fps, START, END, speed=1.04),
}


@pytest.mark.parametrize("edit", sorted(VIDEO_EDITS))
def test_edited_video_excerpt_is_found_with_its_segment(edit, av_clips, references, cfg, tmp_path):
    fps = av_clips["fps"]
    frames = VIDEO_EDITS[edit](av_clips["demo"]["frames"], fps)
    path = synth_av.encode_video(tmp_path / "q.mp4", frames, fps, codec="mpeg4", crf=30)   # re-encoded too
    query, _ = _video_print(path, cfg)
    hit = match_video(query, references["demo"][0], cfg.matching.video, cfg.video)
    assert hit is not None and hit.similarity >= cfg.matching.match_threshold, (edit, hit)
    assert abs(hit.r_start - START) <= 1.0 and abs(hit.r_end - END) <= 1.0, (edit, hit)
    assert hit.q_start <= 1.0 and abs(hit.q_end - (END - START) / hit.speed) <= 1.0, (edit, hit)
    miss = match_video(query, references["other"][0], cfg.matching.video, cfg.video)
    assert miss is None or miss.similarity < cfg.matching.match_threshold, (edit, miss)


AUDIO_EDITS = {
    "quieter": lambda x, sr: x * 0.3,
    "noise_10db": lambda x, sr: synth_av.mix(x, np.random.default_rng(0).normal(0, 1, x.size), 10),
    "music_bed_5db": lambda x, sr: synth_av.mix(x, synth_av.music(x.size / sr + 1, sr, seed=99), 5),
    "faster_3pct": lambda x, sr: synth_av.change_speed(x, 1.03),
    "slower_tempo_3pct": lambda x, sr: synth_av.change_tempo(x, 0.97, sr),
}


@pytest.mark.parametrize("edit", sorted(AUDIO_EDITS))
def test_edited_audio_excerpt_is_found_with_its_segment(edit, av_clips, references, cfg, tmp_path):
    sr = av_clips["sr"]
    excerpt = av_clips["demo"]["sound"][int(START * sr):int(END * sr)]
    path = synth_av.encode_audio(tmp_path / "q.mp3", AUDIO_EDITS[edit](excerpt, sr), sr)
    d = decode_av(path.read_bytes(), "audio", cfg.video, cfg.audio)
    query = spectral_peaks(d.audio, cfg.audio)
    hit = match_audio(query, references["demo"][1], cfg.matching.audio, cfg.audio)
    assert hit is not None and hit.similarity >= cfg.matching.match_threshold, (edit, hit)
    assert abs(hit.r_start - START) <= 1.0 and abs(hit.r_end - END) <= 1.0, (edit, hit)
    miss = match_audio(query, references["other"][1], cfg.matching.audio, cfg.audio)
    assert miss is None or miss.similarity < cfg.matching.match_threshold, (edit, miss)


def _grab(frame: np.ndarray, path, crop: int = 0) -> str:
    """A seller's hero image from a video frame: upscaled, brightened, JPEG; optionally trimmed."""
    h, w = frame.shape[:2]
    part = frame[crop:h - crop, crop:w - crop]
    img = cv2.resize(part, (480, 360), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return str(path)


def test_frame_grab_matches_at_its_timestamp(av_clips, cfg, tmp_path, photos):
    t = 17.3
    video = str(av_clips["demo"]["path"])
    hero = _grab(av_clips["demo"]["frames"][int(t * av_clips["fps"])], tmp_path / "hero.jpg")
    result = match(hero, video, cfg=cfg)
    assert result.match_found and result.match_type == "frame_grab", result
    assert abs(result.matched_segments[0].reference_start - t) <= 0.5
    assert result.matched_segments[0].query_start == 0.0
    flipped = match(video, hero, cfg=cfg)                 # other order: the segment follows
    assert flipped.matched_segments[0].query_start == result.matched_segments[0].reference_start
    # A trimmed grab on zooming footage is found too (its time is only as precise as the zoom allows).
    trimmed = _grab(av_clips["demo"]["frames"][int(t * av_clips["fps"])], tmp_path / "trim.jpg", crop=10)
    assert match(trimmed, video, cfg=cfg).match_type == "frame_grab"
    other = tmp_path / "other.jpg"
    photos[17].save(other)
    assert not match(str(other), video, cfg=cfg).match_found


def test_voice_over_taken_from_a_video_matches_the_video(av_clips, cfg, tmp_path):
    sr = av_clips["sr"]
    sound = av_clips["demo"]["sound"]
    path = synth_av.encode_audio(tmp_path / "vo.m4a", sound[5 * sr:20 * sr], sr)
    result = match(str(av_clips["demo"]["path"]), str(path), cfg=cfg)
    assert result.match_found and result.media_type == "audio" and result.match_type == "segment_copy", result
    seg = result.matched_segments[0]
    assert abs(seg.query_start - 5.0) <= 1.0 and abs(seg.query_end - 20.0) <= 1.0
    assert seg.reference_start <= 1.0
    unrelated = match(str(av_clips["other"]["path"]), str(path), cfg=cfg)
    assert not unrelated.match_found


def test_whole_reencoded_video_is_a_near_duplicate_and_identical_files_are_exact(av_clips, cfg, tmp_path):
    clip = av_clips["demo"]
    copy = synth_av.encode_video(tmp_path / "copy.mp4", clip["frames"], av_clips["fps"], audio=clip["sound"],
                                 sr=av_clips["sr"], codec="mpeg4", crf=28)
    result = match(str(clip["path"]), str(copy), cfg=cfg)
    assert result.match_found and result.match_type == "near_duplicate", result
    same = match(str(clip["path"]), str(clip["path"]), cfg=cfg)
    assert same.match_type == "exact" and same.similarity == 1.0
    different = match(str(clip["path"]), str(av_clips["other"]["path"]), cfg=cfg)
    assert not different.match_found and different.match_type == "no_match"


def test_off_centre_crop_of_a_grabbed_frame_is_found_by_keyframe_keypoints(av_clips, cfg, tmp_path):
    # A seller keeps the left three quarters and the top four fifths of a frame and posts it at
    # another size: the frame hashes (whole and centre) no longer agree, the keypoints do.
    t = 27.4
    frame = av_clips["demo"]["frames"][int(t * av_clips["fps"])]
    h, w = frame.shape[:2]
    part = np.ascontiguousarray(frame[: int(h * 0.8), : int(w * 0.75)])
    hero = tmp_path / "offcentre.jpg"
    cv2.imwrite(str(hero), cv2.cvtColor(cv2.resize(part, (600, 480), interpolation=cv2.INTER_CUBIC),
                                        cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    result = match(str(hero), str(av_clips["demo"]["path"]), cfg=cfg)
    assert result.match_found and result.match_type == "frame_grab", result
    # Within one keyframe interval of the grab (each photo is shown for 5 s with a slow zoom).
    assert abs(result.matched_segments[0].reference_start - t) <= cfg.video.keyframe_interval_s, result
    assert "cropped" in result.reason
    assert not match(str(hero), str(av_clips["other"]["path"]), cfg=cfg).match_found


def test_a_grab_is_placed_on_a_keyframe_that_holds_all_of_it(cfg):
    """A slideshow shows a photo again, zoomed in: those views fit a grab with more inliers than
    the wide view it was grabbed near (their keypoints are larger), yet leave part of it outside.
    The keyframe that holds the whole grab comes first."""
    from medialayer.fingerprints.image import image_fingerprints
    from medialayer.fingerprints.video import keyframe_features
    from medialayer.matching.av import match_keyframes
    from medialayer.matching.local import LocalSide
    from medialayer.synth.photos import load_photo, package_photos

    views = [(1.0, (0.5, 0.5))] + [(1.45, (cx, cy)) for cx in (0.3, 0.7) for cy in (0.3, 0.5)]
    inside = cfg.matching.video.grab_inside_fraction
    by_inliers_alone = []
    for path in package_photos()[:4]:
        photo = np.asarray(load_photo(path, 640))
        grabbed = synth_av._view(photo, 1.15, np.array([0.5, 0.5]), 320, 240)
        grab = cv2.resize(grabbed, (480, 360), interpolation=cv2.INTER_CUBIC)
        _, jpeg = cv2.imencode(".jpg", grab, [cv2.IMWRITE_JPEG_QUALITY, 85])
        f = image_fingerprints([cv2.imdecode(jpeg, cv2.IMREAD_COLOR)], cfg.image).local[0]
        image = LocalSide(f.xy, f.descriptors, f.mirrored, f.frame_w, f.frame_h)
        grey = [cv2.cvtColor(synth_av._view(photo, z, np.array(c), 320, 240), cv2.COLOR_RGB2GRAY) for z, c in views]
        keyframes = keyframe_features(np.arange(len(views), dtype=np.float32) * 2, grey, cfg.video, cfg.image.local)
        ranked = match_keyframes(image, keyframes, cfg.matching.image.local, inside)
        fits = [(t, ev.inliers, round(ev.shared_b, 2)) for ev, t, _ in ranked]
        if 0.0 not in [t for t, _, _ in fits]:
            continue                       # the wide view did not fit at all (JPEG losses): nothing to rank
        assert fits[0][0] == 0.0 and fits[0][2] >= inside, fits
        assert all(share < inside for _, _, share in fits[1:])
        by_inliers_alone.append(match_keyframes(image, keyframes, cfg.matching.image.local)[0][1])
    assert len(by_inliers_alone) >= 3
    assert any(t != 0.0 for t in by_inliers_alone)      # the rule, not luck, put the wide view first


def _frames_holding(rng: np.random.Generator, phash: int, dhash: int):
    """Times and (pHash, dHash, centre pHash, centre dHash) of 40 frames 0.25 s apart with random
    hashes, except frame 17 (4.25 s), whole and centre, which has the given ones."""
    times = np.arange(40, dtype=np.float32) * 0.25
    hashes = [rng.integers(0, 2**63, 40, dtype=np.int64).astype(np.uint64) for _ in range(4)]
    for h, v in zip(hashes, (phash, dhash, phash, dhash)):
        h[17] = np.uint64(v)
    return times, hashes


@pytest.mark.parametrize("pasted", [True, False])
def test_a_blobs_hashes_are_not_a_picture_inside_a_frame(cfg, pasted):
    """An image's content region meets a video frame only when the region is a picture in a frame
    (a pasted block, bars, padding): a blob (one detailed patch, a product on a plain ground) is
    not, and its hashes against hundreds of frames find look-alikes."""
    from medialayer.fingerprints.video import FrameHashes, pack_frames
    from medialayer.matching.av_envelope import AVSide, verify_av_pair
    from medialayer.matching.local import LocalSide

    rng = np.random.default_rng(11)
    frame = rng.integers(0, 2**63, 4, dtype=np.int64)
    whole = rng.integers(0, 2**63, 4, dtype=np.int64)       # the image's own hashes: unrelated to any frame
    times, hashes = _frames_holding(rng, frame[0], frame[1])  # frame 17 (4.25 s) equals the region
    t_blob, h_blob = pack_frames(FrameHashes(times, *hashes))
    video = AVSide("video", 10.0, None, t_blob, h_blob, None)
    image_hashes = {"phash": int(whole[0]), "dhash": int(whole[1]), "phash_mirror": int(whole[2]),
                    "dhash_mirror": int(whole[3]), "region_phash": int(frame[0]), "region_dhash": int(frame[1])}
    kp = np.zeros((0, 2), np.float32)
    local = LocalSide(kp, np.zeros((0, 32), np.uint8), np.zeros((0, 32), np.uint8), 400, 300,
                      block=(0.2, 0.1, 0.9, 0.8), pasted=pasted)
    image = AVSide("image", 0.0, None, None, None, None, image_hashes, local)
    result = verify_av_pair(image, video, cfg)
    assert result.match_found is pasted
    if pasted:
        assert result.match_type == "frame_grab" and result.matched_segments[0].reference_start == 4.25


def test_a_frame_grab_keeps_its_frames_colours(cfg):
    """Frame hashes are grey: a smooth picture's layout of light and dark recurs in other videos.
    A frame whose mean colour no tone edit relates to the image's is not its frame; frames of the
    same hue are, brighter or paler; fingerprints made before frames had colours are not checked."""
    from medialayer.fingerprints.video import FrameHashes, pack_frames, unpack_frames
    from medialayer.matching.av_envelope import AVSide, verify_av_pair

    rng = np.random.default_rng(12)
    image = rng.integers(0, 2**63, 2, dtype=np.int64)
    times, hashes = _frames_holding(rng, image[0], image[1])  # frame 17 (4.25 s) has the image's hashes
    slate = 0x8a6a55                                          # R 0x55, G 0x6a, B 0x8a: a blue-grey
    colours = np.full(40, slate, dtype=np.uint64)
    image_hashes = {"phash": int(image[0]), "dhash": int(image[1]), "phash_mirror": int(image[0]) ^ 0xFFFF,
                    "dhash_mirror": int(image[1]) ^ 0xFFFF, "region_phash": None, "region_dhash": None}
    t_blob, h_blob = pack_frames(FrameHashes(times, *hashes, colours))
    assert len(h_blob) == 40 * 5 * 8
    assert unpack_frames(t_blob, h_blob).colour.tolist() == colours.tolist()
    video = AVSide("video", 10.0, None, t_blob, h_blob, None)
    results = {}
    for name, tone in (("same", 0x8a6a55), ("brighter and paler", 0xb8a496), ("pink", 0x9c50d2)):
        grab = AVSide("image", 0.0, None, None, None, None, {**image_hashes, "tone": tone})
        results[name] = verify_av_pair(grab, video, cfg)
    assert results["same"].match_found and results["same"].matched_segments[0].reference_start == 4.25
    assert results["brighter and paler"].match_found, results["brighter and paler"]
    assert not results["pink"].match_found, results["pink"]
    # Off, or frames without colours (video-v2 rows, 4 words per frame): the hashes decide alone.
    off = cfg.with_overrides({"matching": {"video": {"grab_max_chroma": -1}}})
    grab = AVSide("image", 0.0, None, None, None, None, {**image_hashes, "tone": 0x9c50d2})
    assert verify_av_pair(grab, video, off).match_found
    t_old, h_old = pack_frames(FrameHashes(times, *hashes))
    assert len(h_old) == 40 * 4 * 8 and unpack_frames(t_old, h_old).colour is None
    assert verify_av_pair(grab, AVSide("video", 10.0, None, t_old, h_old, None), cfg).match_found


def test_decoded_frames_carry_their_mean_colour(av_clips, cfg):
    clip = av_clips["demo"]
    d = decode_av(open(clip["path"], "rb").read(), "video", cfg.video, cfg.audio)
    assert d.frame_colours.shape == (len(d.frames), 3) and d.frame_colours.dtype == np.uint8
    for t, colour in list(zip(d.frame_times, d.frame_colours))[::25]:
        truth = clip["frames"][int(round(t * av_clips["fps"]))].reshape(-1, 3).mean(axis=0)
        assert np.abs(colour.astype(float) - truth).max() <= 12, (t, colour, truth)
    fh = frame_hashes(d.frame_times, d.frames, cfg.video, d.frame_colours)
    assert fh.colour is not None and fh.colour.size == fh.times.size


def _line(q0, q1, offset, speed=1.0):
    from medialayer.matching.av import Alignment
    return Alignment(0.97, q0, q1, speed * q0 + offset, speed * q1 + offset, speed, 40, "")


def test_a_copy_that_opens_on_black_is_carried_back_across_the_blank_stretch():
    """Blank frames are not hashed: a copy whose first seconds are black on both sides starts, for
    frame evidence, at the first picture. Where neither file has an informative frame, the segment
    goes on along its line to the nearest content or file edge."""
    from medialayer.matching.av import extend_over_blanks

    step = 0.25
    q_times = np.arange(2.5, 15.0, step)                        # the copy: black until 2.5 s
    r_times = np.r_[np.arange(30.0, 38.9, step), np.arange(43.0, 60.0, step)]   # black 38.9-43 s
    al = _line(2.5, 14.75, 40.6, speed=0.96)
    out = extend_over_blanks(al, q_times, r_times, 17.7, 90.0, step)
    assert out.q_start == 0.0 and abs(out.r_start - 40.6) < 1e-9
    # The query is blank after 14.75 s too, but the reference shows pictures there: the end stays
    # (within half a step of the reference's next informative frame).
    assert 14.75 <= out.q_end < 14.75 + 0.25 and out.r_end <= 55.0 - step / 2 + 1e-9

    # A picture in the reference's gap (unrelated to the copy) stops the stretch half a step after it.
    busy = np.sort(np.r_[r_times, 41.5])
    out = extend_over_blanks(al, q_times, busy, 17.7, 90.0, step)
    assert abs(out.r_start - (41.5 + step / 2)) < 1e-9 and out.q_start > 0.0

    # Content right before the segment on the query side: nothing to carry.
    q_full = np.arange(0.0, 15.0, step)
    out = extend_over_blanks(_line(2.5, 14.75, 40.6), q_full, np.arange(30.0, 60.0, step), 15.0, 90.0, step)
    assert out.q_start == 2.5 and out.q_end == 14.75
