"""URLs -> fingerprint rows: fetch, sniff, decode and fingerprint a batch of media.

This is the one place that turns URLs into `fingerprints` rows. Spark's fingerprint stage, the CLI
and the Python API all call `fingerprint_rows`, so a media item gets the same row everywhere.
Failures never raise: each becomes a row with status=error and a code.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from .config import Config
from .decoding import decode_image, infer_media_type, sniff_media_type
from .decoding.image import DecodedImage
from .errors import MediaError
from .fetching import Fetcher
from .fingerprints import image as image_fp
from .fingerprints.audio import pack_peaks, spectral_peaks
from .fingerprints.bits import to_signed
from .fingerprints.video import frame_hashes, keyframe_features, pack_frames, pack_keyframes
from .versions import fingerprint_versions

log = logging.getLogger(__name__)

FINGERPRINT_SCHEMA = pa.schema([
    ("media_key", pa.string()),
    ("media_url", pa.string()),
    ("media_type", pa.string()),
    ("status", pa.string()),
    ("error_code", pa.string()),
    ("error_detail", pa.string()),
    ("content_sha256", pa.string()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("duration_s", pa.float64()),
    *[(c, pa.int64()) for c in image_fp.HASH_COLUMNS],
    *[(c, pa.int64()) for c in image_fp.REGION_HASH_COLUMNS],
    (image_fp.TONE_COLUMN, pa.int64()),
    ("region", pa.list_(pa.float32())),     # content region [x0, y0, x1, y1, kind, pasted] (frame fractions)
    ("kp_count", pa.int32()),
    ("kp_frame_w", pa.int32()),
    ("kp_frame_h", pa.int32()),
    ("kp_xy", pa.binary()),                  # uint16 quarter-pixel (x, y) pairs in the working frame
    ("kp_desc", pa.binary()),                # 32-byte ORB descriptors
    ("kp_desc_mirror", pa.binary()),         # descriptors of the mirrored image, same keypoints
    ("kp_angle", pa.binary()),               # ORB orientation per keypoint, one byte (256 per turn)
    ("picture", pa.binary()),                # image: small grey picture (width byte, then pixels) for fit checks
    ("frame_count", pa.int32()),             # video: sampled frames kept (near-blank ones dropped)
    ("frame_times", pa.binary()),            # video: float32 seconds per kept frame
    ("frame_hashes", pa.binary()),           # video: uint64 pHash, dHash, centre pHash, centre dHash, colour per frame
    ("kf_times", pa.binary()),               # video: float32 seconds per keyframe (its keypoints are in kp_*)
    ("kf_counts", pa.binary()),              # video: uint16 keypoints per keyframe, in kp_* order
    ("peak_count", pa.int32()),              # audio (and videos' sound tracks): spectral peaks
    ("audio_peaks", pa.binary()),            # (uint32 hop, uint16 1/16-bin frequency) per peak
    ("fingerprint_version", pa.string()),
    ("fetched_at", pa.timestamp("us", tz="UTC")),
])


def media_key(url: str | None) -> str:
    """Stable id of a media URL (the whitespace-trimmed URL's SHA-256, 32 hex digits)."""
    return hashlib.sha256((url or "").strip(" \t\r\n").encode("utf-8")).hexdigest()[:32]


@dataclass
class AVPrint:
    duration_s: float
    width: int | None
    height: int | None
    frame_count: int | None
    frame_times: bytes | None
    frame_hashes: bytes | None
    peak_count: int | None
    audio_peaks: bytes | None
    keyframes: dict | None = None    # video: pack_keyframes() columns (kf_* and the kp_* they reuse)


@dataclass
class Loaded:
    url: str | None
    media_type: str | None
    sha256: str | None = None
    image: DecodedImage | None = None
    av: AVPrint | None = None
    error: MediaError | None = None
    detail: Callable[[int], np.ndarray | None] | None = None   # the image decoded again, larger (see image_fingerprints)


def load_media(url: str | None, declared_type: str | None, fetcher: Fetcher, cfg: Config) -> Loaded:
    """Fetch and decode one media item; any failure is captured in `Loaded.error`."""
    guessed = declared_type or infer_media_type(url)
    sha = None
    try:
        fetched = fetcher.fetch(url)
        data = fetched.data
        sha = hashlib.sha256(data).hexdigest()
        sniffed = sniff_media_type(data)
        media_type = sniffed or guessed
        if sniffed is None:
            raise MediaError("unsupported_type", _describe_unknown(data, fetched.content_type))
        if sniffed == "video" and guessed == "audio":
            media_type = "audio"           # an MP4/WebM container declared as audio: its sound track
        if media_type != "image":
            return Loaded(url, media_type, sha, av=av_print(data, media_type, cfg))
        image = decode_image(data, cfg.image)
        return Loaded(url, "image", sha, image=image, detail=functools.partial(_decode_larger, data, image, cfg))
    except MediaError as err:
        return Loaded(url, guessed, sha, error=err)
    except Exception as exc:  # noqa: BLE001 - one bad item must not take down the batch
        log.exception("unexpected failure on %s", url)
        return Loaded(url, guessed, error=MediaError("internal_error", f"{type(exc).__name__}: {exc}"))


def _decode_larger(data: bytes, decoded: DecodedImage, cfg: Config, side: int) -> np.ndarray | None:
    """`data` decoded with its long side up to `side`; None when the file is not larger than what
    was decoded already, or the second decode fails (the first one's fingerprints stand)."""
    if max(decoded.width, decoded.height) <= max(decoded.rgb.shape[:2]):
        return None
    try:
        return decode_image(data, dataclasses.replace(cfg.image, decode_max_side=side)).rgb
    except Exception:  # noqa: BLE001 - it runs inside the batch's fingerprinting, which must not raise
        log.warning("second decode of %d bytes at %d px failed; keypoints from the first", len(data), side)
        return None


def av_print(data: bytes, media_type: str, cfg: Config) -> AVPrint:
    """Decode a video or audio file and fingerprint it (frames and/or sound track)."""
    from .decoding.av import decode_av

    decoded = decode_av(data, media_type, cfg.video, cfg.audio)
    times = hashes = keyframes = None
    n_frames = None
    if decoded.frames is not None:
        fh = frame_hashes(decoded.frame_times, decoded.frames, cfg.video, decoded.frame_colours)
        times, hashes = pack_frames(fh)
        n_frames = int(fh.times.size)
        if decoded.keyframes:
            keyframes = pack_keyframes(keyframe_features(decoded.keyframe_times, decoded.keyframes, cfg.video,
                                                         cfg.image.local))
        if n_frames == 0 and decoded.audio is None:
            raise MediaError("decode_error", "every sampled frame is blank and there is no sound track")
    peaks_blob, n_peaks = None, None
    if decoded.audio is not None:
        peaks = spectral_peaks(decoded.audio, cfg.audio)
        peaks_blob, n_peaks = pack_peaks(peaks), peaks.size
    return AVPrint(round(decoded.duration_s, 3), decoded.width, decoded.height, n_frames, times, hashes,
                   n_peaks, peaks_blob, keyframes)


def fingerprint_rows(urls: Sequence[str | None], declared_types: Sequence[str | None], cfg: Config,
                     fetcher: Fetcher | None = None, pool: ThreadPoolExecutor | None = None) -> pa.RecordBatch:
    """One FINGERPRINT_SCHEMA row per URL, in input order.

    Fetch+decode run on `pool` (I/O-bound, and Pillow releases the GIL while decoding); the hashes
    are then computed for the whole batch at once.
    """
    fetcher = fetcher or Fetcher(cfg.fetch)
    jobs = list(zip(urls, declared_types))
    if pool is not None and len(jobs) > 1:
        loaded = list(pool.map(lambda job: load_media(job[0], job[1], fetcher, cfg), jobs))
    else:
        loaded = [load_media(u, t, fetcher, cfg) for u, t in jobs]

    ok = [i for i, item in enumerate(loaded) if item.image is not None]
    fps = image_fp.image_fingerprints([loaded[i].image.rgb for i in ok], cfg.image,
                                      [loaded[i].detail for i in ok])
    n = len(loaded)
    packed = (*image_fp.HASH_COLUMNS, *image_fp.REGION_HASH_COLUMNS, image_fp.TONE_COLUMN)
    hash_cols = {c: np.zeros(n, dtype=np.int64) for c in packed}
    valid = np.zeros(n, dtype=bool)
    valid[ok] = True
    for c in packed:
        hash_cols[c][ok] = to_signed(fps.hashes[c])
    extra: dict[str, list] = {"region": [None] * n}
    for name, values in image_fp.local_columns(fps.local).items():
        extra[name] = [None] * n
        for i, v in zip(ok, values):
            extra[name][i] = v
    for i, frac in zip(ok, fps.region_fractions):
        extra["region"][i] = None if frac is None else list(frac)
    extra["picture"] = [None] * n
    for i, picture in zip(ok, fps.pictures):
        extra["picture"][i] = picture
    extra["kf_times"], extra["kf_counts"] = [None] * n, [None] * n
    for i, item in enumerate(loaded):
        if item.av is not None and item.av.keyframes:
            for name, value in item.av.keyframes.items():
                extra[name][i] = value

    now = datetime.now(timezone.utc)
    columns = {
        "media_key": [media_key(item.url) for item in loaded],
        "media_url": [item.url for item in loaded],
        "media_type": [item.media_type for item in loaded],
        "status": ["ok" if item.error is None else "error" for item in loaded],
        "error_code": [item.error.code if item.error else None for item in loaded],
        "error_detail": [item.error.detail if item.error else None for item in loaded],
        "content_sha256": [item.sha256 for item in loaded],
        "width": [item.image.width if item.image else (item.av.width if item.av else None) for item in loaded],
        "height": [item.image.height if item.image else (item.av.height if item.av else None) for item in loaded],
        "duration_s": [item.av.duration_s if item.av else None for item in loaded],
    }
    for name in ("frame_count", "frame_times", "frame_hashes", "peak_count", "audio_peaks"):
        columns[name] = [getattr(item.av, name) if item.av else None for item in loaded]
    columns.update(extra)
    versions = fingerprint_versions(cfg)     # code and settings: another run's settings re-fetch the row
    columns["fingerprint_version"] = [versions.get(item.media_type or "", versions["image"]) for item in loaded]
    columns["fetched_at"] = [now] * n
    arrays = []
    for f in FINGERPRINT_SCHEMA:
        if f.name in hash_cols:
            arrays.append(pa.array(hash_cols[f.name], type=pa.int64(), mask=~valid))
        else:
            arrays.append(pa.array(columns[f.name], type=f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=FINGERPRINT_SCHEMA)


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide fetch pool of `workers` threads, kept for the life of the process: the API
    fingerprints two media per request and would otherwise start (and wait for) new threads on
    every one of them."""
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medialayer-fetch")
        return pool


def fingerprint_table(urls: Sequence[str | None], declared_types: Sequence[str | None], cfg: Config,
                      fetcher: Fetcher, batch_rows: int = 64, workers: int | None = None) -> pa.Table:
    """FINGERPRINT_SCHEMA rows for many URLs in one process (CLI, API, benchmarks): batches of
    `batch_rows`, fetched on a shared pool of `workers` threads (default fetch.concurrency)."""
    pool = shared_pool(workers or cfg.fetch.concurrency)
    batches = [fingerprint_rows(urls[i:i + batch_rows], declared_types[i:i + batch_rows], cfg, fetcher, pool)
               for i in range(0, len(urls), batch_rows)]
    return pa.Table.from_batches(batches, schema=FINGERPRINT_SCHEMA)


def _describe_unknown(data: bytes, content_type: str | None) -> str:
    head = data[:64].lstrip().lower()
    if head.startswith(b"<!doctype html") or head.startswith(b"<html"):
        return "an HTML page, not media"
    if head.startswith(b"<?xml") or head.startswith(b"<svg"):
        return "SVG/XML (vector images are not fingerprinted)"
    return f"unrecognised content (content-type {content_type or 'unknown'})"
