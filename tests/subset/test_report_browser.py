"""report.html in a real headless browser (Debian's chromium, `make setup-browser`): the text a
reader sees is read back from the rendered DOM, and the embedded plots decode."""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gdo_opt.goal.metrics import align_metrics
from gdo_opt.goal.preset import load_preset
from gdo_opt.subset.pipeline import SelectConfig, select_subset, write_outputs

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_select", ROOT / "experiments" / "bench_select.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _chromium() -> str | None:
    for name in (os.environ.get("GDO_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary: `make setup-browser` installs Debian's chromium (needs root + apt)")
    frame = bench.make_candidates(2000, seed=5)
    table = bench.make_gdo_metrics(frame, seed=5, missing=0.03)
    metrics = align_metrics(frame["qa_uid"], table, "gdo-jsonl", "metrics.jsonl")
    result = select_subset(frame, metrics, load_preset("temp_plus_weighted"), SelectConfig(solver="highs", seed=1))
    out = write_outputs(result, frame, metrics, tmp_path_factory.mktemp("report"), console=False)
    profile = tmp_path_factory.mktemp("chrome-profile")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--dump-dom", (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    return {"dom": dom, "report": result.report, "out": out}


def _text(dom: str, section: str) -> str:
    """The visible text of ``<section id=...>`` (tags dropped, whitespace collapsed)."""
    match = re.search(rf'<section id="{section}">(.*?)</section>', dom, re.S)
    assert match, f"section {section} not rendered"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def test_solve_summary_and_budget_are_read_back(page):
    dom, report = page["dom"], page["report"]
    assert "<title>GDO subset: temp_plus_weighted</title>" in dom
    solve = _text(dom, "solve")
    s = report["solve"]
    assert s["status"] in solve and "certified gap" in solve
    assert f"{s['objective']:.6g}" in solve and f"{s['bound']:.6g}" in solve
    assert s["message"] in solve and "timings.json" in solve
    budget = _text(dom, "budget")
    assert f"K = {report['budget']['k']:,} samples" in budget
    assert "{" not in budget  # words, not a Python dict


def test_constraints_grouped_with_binding_rows_highlighted(page):
    dom, report = page["dom"], page["report"]
    text = _text(dom, "constraints")
    for name in ("budget", "stratum_quota", "per_video_cap", "dedup", "video_share", "temporal_share"):
        assert f'id="family-{name}"' in dom
    share = next(r for r in report["constraints"] if r["name"] == "video_share")
    a, b, hi = share["count"], share["of"], share["hi"]
    # binding = no slack of a whole row: one more video row would exceed the ceiling
    assert share["binding"] == ((a + 1) / b > hi + 1e-12 or (a - 1) / b < share["lo"] - 1e-12)
    video = re.search(r'<h3 id="family-video_share">.*?</table>', dom, re.S).group(0)
    assert ('class="binding"' in video) == share["binding"]
    cap = re.search(r'<h3 id="family-per_video_cap">.*?</table>', dom, re.S).group(0)
    cap_text = " ".join(re.sub(r"<[^>]+>", " ", cap).split())
    assert " 8 " in cap_text and "None" not in cap_text  # the preset's cap, shown as its bound
    assert "True" not in text and "False" not in text and "None" not in text
    n_binding = len(re.findall(r'<tr class="binding">', re.search(r'<section id="constraints">.*?</section>',
                                                                  dom, re.S).group(0)))
    assert f"{n_binding} of " in text and n_binding > 0


def test_distributions_descriptors_missing_and_baseline(page):
    dom, report = page["dom"], page["report"]
    fields = _text(dom, "fields")
    js = report["fields"]["bucket"]["js_gdo_1x_vs_pool"]
    assert "Jensen–Shannon" in fields and f"{js:.3g}" in fields
    desc = _text(dom, "descriptors")
    assert "vds" in desc and "median" in desc
    missing = _text(dom, "missing")
    n_missing = report["missing_descriptors"]["candidates"]
    assert n_missing > 0 and f"{n_missing:,} of {report['pool']['candidates']:,} candidates" in missing
    base = _text(dom, "baseline")
    assert f"{report['baseline']['size']:,} rows" in base
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', dom)
    assert len(images) >= 2 + len(report["fields"])
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            assert im.size[0] > 200 and len(set(np.asarray(im.convert("L")).ravel().tolist())) > 5
