"""The grader of ``11_capstone.ipynb``: a recipe chosen, trained in the profile's budget,
evaluated, and explained keypoint by keypoint.

The deliverable is a report (a dict, or the JSON file the notebook writes) with:

* ``profile``, ``checkpoint`` (the trained ``best.pt``), ``encoding`` and ``loss`` (what it was
  trained with), ``decoder`` and ``flip`` (how it was evaluated);
* ``results_file``: the COCO keypoint results on the validation split, one per ground-truth
  person, each with the ``ann_id`` of its person; ``annotations``: that split's annotation file;
* ``stats``: the COCO stats of those results (``AP`` at least);
* ``per_keypoint``: for each of the 17 keypoint names, ``mean_px`` and ``median_px`` (the error
  in image pixels over the labelled keypoints, ``v > 0``) and ``pck`` (the fraction of them
  within ``PCK_ALPHA * sqrt(area)`` of the truth);
* ``conclusion``: a few sentences that name the keypoint with the largest median error.

:func:`check_capstone` recomputes the stats and the per-keypoint errors from the results file,
compares them with the report (naming the likely slip: squared errors, unlabelled keypoints
counted, mean and median swapped, PCK in percent, at another threshold or against the area
instead of its square root, left and right names swapped, results compared with the
annotation at the same position instead of their ``ann_id``), checks the checkpoint against the reported recipe and the profile's budget, and asks
for an AP above :func:`capstone_threshold` (none in ``smoke``, whose model is untrained). It
also runs the checkpoint again on the first crops of the validation split with the reported
decoder and flip setting: the results handed in must be those of that recipe.

Given a function instead of a report, ``check_capstone(per_keypoint_errors)`` checks exercise
11.1, the per-keypoint table the deliverable needs: ``per_keypoint_errors(results,
annotations)`` (the loaded results list and annotation dict) is called on a fixed case built
here (people in shuffled order, unlabelled keypoints, a keypoint type never labelled, misses
at ``(-1, -1)``) and compared with :func:`keypoint_table`, naming the same slips. That cell
pair runs on its own, before any training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.checks.reporting import call, fmt, report, same

TITLE = "11 capstone deliverable"
EXERCISE = "11.1 per-keypoint errors"
PCK_ALPHA = 0.1  # PCK: an error below PCK_ALPHA * sqrt(area) counts as correct
SPOT_CROPS = 8  # crops the grader predicts again to tie the results to the reported recipe
SPOT_ATOL_PX = 0.05  # results are written with 3 decimals; batch size changes the last bits
GPU_THRESHOLD = 0.65  # real COCO, ResNet-50 at 256x192: SimpleBaseline reports 0.70-0.72
REQUIRED = ("profile", "checkpoint", "encoding", "loss", "decoder", "flip", "results_file",
            "annotations", "stats", "per_keypoint", "conclusion")


def capstone_threshold(profile: str) -> tuple[float, str]:
    """``(the AP a deliverable must reach, why)`` in ``profile``.

    ``smoke`` trains a handful of steps: no threshold. ``cpu``: 0.8 times the worst single-pass
    decoder of the course's reference run (``docs/results/cpu_training.json``, the profile's own
    recipe within the same budget), so a run that learned what the budget allows passes with any
    decoder and encoding, and one that did not learn fails.
    ``gpu``: :data:`GPU_THRESHOLD` on COCO val (SimpleBaseline ResNet-50 at 256x192 reports
    about 0.70 with detector boxes, more with ground-truth ones).
    """
    if profile == "smoke":
        return 0.0, "smoke trains a few steps: no AP threshold, only the consistency checks"
    if profile == "gpu":
        return GPU_THRESHOLD, "SimpleBaseline ResNet-50 reaches about 0.70 on COCO val"
    from course_lib import config

    path = config.repo_root() / "docs" / "results" / "cpu_training.json"
    decoders = json.loads(path.read_text(encoding="utf-8"))["decoders"]
    worst = min(float(d["AP"]) for d in decoders.values())
    return round(0.8 * worst, 2), (f"0.8 x the worst decoder ({fmt(worst, 3)} AP) of the "
                                   f"reference cpu run, {path.name}")


# --- recomputing the deliverable from its results file --------------------------------------


def _labelled_errors(results: list[dict], annotations: dict, *,
                     by_position: bool = False) -> tuple[np.ndarray, ...]:
    """``(errors [N, 17] px, labelled [N, 17], scale [N] = sqrt(area))`` of the results, each
    compared with the person its ``ann_id`` names (KeyError for an unknown one);
    ``by_position``: with the person at the same position instead (a slip)."""
    anns = annotations["annotations"]
    people = {int(a["id"]): a for a in anns}
    errors, labelled, scale = [], [], []
    for i, r in enumerate(results):
        ann = anns[i] if by_position else people[int(r["ann_id"])]
        truth = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        pred = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3)[:, :2]
        errors.append(np.hypot(*(pred - truth[:, :2]).T))
        labelled.append(truth[:, 2] > 0)
        scale.append(math.sqrt(float(ann["area"])))
    return np.array(errors).reshape(-1, 17), np.array(labelled).reshape(-1, 17), np.array(scale)


def keypoint_table(errors: np.ndarray, labelled: np.ndarray, scale: np.ndarray, *,
                   alpha: float = PCK_ALPHA, names: Any = None) -> dict[str, dict]:
    """``{name: {"mean_px", "median_px", "pck"}}`` over the labelled keypoints of each type
    (None where a type is never labelled). The reference of exercise 11.1."""
    from course_lib.coco import KEYPOINT_NAMES

    table = {}
    for k, name in enumerate(KEYPOINT_NAMES if names is None else names):
        e, s = errors[labelled[:, k], k], scale[labelled[:, k]]
        table[name] = ({"mean_px": float(e.mean()), "median_px": float(np.median(e)),
                        "pck": float((e < alpha * s).mean())} if e.size else
                       {"mean_px": None, "median_px": None, "pck": None})
    return table


def results_table(results: list[dict], annotations: dict) -> dict[str, dict]:
    """:func:`keypoint_table` of COCO results (each with its ``ann_id``) and their annotations."""
    return keypoint_table(*_labelled_errors(results, annotations))


def _table_slips(results: list[dict], annotations: dict) -> list[tuple[dict, str]]:
    """The per-keypoint tables of the usual slips, with the mistake they make."""
    from course_lib.coco import KEYPOINT_NAMES, flip_index

    errors, labelled, scale = _labelled_errors(results, annotations)
    right = keypoint_table(errors, labelled, scale)
    swapped = {KEYPOINT_NAMES[j]: right[KEYPOINT_NAMES[i]] for i, j in enumerate(flip_index())}
    percent = {n: {**v, "pck": None if v["pck"] is None else 100 * v["pck"]}
               for n, v in right.items()}
    mixed = {n: {**v, "mean_px": v["median_px"], "median_px": v["mean_px"]}
             for n, v in right.items()}
    slips = [
        (keypoint_table(errors**2, labelled, scale), "the errors are squared: report the "
         "distance sqrt(dx^2 + dy^2) in pixels"),
        (keypoint_table(errors, np.ones_like(labelled), scale), "unlabelled keypoints (v = 0, "
         "stored at x = y = 0) were counted: keep only v > 0"),
        (mixed, "mean_px and median_px are swapped"),
        (percent, "pck is a fraction in [0, 1], not a percentage"),
        (keypoint_table(errors, labelled, scale, alpha=0.05), f"pck uses the threshold 0.05 * "
         f"sqrt(area); the deliverable's is {PCK_ALPHA} * sqrt(area)"),
        (keypoint_table(errors, labelled, scale**2), "pck compares the error with "
         f"{PCK_ALPHA} * area; the scale of a person is sqrt(area), a length in pixels"),
        (swapped, "left and right names are swapped (the rows of the table follow "
         "coco.KEYPOINT_NAMES)"),
    ]
    if len(results) == len(annotations["annotations"]):
        slips.append((keypoint_table(*_labelled_errors(results, annotations, by_position=True)),
                      "each result was compared with the annotation at the same position: "
                      "match a result to its person through its 'ann_id'"))
    return slips


def _table_matches(got: Any, want: dict) -> bool:
    """True when ``got`` has every keypoint of ``want`` with the same three numbers."""
    if not isinstance(got, dict) or set(got) != set(want):
        return False
    for name, values in want.items():
        row = got[name]
        if not isinstance(row, dict):
            return False
        for key, value in values.items():
            mine = row.get(key)
            if value is None or mine is None or _isnan(mine):
                if (value is None) != (mine is None or _isnan(mine)):
                    return False
            elif not same(mine, value, atol=1e-3 if key != "pck" else 1e-6):
                return False
    return True


def _row(values: Any) -> str:
    """One row of a per-keypoint table, written readably."""
    if not isinstance(values, dict):
        return f"{fmt(values)} (expected a dict with mean_px, median_px, pck)"
    return ", ".join(f"{k} {fmt(values.get(k), 4)}" for k in ("mean_px", "median_px", "pck"))


def _isnan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _table_problems(got: Any, results: list[dict], annotations: dict, what: str) -> list[str]:
    """``got`` (a per-keypoint table, called ``what``) against the one of ``results``: [] when
    it matches, else the first wrong row and the slip that explains it, if one does."""
    want = results_table(results, annotations)
    if _table_matches(got, want):
        return []
    if not isinstance(got, dict) or set(got) != set(want):
        names = sorted(set(want) - set(got)) if isinstance(got, dict) else list(want)
        extra = sorted(set(got) - set(want)) if isinstance(got, dict) else []
        return [f"{what}: expected a dict with the 17 names of coco.KEYPOINT_NAMES as keys; "
                f"missing {names[:4]}" + (f", unknown {extra[:4]}" if extra else "")]
    bad = next(n for n in want if not _table_matches({n: got[n]}, {n: want[n]}))
    problems = [f"{what}[{bad!r}]: {_row(got[bad])}; expected {_row(want[bad])}"]
    for table, message in _table_slips(results, annotations):
        if _table_matches(got, table):
            return problems + [message]
    return problems


# --- exercise 11.1: the learner's function on a fixed case -----------------------------------


def exercise_case(seed: int = 11) -> tuple[list[dict], dict]:
    """``(results, annotations)``: a fixed case for exercise 11.1. Twelve people on four images,
    a quarter of their keypoints unlabelled (``v = 0`` at ``0, 0``), ``left_ear`` never
    labelled, errors growing along the skeleton, a few misses at ``(-1, -1)``, and the results
    in another order than the annotations."""
    rng = np.random.default_rng(seed)
    anns, results = [], []
    for i in range(12):
        truth = rng.uniform(20.0, 300.0, (17, 2)).round(2)
        v = np.where(rng.random(17) < 0.25, 0, rng.choice([1, 2], 17))
        v[0], v[3] = 2, 0  # the nose always labelled, the left ear never
        kps = np.concatenate([np.where(v[:, None] > 0, truth, 0.0), v[:, None]], axis=1)
        ann_id = 500 + 7 * i
        anns.append({"id": ann_id, "image_id": 1 + i % 4, "category_id": 1, "iscrowd": 0,
                     "area": float(rng.uniform(900.0, 9000.0)), "num_keypoints": int((v > 0).sum()),
                     "bbox": [0.0, 0.0, 320.0, 320.0], "keypoints": kps.ravel().tolist()})
        step = rng.exponential(1.0 + np.arange(17) * (1.0 + 0.3 * (np.arange(17) % 2)))
        angle = rng.uniform(0.0, 2 * np.pi, 17)
        pred = truth + step[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        pred[rng.random(17) < 0.05] = -1.0  # misses: the marker of a map without a keypoint
        scores = rng.uniform(0.1, 1.0, (17, 1))
        results.append({"image_id": 1 + i % 4, "category_id": 1, "ann_id": ann_id,
                        "score": float(scores.mean()),
                        "keypoints": np.concatenate([pred, scores], 1).round(3).ravel().tolist()})
    order = rng.permutation(len(results))
    return [results[i] for i in order], {"images": [{"id": j} for j in range(1, 5)],
                                         "annotations": anns, "categories": [{"id": 1}]}


def _check_function(fn: Any) -> bool:
    """Exercise 11.1: ``fn(results, annotations)`` against :func:`keypoint_table`."""
    import copy

    results, annotations = exercise_case()
    got, err = call(fn, copy.deepcopy(results), copy.deepcopy(annotations))
    if err:
        return report(EXERCISE, [f"per_keypoint_errors(results, annotations) {err}"])
    problems = _table_problems(got, results, annotations, "per_keypoint_errors(...)")
    return report(EXERCISE, problems, passed_message=f"the table of {len(results)} people "
                  "(unlabelled keypoints, a type never labelled, misses) is right")


# --- the parts of the grade ------------------------------------------------------------------


def _structure_problems(rep: dict) -> list[str]:
    """Missing keys, unknown recipe names, files that do not exist."""
    from course_lib.train.config import DECODE_METHODS, ENCODINGS, LOSSES

    missing = [k for k in REQUIRED if k not in rep]
    if missing:
        return [f"the report lacks {', '.join(missing)} (see the deliverable in the notebook)"]
    problems = []
    for key, choices in (("encoding", ENCODINGS), ("loss", LOSSES), ("decoder", DECODE_METHODS)):
        if rep[key] not in choices:
            problems.append(f"{key} {rep[key]!r}: expected one of {', '.join(choices)}")
    if not isinstance(rep["flip"], bool):
        problems.append(f"flip {rep['flip']!r}: expected True or False")
    for key in ("checkpoint", "results_file", "annotations"):
        if not Path(str(rep[key])).is_file():
            problems.append(f"{key}: no file at {rep[key]}")
    if not isinstance(rep["stats"], dict) or not isinstance(rep["stats"].get("AP"), (int, float)):
        problems.append("stats: expected a dict with the COCO stats, 'AP' at least")
    return problems


def _read_files(rep: dict) -> tuple[list | None, dict | None, list[str]]:
    """``(results, annotations, problems)`` of the report's two JSON files."""
    loaded = []
    for key in ("results_file", "annotations"):
        try:
            loaded.append(json.loads(Path(rep[key]).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            return None, None, [f"{key}: {rep[key]} is not a JSON file ({exc})"]
    results, annotations = loaded
    if not isinstance(results, list) or not results:
        return None, None, ["results_file: expected a non-empty list of COCO keypoint results"]
    if not isinstance(annotations, dict) or "annotations" not in annotations:
        return None, None, ["annotations: expected a COCO annotation file"]
    return results, annotations, []


def _checkpoint_problems(rep: dict) -> list[str]:
    """The checkpoint's recipe against the report, and its budget against the profile's."""
    from course_lib import config
    from course_lib.train import load_checkpoint

    try:
        saved = load_checkpoint(rep["checkpoint"])["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"checkpoint {rep['checkpoint']}: unreadable ({exc})"]
    problems = [f"{key}: the report says {rep[key]!r}, the checkpoint was trained with "
                f"{saved.get(key)!r}" for key in ("profile", "encoding", "loss")
                if saved.get(key, "mse" if key == "loss" else None) != rep[key]]
    prof = config.PROFILES.get(rep["profile"])
    if prof is None:
        return problems + [f"profile {rep['profile']!r}: not a course profile"]
    budget = (("max_train_minutes", prof.max_train_minutes),
              ("max_train_steps", prof.max_train_steps), ("epochs", prof.epochs))
    for key, limit in budget:
        if limit is not None and (saved.get(key) is None or saved[key] > limit):
            problems.append(f"the checkpoint was trained with {key} = {saved.get(key)}, over the "
                            f"{prof.name} budget ({limit}): train within the profile's budget")
    return problems


def _stats_problems(rep: dict, results: list[dict]) -> list[str]:
    """The reported stats against those of the results file."""
    from course_lib.evaluate import evaluate_keypoints

    try:
        stats = evaluate_keypoints(rep["annotations"], results)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"results_file: not COCO keypoint results of {rep['annotations']} ({exc})"]
    wrong = [k for k, v in rep["stats"].items() if k in stats and not same(v, stats[k], atol=1e-6)]
    return [f"stats: {k} = {fmt(rep['stats'][k], 4)} in the report, {fmt(stats[k], 4)} for the "
            f"results file: report the stats of the results you hand in (the same decoder and "
            f"flip setting, the same run)" for k in wrong[:3]]


def _spot_results(rep: dict) -> tuple[dict, int] | None:
    """``({(decoder, flip): {ann_id: [17, 2] image px}}, crops)``: the checkpoint run again on
    the first :data:`SPOT_CROPS` crops of its own validation split, decoded every way; None
    when the annotations are another split's (their images are not known here)."""
    from course_lib import config, predict
    from course_lib.decode import decode
    from course_lib.train import make_dataset

    try:
        model, cfg = predict.load_model(rep["checkpoint"])
    except (OSError, ValueError) as exc:  # _checkpoint_problems read its config already
        return {"error": str(exc)}, 0
    own = config.annotation_file("val", cfg.data_source, cfg.profile)
    if Path(rep["annotations"]).resolve() != own.resolve():
        return None
    dataset, found = make_dataset(cfg, "val"), {}
    for flip in (False, True):
        try:
            maps, meta = predict.predict_heatmaps(model, dataset, flip=flip, limit=SPOT_CROPS,
                                                  progress=False)
        except ValueError:  # a head of notebook 10: it decodes its own output
            maps = None
        for decoder in predict.DECODERS:
            if maps is None:
                coords, scores, meta = predict.predict_keypoints(
                    model, dataset, flip=flip, limit=SPOT_CROPS, progress=False)
            else:
                coords, scores = decode(maps, method=decoder)
            again = predict.keypoints_to_results(coords, scores, meta, input_size=cfg.input_size,
                                                 heatmap_size=cfg.heatmap_size,
                                                 udp=cfg.encoding == "udp")
            found[decoder, flip] = {int(a): np.asarray(r["keypoints"]).reshape(-1, 3)[:, :2]
                                    for a, r in zip(meta["ann_id"], again)}
    return found, len(found[predict.DECODERS[0], False])


def _recipe_problems(rep: dict, results: list[dict]) -> list[str]:
    """The results handed in against the checkpoint run again with the reported decoder and
    flip (the first crops of the validation split), naming the recipe that does give them."""
    spot = _spot_results(rep)
    if spot is None:
        return []
    found, crops = spot
    if "error" in found:
        return [f"checkpoint: {found['error']}"]
    handed = {int(r["ann_id"]): np.asarray(r["keypoints"], np.float64).reshape(-1, 3)[:, :2]
              for r in results if "ann_id" in r}

    def agrees(key: tuple) -> bool:
        return all(a in handed and np.allclose(handed[a], xy, atol=SPOT_ATOL_PX, rtol=0.0)
                   for a, xy in found[key].items())

    if agrees((rep["decoder"], rep["flip"])):
        return []
    problem = (f"the results are not what the checkpoint gives with decoder {rep['decoder']!r} "
               f"and flip {rep['flip']} on the first {crops} validation crops")
    others = [k for k in found if agrees(k)]
    if others:
        named = " or ".join(f"decoder {d!r} with flip {f}" for d, f in others)
        return [f"{problem}; they are those of {named}: report the recipe of the results you "
                "hand in"]
    return [f"{problem}, nor with any other decoder: predict again with this checkpoint"]


def _keypoint_problems(rep: dict, results: list[dict], annotations: dict) -> list[str]:
    """The reported per-keypoint table against the one of the results file, then the
    conclusion."""
    try:
        want = results_table(results, annotations)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"results_file: every result needs the 'ann_id' of its person ({exc!r} is "
                "missing or not in the annotations)"]
    problems = _table_problems(rep["per_keypoint"], results, annotations, "per_keypoint")
    return problems or _conclusion_problems(rep, want)


def _conclusion_problems(rep: dict, table: dict) -> list[str]:
    """The conclusion exists and names a keypoint with the largest median error (ties within
    the table's tolerance count alike)."""
    text = rep["conclusion"] if isinstance(rep["conclusion"], str) else ""
    medians = {n: v["median_px"] for n, v in table.items() if v["median_px"] is not None}
    if len(text.split()) < 8:
        return ["conclusion: write a few sentences on what you found (at least 8 words)"]
    if not medians:
        return []
    top = max(medians.values())
    worst = [n for n, m in medians.items() if m >= top - 1e-3]
    if not any(n in text or n.replace("_", " ") in text for n in worst):
        return [f"conclusion: name the keypoint with the largest median error ({worst[0]}, "
                f"{fmt(top, 3)} px) and say why it is the hardest"]
    return []


def _load(report_or_path: Any) -> tuple[dict | None, str | None]:
    if isinstance(report_or_path, dict):
        return report_or_path, None
    try:
        rep = json.loads(Path(report_or_path).read_text(encoding="utf-8"))
    except (OSError, TypeError, ValueError) as exc:
        return None, f"expected the report as a dict or a JSON file, got {report_or_path!r} ({exc})"
    if not isinstance(rep, dict):
        return None, f"{report_or_path}: expected a JSON object (the report), got {fmt(rep)}"
    return rep, None


def check_capstone(deliverable: Any) -> bool:
    """11: ``deliverable`` -> the report of ``11_capstone.ipynb`` (a dict or its JSON file):
    recipe and checkpoint agree and fit the profile's budget, the results are the checkpoint's
    with the reported decoder and flip, the stats and the per-keypoint errors are those of the
    results file, the conclusion names the hardest keypoint, and the AP reaches
    :func:`capstone_threshold`. Given the function ``per_keypoint_errors(results, annotations)``
    instead: exercise 11.1, checked on a fixed case (module docstring)."""
    if callable(deliverable):
        return _check_function(deliverable)
    rep, err = _load(deliverable)
    if err:
        return report(TITLE, [err])
    problems = _structure_problems(rep)
    results, annotations, more = (None, None, []) if problems else _read_files(rep)
    if problems or more:
        return report(TITLE, problems + more)
    problems = _checkpoint_problems(rep) + _stats_problems(rep, results)
    problems += _keypoint_problems(rep, results, annotations)
    if not problems:
        problems = _recipe_problems(rep, results)
    threshold, why = capstone_threshold(str(rep["profile"]))
    if not problems and float(rep["stats"]["AP"]) < threshold:
        problems.append(f"AP {fmt(rep['stats']['AP'], 3)} is below the {rep['profile']} "
                        f"threshold {fmt(threshold)} ({why}): look at the per-keypoint table for "
                        "what went wrong, change one thing, train again")
    return report(TITLE, problems, passed_message=f"AP {fmt(rep['stats']['AP'], 3)} "
                  f"(threshold {fmt(threshold)}), stats and per-keypoint errors consistent "
                  "with the results file")
