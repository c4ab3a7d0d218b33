"""The real-COCO path (``COURSE_DATA=coco``) on four real val2017 images, where they exist.

``../shared/realcoco/`` (beside the checkout; CI and the course's developers have it, a user's
clone does not, and then every test here skips) holds four COCO val2017 images, their real
person-keypoint annotations (``test_coco.json``, 14 people) and the AP_H 56 person detections
(``test_coco_det_AP_H_56.json``). The fixture lays them out as a COCO folder in a temporary
directory::

    annotations/person_keypoints_val2017.json   val2017/*.jpg
    annotations/person_keypoints_train2017.json train2017/*.jpg   (the same four images and
                                                                   annotations: a train split
                                                                   to run training steps on)

and ``COURSE_COCO_DIR`` points there. Nothing of it is ever copied into the repository.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REALCOCO = ROOT.parent / "shared" / "realcoco"
ANNOTATIONS = REALCOCO / "test_coco.json"
DETECTIONS = REALCOCO / "test_coco_det_AP_H_56.json"

pytestmark = pytest.mark.skipif(
    not (ANNOTATIONS.is_file() and DETECTIONS.is_file()),
    reason=f"no real COCO sample at {REALCOCO} (CI and developers only)")


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("realcoco") / "coco"
    images = sorted(REALCOCO.glob("*.jpg"))
    for split in ("val", "train"):
        (root / f"{split}2017").mkdir(parents=True)
        for image in images:
            shutil.copyfile(image, root / f"{split}2017" / image.name)
        (root / "annotations").mkdir(exist_ok=True)
        shutil.copyfile(ANNOTATIONS, root / "annotations" / f"person_keypoints_{split}2017.json")
    return root


@pytest.fixture(scope="module")
def coco_env(coco_dir) -> dict[str, str]:
    """The environment of every run here: real COCO from ``coco_dir``, the smoke profile."""
    env = {k: v for k, v in os.environ.items() if k != "COURSE_ROOT"}
    return {**env, "COURSE_DATA": "coco", "COURSE_COCO_DIR": str(coco_dir),
            "COURSE_PROFILE": "smoke", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def run_module(module: str, args: list[str], env: dict[str, str], cwd: Path,
               timeout: float = 300) -> str:
    """``python -m module args`` in ``cwd``; its stdout (fails with its stderr's tail)."""
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{module} {args}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_config_finds_the_sample_through_course_coco_dir(coco_dir, coco_env, monkeypatch):
    from course_lib import coco, config

    for key in ("COURSE_DATA", "COURSE_COCO_DIR", "COURSE_PROFILE"):
        monkeypatch.setenv(key, coco_env[key])
    assert config.data_source() == "coco" and config.data_dir() == coco_dir
    gt = coco.load_coco(config.annotation_file("val"))
    assert len(gt.getImgIds()) == 4 and len(gt.getAnnIds()) == 14
    for image in gt.loadImgs(gt.getImgIds()):
        assert (config.image_dir("val") / image["file_name"]).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_coco_keypoints.ipynb", "03_topdown_data.ipynb"])
def test_notebook_runs_on_real_coco(name, coco_dir, coco_env, monkeypatch):
    """The notebook top to bottom in a kernel of the course's Python (nbclient), which inherits
    ``COURSE_DATA=coco`` and ``COURSE_COCO_DIR``; it must have read the real annotations."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for key, value in coco_env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    assert "Traceback" not in printed
    if name.startswith("01"):
        assert str(coco_dir / "annotations" / "person_keypoints_val2017.json") in printed


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, coco_env) -> Path:
    """Two training steps on the real images (``python -m course_lib.train``)."""
    out = tmp_path_factory.mktemp("realcoco-run")
    stdout = run_module("course_lib.train", ["--profile", "smoke", "--out", str(out), "--set",
                                             "max_train_steps=2", "batch_size=4"],
                        coco_env, cwd=out)
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")  # the JSON summary, last
    summary = json.loads("\n".join(lines[start:]))
    assert summary["steps"] == 2, summary
    assert math.isfinite(summary["best_ap"]) and summary["val"], summary
    assert (out / "best.pt").is_file() and (out / "latest.pt").is_file()
    return out / "best.pt"


@pytest.mark.slow
def test_training_steps_on_real_coco(checkpoint):
    assert checkpoint.stat().st_size > 0


@pytest.mark.slow
def test_validate_with_detector_boxes_and_the_flip_test(checkpoint, coco_env, tmp_path):
    """``--ann`` and ``--images`` default to the COCO folder of ``COURSE_COCO_DIR``."""
    results_file = tmp_path / "results.json"
    stdout = run_module("course_lib.validate",
                        ["--checkpoint", str(checkpoint), "--boxes", str(DETECTIONS), "--flip",
                         "--out", str(results_file)], coco_env, cwd=tmp_path)
    assert "Average Precision" in stdout
    results = json.loads(results_file.read_text())
    boxes = json.loads(DETECTIONS.read_text())
    images = {a["image_id"] for a in json.loads(ANNOTATIONS.read_text())["annotations"]}
    assert 14 < len(results) <= len(boxes)  # cropped at the detections, not the 14 people
    assert {r["image_id"] for r in results} == images
    for r in results:
        assert len(r["keypoints"]) == 51 and all(math.isfinite(v) for v in r["keypoints"])
        assert r["category_id"] == 1 and math.isfinite(r["score"])


@pytest.mark.slow
def test_infer_on_one_real_image(checkpoint, coco_dir, coco_env, tmp_path):
    image = coco_dir / "val2017" / "000000000785.jpg"
    run_module("course_lib.infer", [str(image), "--checkpoint", str(checkpoint), "--flip",
                                    "--out", str(tmp_path / "out")], coco_env, cwd=tmp_path)
    (entry,) = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert Path(entry["file"]).name == image.name and Path(entry["drawing"]).is_file()
    assert len(entry["keypoints"]) == 51 and all(math.isfinite(v) for v in entry["keypoints"])
