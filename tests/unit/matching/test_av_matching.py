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
