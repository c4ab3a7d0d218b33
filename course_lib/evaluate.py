"""COCO keypoint evaluation: OKS, greedy matching, AP/AR — identical to pycocotools, vectorised.

Taught in ``08_oks_evaluation.ipynb``. Two layers:

* readable teaching functions, one idea each: :func:`oks` (one prediction against one ground
  truth), :func:`match_image` (greedy matching of one image at one OKS threshold),
  :func:`precision_recall` and :func:`average_precision` (the 101-point interpolated AP);
* :func:`evaluate_keypoints`, the fast evaluator: the same rules as pycocotools'
  ``COCOeval(iouType="keypoints")`` (``evaluate()`` + ``accumulate()`` + ``summarize()``), with
  every image processed at once in numpy. Its ten stats are equal (``==``, not "close") to
  pycocotools' on any valid input; ``tests/test_evaluate.py`` pins each rule. It reads as six
  named steps; the vectorised machinery behind them is in ``course_lib.evaluate_arrays``
  (arrays, grouping, the OKS of every pair) and ``course_lib.evaluate_matching`` (greedy
  matching of many images at once, accumulation, summary).

The rules of pycocotools that :func:`evaluate_keypoints` reproduces:

* OKS of a detection ``d`` and a ground truth ``g`` with ``n > 0`` labelled keypoints (v > 0):
  ``mean over labelled k of exp(-(dx² + dy²) / (2σ_k)² / (area + eps) / 2)``; with no labelled
  keypoints, ``dx``/``dy`` are the distances of each predicted keypoint to the ground truth's box
  enlarged to three times its width and height (the box ``[x - w, x + 2w] × [y - h, y + 2h]``),
  averaged over all 17 keypoints;
* per image (and category): detections sorted by score, highest first, ties kept in input order
  (a stable sort), only the first ``maxDets = 20`` kept; a ground truth is *ignored* when it is a
  crowd (``iscrowd``), has ``num_keypoints == 0``, or its ``area`` lies outside the area range
  (bounds inclusive: medium is ``32² <= area <= 96²``, large ``96² <= area <= 1e10``);
* greedy matching per OKS threshold (0.50:0.05:0.95): each detection, best score first, takes the
  not-yet-matched regular ground truth with the highest OKS ``>= threshold`` (ties: the later
  one); only when there is none may it match an ignored one (a crowd region can absorb any
  number of detections, other ignored ground truths one each); a detection matched to an ignored
  ground truth is ignored, and so is an unmatched detection whose own area (see below) is outside
  the area range;
* a detection's area is what ``COCO.loadRes`` assigns: ``w * h`` of the box spanned by all 17
  predicted keypoints, or ``w * h`` of the result's ``bbox`` when the *first* result carries a
  non-empty ``bbox`` (then every result must carry one, of 4 finite numbers);
* AP: over all images, detections sorted by score (stable: image order, then rank in the image),
  cumulative TP/FP, precision made monotone from the right, sampled at 101 recall points
  (``searchsorted(..., side="left")``, 0 beyond the reached recall); AR = the final recall;
  averaged over thresholds (and categories); ``-1`` where an area range has no regular ground
  truth.

Where pycocotools crashes or silently does the wrong thing, this module documents what it does:

* an empty results list (pycocotools' ``loadRes`` raises ``IndexError``): evaluated as "no
  detections" — AP and AR are 0 where ground truth exists, -1 where none does;
* an annotation ``id`` of 0 (pycocotools stores matches as annotation ids and reads id 0 as
  "unmatched", so a correct detection of that person becomes a false positive): matching here
  works on positions, so id 0 is evaluated correctly — stats then differ from pycocotools';
* duplicate annotation ids (pycocotools' id index keeps only the last one): ``ValueError``;
* results for images absent from the ground truth (pycocotools: ``AssertionError``), keypoint
  lists that are not 3 × 17 numbers (pycocotools: a broadcast error, or a silently wrong OKS),
  non-finite keypoints or scores, a result missing ``image_id``/``category_id``/``keypoints``/
  ``score``: ``ValueError`` naming the result;
* a ground truth without ``iscrowd`` (pycocotools: ``KeyError``) counts as ``iscrowd = 0``; one
  without ``num_keypoints`` counts its keypoints with v > 0;
* results whose ``category_id`` is not a ground-truth category are dropped, as pycocotools does;
  but an id that is not an int (``"1"``, ``True``, ``None``, ``1.5``; pycocotools: silently no
  match, a perfect result set scores AP 0) is a ``ValueError`` naming the result (``1.0`` and
  numpy ints are ids, equal to ``1`` as in pycocotools); so is a ``score`` that is not a number;
* a result's ``segmentation`` is ignored (pycocotools would take the area from the mask,
  decoded in C without bounds checks: a malformed RLE string reads past its buffer), here and
  in :func:`pycocotools_stats`, which drops it before ``loadRes``;
* the ground truth is checked by ``course_lib.coco.validate_coco_keypoints(...,
  evaluation=True)``: a NaN area, a bbox or keypoint that is not a number, a missing key, ...
  raise ``course_lib.coco.AnnotationError`` (a ``ValueError``) naming the file, the annotation
  and the field (pycocotools: a NaN area silently changes the stats).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import evaluate_arrays, evaluate_matching
from course_lib.coco import OKS_SIGMAS, AnnotationError, validate_coco_keypoints
from course_lib.evaluate_arrays import EPS as _EPS

STAT_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
# The parameters of pycocotools' Params.setKpParams, built the same way (same floating values).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = 20
AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0**2, 1e5**2),
    "medium": (32**2, 96**2),
    "large": (96**2, 1e5**2),
}


# ---------------------------------------------------------------------------------------------
# Teaching functions: one prediction, one image, one precision/recall curve
# ---------------------------------------------------------------------------------------------


def oks(
    pred: Any,
    gt: Any,
    visible: Any,
    area: float,
    *,
    sigmas: Any = OKS_SIGMAS,
    bbox: Any = None,
) -> float:
    """Object keypoint similarity of one predicted pose and one ground-truth pose.

    ``pred``, ``gt``: ``[K, 2]`` pixel coordinates; ``visible``: ``[K]`` COCO flags (``> 0`` =
    labelled); ``area``: the ground truth's area (the scale ``s²``); ``sigmas``: per-keypoint
    falloff (COCO's, measured from the spread of human annotators). Each labelled keypoint
    scores ``exp(-d² / (2 s² k²))`` with ``k = 2σ`` — 1 on the spot, 0.5 where the distance is
    about ``1.18 k s`` — and OKS is their mean. The arithmetic follows pycocotools operation by
    operation, so the value is bit-identical to ``COCOeval.computeOks``.

    A ground truth with no labelled keypoint needs its ``bbox`` ``[x, y, w, h]``: then ``d`` is
    the distance of each prediction to the box enlarged to ``[x - w, x + 2w] × [y - h, y + 2h]``
    and all ``K`` keypoints count (pycocotools' rule for such ground truths).
    """
    pred = _points("pred", pred)
    gt = _points("gt", gt)
    visible = np.asarray(visible)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if pred.shape != gt.shape or visible.shape != pred.shape[:1] or sigmas.shape != visible.shape:
        raise ValueError(
            f"pred, gt, visible, sigmas: expected shapes [K, 2], [K, 2], [K], [K], got "
            f"{pred.shape}, {gt.shape}, {visible.shape}, {sigmas.shape}"
        )
    variances = (sigmas * 2) ** 2  # k² with k = 2σ
    labelled = visible > 0
    if labelled.any():
        dx = pred[:, 0] - gt[:, 0]
        dy = pred[:, 1] - gt[:, 1]
    else:
        if bbox is None:
            raise ValueError("bbox: the ground truth has no labelled keypoint, pass its [x, y, w, h]")
        x, y, w, h = (float(v) for v in bbox)
        x0, x1, y0, y1 = x - w, x + w * 2, y - h, y + h * 2  # the box enlarged 3x around itself
        dx = np.maximum(0.0, x0 - pred[:, 0]) + np.maximum(0.0, pred[:, 0] - x1)
        dy = np.maximum(0.0, y0 - pred[:, 1]) + np.maximum(0.0, pred[:, 1] - y1)
        labelled = np.ones_like(labelled)
    e = (dx**2 + dy**2) / variances / (float(area) + _EPS) / 2  # pycocotools' order of operations
    e = e[labelled]
    return float(np.sum(np.exp(-e)) / e.shape[0])


def match_image(
    oks_matrix: Any,
    threshold: float,
    *,
    gt_ignore: Any = None,
    gt_crowd: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one image at one OKS threshold, exactly as ``COCOeval.evaluateImg``.

    ``oks_matrix``: ``[D, G]``, detections in rows **already sorted by score** (best first);
    ``gt_ignore``/``gt_crowd``: ``[G]`` flags (default: none). Each detection in turn takes the
    still-free regular ground truth with the highest OKS ``>= threshold`` (on a tie the later
    column wins); if there is none, the best ignored one (a crowd region stays free for more).
    Returns ``(matched_gt [D] int, -1 = unmatched, ignored [D] bool)``: a detection matched to an
    ignored ground truth is neither a true nor a false positive.
    """
    ious = np.asarray(oks_matrix, dtype=np.float64)
    if ious.ndim != 2:
        raise ValueError(f"oks_matrix: expected a 2-D array [D, G], got shape {ious.shape}")
    num_dt, num_gt = ious.shape
    ignore = np.zeros(num_gt, bool) if gt_ignore is None else np.asarray(gt_ignore, bool)
    crowd = np.zeros(num_gt, bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
    taken = np.zeros(num_gt, bool)
    matched = np.full(num_dt, -1, dtype=np.int64)
    for d in range(num_dt):
        best, best_oks = -1, min(threshold, 1 - 1e-10)
        # regular ground truths first; ignored ones only if no regular one matched
        for group in (np.flatnonzero(~ignore), np.flatnonzero(ignore)):
            for g in group:
                if taken[g] and not crowd[g]:
                    continue  # already matched (a crowd region can absorb many)
                if ious[d, g] >= best_oks:
                    best, best_oks = int(g), ious[d, g]
            if best >= 0:
                break
        if best >= 0:
            matched[d] = best
            taken[best] = True
    ignored = (matched >= 0) & ignore[np.maximum(matched, 0)]
    return matched, ignored


def precision_recall(
    is_tp: Any, num_gt: int, *, is_ignored: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, detections sorted by score (best first).

    ``is_tp``: ``[N]`` bool, True for a true positive; ``is_ignored``: ``[N]`` bool, detections
    that count as neither (matched to an ignored ground truth); ``num_gt``: regular ground truths.
    """
    tp_flags = np.asarray(is_tp, dtype=bool)
    ignored = np.zeros_like(tp_flags) if is_ignored is None else np.asarray(is_ignored, bool)
    if num_gt <= 0:
        raise ValueError(f"num_gt: expected a positive number of ground truths, got {num_gt}")
    tp = np.cumsum(tp_flags & ~ignored).astype(float)
    fp = np.cumsum(~tp_flags & ~ignored).astype(float)
    recall = tp / num_gt
    precision = tp / (fp + tp + _EPS)
    return precision, recall


def average_precision(precision: Any, recall: Any, rec_thresholds: Any = RECALL_THRESHOLDS) -> float:
    """COCO's interpolated AP of one precision/recall curve (points in score order).

    1. make precision monotone: each point takes the best precision at any later point;
    2. at each of the 101 recall thresholds 0, 0.01, ..., 1 read the precision of the first point
       whose recall reaches it (0 when the curve never gets there);
    3. average the 101 values.
    """
    precision = np.asarray(precision, dtype=np.float64).copy()
    recall = np.asarray(recall, dtype=np.float64)
    if precision.shape != recall.shape or precision.ndim != 1:
        raise ValueError(
            f"precision, recall: expected two 1-D arrays of one length, got {precision.shape} "
            f"and {recall.shape}"
        )
    for i in range(len(precision) - 1, 0, -1):  # the envelope, right to left
        precision[i - 1] = max(precision[i - 1], precision[i])
    sampled = np.zeros(len(rec_thresholds))
    positions = np.searchsorted(recall, rec_thresholds, side="left")
    inside = positions < len(precision)
    sampled[inside] = precision[positions[inside]]
    return float(np.mean(sampled))


# ---------------------------------------------------------------------------------------------
# Loading and validating ground truth and results
# ---------------------------------------------------------------------------------------------


def _points(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name}: expected an array [K, 2] of (x, y), got shape {arr.shape}")
    return arr


def _load_json(path: str | os.PathLike, name: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{name}: no such file {str(path)!r}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: not valid JSON ({exc})") from exc


def _load_gt(gt: Any) -> dict:
    """The ground truth as a dict, validated by ``course_lib.coco.validate_coco_keypoints``
    (``evaluation=True``: pycocotools' meaning of what it does not check); every error names
    the file (or ``gt``), the entry and the field."""
    source = "gt"
    if isinstance(gt, (str, os.PathLike)):
        source = str(gt)
        gt = _load_json(gt, "gt")
    elif not isinstance(gt, dict) and isinstance(getattr(gt, "dataset", None), dict):
        gt = gt.dataset  # a pycocotools COCO object
    if not isinstance(gt, dict):
        raise ValueError(
            f"gt: expected an annotation file path, a pycocotools COCO or a dict, got "
            f"{type(gt).__name__}"
        )
    validate_coco_keypoints(gt, source=source, evaluation=True)
    if not gt["categories"]:
        raise ValueError(f"{source}: 'categories' is empty; keypoint evaluation needs the person "
                         "category")
    return gt


def _load_results(results: Any) -> list:
    if isinstance(results, (str, os.PathLike)):
        results = _load_json(results, "results")
    if not isinstance(results, (list, tuple)):
        raise ValueError(
            f"results: expected a results file path or a list of result dicts, got "
            f"{type(results).__name__}"
        )
    return list(results)


# ---------------------------------------------------------------------------------------------
# The fast evaluator: every image at once (course_lib.evaluate_arrays, evaluate_matching)
# ---------------------------------------------------------------------------------------------


def evaluate_keypoints(gt: Any, results: Any, *, return_arrays: bool = False) -> dict:
    """The ten COCO keypoint stats of ``results`` against ``gt``, equal to pycocotools'.

    ``gt``: an annotation file path, a pycocotools ``COCO`` or the loaded dict; ``results``: a
    results file path or a list of result dicts (``image_id``, ``category_id``, ``keypoints`` =
    51 numbers ``x, y, v``, ``score``; a ``bbox`` only changes the detection's area, as in
    ``COCO.loadRes``). Returns ``{"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75",
    "ARm", "ARl"}`` as floats (-1 where an area range has no ground truth). Nothing is modified.

    With ``return_arrays=True`` the dict also holds ``precision [T, R, K, A, 1]`` and
    ``recall [T, K, A, 1]`` (pycocotools' ``eval`` arrays), the parameters, and for the area
    range "all": ``dt_index`` (position in ``results`` of each evaluated detection),
    ``dt_match [T, N]`` (position in ``gt["annotations"]`` of the matched ground truth, -1 if
    none) and ``dt_ignored [T, N]``. See the module docstring for every rule.
    """
    # load and validate: every annotation and result checked, turned into arrays
    arrays = _build_arrays(_load_gt(gt), results)
    # group by (category, image); detections by score, the first MAX_DETS of each image
    groups = evaluate_arrays.group(arrays, MAX_DETS)
    # OKS of every (detection, ground truth) pair of an image
    pairs = evaluate_arrays.pair_oks(groups, OKS_SIGMAS)
    # greedy matching, every image at once, per area range and OKS threshold
    matches = evaluate_matching.match_areas(groups, pairs, IOU_THRESHOLDS, AREA_RANGES)
    # precision and recall at the 101 recall points, then the ten means
    precision, recall = evaluate_matching.accumulate(groups, matches, RECALL_THRESHOLDS)
    stats = evaluate_matching.summarize(precision, recall, IOU_THRESHOLDS, list(AREA_RANGES))
    out: dict = dict(zip(STAT_NAMES, stats))
    if return_arrays:
        out.update(
            precision=precision,
            recall=recall,
            iou_thresholds=IOU_THRESHOLDS.copy(),
            rec_thresholds=RECALL_THRESHOLDS.copy(),
            area_ranges=dict(AREA_RANGES),
            category_ids=groups.cat_ids,
            dt_index=groups.dt.index,
            dt_score=groups.dt.score,
            dt_match=evaluate_arrays.annotation_match(groups, matches.matched[0]),
            dt_ignored=matches.ignored[0],
        )
    return out


def _build_arrays(gt: dict, results: Any) -> evaluate_arrays.Arrays:
    """``evaluate_arrays.build_arrays``; an error about a result read from a file names it."""
    try:
        return evaluate_arrays.build_arrays(gt, _load_results(results))
    except ValueError as exc:
        if isinstance(results, (str, os.PathLike)) and str(exc).startswith("results"):
            raise ValueError(f"{results}: {exc}") from None
        raise


def format_stats(stats: dict) -> str:
    """The ten stats as pycocotools prints them (one line each)."""
    lines = []
    for name in STAT_NAMES:
        kind = "Average Precision  (AP)" if name.startswith("AP") else "Average Recall     (AR)"
        iou = {"50": "0.50     ", "75": "0.75     "}.get(name[2:], "0.50:0.95")
        area = {"m": "medium", "l": " large"}.get(name[2:], "   all")
        lines.append(f" {kind} @[ IoU={iou} | area={area} | maxDets= 20 ] = {stats[name]:0.3f}")
    return "\n".join(lines)


def pycocotools_stats(gt: Any, results: Any) -> dict:
    """The same ten stats computed by pycocotools itself (quietly), for comparisons.

    ``gt``/``results`` as in :func:`evaluate_keypoints`, validated the same way first (so a bad
    entry gets the same error); the result dicts are copied (``COCO.loadRes`` writes into
    them) without their ``segmentation``, which keypoint results do not need and pycocotools'
    RLE decoder must never see; an empty list is evaluated as "no detections".
    """
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = _load_gt(gt)
    _build_arrays(gt, results)  # the evaluator's checks, its error messages
    results = copy.deepcopy(evaluate_arrays.without_masks(_load_results(results)))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes cannot read an empty list: the empty result set, built by hand
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "annotations": [],
                               "categories": gt["categories"]}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(STAT_NAMES, ev.stats)}
