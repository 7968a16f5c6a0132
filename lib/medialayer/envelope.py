"""The match envelope of DESIGN.md: one result shape for every media type and every entry point."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .config import ConfidenceConfig

MATCH_TYPES = ("exact", "near_duplicate", "edited_copy", "partial_copy", "mirrored",
               "frame_grab", "segment_copy", "no_match")
CONFIDENCES = ("high", "medium", "low", "none")


@dataclass(frozen=True)
class Segment:
    query_start: float
    query_end: float
    reference_start: float
    reference_end: float
    similarity: float


def swap_sides(segment: dict) -> dict:
    """A stored segment (verify's rows, a -> b) read the other way round, b -> a: the caller's
    order when a pair was scored with the smaller media_key first."""
    return {"query_start": segment["reference_start"], "query_end": segment["reference_end"],
            "reference_start": segment["query_start"], "reference_end": segment["query_end"],
            "similarity": segment["similarity"]}


@dataclass(frozen=True)
class MatchResult:
    match_found: bool
    confidence: str
    similarity: float
    match_type: str
    media_type: str
    reason: str
    matched_segments: list[Segment] = field(default_factory=list)
    error_code: str | None = None      # set only when a side could not be fetched or decoded

    def __post_init__(self) -> None:
        if self.match_type not in MATCH_TYPES:
            raise ValueError(f"unknown match_type {self.match_type!r}")
        if self.confidence not in CONFIDENCES:
            raise ValueError(f"unknown confidence {self.confidence!r}")
        if not 0.0 <= self.similarity <= 1.0:
            raise ValueError(f"similarity {self.similarity} outside [0, 1]")

    def to_dict(self) -> dict:
        # Spelled out: dataclasses.asdict deep-copies every field, which showed in the verifier's profile.
        d = {"match_found": self.match_found, "confidence": self.confidence,
             "similarity": round(float(self.similarity), 4), "match_type": self.match_type,
             "media_type": self.media_type, "reason": self.reason,
             "matched_segments": [dict(vars(s)) for s in self.matched_segments]}
        if self.error_code is not None:
            d["error_code"] = self.error_code
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)


def confidence_for(similarity: float, match_threshold: float, bands: ConfidenceConfig) -> str:
    """Map a calibrated similarity to a confidence word; below the match threshold it is 'none'."""
    if similarity >= bands.high:
        return "high"
    if similarity >= bands.medium:
        return "medium"
    if similarity >= match_threshold:
        return "low"
    return "none"


def error_result(media_type: str | None, code: str, detail: str) -> MatchResult:
    """Envelope for a pair that could not be compared because one side failed to load."""
    reason = f"Could not compare: {code} ({detail})" if detail else f"Could not compare: {code}"
    return MatchResult(False, "none", 0.0, "no_match", media_type or "unknown", reason, error_code=code)
