"""`medialayer report`: the review queue as one self-contained HTML page, for people who would rather
look at images than read ids.

Each item shows its listings' thumbnails side by side (embedded as data URIs, so the file can be
mailed or attached to a ticket), the suggested decision and reasons, and the strongest matched
pairs with their envelope (similarity, confidence, match type, reason, segments) and listing,
seller and SKU ids. Thumbnails are fetched with the `fetch` rules of the configuration (seller URLs
are untrusted here too); `--media-root` adds local directories the report may read.
"""
from __future__ import annotations

import base64
import html
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .errors import MediaError
from .fetching import Fetcher
from .tables import read_table

log = logging.getLogger(__name__)

_DECISION_COLOURS = {"block": "#b3261e", "review": "#a15c00", "merge": "#1f5fa8", "approve": "#2e7d32"}


@dataclass
class ReportSummary:
    items: int
    thumbnails: int
    thumbnail_errors: int
    path: Path


def _thumbnail(url: str, fetcher: Fetcher, side: int) -> tuple[str | None, str | None]:
    """(data URI, None) or (None, error code)."""
    from PIL import Image

    from .decoding import sniff_media_type

    try:
        data = fetcher.fetch(url).data
        kind = sniff_media_type(data)
        if kind in ("video", "audio"):
            im = _av_poster(data, kind, side)
        else:
            with Image.open(io.BytesIO(data)) as src:
                src.draft("RGB", (side * 2, side * 2))
                im = src.convert("RGB")
        im.thumbnail((side, side))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80)
    except MediaError as exc:
        return None, exc.code
    except Exception:  # noqa: BLE001 - a thumbnail that cannot be made is shown as such, not fatal
        return None, "decode_error"
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(), None


def _av_poster(data: bytes, kind: str, side: int):
    """A video's frame at about 1 s (or a third of a short clip), or an audio file's spectrogram
    (first 10 s, time left to right, low pitches at the bottom): something a reviewer can compare."""
    import av
    from PIL import Image

    with av.open(io.BytesIO(data)) as container:
        if kind == "video" and container.streams.video:
            stream = container.streams.video[0]
            duration = float(stream.duration * stream.time_base) if stream.duration else 3.0
            target = min(1.0, duration / 3)
            for frame in container.decode(stream):
                if frame.time is None or frame.time >= target:
                    return frame.to_image(width=side * 2, height=max(1, side * 2 * frame.height // frame.width))
            raise ValueError("no video frame")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=8000)
        chunks, total = [], 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
                total += chunks[-1].size
            if total >= 80000:
                break
    x = np.concatenate(chunks)[:80000] if chunks else np.zeros(512, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, (0, 512)), 512)[::256]
    spec = np.log(np.abs(np.fft.rfft(frames * np.hanning(512), axis=1)) + 1e-3).T[::-1]
    spec = (255 * (spec - spec.min()) / max(1e-9, float(np.ptp(spec)))).astype(np.uint8)
    return Image.fromarray(255 - spec).convert("RGB").resize((side * 2, side))


def write_report(warehouse: str | Path, out: str | Path, cfg: Config, media_roots: list[str] | None = None,
                 max_items: int = 200, max_pairs: int = 6, thumb_px: int = 160) -> ReportSummary:
    if media_roots:
        cfg = cfg.with_overrides({"fetch": {"local_roots": list(cfg.fetch.local_roots) + [str(Path(r).resolve())
                                                                                      for r in media_roots]}})
    fetcher = Fetcher(cfg.fetch)
    queue = read_table(warehouse, "review_queue").to_pylist()
    queue.sort(key=lambda r: (r["priority"], r["rank"]))
    total_items = len(queue)
    queue = queue[:max_items]
    listings = {r["listing_id"]: r for r in read_table(
        warehouse, "listing_media", ["listing_id", "media_key", "media_url", "seller_id", "sku_id", "brand_id",
                                     "source"]).to_pylist()}
    wanted = {lid for item in queue for lid in [*item["listing_ids"], *(item.get("related_listing_ids") or [])]}
    pairs = [r for r in read_table(warehouse, "listing_matches").to_pylist()
             if r["listing_id_a"] in wanted and r["listing_id_b"] in wanted]
    segments = {}
    for m in read_table(warehouse, "media_matches", ["media_key_a", "media_key_b", "envelope"]).to_pylist():
        segments[(m["media_key_a"], m["media_key_b"])] = json.loads(m["envelope"] or "{}").get("matched_segments", [])

    thumbs: dict[str, tuple[str | None, str | None]] = {}
    sections = []
    for item in queue:
        members = list(item["listing_ids"]) + list(item.get("related_listing_ids") or [])
        cards = []
        for lid in members:
            info = listings.get(lid, {})
            url = info.get("media_url")
            if url and url not in thumbs:
                thumbs[url] = _thumbnail(url, fetcher, thumb_px)
            uri, err = thumbs.get(url, (None, "missing_url"))
            related = lid not in item["listing_ids"]
            img = (f'<img class="thumb" src="{uri}" alt="{html.escape(lid)}">' if uri else
                   f'<div class="thumb missing">{html.escape(err or "no media")}</div>')
            cards.append(f'<figure class="card{" related" if related else ""}">{img}<figcaption>'
                         f'<b>{html.escape(lid)}</b><br>seller {html.escape(info.get("seller_id") or "-")}'
                         f'<br>SKU {html.escape(info.get("sku_id") or "-")}'
                         f'{"<br><i>brand reference</i>" if info.get("source") == "brand_reference" else ""}'
                         f'{"<br><i>weak match</i>" if related else ""}</figcaption></figure>')
        in_item = set(members)
        item_pairs = sorted((p for p in pairs if p["listing_id_a"] in in_item and p["listing_id_b"] in in_item
                             and p["decision"] != "approve"), key=lambda p: -p["similarity"])[:max_pairs]
        rows = []
        for p in item_pairs:
            seg = (segments.get((p["media_key_a"], p["media_key_b"]))
                   or segments.get((p["media_key_b"], p["media_key_a"])) or [])
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                f'{p["listing_id_a"]} / {p["listing_id_b"]}', p["relation"], p["decision"], f'{p["similarity"]:.2f}',
                p["confidence"], p["match_type"], p["match_reason"], json.dumps(seg))) + "</tr>")
        decision = item["suggested_decision"]
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in item["reasons"])
        sections.append(
            f'<section class="item" id="{html.escape(item["item_id"])}">'
            f'<h2><span class="decision" style="background:{_DECISION_COLOURS.get(decision, "#555")}">'
            f'{html.escape(decision)}</span> priority {item["priority"]} #{item["rank"]} '
            f'<small>{html.escape(item["item_id"])} &middot; {item["n_listings"]} listings &middot; sellers '
            f'{html.escape(", ".join(item["seller_ids"]))}</small></h2><ul class="reasons">{reasons}</ul>'
            f'<div class="cards">{"".join(cards)}</div>'
            + (f'<table><thead><tr><th>listings</th><th>relation</th><th>decision</th><th>similarity</th>'
               f'<th>confidence</th><th>match type</th><th>reason</th><th>segments</th></tr></thead>'
               f'<tbody>{"".join(rows)}</tbody></table>' if rows else "") + "</section>")

    made = sum(1 for uri, _ in thumbs.values() if uri)
    failed = len(thumbs) - made
    page = _PAGE.format(title="medialayer review queue", total=total_items, shown=len(queue),
                        warehouse=html.escape(str(Path(warehouse).resolve())), body="".join(sections) or
                        "<p>The review queue is empty.</p>")
    out = Path(out)
    out.write_text(page, encoding="utf-8")
    log.info("report: %d item(s), %d thumbnail(s) (%d could not be made) -> %s", len(queue), made, failed, out)
    return ReportSummary(len(queue), made, failed, out)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin: 0 0 8px; }} small {{ color: #666; font-weight: normal; }}
.item {{ background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 16px; margin: 0 0 20px; }}
.decision {{ color: #fff; border-radius: 4px; padding: 2px 8px; text-transform: uppercase; font-size: 12px; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 10px; }}
.card {{ margin: 0; width: 170px; font-size: 12px; }} .card.related {{ opacity: .75; }}
.thumb {{ width: 160px; height: 160px; object-fit: contain; background: #eee; border-radius: 4px; display: block; }}
.missing {{ display: flex; align-items: center; justify-content: center; color: #b3261e; }}
table {{ border-collapse: collapse; margin-top: 12px; width: 100%; font-size: 12px; }}
td, th {{ border-top: 1px solid #eee; padding: 4px 6px; text-align: left; vertical-align: top; }}
</style></head>
<body data-thumbs-loaded="0" data-thumbs-total="0">
<h1>{title}</h1>
<p>{shown} of {total} item(s), most urgent first &middot; warehouse <code>{warehouse}</code></p>
{body}
<script>
(function () {{
  var imgs = Array.prototype.slice.call(document.querySelectorAll("img.thumb"));
  function count() {{
    var ok = imgs.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length;
    document.body.setAttribute("data-thumbs-loaded", String(ok));
    document.body.setAttribute("data-thumbs-total", String(imgs.length));
  }}
  imgs.forEach(function (i) {{ i.addEventListener("load", count); i.addEventListener("error", count); }});
  window.addEventListener("load", count);
  count();
}})();
</script>
</body></html>
"""
