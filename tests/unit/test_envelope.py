from dataclasses import asdict, fields

from medialayer.envelope import MatchResult, Segment, error_result


def test_to_dict_holds_every_field_in_declaration_order():
    seg = Segment(1.0, 4.5, 10.0, 13.5, 0.91)
    result = MatchResult(True, "high", 0.912345, "segment_copy", "video", "copied clip", [seg])
    d = result.to_dict()
    expected = asdict(result)
    del expected["error_code"]
    expected["similarity"] = 0.9123
    assert d == expected
    assert list(d) == [f.name for f in fields(MatchResult) if f.name != "error_code"]
    assert d["matched_segments"] == [{"query_start": 1.0, "query_end": 4.5, "reference_start": 10.0,
                                      "reference_end": 13.5, "similarity": 0.91}]


def test_error_code_is_present_only_on_errors():
    d = error_result("image", "fetch_timeout", "slow host").to_dict()
    assert d["error_code"] == "fetch_timeout" and d["match_found"] is False
    assert "slow host" in d["reason"]
