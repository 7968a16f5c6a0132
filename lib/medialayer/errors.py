"""Media errors carry a stable code: every failed media becomes a `fingerprints` row with it."""
from __future__ import annotations

# The codes a user may see in fingerprints.error_code (and in the API's error bodies).
ERROR_CODES = {
    "missing_url": "the manifest row has no media URL",
    "invalid_url": "the URL cannot be parsed",
    "unsupported_scheme": "the URL scheme is not file, http or https",
    "blocked_address": "the host resolves to a loopback, private, link-local or reserved address",
    "blocked_path": "a local path outside the configured fetch.local_roots",
    "dns_error": "the host name does not resolve",
    "connection_error": "the connection failed or was refused",
    "fetch_timeout": "the fetch exceeded its time limit",
    "too_many_redirects": "more redirects than fetch.max_redirects",
    "too_large": "the body is larger than fetch.max_bytes",
    "not_found": "a local file that does not exist",
    "empty_body": "zero bytes were returned",
    "unsupported_type": "the content is not an image, video or audio format we decode",
    "decode_error": "the content is corrupt or truncated",
    "decompression_bomb": "the declared pixel count exceeds image.max_pixels",
    "no_video_stream": "a video file without a video stream",
    "no_audio_stream": "an audio file without an audio stream",
    "too_long": "a video or audio file longer than video.max_duration_s",
    "internal_error": "an unexpected failure while processing this media (a bug: please report)",
}
# Plus `http_<status>` for any HTTP status outside 2xx (http_404, http_500, ...).

# Failures that may pass on their own: an incremental run retries them (with http_5xx and http_429)
# even when no manifest names the media again. The rest wait for the listing to be re-sent.
TRANSIENT_ERROR_CODES = ("dns_error", "connection_error", "fetch_timeout", "internal_error")


class MediaError(Exception):
    """A failure tied to one media item; never fatal to a batch."""

    def __init__(self, code: str, detail: str = ""):
        if code not in ERROR_CODES and not code.startswith("http_"):
            raise ValueError(f"unknown media error code {code!r}")
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail[:500]
