"""The grader of ``11_capstone.ipynb`` (``checks.check_capstone``).

A real deliverable is built once (one smoke training step under the UDP encoding, prediction
with DARK and the flip test, the results with their ``ann_id``, the reference table): it must
pass. Then each slip the grader claims to diagnose is made to it, and must fail, named. The same
for exercise 11.1, the learner's ``per_keypoint_errors(results, annotations)`` on the grader's
fixed case.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from course_lib import checks, config, predict, train  # noqa: E402
from course_lib.checks import nb11_capstone  # noqa: E402
from course_lib.checks.reporting import ExerciseError  # noqa: E402
from course_lib.coco import KEYPOINT_NAMES, flip_index  # noqa: E402
from course_lib.evaluate import evaluate_keypoints  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")


def _conclusion(table: dict) -> str:
    worst = max((n for n in table if table[n]["median_px"] is not None),
                key=lambda n: table[n]["median_px"])
    return (f"The {worst} has the largest median error, {table[worst]['median_px']:.1f} px: "
            "it moves most and is often hidden.")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """A deliverable of the smoke profile: ``{"report", "results", "annotations"}``."""
    ann = config.annotation_file("val", "synthetic", "smoke")
    if not ann.is_file():
        subprocess.run([sys.executable, str(ROOT / "data_scripts" / "make_synthetic_coco.py"),
                        "--quiet"], check=True, env={**__import__("os").environ,
                                                     "COURSE_PROFILE": "smoke"})
    out = tmp_path_factory.mktemp("capstone")
    cfg = train.make_config("smoke", encoding="udp", max_train_steps=1, batch_size=4)
    train.train(cfg, out, progress=False)
    model, saved = predict.load_model(out / "best.pt")
    val_set = train.make_dataset(saved, "val")
    coords, scores, meta = predict.predict_keypoints(model, val_set, flip=True, decoder="dark",
                                                     progress=False)
    results = predict.keypoints_to_results(coords, scores, meta, input_size=saved.input_size,
                                           heatmap_size=saved.heatmap_size, udp=True)
    for r, ann_id in zip(results, meta["ann_id"]):
        r["ann_id"] = int(ann_id)
    annotations = json.loads(Path(val_set.ann_file).read_text(encoding="utf-8"))
    base = {"profile": "smoke", "checkpoint": str(out / "best.pt"), "encoding": "udp",
            "loss": "mse", "decoder": "dark", "flip": True, "annotations": str(val_set.ann_file)}
    noisy = _near_the_truth(results, annotations)
    return {"report": _report(base, results, annotations, out / "results.json"),
            "noisy": _report(base, noisy, annotations, out / "noisy.json"),
            "results": results, "annotations": annotations, "noisy_results": noisy, "out": out}


def _near_the_truth(results: list[dict], annotations: dict) -> list[dict]:
    """The results moved near the truth (errors growing along the skeleton): an untrained
    model's errors are all far beyond the PCK threshold, these are not."""
    rng = np.random.default_rng(0)
    people = {a["id"]: a for a in annotations["annotations"]}
    moved = []
    for r in results:
        truth = np.reshape(people[r["ann_id"]]["keypoints"], (-1, 3))[:, :2]
        kps = np.reshape(r["keypoints"], (-1, 3)).copy()
        kps[:, :2] = truth + rng.normal(0, 1, (17, 2)) * (1 + np.arange(17))[:, None] / 3
        moved.append({**r, "keypoints": kps.round(3).ravel().tolist()})
    return moved


def _report(base: dict, results: list[dict], annotations: dict, path: Path) -> dict:
    table = nb11_capstone.results_table(results, annotations)
    return {**base, "results_file": str(config.write_atomic(path, json.dumps(results))),
            "stats": evaluate_keypoints(annotations, results), "per_keypoint": table,
            "conclusion": _conclusion(table)}


def _fails(report, *words: str) -> str:
    with pytest.raises(ExerciseError) as caught:
        checks.check_capstone(report)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    return message


def _with(built, which="report", **changes) -> dict:
    return {**copy.deepcopy(built[which]), **changes}


def _table(built, fn) -> dict:
    """The near-truth report's table with ``fn(name, row) -> row`` applied to every row."""
    return {n: fn(n, dict(v)) for n, v in built["noisy"]["per_keypoint"].items()}


# --------------------------------------------------------------------------- the deliverable


def test_the_deliverable_passes_as_a_dict_and_as_its_json_file(built, capsys):
    assert checks.check_capstone(built["report"])
    path = config.write_atomic(built["out"] / "report.json", json.dumps(built["report"]))
    assert checks.check_capstone(path)
    assert capsys.readouterr().out.count("[PASS] 11 capstone deliverable") == 2


def test_the_smoke_profile_has_no_threshold_and_cpu_one_from_the_reference_run():
    assert nb11_capstone.capstone_threshold("smoke")[0] == 0.0
    threshold, why = nb11_capstone.capstone_threshold("cpu")
    assert 0.2 < threshold < 0.6 and "cpu_training.json" in why
    assert nb11_capstone.capstone_threshold("gpu")[0] == nb11_capstone.GPU_THRESHOLD


@pytest.mark.parametrize("key", nb11_capstone.REQUIRED)
def test_a_missing_key_is_named(built, key):
    report = _with(built)
    del report[key]
    _fails(report, f"lacks {key}")


SLIPS = {
    "mean and median swapped": (lambda n, r: {**r, "mean_px": r["median_px"],
                                              "median_px": r["mean_px"]}, "swapped"),
    "pck in percent": (lambda n, r: {**r, "pck": None if r["pck"] is None else 100 * r["pck"]},
                       "not a percentage"),
}


@pytest.mark.parametrize("slip", list(SLIPS))
def test_table_slips_of_the_rows_are_named(built, slip):
    fn, words = SLIPS[slip]
    _fails(_with(built, "noisy", per_keypoint=_table(built, fn)), "per_keypoint[", words)


def _table_of(built, **kwargs) -> dict:
    errors, labelled, scale = nb11_capstone._labelled_errors(built["noisy_results"],
                                                             built["annotations"])
    errors = errors ** 2 if kwargs.pop("squared", False) else errors
    labelled = np.ones_like(labelled) if kwargs.pop("every", False) else labelled
    return nb11_capstone.keypoint_table(errors, labelled, scale, **kwargs)


@pytest.mark.parametrize("kwargs, words", [
    ({"squared": True}, "squared"), ({"every": True}, "unlabelled keypoints"),
    ({"alpha": 0.05}, "threshold 0.05"), ({"alpha": 0.2}, "per_keypoint[")])
def test_table_slips_of_the_errors_are_named(built, kwargs, words):
    _fails(_with(built, "noisy", per_keypoint=_table_of(built, **kwargs)), words)


def test_left_and_right_names_swapped_are_named(built):
    table = built["noisy"]["per_keypoint"]
    swapped = {KEYPOINT_NAMES[j]: table[KEYPOINT_NAMES[i]] for i, j in enumerate(flip_index())}
    _fails(_with(built, "noisy", per_keypoint=swapped), "left and right names are swapped")


def test_results_that_are_not_the_checkpoints_are_refused(built):
    _fails(built["noisy"], "not what the checkpoint gives", "nor with any other decoder")


def test_a_table_without_every_name_is_refused(built):
    table = dict(built["report"]["per_keypoint"])
    del table["nose"]
    _fails(_with(built, per_keypoint=table), "missing ['nose']")


def test_wrong_stats_are_named(built):
    stats = {**built["report"]["stats"], "AP": built["report"]["stats"]["AP"] + 0.1}
    _fails(_with(built, stats=stats), "stats: AP =")
    _fails(_with(built, stats={"AR": 0.5}), "'AP' at least")


def test_a_conclusion_naming_another_keypoint_fails(built):
    table = built["report"]["per_keypoint"]
    top = max(v["median_px"] for v in table.values() if v["median_px"] is not None)
    best = min((n for n in table if table[n]["median_px"] is not None),
               key=lambda n: table[n]["median_px"])
    assert table[best]["median_px"] < top
    wrong = f"The {best} is the hardest keypoint of all in this run, by far."
    _fails(_with(built, conclusion=wrong), "conclusion: name the keypoint")
    _fails(_with(built, conclusion="nose"), "at least 8 words")


# A one-step model's maps are nearly flat: on the grader's first crops argmax, quarter and DARK
# read the same point there; soft-argmax and the flip test do not.
@pytest.mark.parametrize("key, value, words", [
    ("encoding", "msra", "encoding: the report says 'msra'"),
    ("loss", "ohkm", "loss: the report says 'ohkm'"),
    ("profile", "cpu", "profile: the report says 'cpu'"),
    ("decoder", "soft_argmax", "decoder 'dark' with flip True"),
    ("flip", False, "decoder 'dark' with flip True"),
    ("decoder", "median", "decoder 'median': expected one of"),
    ("flip", "yes", "expected True or False")])
def test_a_recipe_that_does_not_match_the_checkpoint_is_named(built, key, value, words):
    _fails(_with(built, **{key: value}), words)


def test_results_without_ann_id_or_files_missing_are_refused(built, tmp_path):
    bare = [{k: v for k, v in r.items() if k != "ann_id"} for r in built["results"]]
    path = config.write_atomic(tmp_path / "bare.json", json.dumps(bare))
    _fails(_with(built, results_file=str(path)), "'ann_id' of its person")
    _fails(_with(built, checkpoint=str(tmp_path / "none.pt")), "checkpoint: no file")
    _fails(str(tmp_path / "missing.json"), "expected the report as a dict or a JSON file")


def test_a_checkpoint_over_the_budget_is_refused(built, tmp_path):
    import torch

    ckpt = train.load_checkpoint(built["report"]["checkpoint"])
    ckpt["config"] = {**ckpt["config"], "max_train_steps": 600}
    torch.save(ckpt, tmp_path / "long.pt")
    _fails(_with(built, checkpoint=str(tmp_path / "long.pt")), "max_train_steps = 600, over")


# ------------------------------------------------------------------ exercise 11.1: the table


def per_keypoint_errors(results, annotations, *, squared=False, every=False, by_position=False,
                        alpha=0.1, area_scale=False):
    """A learner's answer, right by default; each flag makes one slip."""
    people = {a["id"]: a for a in annotations["annotations"]}
    rows = {name: ([], []) for name in KEYPOINT_NAMES}
    for i, r in enumerate(results):
        ann = annotations["annotations"][i] if by_position else people[r["ann_id"]]
        truth = np.reshape(ann["keypoints"], (-1, 3))
        d = np.reshape(r["keypoints"], (-1, 3))[:, :2] - truth[:, :2]
        error = (d**2).sum(1) if squared else np.hypot(d[:, 0], d[:, 1])
        scale = ann["area"] if area_scale else np.sqrt(ann["area"])
        for k, name in enumerate(KEYPOINT_NAMES):
            if every or truth[k, 2] > 0:
                rows[name][0].append(error[k])
                rows[name][1].append(error[k] < alpha * scale)
    return {n: {"mean_px": float(np.mean(e)) if e else None,
                "median_px": float(np.median(e)) if e else None,
                "pck": float(np.mean(ok)) if e else None} for n, (e, ok) in rows.items()}


def test_exercise_passes_on_a_right_answer(capsys):
    assert checks.check_capstone(per_keypoint_errors)
    assert "[PASS] 11.1 per-keypoint errors" in capsys.readouterr().out


def test_exercise_fails_on_the_stub():
    def stub(results, annotations):
        raise NotImplementedError("Exercise 11.1")

    _fails(stub, "11.1", "not implemented yet")


@pytest.mark.parametrize("slip, words", [
    ({"squared": True}, "squared"), ({"every": True}, "unlabelled keypoints"),
    ({"by_position": True}, "through its 'ann_id'"), ({"alpha": 0.05}, "threshold 0.05"),
    ({"area_scale": True}, "sqrt(area), a length")])
def test_exercise_names_the_slip(slip, words):
    _fails(lambda results, annotations: per_keypoint_errors(results, annotations, **slip),
           "11.1", words)


def test_exercise_names_the_slips_of_the_table():
    def swapped(results, annotations):
        table = per_keypoint_errors(results, annotations)
        return {n: {**v, "mean_px": v["median_px"], "median_px": v["mean_px"]}
                for n, v in table.items()}

    def percent(results, annotations):
        table = per_keypoint_errors(results, annotations)
        return {n: {**v, "pck": None if v["pck"] is None else 100 * v["pck"]}
                for n, v in table.items()}

    _fails(swapped, "mean_px and median_px are swapped")
    _fails(percent, "not a percentage")
    _fails(lambda r, a: list(per_keypoint_errors(r, a).values()), "17 names")


def test_the_fixed_case_holds_what_the_docstring_promises():
    results, annotations = nb11_capstone.exercise_case()
    table = nb11_capstone.results_table(results, annotations)
    assert table["left_ear"]["median_px"] is None
    assert [r["ann_id"] for r in results] != [a["id"] for a in annotations["annotations"]]
    assert any(-1.0 in r["keypoints"][::3] for r in results)
    medians = [v["median_px"] for v in table.values() if v["median_px"] is not None]
    assert len(set(np.round(medians, 3))) == len(medians)  # a swap of names shows
