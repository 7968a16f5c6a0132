"""Fetching media bytes from local paths, file:// and http(s):// URLs, with limits that hold
against hostile URLs.

Why http.client and not a higher-level client: we resolve the host ourselves, refuse private
addresses, and then connect to exactly the address we checked (no second DNS lookup that a
rebinding attacker could answer differently). Redirects are followed by hand so that every hop is
checked again, and bodies are streamed with a byte cap and a wall-clock deadline so that neither a
huge body nor a slow trickle can hold a Spark task.
"""
from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

from .config import FetchConfig
from .errors import MediaError

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_RETRY_STATUSES = {429, 500, 502, 503, 504}
_CHUNK = 64 * 1024
_URL_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str | None
    final_url: str


def address_is_public(ip: str) -> bool:
    """True for globally routable unicast addresses; IPv4-mapped IPv6 is judged as its IPv4."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
                or addr.is_reserved or addr.is_unspecified or not addr.is_global)


@functools.lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    """One shared context: loading the system CA bundle costs ~25 ms, paid once per process, not
    per Fetcher (the API builds one per request). SSLContext is safe to share between threads."""
    return ssl.create_default_context()


class Fetcher:
    """Fetch one URL's bytes under the configured limits, or raise MediaError with a code.

    `trusted_local=True` lets any local path be read: for paths an operator typed on the command
    line, never for URLs from a manifest or an API request.
    """

    def __init__(self, cfg: FetchConfig, trusted_local: bool = False):
        self.cfg = cfg
        self.trusted_local = trusted_local
        self._roots = [Path(r).expanduser().resolve() for r in cfg.local_roots]
        self._ssl = _default_ssl_context()
        # Exact host:port pairs exempt from the address rules (an internal CDN, a test server); a
        # redirect elsewhere, or another name for the same address, is still checked.
        self._allowed_hosts = {str(h).lower() for h in cfg.allow_hosts}

    def fetch(self, url: str | None) -> Fetched:
        if url is None or not str(url).strip():
            raise MediaError("missing_url", "empty media URL")
        url = str(url).strip()
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise MediaError("invalid_url", str(exc)) from exc
        scheme = parts.scheme.lower()
        if scheme in ("", "file") or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):
            return self._fetch_local(url, parts)
        if scheme in ("http", "https"):
            return self._fetch_http(url)
        raise MediaError("unsupported_scheme", f"scheme {scheme!r} is not supported")

    # --- local files ----------------------------------------------------------------------

    def _fetch_local(self, url: str, parts) -> Fetched:
        if parts.scheme.lower() == "file":
            if parts.netloc not in ("", "localhost"):
                raise MediaError("blocked_path", f"file:// URL with a remote host {parts.netloc!r}")
            raw_path = unquote(parts.path)
        else:
            raw_path = url
        path = Path(raw_path).expanduser()
        try:
            resolved = path.resolve(strict=False)
        except (OSError, RuntimeError) as exc:
            raise MediaError("invalid_url", f"cannot resolve path: {exc}") from exc
        if not self.trusted_local and not any(_is_within(resolved, root) for root in self._roots):
            raise MediaError("blocked_path", f"{resolved} is outside fetch.local_roots")
        if not resolved.is_file():
            raise MediaError("not_found", f"no such file: {resolved}")
        size = resolved.stat().st_size
        if size > self.cfg.max_bytes:
            raise MediaError("too_large", f"{size} bytes > fetch.max_bytes={self.cfg.max_bytes}")
        if size == 0:
            raise MediaError("empty_body", "zero-byte file")
        with open(resolved, "rb") as fh:
            data = fh.read(self.cfg.max_bytes + 1)
        if len(data) > self.cfg.max_bytes:
            raise MediaError("too_large", f"file grew past fetch.max_bytes={self.cfg.max_bytes}")
        return Fetched(data=data, content_type=None, final_url=resolved.as_uri())

    # --- http(s) ------------------------------------------------------------------------------

    def _fetch_http(self, url: str) -> Fetched:
        deadline = time.monotonic() + self.cfg.total_timeout_s
        attempt = 0
        while True:
            try:
                return self._follow_redirects(url, deadline)
            except _Retryable as exc:
                attempt += 1
                backoff = self.cfg.retry_backoff_s * (2 ** (attempt - 1))
                if attempt > self.cfg.retries or time.monotonic() + backoff >= deadline:
                    raise exc.error from None
                time.sleep(backoff)

    def _follow_redirects(self, url: str, deadline: float) -> Fetched:
        current = url
        for _ in range(self.cfg.max_redirects + 1):
            status, headers, body = self._request(current, deadline)
            if status in _REDIRECT_STATUSES:
                location = headers.get("location")
                if not location:
                    raise MediaError(f"http_{status}", "redirect without a Location header")
                nxt = urljoin(current, location)
                if urlsplit(nxt).scheme.lower() not in ("http", "https"):
                    raise MediaError("unsupported_scheme", f"redirect to a non-http URL: {nxt[:200]}")
                current = nxt
                continue
            if status in _RETRY_STATUSES:
                raise _Retryable(MediaError(f"http_{status}", f"server answered {status}"))
            if not 200 <= status < 300:
                raise MediaError(f"http_{status}", f"server answered {status}")
            if not body:
                raise MediaError("empty_body", "zero bytes returned")
            return Fetched(data=body, content_type=headers.get("content-type"), final_url=current)
        raise MediaError("too_many_redirects", f"more than {self.cfg.max_redirects} redirects")

    def _request(self, url: str, deadline: float) -> tuple[int, dict, bytes]:
        parts = urlsplit(url)
        host = parts.hostname
        if not host:
            raise MediaError("invalid_url", "URL has no host")
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError as exc:
            raise MediaError("invalid_url", str(exc)) from exc
        ip = self._resolve_allowed(host, port)
        remaining = _remaining(deadline)
        conn_cls = _PinnedHTTPSConnection if parts.scheme.lower() == "https" else _PinnedHTTPConnection
        kwargs = {"context": self._ssl} if conn_cls is _PinnedHTTPSConnection else {}
        conn = conn_cls(host, port, ip, timeout=min(self.cfg.connect_timeout_s, remaining), **kwargs)
        # Sellers' URLs carry spaces and non-ASCII; send them percent-encoded (UTF-8), leaving
        # existing escapes and reserved characters alone, so both spellings fetch the same file.
        target = quote(parts.path or "/", safe=_URL_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_URL_SAFE + "?")
        try:
            conn.request("GET", target, headers={"User-Agent": self.cfg.user_agent, "Accept": "*/*",
                                                 "Accept-Encoding": "identity"})
            sock = conn.sock   # http.client drops conn.sock once the response will close; keep our own
            sock.settimeout(min(self.cfg.read_timeout_s, _remaining(deadline)))
            resp = conn.getresponse()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            if resp.status in _REDIRECT_STATUSES or not 200 <= resp.status < 300:
                return resp.status, headers, b""
            declared = headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.cfg.max_bytes:
                raise MediaError("too_large", f"Content-Length {declared} > fetch.max_bytes={self.cfg.max_bytes}")
            return resp.status, headers, self._read_capped(sock, resp, deadline)
        except MediaError:
            raise
        except (socket.timeout, TimeoutError) as exc:
            raise MediaError("fetch_timeout", f"no answer within the time limit ({exc})") from exc
        except ssl.SSLError as exc:
            raise MediaError("connection_error", f"TLS failure: {exc}") from exc
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            raise _Retryable(MediaError("connection_error", f"{type(exc).__name__}: {exc}")) from exc
        finally:
            conn.close()

    def _read_capped(self, sock: socket.socket, resp, deadline: float) -> bytes:
        chunks, total = [], 0
        while True:
            sock.settimeout(min(self.cfg.read_timeout_s, _remaining(deadline)))
            chunk = resp.read1(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > self.cfg.max_bytes:
                raise MediaError("too_large", f"body exceeded fetch.max_bytes={self.cfg.max_bytes}")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise MediaError("fetch_timeout", f"body still arriving after {self.cfg.total_timeout_s}s")

    def _resolve_allowed(self, host: str, port: int) -> str:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise MediaError("dns_error", f"cannot resolve {host!r}: {exc}") from exc
        addrs = [info[4][0] for info in infos]
        if not addrs:
            raise MediaError("dns_error", f"no address for {host!r}")
        if not self.cfg.allow_private_addresses and f"{host.lower()}:{port}" not in self._allowed_hosts:
            blocked = [a for a in addrs if not address_is_public(a)]
            if blocked:
                # Refuse when *any* answer is private: a mixed answer is a classic rebinding trick.
                raise MediaError("blocked_address", f"{host} resolves to non-public address {blocked[0]}")
        return addrs[0]


class _Retryable(Exception):
    def __init__(self, error: MediaError):
        super().__init__(str(error))
        self.error = error


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise MediaError("fetch_timeout", "total time limit reached")
    return left


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a pre-vetted IP while sending the original Host header."""

    def __init__(self, host: str, port: int, ip: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._pinned_ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._pinned_ip, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._pinned_ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._pinned_ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)

