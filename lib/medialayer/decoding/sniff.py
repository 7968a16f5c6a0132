"""Media type from content (magic bytes) or, failing that, from the URL's extension.

Content wins over names and Content-Type headers: sellers' servers mislabel files all the time.
"""
from __future__ import annotations

from urllib.parse import urlsplit

MEDIA_TYPES = ("image", "video", "audio")

_EXTENSIONS = {
    "image": {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".jfif"},
    "video": {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpeg", ".mpg", ".ts"},
    "audio": {".mp3", ".wav", ".flac", ".ogg", ".oga", ".m4a", ".aac", ".opus"},
}


def sniff_media_type(data: bytes) -> str | None:
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n") or head[:4] in (b"GIF8",) \
            or head.startswith(b"BM") or head[:4] in (b"II*\x00", b"MM\x00*") \
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "audio" if brand in (b"M4A ", b"M4B ", b"M4P ") else "video"
    if head.startswith(b"\x1a\x45\xdf\xa3") or (head[:4] == b"RIFF" and head[8:12] == b"AVI ") \
            or head.startswith(b"\x00\x00\x01\xba") or head.startswith(b"\x00\x00\x01\xb3"):
        return "video"
    if head.startswith(b"ID3") or head.startswith(b"fLaC") or head.startswith(b"OggS") \
            or (head[:4] == b"RIFF" and head[8:12] == b"WAVE") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio"
    return None


def infer_media_type(url: str | None) -> str | None:
    """Guess from the URL path's extension; None when it says nothing."""
    if not url:
        return None
    path = urlsplit(str(url)).path.lower()
    dot = path.rfind(".")
    if dot < 0:
        return None
    ext = path[dot:]
    for media_type, exts in _EXTENSIONS.items():
        if ext in exts:
            return media_type
    return None
