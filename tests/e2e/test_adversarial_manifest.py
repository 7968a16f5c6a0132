"""A hostile manifest through the whole job: every bad URL or file becomes an error row with the right
code, every good one a fingerprint, and nothing is lost next to the bad ones.

The media are served by an HTTP server on loopback started here. Only that server's exact
host:port is allowed (fetch.allow_hosts); every other private address, another name for the same
address, and redirects to either are refused like in production.
"""
from __future__ import annotations

import http.server
import io
import socket
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medialayer.media import media_key
from medialayer.pipeline import run_pipeline
from medialayer.synth import av as synth_av

RUN = date(2026, 11, 10)
ROUTES: dict[str, tuple[int, dict, bytes]] = {}     # path -> (status, headers, body)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/stall":
            time.sleep(12)                                  # never answers within the deadline
            return
        if path == "/trickle.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            try:
                for _ in range(120):                        # 12 s: past the total deadline
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
            return
        if path == "/stream-huge":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(4000):
                    self.wfile.write(b"\0" * 1024)
            except OSError:
                pass
            return
        status, headers, body = ROUTES.get(path, (404, {}, b"not here"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("hostile")
    files = root / "files"
    files.mkdir()
    secret = root / "secret.txt"
    secret.write_text("not for fetching")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    base = f"http://127.0.0.1:{port}"
    closed = _free_port()                                      # allowed, but nothing listens there
    elsewhere = _free_port()                                   # not allowed: a loopback redirect target

    photo, other = photos[0], photos[1]
    jpeg = _jpeg(photo)
    ROUTES.clear()
    ROUTES.update({
        "/good.jpg": (200, {"Content-Type": "image/jpeg"}, jpeg),
        "/wrong-type.jpg": (200, {"Content-Type": "text/plain"}, _jpeg(other)),
        "/no-type": (200, {}, _jpeg(photos[2])),
        "/err500.jpg": (500, {}, b"oops"),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/to-private": (302, {"Location": "http://10.0.0.7/x.jpg"}, b""),
        "/to-other-port": (302, {"Location": f"http://127.0.0.1:{elsewhere}/x.jpg"}, b""),
        "/to-file": (302, {"Location": f"file://{secret}"}, b""),
        "/big-declared.jpg": (200, {"Content-Length": "900000000"}, b""),
        "/page.jpg": (200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html><body>Sold out</body></html>"),
        "/empty.jpg": (200, {}, b""),
        "/truncated.jpg": (200, {}, jpeg[: len(jpeg) // 2]),
        "/bomb.png": (200, {}, _bomb_png()),
        "/cmyk.jpg": (200, {}, _jpeg(photos[3].convert("CMYK"))),
        "/sixteen.png": (200, {}, _png(Image.fromarray((np.asarray(photos[4].convert("L")).astype(np.uint16) * 256)))),
        "/palette.png": (200, {}, _palette_png(photos[5])),
        "/animated.gif": (200, {}, _gif(photos[6], photos[7])),
        "/vector.svg": (200, {"Content-Type": "image/svg+xml"},
                        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
        "/upright.jpg": (200, {}, _jpeg(photos[8])),
        "/exif-rotated.jpg": (200, {}, _exif_rotated(photos[8])),
        "/caf%C3%A9%20cr%C3%A8me.jpg": (200, {}, _jpeg(photos[9])),
        "/corrupt.mp4": (200, {}, b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 20),
        "/sound-only.mp4": (200, {}, _sound_only_mp4(root)),
        "/silence.wav": (200, {}, _empty_wav()),
    })
    good_other_name = files / "local.jpg"
    photos[10].save(good_other_name, quality=90)
    cases = [  # (listing_id, url, expected status or error code)
        ("L-good", f"{base}/good.jpg", "ok"),
        ("L-good-again", f"{base}/good.jpg", "ok"),                       # duplicate row: one fingerprint
        ("L-wrong-type", f"{base}/wrong-type.jpg", "ok"),                 # content wins over the header
        ("L-no-type", f"{base}/no-type", "ok"),
        ("L-404", f"{base}/missing.jpg", "http_404"),
        ("L-500", f"{base}/err500.jpg", "http_500"),
        ("L-refused", f"http://127.0.0.1:{closed}/x.jpg", "connection_error"),
        ("L-stall", f"{base}/stall", "fetch_timeout"),
        ("L-trickle", f"{base}/trickle.jpg", "fetch_timeout"),
        ("L-loop", f"{base}/loop", "too_many_redirects"),
        ("L-redirect-private", f"{base}/to-private", "blocked_address"),
        ("L-redirect-loopback", f"{base}/to-other-port", "blocked_address"),
        ("L-redirect-file", f"{base}/to-file", "unsupported_scheme"),
        ("L-private-host", f"http://localhost:{port}/good.jpg", "blocked_address"),   # same server, other name
        ("L-private-ip", "http://192.168.1.20/x.jpg", "blocked_address"),
        ("L-file-outside", f"file://{secret}", "blocked_path"),
        ("L-traversal", f"file://{files}/../secret.txt", "blocked_path"),
        ("L-local-good", f"file://{good_other_name}", "ok"),
        ("L-big-declared", f"{base}/big-declared.jpg", "too_large"),
        ("L-big-streamed", f"{base}/stream-huge", "too_large"),
        ("L-html", f"{base}/page.jpg", "unsupported_type"),
        ("L-empty", f"{base}/empty.jpg", "empty_body"),
        ("L-truncated", f"{base}/truncated.jpg", "decode_error"),
        ("L-bomb", f"{base}/bomb.png", "decompression_bomb"),
        ("L-cmyk", f"{base}/cmyk.jpg", "ok"),
        ("L-16bit", f"{base}/sixteen.png", "ok"),
        ("L-palette", f"{base}/palette.png", "ok"),
        ("L-gif", f"{base}/animated.gif", "ok"),
        ("L-svg", f"{base}/vector.svg", "unsupported_type"),
        ("L-upright", f"{base}/upright.jpg", "ok"),
        ("L-exif", f"{base}/exif-rotated.jpg", "ok"),
        ("L-percent", f"{base}/caf%C3%A9%20cr%C3%A8me.jpg", "ok"),
        ("L-unicode", f"{base}/café crème.jpg", "ok"),                   # the same file, unencoded
        ("L-corrupt-mp4", f"{base}/corrupt.mp4", "decode_error"),
        ("L-no-video-stream", f"{base}/sound-only.mp4", "no_video_stream"),
        ("L-zero-audio", f"{base}/silence.wav", "decode_error"),
        ("L-null", None, "missing_url"),
        ("L-blank", "   ", "missing_url"),
    ]
    types = {"L-corrupt-mp4": "video", "L-no-video-stream": "video", "L-zero-audio": "audio"}
    rows = [{"listing_id": lid, "media_url": url, "media_type": types.get(lid), "seller_id": f"s{i % 4}",
             "sku_id": f"sku-{i}", "brand_id": "b", "category": "c", "source": "listing"}
            for i, (lid, url, _) in enumerate(cases)]
    manifest = root / "manifest.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in rows[0]])), manifest)
    yield {"root": root, "files": files, "manifest": manifest, "cases": cases, "port": port, "closed": closed}
    httpd.shutdown()


def _bomb_png() -> bytes:
    """A PNG that declares 30000 x 30000 pixels (900 MP) in a few hundred bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + chunk(b"IEND", b""))


def _palette_png(img: Image.Image) -> bytes:
    p = img.convert("RGBA")
    alpha = np.asarray(p)[..., 3].copy()
    alpha[:, : alpha.shape[1] // 5] = 0
    p.putalpha(Image.fromarray(alpha))
    return _png(p.convert("P"))


def _gif(a: Image.Image, b: Image.Image) -> bytes:
    buf = io.BytesIO()
    a.convert("P").save(buf, "GIF", save_all=True, append_images=[b.resize(a.size).convert("P")], duration=100)
    return buf.getvalue()


def _exif_rotated(img: Image.Image) -> bytes:
    """The photo stored on its side with an EXIF orientation tag saying so, as phones do."""
    exif = Image.Exif()
    exif[0x0112] = 6                                   # rotate 90 CW to display
    return _jpeg(img.transpose(Image.Transpose.ROTATE_90), exif=exif)


def _sound_only_mp4(root: Path) -> bytes:
    path = synth_av.encode_audio(root / "sound_only.mp4", synth_av.music(2.0, seed=3), codec="aac")
    return path.read_bytes()


def _empty_wav() -> bytes:
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    return buf.getvalue()


@pytest.fixture(scope="module")
def outcome(spark, spark_cfg, hostile, tmp_path_factory):
    cfg = spark_cfg.with_overrides({
        "manifest": {"null_media_url": "error_row"},
        "fetch": {"allow_hosts": [f"127.0.0.1:{hostile['port']}", f"127.0.0.1:{hostile['closed']}"],
                  "local_roots": [str(hostile["files"])], "retries": 0,
                  # Generous for good rows on a busy 2-core CI machine, still far below the stall
                  # and the trickle (12 s each).
                  "connect_timeout_s": 3.0, "read_timeout_s": 3.0, "total_timeout_s": 6.0,
                  "max_bytes": 2_000_000},
    })
    warehouse = tmp_path_factory.mktemp("hostile_wh")
    summary = run_pipeline(spark, cfg, str(hostile["manifest"]), str(warehouse), RUN)
    read = lambda name: pq.read_table(warehouse / name).to_pandas()   # noqa: E731
    return {"summary": summary, "fingerprints": read("fingerprints"), "listing_media": read("listing_media"),
            "matches": read("media_matches"), "clusters": read("clusters")}


def test_every_row_is_accounted_for_with_its_expected_outcome(outcome, hostile):
    fps = outcome["fingerprints"]
    listing_media = outcome["listing_media"]
    assert set(listing_media["listing_id"]) == {lid for lid, _, _ in hostile["cases"]}     # nothing dropped
    by_key = fps.set_index("media_key")
    assert by_key.index.is_unique
    lm = listing_media.set_index("listing_id")["media_key"]
    wrong = {}
    for lid, url, expected in hostile["cases"]:
        row = by_key.loc[lm[lid]]
        got = "ok" if row["status"] == "ok" else row["error_code"]
        if got != expected:
            wrong[lid] = (expected, got, row["error_detail"])
    assert not wrong, wrong
    assert outcome["summary"].rows_in == len(hostile["cases"])


def test_duplicate_rows_share_one_fingerprint_and_good_rows_still_match(outcome, hostile):
    lm = outcome["listing_media"].set_index("listing_id")["media_key"]
    assert lm["L-good"] == lm["L-good-again"] == media_key(dict((c[0], c[1]) for c in hostile["cases"])["L-good"])
    clusters = outcome["clusters"].groupby("cluster_id")["listing_id"].apply(set).tolist()
    assert {"L-upright", "L-exif"} in clusters            # the EXIF-rotated photo matches its upright copy
    assert {"L-percent", "L-unicode"} <= next(c for c in clusters if "L-percent" in c)   # one file, two spellings


def test_error_counts_in_the_runs_summary(outcome, hostile):
    summary = outcome["summary"]
    failing = [c for c in hostile["cases"] if c[2] != "ok"]
    keys = {media_key(url) if url and url.strip() else None for _, url, _ in failing}
    assert summary.media_errors >= len(keys - {None})
    assert summary.errors_by_code["blocked_address"] == 4 and summary.errors_by_code["fetch_timeout"] == 2

