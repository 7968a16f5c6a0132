"""Pairwise matching without Spark: the CLI's `match`, `match --pairs`, and `medialayer.match`.

It calls the same fingerprinting (`media.fingerprint_rows`) and verification
(`verification.verify_batch`) as the Spark job, so a pair gets the same envelope everywhere.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .config import Config, load_config
from .envelope import MatchResult, Segment, error_result, swap_sides
from .fetching import Fetcher
from .media import fingerprint_table
from .verification import pair_batch, verify_batch

_BATCH = 64


def match(a: str, b: str, media_type: str | None = None, cfg: Config | None = None,
          trusted_local: bool = True) -> MatchResult:
    """Compare two media URLs or paths. Local paths are trusted by default here: this is the
    Python API, called by code that chose the paths. Services must pass trusted_local=False."""
    return match_pairs([(a, b, media_type)], cfg=cfg, trusted_local=trusted_local)[0]


def match_pairs(pairs: Sequence[tuple[str, str, str | None]], cfg: Config | None = None,
                trusted_local: bool = True) -> list[MatchResult]:
    """Envelopes for many pairs; each distinct URL is fetched and fingerprinted once."""
    cfg = cfg or load_config()
    fetcher = Fetcher(cfg.fetch, trusted_local=trusted_local)
    urls: dict[str, int] = {}
    declared: list[str | None] = []
    for a, b, media_type in pairs:
        for url in (a, b):
            if url not in urls:
                urls[url] = len(urls)
                declared.append(media_type)
    url_list = list(urls)
    fps = fingerprint_table(url_list, declared, cfg, fetcher, _BATCH) if url_list else None

    results: list[MatchResult | None] = [None] * len(pairs)
    ok_pairs = []
    status = fps.column("status").to_pylist() if fps is not None else []
    for n, (a, b, media_type) in enumerate(pairs):
        ia, ib = urls[a], urls[b]
        failed = next((i for i in (ia, ib) if status[i] != "ok"), None)
        if failed is not None:
            results[n] = error_result(media_type or fps.column("media_type")[failed].as_py(),
                                      fps.column("error_code")[failed].as_py(),
                                      f"{url_list[failed]}: {fps.column('error_detail')[failed].as_py()}")
        else:
            ok_pairs.append((n, ia, ib))
    if ok_pairs:
        order, ia, ib = (np.array(x) for x in zip(*ok_pairs))
        # Score in the batch job's orientation: match(a, b) == match(b, a), and equal to the job's
        # and the search index's envelope for the same pair.
        ia, ib, swap = scoring_order(np.array(fps.column("media_key").to_pylist(), dtype=object), ia, ib)
        verified = verify_batch(pair_batch(fps, ia, ib), cfg, keep_below_record=True).to_pylist()
        for n, row, swapped in zip(order, verified, swap):
            results[n] = _to_result(row, bool(swapped))
    return results  # type: ignore[return-value]


def scoring_order(keys: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (a, b) turned the way the product scores a pair, the smaller key first, and which were
    swapped. Keypoint matching asks with one side's descriptors, so the order is part of the result."""
    a, b = np.asarray(a), np.asarray(b)
    swap = keys[a] > keys[b]
    return np.where(swap, b, a), np.where(swap, a, b), swap


def _to_result(row: dict, swapped: bool = False) -> MatchResult:
    """Envelope of a verified row; segments go back to the caller's (a, b) order when it was swapped."""
    segments = [Segment(**(swap_sides(s) if swapped else s)) for s in row["matched_segments"] or []]
    return MatchResult(row["match_found"], row["confidence"], row["similarity"], row["match_type"],
                       row["media_type"], row["reason"], segments)


def read_pairs_csv(lines: Iterable[str]) -> list[tuple[str, str, str | None]]:
    """Rows of a pairs CSV with header `a,b[,media_type]`; a clear error names a bad line."""
    import csv

    reader = csv.DictReader(lines)
    if reader.fieldnames is None or not {"a", "b"} <= set(reader.fieldnames):
        raise ValueError(f"pairs CSV needs columns 'a' and 'b' (optional 'media_type'); got {reader.fieldnames}")
    out = []
    for line_no, row in enumerate(reader, start=2):
        a, b = (row.get("a") or "").strip(), (row.get("b") or "").strip()
        if not a or not b:
            raise ValueError(f"pairs CSV line {line_no}: both 'a' and 'b' are required")
        out.append((a, b, (row.get("media_type") or "").strip() or None))
    return out
