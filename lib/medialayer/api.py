"""The HTTP API: pairwise match endpoints and one-to-many catalog search (`medialayer serve`).

Same fetching, fingerprinting and verification as the batch job. Every URL goes through the
fetcher untrusted (private addresses refused, local paths only under fetch.local_roots). Bad input
is a 4xx with a JSON body that says what is wrong; a media that cannot be fetched or decoded is a
422 carrying the batch job's error code. Load beyond `api.max_concurrency` + `api.max_queue` is
refused with 429, a request that waits longer than `api.queue_timeout_s` gets 503; /health is never
queued.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from . import __version__
from .config import Config
from .fetching import Fetcher
from .media import fingerprint_table
from .pairwise import match_pairs

log = logging.getLogger(__name__)

_OPEN_PATHS = {"/health", "/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"}
_URL = Field(min_length=1, max_length=4096)


class PairRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url_a: str = _URL
    url_b: str = _URL


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = _URL
    k: int | None = Field(default=None, ge=1)
    media_type: Literal["image", "video", "audio"] | None = None


class MediaFailed(Exception):
    def __init__(self, code: str, detail: str, url: str):
        super().__init__(code)
        self.code, self.detail, self.url = code, detail, url


def api_token(cfg: Config) -> str:
    return os.environ.get("MEDIALAYER_API_TOKEN", cfg.api.token)


def create_app(cfg: Config, warehouse: str | Path | None = None) -> FastAPI:
    """The ASGI app. Without a warehouse, /search answers 503 and the match endpoints work."""
    from .search_index import IndexHolder, IndexNotFound

    holder: IndexHolder | None = None
    index_error = "no warehouse given (medialayer serve --warehouse DIR)"
    if warehouse is not None:
        try:
            holder = IndexHolder(warehouse, cfg, cfg.api.reload_interval_s)
        except IndexNotFound as exc:
            index_error = str(exc)
            log.warning("search disabled: %s", exc)

    app = FastAPI(title="medialayer", version=__version__,
                  description="Duplicate and copied product media: pairwise match and catalog search.")
    token = api_token(cfg)
    slots = asyncio.Semaphore(cfg.api.max_concurrency)
    state = {"waiting_or_running": 0}
    limit = cfg.api.max_concurrency + cfg.api.max_queue

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if path in _OPEN_PATHS:
            return await call_next(request)
        if token:
            given = request.headers.get("authorization", "")
            if not (given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode())):
                return _error(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer ...)")
        length = request.headers.get("content-length")
        if length is None and request.method == "POST":
            return _error(411, "length_required", "send a Content-Length header (chunked bodies are not accepted)")
        if length is not None and (not length.isdigit() or int(length) > cfg.api.max_body_bytes):
            return _error(413, "body_too_large", f"request bodies are limited to {cfg.api.max_body_bytes} bytes")
        if request.method == "POST":
            # The whole (small) body must arrive in time, before a slot is taken: a client that
            # trickles its body must not hold a worker slot.
            try:
                await asyncio.wait_for(request.body(), timeout=cfg.api.body_timeout_s)
            except asyncio.TimeoutError:
                return _error(408, "body_timeout", f"request body not received within {cfg.api.body_timeout_s}s")
        if state["waiting_or_running"] >= limit:
            return _error(429, "too_many_requests", f"more than {limit} requests in flight; retry later")
        state["waiting_or_running"] += 1
        try:
            try:
                await asyncio.wait_for(slots.acquire(), timeout=cfg.api.queue_timeout_s)
            except asyncio.TimeoutError:
                return _error(503, "busy", f"no free slot within {cfg.api.queue_timeout_s}s; retry later")
            try:
                return await call_next(request)
            finally:
                slots.release()
        finally:
            state["waiting_or_running"] -= 1

    @app.exception_handler(MediaFailed)
    async def media_failed(_: Request, exc: MediaFailed):
        return _error(422, exc.code, f"{exc.url}: {exc.detail}")

    @app.get("/health")
    def health() -> dict:
        index = holder.index if holder is not None else None
        return {"status": "ok", "version": __version__,
                "index": {"version": index.version, "media": index.size,
                          "bytes_per_media": round(index.bytes_per_media, 1),
                          "av_media": index.av_table.num_rows,
                          "av_bytes_per_media": round(index.av_bytes_per_media, 1)} if index else None,
                "search": "ready" if index else index_error}

    def pair(body: PairRequest, media_type: str) -> dict:
        result = match_pairs([(body.url_a, body.url_b, media_type)], cfg, trusted_local=False)[0]
        if result.error_code:
            failed = body.url_a if body.url_a in result.reason else body.url_b
            raise MediaFailed(result.error_code, result.reason, failed)
        if result.media_type != media_type:
            raise MediaFailed("unsupported_type", f"/{media_type}/match compares {media_type} media; "
                              f"these are {result.media_type}", f"{body.url_a}, {body.url_b}")
        return result.to_dict()

    @app.post("/image/match")
    def image_match(body: PairRequest) -> dict:
        return pair(body, "image")

    @app.post("/video/match")
    def video_match(body: PairRequest) -> dict:
        return pair(body, "video")

    @app.post("/audio/match")
    def audio_match(body: PairRequest) -> dict:
        return pair(body, "audio")

    @app.post("/search")
    def search(body: SearchRequest) -> dict:
        if holder is None:
            raise HTTPException(503, detail=index_error)
        k = body.k or cfg.api.search_default_k
        if k > cfg.api.search_max_k:
            raise HTTPException(422, detail=f"k must be at most {cfg.api.search_max_k} (api.search_max_k)")
        return search_url(holder.index, body.url, k, body.media_type, cfg, trusted_local=False)

    return app


def serve_app() -> FastAPI:
    """App factory for uvicorn worker processes (`medialayer serve` with api.workers > 1): each
    worker rebuilds the config and the index from what `cmd_serve` put in the environment."""
    from .config import load_config

    overrides = json.loads(os.environ.get("MEDIALAYER_SERVE_OVERRIDES", "{}"))
    cfg = load_config(os.environ.get("MEDIALAYER_SERVE_CONF") or None, overrides=overrides)
    return create_app(cfg, os.environ.get("MEDIALAYER_SERVE_WAREHOUSE") or None)


def search_url(index, url: str, k: int, media_type: str | None, cfg: Config, trusted_local: bool) -> dict:
    """Fingerprint `url` and return its top-k catalog matches (shared by the API and the CLI)."""
    import time

    query = fingerprint_table([url], [media_type], cfg, Fetcher(cfg.fetch, trusted_local=trusted_local), 1)
    row = query.slice(0, 1).to_pylist()[0]
    if row["status"] != "ok":
        raise MediaFailed(row["error_code"], row["error_detail"] or "", url)
    started = time.perf_counter()
    hits = index.search(query, k)
    return {"query": {"url": url, "media_key": row["media_key"], "media_type": row["media_type"]},
            "index": {"version": index.version, "media": index.size},
            "search_ms": round((time.perf_counter() - started) * 1000, 2),
            "results": [h.to_dict() for h in hits]}


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "detail": detail}})
