"""Every command line answers bad arguments and bad files with one ``error:`` line, exit code 2.

``python -m course_lib.validate``, ``python -m course_lib.infer`` and ``python -m
course_lib.train`` are called in this process (``main(argv)``, as the notebooks' tests do) with a
missing, corrupt or foreign checkpoint, missing data, an unknown decoder, ...; a few run as real
subprocesses to check that no traceback reaches the terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from course_lib import infer, validate  # noqa: E402
from course_lib.train import TrainConfig, build_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"input_size": [96, 128], "heatmap_size": [24, 32]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A valid checkpoint (random weights), a bare state dict, one without ``config``, a corrupt
    one, a tiny annotation file and two images ``a.jpg``/``a.png``."""
    import cv2

    root = tmp_path_factory.mktemp("cli")
    cfg = TrainConfig(depth=18, head_channels=16, **{k: tuple(v) for k, v in SIZES.items()})
    torch.manual_seed(0)
    model = build_model(cfg)
    good = root / "good.pt"
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "step": 0}, good)
    torch.save(model.state_dict(), root / "bare.pt")
    torch.save({"model": model.state_dict(), "step": 0}, root / "noconfig.pt")
    (root / "corrupt.pt").write_bytes(good.read_bytes()[:5000])
    wrong = dict(cfg.to_dict(), depth=34)  # a config that does not describe these weights
    torch.save({"model": model.state_dict(), "config": wrong}, root / "mismatch.pt")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (60, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(images / "a.jpg"), pixels)
    cv2.imwrite(str(images / "a.png"), pixels[::-1].copy())
    person = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 1,
              "bbox": [5.0, 5.0, 30.0, 50.0], "area": 1500.0,
              "keypoints": [20, 20, 2] + [0, 0, 0] * 16}
    (root / "ann.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 60}],
        "annotations": [person],
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": [f"k{i}" for i in range(17)], "skeleton": []}]}))
    (root / "empty").mkdir()
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    return root


def _call(main, argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines and ": error: " in lines[-1], err
    return info.value.code, lines[-1]


@pytest.mark.parametrize("checkpoint, expect", [
    ("missing.pt", "no checkpoint"),
    ("corrupt.pt", "corrupt"),
    ("bare.pt", "a bare state dict"),
    ("noconfig.pt", "without 'config'"),
    ("mismatch.pt", "do not fit"),
])
def test_validate_names_a_bad_checkpoint(files, capsys, checkpoint, expect):
    code, line = _call(validate.main, ["--checkpoint", str(files / checkpoint)], capsys)
    assert code == 2 and str(files / checkpoint) in line and expect in line


@pytest.mark.parametrize("checkpoint, expect", [
    ("missing.pt", "no checkpoint"), ("corrupt.pt", "corrupt"), ("bare.pt", "a bare state dict"),
])
def test_infer_names_a_bad_checkpoint(files, capsys, checkpoint, expect):
    code, line = _call(infer.main, [str(files / "images"), "--checkpoint", str(files / checkpoint),
                                    "--out", str(files / "out")], capsys)
    assert code == 2 and str(files / checkpoint) in line and expect in line


@pytest.mark.parametrize("option, name", [("--ann", "missing.json"), ("--images", "nowhere"),
                                          ("--boxes", "no_boxes.json")])
def test_validate_names_missing_data(files, capsys, option, name):
    given = {"--ann": str(files / "ann.json"), "--images": str(files / "images"),
             option: str(files / name)}
    argv = ["--checkpoint", str(files / "good.pt"), *[v for kv in given.items() for v in kv]]
    code, line = _call(validate.main, argv, capsys)
    assert code == 2 and str(files / name) in line


def test_validate_names_a_malformed_annotation_file(files, capsys):
    bad = files / "bad.json"
    bad.write_text("{not json")
    code, line = _call(validate.main, ["--checkpoint", str(files / "good.pt"), "--ann", str(bad),
                                       "--images", str(files / "images")], capsys)
    assert code == 2 and str(bad) in line


@pytest.mark.parametrize("argv, expect", [
    (["--decoder", "median"], "invalid choice"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "many"], "--batch-size"),
])
def test_validate_bad_arguments(files, capsys, argv, expect):
    code, line = _call(validate.main, ["--checkpoint", str(files / "good.pt"), *argv], capsys)
    assert code == 2 and expect in line


@pytest.mark.parametrize("argv, expect", [
    (["missing_dir"], "missing_dir"),
    (["empty"], "no .jpg"),
    (["broken.jpg"], "broken.jpg"),
    (["images", "--box", "1,2,3"], "box"),
    (["images", "--box", "1,2,-3,4"], "box"),
    (["images", "--decoder", "median"], "invalid choice"),
])
def test_infer_bad_arguments_and_files(files, capsys, argv, expect):
    argv = [str(files / argv[0]), *argv[1:], "--checkpoint", str(files / "good.pt"),
            "--out", str(files / "out_bad")]
    code, line = _call(infer.main, argv, capsys)
    assert code == 2 and expect in line


def test_infer_writes_one_drawing_per_input_even_with_the_same_stem(files):
    out = files / "pred"
    entries = infer.main([str(files / "images"), "--checkpoint", str(files / "good.pt"),
                          "--out", str(out)])
    drawings = [e["drawing"] for e in entries]
    assert len(entries) == 2 and len(set(drawings)) == 2
    assert sorted(Path(d).name for d in drawings) == ["a.jpg_pose.png", "a.png_pose.png"]
    assert all(Path(d).is_file() for d in drawings)
    assert json.loads((out / "keypoints.json").read_text()) == entries


def test_main_returns_its_value_when_all_is_well(files):
    stats = validate.main(["--checkpoint", str(files / "good.pt"), "--ann",
                           str(files / "ann.json"), "--images", str(files / "images"),
                           "--out", str(files / "results.json")])
    assert 0.0 <= stats["AP"] <= 1.0
    entries = infer.main([str(files / "images" / "a.jpg"), "--checkpoint",
                          str(files / "good.pt"), "--out", str(files / "one")])
    assert isinstance(entries, list) and len(entries) == 1
    assert Path(entries[0]["drawing"]).name == "a.jpg_pose.png"


@pytest.mark.parametrize("module, argv", [
    ("course_lib.validate", ["--checkpoint", "{root}/corrupt.pt"]),
    ("course_lib.infer", ["{root}/images", "--checkpoint", "{root}/bare.pt", "--out",
                          "{root}/o"]),
    ("course_lib.train", ["--profile", "smoke", "--out", "{root}/empty", "--resume"]),
])
def test_no_traceback_reaches_the_terminal(files, module, argv):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", module, *[a.format(root=files) for a in argv]],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"python -m {module}: error: "), proc.stderr
