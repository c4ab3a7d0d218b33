"""Run times come from one source, ``docs/results/run_times.json``: the README's and the guide's
tables are generated from it (``tools/time_notebooks.py``), and the notebooks print their own
entry instead of typing a number in their introduction."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import time_notebooks  # noqa: E402

#: the notebooks that print their run time from the results file (add a notebook when its
#: introduction stops quoting a number of its own)
READS_THE_FILE = ("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11")
TYPED_TIME = re.compile(r"run time.{0,80}?≈\s*\d", re.IGNORECASE | re.DOTALL)


def test_results_file_readme_and_guide_agree():
    assert time_notebooks.check() == []


def test_a_stale_table_is_reported(tmp_path):
    data = time_notebooks.load()
    data["notebooks"]["01_coco_keypoints"]["cpu"]["seconds"] = 999
    problems = time_notebooks.file_problems(data)
    assert any("01_coco_keypoints cpu" in p and "stale" in p for p in problems)
    for entry in data["notebooks"]["01_coco_keypoints"].values():
        entry["text"] = time_notebooks.entry_text(entry)
    assert any("README.md" in p for p in time_notebooks.docs_problems(data))


@pytest.mark.parametrize("seconds, text", [(5, "≈ 5 s"), (59.4, "≈ 59 s"), (60, "≈ 1 min"),
                                           (870, "≈ 14.5 min"), ([300, 600], "≈ 5–10 min"),
                                           ([30, 90], "≈ 30 s – 1.5 min"), (86400, "about a day"),
                                           (7200, "≈ 2 h")])
def test_format_span(seconds, text):
    assert time_notebooks.format_span(seconds) == text


def test_record_replaces_a_profile_and_names_its_source():
    data = time_notebooks.record(time_notebooks.load(), {"02_gaussian_heatmaps": 6.26}, "smoke")
    entry = data["notebooks"]["02_gaussian_heatmaps"]["smoke"]
    assert entry["seconds"] == 6.3 and entry["source"] in data["sources"]
    assert data["notebooks"]["02_gaussian_heatmaps"]["cpu"]["source"] == "readme-walk"


@pytest.mark.parametrize("number", READS_THE_FILE)
def test_notebook_prints_its_run_time_from_the_results_file(number):
    path = next((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    intro = "".join(cells[0]["source"])
    assert not TYPED_TIME.search(intro), f"{path.name}: its introduction types a run time"
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    first = next(c for c in code if "course_lib" in c and "REPO_URL" not in c)
    assert "run_times.json" in first and path.stem in first, (
        f"{path.name}: its first course code cell must print its entry of run_times.json")
    entries = time_notebooks.load()["notebooks"].get(path.stem, {})
    assert set(entries) == set(time_notebooks.PROFILES), f"{path.name}: run times missing"
