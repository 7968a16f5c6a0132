import json

import pytest

import medialayer
from medialayer.cli import main
from medialayer.pairwise import read_pairs_csv
import numpy as np

from medialayer.synth.edits import mirror, watermark


def test_match_command_prints_the_envelope(photos, save, capsys):
    a = save(photos[0], "a.jpg")
    b = save(mirror(photos[0], np.random.default_rng(0)), "b.jpg")
    assert main(["match", a, b]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["match_type"] == "mirrored" and env["match_found"] is True


def test_pairs_file_gives_one_line_per_pair_equal_to_the_api(photos, save, tmp_path):
    a = save(photos[0], "a.jpg")
    b = save(watermark(photos[0], np.random.default_rng(0)), "b.jpg")
    c = save(photos[3], "c.jpg")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"a,b\n{a},{b}\n{a},{c}\n{a},{tmp_path / 'missing.jpg'}\n")
    out = tmp_path / "out.jsonl"
    assert main(["match", "--pairs", str(pairs), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["b"] for line in lines] == [b, c, str(tmp_path / "missing.jpg")]
    assert lines[0]["match_found"] and not lines[1]["match_found"]
    assert lines[2]["error_code"] == "not_found"
    assert lines[0]["similarity"] == medialayer.match(a, b).to_dict()["similarity"]


def test_pairs_csv_without_required_columns_is_refused():
    with pytest.raises(ValueError, match="'a' and 'b'"):
        read_pairs_csv(["x,y", "1,2"])


def test_bad_config_exits_with_a_message(tmp_path, capsys):
    conf = tmp_path / "bad.yaml"
    conf.write_text("nonsense: 1\n")
    assert main(["match", "x", "y", "--conf", str(conf)]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_the_demo_replaces_its_own_warehouse_and_nothing_else(tmp_path):
    """`make demo` twice on one day: the second replays the night before into a fresh warehouse
    (a warehouse holding today's run refuses yesterday). A directory that is not a medialayer
    warehouse is never deleted."""
    import pytest

    from medialayer.cli import fresh_demo_warehouse

    assert fresh_demo_warehouse(tmp_path / "warehouse") == tmp_path / "warehouse"      # nothing there yet
    old = tmp_path / "warehouse"
    (old / "runs").mkdir(parents=True)
    (old / "runs" / "part-0.parquet").write_bytes(b"x")
    assert not fresh_demo_warehouse(old).exists()
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.jpg").write_bytes(b"x")
    with pytest.raises(SystemExit, match="not a medialayer warehouse"):
        fresh_demo_warehouse(other)
    assert (other / "keep.jpg").exists()
