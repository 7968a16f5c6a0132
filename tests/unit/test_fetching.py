import http.server
import threading
import time

import pytest

from medialayer.config import load_config
from medialayer.errors import MediaError
from medialayer.fetching import Fetcher, address_is_public


def _fetcher(**fetch) -> Fetcher:
    return Fetcher(load_config(overrides={"fetch": fetch}).fetch)


def _code(fetcher: Fetcher, url: str) -> str:
    with pytest.raises(MediaError) as err:
        fetcher.fetch(url)
    return err.value.code


@pytest.mark.parametrize("ip, public", [("127.0.0.1", False), ("10.1.2.3", False), ("192.168.0.1", False),
                                        ("169.254.169.254", False), ("::1", False), ("::ffff:127.0.0.1", False),
                                        ("0.0.0.0", False), ("8.8.8.8", True), ("2001:4860:4860::8888", True)])
def test_address_classification(ip, public):
    assert address_is_public(ip) is public


def test_loopback_url_is_refused():
    assert _code(_fetcher(), "http://127.0.0.1:9/x.jpg") == "blocked_address"
    assert _code(_fetcher(), "http://localhost/x.jpg") == "blocked_address"


def test_local_paths_need_a_configured_root(tmp_path):
    f = tmp_path / "a.jpg"
    f.write_bytes(b"\xff\xd8\xffdata")
    assert _code(_fetcher(), str(f)) == "blocked_path"
    allowed = _fetcher(local_roots=[str(tmp_path / "media")])
    (tmp_path / "media").mkdir()
    assert _code(allowed, str(f)) == "blocked_path"
    assert _code(allowed, str(tmp_path / "media" / ".." / "a.jpg")) == "blocked_path"   # traversal
    assert _code(allowed, f"file://{tmp_path}/media/../a.jpg") == "blocked_path"
    ok = _fetcher(local_roots=[str(tmp_path)])
    assert ok.fetch(f"file://{f}").data == b"\xff\xd8\xffdata"
    assert _code(ok, str(tmp_path / "missing.jpg")) == "not_found"


def test_local_file_over_the_size_limit_is_refused(tmp_path):
    (tmp_path / "big.jpg").write_bytes(b"x" * 5000)
    assert _code(_fetcher(local_roots=[str(tmp_path)], max_bytes=1000), str(tmp_path / "big.jpg")) == "too_large"


@pytest.mark.parametrize("url, code", [("", "missing_url"), ("ftp://example.com/a.jpg", "unsupported_scheme"),
                                       ("http://[::1/x", "invalid_url")])
def test_malformed_urls_get_codes(url, code):
    assert _code(_fetcher(), url) == code


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/ok.jpg":
            body = b"\xff\xd8\xff" + b"0" * 100
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", "999999999")
            self.end_headers()
        elif self.path == "/stream-big":
            self.send_response(200)
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"0" * 1000)
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
        elif self.path == "/trickle":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(40):
                    self.wfile.write(b"0")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        else:
            self.send_response(404)
            self.end_headers()


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_http_fetch_and_error_codes(server):
    f = _fetcher(allow_private_addresses=True, retries=0, max_bytes=10_000, total_timeout_s=1.5, read_timeout_s=1.0)
    assert f.fetch(server + "/ok.jpg").data.startswith(b"\xff\xd8\xff")
    assert _code(f, server + "/nope") == "http_404"
    assert _code(f, server + "/big") == "too_large"          # refused on Content-Length, nothing read
    assert _code(f, server + "/stream-big") == "too_large"   # counted while streaming
    assert _code(f, server + "/loop") == "too_many_redirects"
    assert _code(f, server + "/to-file") == "unsupported_scheme"
    started = time.monotonic()
    assert _code(f, server + "/trickle") == "fetch_timeout"  # a byte every 0.1 s never trips the read timeout
    assert time.monotonic() - started < 3.0


def test_redirect_target_is_checked_again(server):
    # Loopback allowed for the first hop only would be a bypass; with the default rules it is refused outright.
    assert _code(_fetcher(), server + "/ok.jpg") == "blocked_address"


def test_connection_refused_is_reported():
    f = _fetcher(allow_private_addresses=True, retries=1, retry_backoff_s=0.01)
    assert _code(f, "http://127.0.0.1:1/x.jpg") == "connection_error"
