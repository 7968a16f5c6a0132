"""Videos and audio files in the search index: the batch job's frame, landmark and keyframe-word keys.

A catalog holds far fewer videos and sound files than images, so their keys live in RAM, sorted,
built when the index loads (about 16 bytes per key: a 2-minute video has up to ~30,000 frame keys plus
its landmark and keyframe-word keys; `av_bytes_per_media` reports the figure). A query's keys meet
them under the job's rules (`candidates.kind_rules`: distinct shared keys per kind, bucket caps),
so a pair the job would verify is verified here too (a bucket's size counts the videos and audio
files only, so a key crowded by images in the job can still bring a pair here: a superset):
- a video or audio query meets videos and audio files (frames, sound tracks);
- an image query meets videos through its pHash frame keys and one-bit probes, and through its
  keypoint words against the videos' keyframes (a frame grab, cropped or not).
Catalog images are not found from a video query (their frame keys are not indexed: a quarter of
an image's keys, for a rare question).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .candidates import KIND_BAND, kind_rules, media_keys, real_rows
from .config import Config


def keyable(table: pa.Table) -> pa.Table:
    """The join-key functions read `status`; indexed rows and queries are all ok."""
    if "status" in table.column_names:
        return table
    return table.append_column("status", pa.array(["ok"] * table.num_rows))


class AVKeyStore:
    """Sorted (key, row, kind) entries of a table of ok video and audio rows; keyframe words sit on
    pseudo rows (candidates.KEYFRAME_ROWS) so that a pair needs its words from one keyframe."""

    def __init__(self, table: pa.Table, cfg: Config):
        self.cfg = cfg
        rules = kind_rules(cfg.candidates)
        kinds = range(max(rules) + 1)
        self.min_shared = np.array([rules[k][0] for k in kinds])     # indexed by KIND_*
        self.bucket_cap = np.array([rules[k][1] for k in kinds])
        if table.num_rows == 0:
            self.keys = np.zeros(0, np.int64)
            self.rows = np.zeros(0, np.int64)
        else:
            # A key's kind is in its flag bits: a query key meets entries of its own kind only.
            k = media_keys(keyable(table), cfg)
            keep = k.indexed & (k.kind != KIND_BAND)
            order = np.argsort(k.key[keep], kind="stable")
            self.keys = k.key[keep][order]
            self.rows = k.row[keep][order]
        self.starts = np.flatnonzero(np.r_[True, self.keys[1:] != self.keys[:-1]]) if self.keys.size else \
            np.zeros(0, np.int64)
        self.distinct = self.keys[self.starts]
        self.sizes = np.diff(np.r_[self.starts, self.keys.size])

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.rows.nbytes + self.starts.nbytes + self.distinct.nbytes
                   + self.sizes.nbytes)

    def candidates(self, query: pa.Table) -> np.ndarray:
        """Rows (of the indexed table) that the one query row meets under the job's rules."""
        if self.keys.size == 0:
            return np.zeros(0, np.int64)
        k = media_keys(keyable(query), self.cfg)
        ask = k.query & (k.kind != KIND_BAND)
        qrow, qkey, qkind = k.row[ask], k.key[ask], k.kind[ask]
        if qkey.size == 0:
            return np.zeros(0, np.int64)
        at = np.minimum(np.searchsorted(self.distinct, qkey), self.distinct.size - 1)
        met = (self.distinct[at] == qkey) & (self.sizes[at] <= self.bucket_cap[qkind])
        if not met.any():
            return np.zeros(0, np.int64)
        qrow, qkind, at = qrow[met], qkind[met], at[met]
        counts = self.sizes[at]
        first = self.starts[at]
        owner = np.repeat(np.arange(at.size), counts)
        pos = np.repeat(first - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(int(counts.sum()))
        # (query row, indexed row, kind): each (row, key) is distinct on both sides, so the number
        # of entries of a triple is the number of distinct keys the two rows share.
        triples = np.stack([qrow[owner], self.rows[pos], qkind[owner].astype(np.int64)], axis=1)
        uniq, n = np.unique(triples, axis=0, return_counts=True)
        return np.unique(real_rows(uniq[n >= self.min_shared[uniq[:, 2]], 1]))
