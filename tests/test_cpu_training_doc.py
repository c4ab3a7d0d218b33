"""The README's "What the cpu profile reaches" block is generated from
``docs/results/cpu_training.json`` (``benchmarks/record_cpu_training.py --docs``), the same file
notebooks 03, 05, 08 and the capstone read, so the figures cannot drift apart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import record_cpu_training as rct  # noqa: E402


def test_the_readme_block_is_what_the_results_file_gives():
    assert rct.readme_problems() == []


def test_a_changed_figure_makes_the_block_stale(tmp_path):
    doc = json.loads(rct.RESULTS.read_text(encoding="utf-8"))
    doc["curve"][-1]["AP"] = round(doc["curve"][-1]["AP"] + 0.111, 3)
    results = tmp_path / "cpu_training.json"
    results.write_text(json.dumps(doc), encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(rct.README.read_text(encoding="utf-8"), encoding="utf-8")
    assert rct.readme_problems(results, readme) != []
    assert rct.write_readme(results, readme) and rct.readme_problems(results, readme) == []
    assert f"**{doc['curve'][-1]['AP']:.3f}**" in readme.read_text(encoding="utf-8")


def test_every_decoder_and_every_validation_is_in_the_block():
    doc = json.loads(rct.RESULTS.read_text(encoding="utf-8"))
    block = rct.readme_block(doc)
    for name, row in doc["decoders"].items():
        assert f"{rct.SHOWN[name]} {row['AP']:.3f} / {row['AP_flip']:.3f}" in block
    for row in doc["curve"]:
        assert f" {row['steps']} " in block or f" {row['steps']} |" in block
