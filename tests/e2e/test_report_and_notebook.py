"""What reviewers and analysts open: the HTML review report (rendered in headless Chromium) and the
analysis notebook (executed headless), both on a warehouse made by one pipeline run."""
from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from medialayer.pipeline import run_pipeline
from medialayer.report import write_report
from medialayer.sample_catalog import build_sample_catalog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def warehouse(spark, spark_cfg, tmp_path_factory):
    cat = build_sample_catalog(tmp_path_factory.mktemp("rcat"), n_groups=3, n_singletons=2, max_side=400)
    cfg = spark_cfg.with_overrides({"fetch": {"local_roots": [str(cat.media_dir)]}})
    wh = tmp_path_factory.mktemp("rwh")
    run_pipeline(spark, cfg, str(cat.manifest_path), str(wh), date(2026, 11, 1), str(cat.authorizations_path))
    return wh, cat, cfg


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert path, "headless Chromium is needed (Debian package chromium; `make test` installs it when run as root)"
    return path


def render(page: Path) -> tuple[str, list[str]]:
    """(DOM after load, console messages) of a local page in headless Chromium."""
    proc = subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def test_console_capture_works(tmp_path):
    """The control for the next test: a page that logs an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><script>console.error("deliberate"); undefinedFn();</script></body></html>')
    _, console = render(page)
    assert any("deliberate" in line for line in console) and any("undefinedFn" in line for line in console)


def test_review_report_renders_every_thumbnail_without_console_errors(warehouse, tmp_path):
    wh, cat, cfg = warehouse
    out = tmp_path / "report.html"
    summary = write_report(wh, out, cfg, media_roots=[str(cat.media_dir)])
    queue = pq.read_table(wh / "review_queue").to_pandas()
    assert summary.items == len(queue) > 0 and summary.thumbnail_errors == 0
    text = out.read_text()
    assert "http://" not in text and "https://" not in text and "src=\"file:" not in text   # self-contained
    dom, console = render(out)
    assert console == [], console
    loaded = re.search(r'data-thumbs-loaded="(\d+)" data-thumbs-total="(\d+)"', dom)
    shown = text.count('<img class="thumb"')                  # a media listed twice is shown twice
    assert loaded and int(loaded.group(1)) == int(loaded.group(2)) == shown >= summary.thumbnails > 0
    for item in queue.itertuples():
        assert item.item_id in dom
    assert "BLOCK" in dom.upper() and next(iter(cat.brand_references)) in dom


def test_report_shows_unreadable_media_as_such(warehouse, tmp_path):
    from medialayer.config import load_config

    wh, _, _ = warehouse
    out = tmp_path / "report.html"
    summary = write_report(wh, out, load_config())        # default fetch rules: local files are refused
    assert summary.thumbnails == 0 and summary.thumbnail_errors > 0
    assert "blocked_path" in out.read_text()


def test_analysis_notebook_runs_headless_on_the_warehouse(warehouse, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    wh, cat, _ = warehouse
    # Labelled pairs from what the catalog planted: each copy with its original (1), originals of
    # different products and unrelated photos (0).
    lm = pq.read_table(wh / "listing_media").to_pandas().drop_duplicates("listing_id").set_index("listing_id")
    key = lm["media_key"]
    rows = [(key[g[0]], key[lid], 1) for g in cat.groups.values() for lid in g[1:] if key[lid] != key[g[0]]]
    originals = [key[g[0]] for g in cat.groups.values()]
    rows += [(a, key[s], 0) for a in originals for s in cat.singletons]
    rows += [(a, b, 0) for i, a in enumerate(originals) for b in originals[i + 1:]]
    labels = tmp_path / "labels.csv"
    pd.DataFrame(rows, columns=["media_key_a", "media_key_b", "label"]).to_csv(labels, index=False)
    nb = nbformat.read(ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        f"WAREHOUSE = {str(wh)!r}\nMEDIA_ROOTS = [{str(cat.media_dir)!r}]\nLABELS = {str(labels)!r}"))
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5            # cluster sizes, copy rates, decisions, threshold curve, thumbnails
    threshold_cell = next(c for c in nb.cells if c.cell_type == "code" and "if LABELS:" in c.source)
    assert any("image/png" in o.get("data", {}) for o in threshold_cell.outputs)
