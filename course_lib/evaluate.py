"""COCO keypoint evaluation: OKS, greedy matching, AP/AR — identical to pycocotools, vectorised.

Taught in ``08_oks_evaluation.ipynb``. Two layers:

* readable teaching functions, one idea each: :func:`oks` (one prediction against one ground
  truth), :func:`match_image` (greedy matching of one image at one OKS threshold),
  :func:`precision_recall` and :func:`average_precision` (the 101-point interpolated AP);
* :func:`evaluate_keypoints`, the fast evaluator: the same rules as pycocotools'
  ``COCOeval(iouType="keypoints")`` (``evaluate()`` + ``accumulate()`` + ``summarize()``), with
  every image processed at once in numpy. Its ten stats are equal (``==``, not "close") to
  pycocotools' on any valid input; ``tests/test_evaluate.py`` pins each rule.

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
  non-empty ``bbox`` (then every result must carry one);
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
* results whose ``category_id`` is not a ground-truth category are dropped, as pycocotools does.
"""

from __future__ import annotations

import itertools
import json
import operator
import os
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.coco import NUM_KEYPOINTS, OKS_SIGMAS

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
_EPS = np.spacing(1)  # pycocotools adds it to the area (OKS) and to tp + fp (precision)


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
    with open(path) as f:
        return json.load(f)


def _load_gt(gt: Any) -> dict:
    if isinstance(gt, (str, os.PathLike)):
        gt = _load_json(gt, "gt")
    elif not isinstance(gt, dict) and isinstance(getattr(gt, "dataset", None), dict):
        gt = gt.dataset  # a pycocotools COCO object
    if not isinstance(gt, dict):
        raise ValueError(
            f"gt: expected an annotation file path, a pycocotools COCO or a dict, got "
            f"{type(gt).__name__}"
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise ValueError(f"gt: expected a list under {key!r} (a COCO keypoint annotation file)")
    if not gt["categories"]:
        raise ValueError("gt: 'categories' is empty; keypoint evaluation needs the person category")
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


def _keypoint_array(name: str, items: list, num_values: int) -> np.ndarray:
    """``[N, num_values]`` float64 from a list of keypoint lists, with a precise error."""
    try:
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
        if np.all(lengths == num_values):
            flat = np.fromiter(itertools.chain.from_iterable(items), dtype=np.float64,
                               count=len(items) * num_values)
            return flat.reshape(len(items), num_values)
    except (TypeError, ValueError):
        pass
    for i, kp in enumerate(items):
        try:
            one = np.asarray(kp, dtype=np.float64)
        except (ValueError, TypeError):
            one = None
        if one is None or one.shape != (num_values,):
            what = "not a list of numbers" if one is None else f"{one.size} values"
            raise ValueError(
                f"{name}[{i}]['keypoints']: expected {num_values} numbers "
                f"(x, y, v for {num_values // 3} keypoints), got {what}"
            )
    return np.asarray(items, dtype=np.float64).reshape(len(items), num_values)


def _gt_arrays(gt: dict, image_index: dict, cat_index: dict) -> dict:
    anns = [
        a for a in gt["annotations"]
        if a.get("image_id") in image_index and a.get("category_id") in cat_index
    ]  # fmt: skip
    for a in anns:
        for key in ("id", "keypoints", "bbox", "area"):
            if key not in a:
                raise ValueError(f"gt: annotation {a.get('id', '(no id)')!r} has no {key!r}")
    ids = [a["id"] for a in anns]
    if len(set(ids)) != len(ids):
        seen, dup = set(), None
        for i in ids:
            if i in seen:
                dup = i
                break
            seen.add(i)
        raise ValueError(f"gt: annotation id {dup!r} appears more than once (ids must be unique)")
    kp = _keypoint_array("gt['annotations']", [a["keypoints"] for a in anns], 3 * NUM_KEYPOINTS)
    kp = kp.reshape(-1, NUM_KEYPOINTS, 3)
    if not np.all(np.isfinite(kp)):
        raise ValueError("gt: keypoints contain NaN or inf")
    bbox = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    area = np.asarray([a["area"] for a in anns], dtype=np.float64)
    iscrowd = [a.get("iscrowd", 0) for a in anns]
    crowd = np.asarray([int(c) != 0 for c in iscrowd], dtype=bool)
    num_kp = [a.get("num_keypoints") for a in anns]
    no_kp = np.asarray([n == 0 for n in num_kp], dtype=bool)
    missing = np.asarray([n is None for n in num_kp], dtype=bool)
    if missing.any():  # no num_keypoints: count the labelled keypoints instead
        no_kp[missing] = ~np.any(kp[missing, :, 2] > 0, axis=1)
    ignore = np.asarray([bool(c) for c in iscrowd], dtype=bool) | no_kp
    visible = kp[:, :, 2] > 0
    no_label = ~visible.any(axis=1)  # OKS then uses all keypoints and the enlarged box
    counted = visible | no_label[:, None]
    xy_counted = np.where(counted[:, :, None], kp[:, :, :2], np.nan)
    with np.errstate(all="ignore"):
        lo = np.nanmin(xy_counted, axis=1) if len(kp) else np.zeros((0, 2))
        hi = np.nanmax(xy_counted, axis=1) if len(kp) else np.zeros((0, 2))
    count_order = np.argsort(~counted, axis=1, kind="stable")  # counted keypoints first, in order
    return {
        "n_count": counted.sum(axis=1),
        "count_order": count_order,
        "x_sorted": np.take_along_axis(kp[:, :, 0], count_order, axis=1),
        "y_sorted": np.take_along_axis(kp[:, :, 1], count_order, axis=1),
        "no_label": no_label,
        "lo": lo,  # box of the counted keypoints (for skipping far-apart pairs)
        "hi": hi,
        "image": np.asarray([image_index[a["image_id"]] for a in anns], dtype=np.int64),
        "category": np.asarray([cat_index[a["category_id"]] for a in anns], dtype=np.int64),
        "bbox": bbox,
        "area": area,
        "crowd": crowd,
        "ignore": ignore,
    }


def _dt_arrays(results: list, image_index: dict, cat_index: dict) -> dict:
    n = len(results)
    if not all(map(isinstance, results, itertools.repeat(dict))):
        i = next(i for i, r in enumerate(results) if not isinstance(r, dict))
        raise ValueError(f"results[{i}]: expected a dict, got {type(results[i]).__name__}")
    columns = {}
    for key in ("image_id", "category_id", "score", "keypoints"):
        try:
            columns[key] = list(map(operator.itemgetter(key), results))
        except KeyError:
            first = next(i for i, r in enumerate(results) if key not in r)
            raise ValueError(f"results[{first}]: missing {key!r}") from None
    try:
        image = np.fromiter(map(image_index.get, columns["image_id"], itertools.repeat(-1)),
                            dtype=np.int64, count=n)
    except TypeError:  # an unhashable image_id
        raise ValueError("results: every 'image_id' must be an image id") from None
    if n and image.min() < 0:
        unknown = sorted({columns["image_id"][i] for i in np.flatnonzero(image < 0)}, key=str)
        raise ValueError(
            f"results: {len(unknown)} image_id(s) not in the ground truth's images, e.g. "
            f"{unknown[:5]} (pycocotools refuses such results too)"
        )
    try:
        score = np.asarray(columns["score"], dtype=np.float64).reshape(n)
    except (ValueError, TypeError):
        raise ValueError("results: every 'score' must be a number") from None
    if not np.all(np.isfinite(score)):
        raise ValueError(f"results[{int(np.flatnonzero(~np.isfinite(score))[0])}]['score']: not finite")
    kp = _keypoint_array("results", columns["keypoints"], 3 * NUM_KEYPOINTS)
    if not np.all(np.isfinite(kp)):
        bad = int(np.flatnonzero(~np.isfinite(kp).all(axis=1))[0])
        raise ValueError(f"results[{bad}]['keypoints']: contains NaN or inf")
    try:
        category = np.fromiter(map(cat_index.get, columns["category_id"], itertools.repeat(-1)),
                               dtype=np.int64, count=n)
    except TypeError:
        raise ValueError("results: every 'category_id' must be a category id") from None
    x, y = kp[:, 0::3], kp[:, 1::3]
    x0, x1, y0, y1 = x.min(axis=1), x.max(axis=1), y.min(axis=1), y.max(axis=1)
    # the area COCO.loadRes assigns: the branch is chosen by the FIRST result
    first = results[0] if n else {}
    if "bbox" in first and not first["bbox"] == []:
        boxes = []
        for i, r in enumerate(results):
            bb = r.get("bbox")
            if bb is None or len(bb) != 4:
                raise ValueError(
                    f"results[{i}]['bbox']: the first result has a bbox, so every result needs "
                    f"one of 4 numbers (its area is the detection's area), got {bb!r}"
                )
            boxes.append(bb)
        boxes = np.asarray(boxes, dtype=np.float64)
        area = boxes[:, 2] * boxes[:, 3]
    elif "segmentation" in first:
        from pycocotools import mask as mask_utils

        area = np.asarray([float(mask_utils.area(r["segmentation"])) for r in results])
    else:
        area = (x1 - x0) * (y1 - y0)
    keep = category >= 0  # pycocotools drops results of categories it does not evaluate
    return {
        "image": image[keep],
        "category": category[keep],
        "score": score[keep],
        "xy": np.ascontiguousarray(kp[keep].reshape(-1, NUM_KEYPOINTS, 3)[:, :, :2]),
        "area": area[keep],
        "lo": np.stack([x0, y0], axis=1)[keep],  # box of the predicted keypoints
        "hi": np.stack([x1, y1], axis=1)[keep],
        "index": np.flatnonzero(keep),
    }


# ---------------------------------------------------------------------------------------------
# The vectorised evaluator
# ---------------------------------------------------------------------------------------------


def _pair_oks(dxy: np.ndarray, g: dict, gi: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """OKS of detection keypoints ``dxy [P, K, 2]`` against ground truths ``gi [P]``.

    Bit-identical to pycocotools: the same elementwise operations, and each pair's sum runs over
    exactly its counted keypoints in order (grouped by their count: numpy's row-wise sum of a
    ``[P, n]`` array adds in the same order as its sum of one ``[n]`` array).
    """
    out = np.empty(len(gi))
    n_count = g["n_count"][gi]
    by_count = np.argsort(n_count, kind="stable")
    bounds = np.searchsorted(n_count[by_count], np.arange(NUM_KEYPOINTS + 2))
    for n in range(1, NUM_KEYPOINTS + 1):
        rows = by_count[bounds[n]:bounds[n + 1]]
        if len(rows) == 0:
            continue
        gj = gi[rows]
        cols = g["count_order"][gj, :n]  # the counted keypoints of each ground truth, in order
        xd = np.take_along_axis(dxy[rows, :, 0], cols, axis=1)
        yd = np.take_along_axis(dxy[rows, :, 1], cols, axis=1)
        box = g["no_label"][gj]
        dx = xd - g["x_sorted"][gj, :n]
        dy = yd - g["y_sorted"][gj, :n]
        if n == NUM_KEYPOINTS and box.any():  # no labelled keypoint: distance to the enlarged box
            bb = g["bbox"][gj[box]]
            x0, x1 = bb[:, 0] - bb[:, 2], bb[:, 0] + bb[:, 2] * 2
            y0, y1 = bb[:, 1] - bb[:, 3], bb[:, 1] + bb[:, 3] * 2
            xb, yb = xd[box], yd[box]
            dx[box] = np.maximum(0.0, x0[:, None] - xb) + np.maximum(0.0, xb - x1[:, None])
            dy[box] = np.maximum(0.0, y0[:, None] - yb) + np.maximum(0.0, yb - y1[:, None])
        e = (dx**2 + dy**2) / variances[cols] / (g["area"][gj][:, None] + _EPS) / 2
        out[rows] = np.sum(np.exp(-e), axis=1) / n
    return out


def _surely_below_half(d_lo: np.ndarray, d_hi: np.ndarray, g: dict, pair_dt: np.ndarray,
                       pair_gt: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """Pairs whose OKS is certainly below 0.5, the lowest threshold (a shortcut, not a rule).

    Every labelled keypoint of the ground truth lies in its keypoint box and every predicted one
    in the detection's, so each distance is at least the gap ``D`` between the two boxes and each
    term ``exp(-e_k) <= exp(-D² / max(k²) / (area + eps) / 2)``. When that bound is below 0.5
    (with a safety margin far above rounding), OKS < 0.5 and the pair can never match: its OKS
    need not be computed. Ground truths without labelled keypoints or with a non-positive area
    are always computed.
    """
    if len(pair_dt) == 0:
        return np.zeros(0, dtype=bool)
    gap = np.maximum(0.0, np.maximum(g["lo"][pair_gt] - d_hi[pair_dt],
                                     d_lo[pair_dt] - g["hi"][pair_gt]))
    area = g["area"][pair_gt]
    bound = (gap**2).sum(axis=1) / variances.max() / (area + _EPS) / 2
    return (bound > np.log(2.0) * (1 + 1e-6)) & ~g["no_label"][pair_gt] & (area > 0)


def _match_groups(
    oks_pad: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """Greedy matching of many images at once: ``oks_pad [B, D, G]`` (-1 = no pair), flags
    ``[B, G]`` → matched ground-truth column ``[B, T, D]`` (-1 = unmatched). Same rule as
    :func:`match_image`, one detection rank at a time for all images and thresholds together."""
    num_b, num_d, num_g = oks_pad.shape
    num_t = len(thresholds)
    # columns reversed once, so that argmax (first maximum) picks the LAST best column
    oks_rev = np.ascontiguousarray(oks_pad[:, :, ::-1])
    regular = np.ascontiguousarray(~gt_ignore[:, None, ::-1])
    ignored = ~regular
    free_always = np.ascontiguousarray(gt_crowd[:, None, ::-1])
    any_ignored = bool(gt_ignore.any())
    taken = np.zeros((num_b, num_t, num_g), dtype=bool)
    matched = np.full((num_b, num_t, num_d), -1, dtype=np.int64)
    thr = np.minimum(thresholds, 1 - 1e-10)[None, :, None]
    for d in range(num_d):
        o = oks_rev[:, d, None, :]  # [B, 1, G]
        rows = np.flatnonzero((o[:, 0, :] >= thr[0, 0, 0]).any(axis=1))  # any candidate at all
        if len(rows) == 0:
            continue
        o = o[rows]
        ok = (o >= thr) & (~taken[rows] | free_always[rows])
        cand = ok & regular[rows]
        choice = np.where(cand.any(axis=2), np.argmax(np.where(cand, o, -1.0), axis=2), -1)
        if any_ignored:  # ignored ground truths, only where no regular one matched
            cand = ok & ignored[rows]
            fallback = (choice < 0) & cand.any(axis=2)
            if fallback.any():
                best = np.argmax(np.where(cand, o, -1.0), axis=2)
                choice = np.where(fallback, best, choice)
        hit = choice >= 0
        r_idx, t_idx = np.nonzero(hit)
        taken[rows[r_idx], t_idx, choice[hit]] = True
        matched[rows, :, d] = np.where(hit, num_g - 1 - choice, -1)
    return matched


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
    gt = _load_gt(gt)
    results = _load_results(results)
    image_ids = list(np.unique(np.asarray([img["id"] for img in gt["images"]])))
    image_ids = [i.item() if hasattr(i, "item") else i for i in image_ids]
    image_index = {i: n for n, i in enumerate(image_ids)}
    cat_ids = sorted({c["id"] for c in gt["categories"]})
    cat_index = {c: n for n, c in enumerate(cat_ids)}
    num_img, num_cat = len(image_ids), len(cat_ids)
    g = _gt_arrays(gt, image_index, cat_index)
    dt = _dt_arrays(results, image_index, cat_index)
    g_ann_position = _annotation_positions(gt, g, image_index, cat_index)

    # ground truths grouped by (category, image), file order inside a group
    g_group = g["category"] * num_img + g["image"]
    g_order = np.argsort(g_group, kind="stable")
    g = {k: (v[g_order] if isinstance(v, np.ndarray) else v) for k, v in g.items()}
    g_ann_position = g_ann_position[g_order]
    g_group = g_group[g_order]
    num_groups = num_cat * num_img
    g_count = np.bincount(g_group, minlength=num_groups)
    g_start = np.concatenate([[0], np.cumsum(g_count)[:-1]])

    # detections: by group, then score (highest first), ties in input order; keep the first 20
    d_group = dt["category"] * num_img + dt["image"]
    d_order = np.lexsort((np.arange(len(d_group)), -dt["score"], d_group))
    d_group = d_group[d_order]
    d_count_all = np.bincount(d_group, minlength=num_groups)
    d_start_all = np.concatenate([[0], np.cumsum(d_count_all)[:-1]])
    rank = np.arange(len(d_group)) - d_start_all[d_group]
    keep = rank < MAX_DETS
    d_sel = d_order[keep]
    d_group, rank = d_group[keep], rank[keep]
    d_score, d_area, d_xy = dt["score"][d_sel], dt["area"][d_sel], dt["xy"][d_sel]
    num_dt = len(d_group)

    # OKS of every (detection, ground truth) pair of a group, in chunks to bound memory
    pairs_per_dt = g_count[d_group]
    pair_dt = np.repeat(np.arange(num_dt), pairs_per_dt)
    pair_offset = np.arange(len(pair_dt)) - np.repeat(np.cumsum(pairs_per_dt) - pairs_per_dt,
                                                      pairs_per_dt)
    pair_gt = g_start[d_group[pair_dt]] + pair_offset
    variances = (np.asarray(OKS_SIGMAS, dtype=np.float64) * 2) ** 2
    pair_oks = np.full(len(pair_dt), -1.0)  # -1: OKS below every threshold (never matches)
    todo = np.flatnonzero(~_surely_below_half(dt["lo"][d_sel], dt["hi"][d_sel], g, pair_dt,
                                              pair_gt, variances))
    chunk = 1 << 16
    for s in range(0, len(todo), chunk):
        rows = todo[s:s + chunk]
        pair_oks[rows] = _pair_oks(d_xy[pair_dt[rows]], g, pair_gt[rows], variances)

    # greedy matching, per area range; images bucketed by their number of ground truths
    thresholds = IOU_THRESHOLDS
    num_t = len(thresholds)
    area_names = list(AREA_RANGES)
    num_a = len(area_names)
    g_local = np.arange(len(g_group)) - g_start[g_group]
    groups_with_both = np.flatnonzero((g_count > 0) & (np.bincount(d_group, minlength=num_groups) > 0))
    buckets = _buckets(groups_with_both, g_count)
    dt_matched = np.full((num_a, num_t, num_dt), -1, dtype=np.int64)  # global gt position
    dt_ignored = np.zeros((num_a, num_t, num_dt), dtype=bool)
    gt_ignored_by_area = np.zeros((num_a, len(g_group)), dtype=bool)
    g_ign_by_area = []
    for name in area_names:
        lo, hi = AREA_RANGES[name]
        g_ign_by_area.append(g["ignore"] | (g["area"] < lo) | (g["area"] > hi))
    group_slot = np.full(num_groups, -1, dtype=np.int64)
    pair_group = d_group[pair_dt]
    for members, width in buckets:
        group_slot[members] = np.arange(len(members))
        depth = int(min(MAX_DETS, d_count_all[members].max()))
        p = np.flatnonzero(group_slot[pair_group] >= 0)
        oks_pad = np.full((len(members), depth, width), -1.0)
        oks_pad[group_slot[pair_group[p]], rank[pair_dt[p]], g_local[pair_gt[p]]] = pair_oks[p]
        gm = np.flatnonzero(group_slot[g_group] >= 0)
        g_slot = (group_slot[g_group[gm]], g_local[gm])
        crowd_pad = np.zeros((len(members), width), dtype=bool)
        crowd_pad[g_slot] = g["crowd"][gm]
        dm = np.flatnonzero(group_slot[d_group] >= 0)
        d_slot = group_slot[d_group[dm]]
        for a in range(num_a):
            ign_pad = np.ones((len(members), width), dtype=bool)
            ign_pad[g_slot] = g_ign_by_area[a][gm]
            local = _match_groups(oks_pad, ign_pad, crowd_pad, thresholds)  # [B, T, depth]
            col = local[d_slot, :, rank[dm]].T  # [T, n]
            dt_matched[a][:, dm] = np.where(col >= 0, g_start[d_group[dm]][None, :] + col, -1)
        group_slot[members] = -1
    for a, name in enumerate(area_names):
        lo, hi = AREA_RANGES[name]
        gt_ignored_by_area[a] = g_ign_by_area[a]
        m = dt_matched[a]
        out_of_range = (d_area < lo) | (d_area > hi)
        hit = m >= 0
        dt_ignored[a] = np.broadcast_to(out_of_range, m.shape)
        dt_ignored[a][hit] = g_ign_by_area[a][m[hit]]

    # accumulate: precision [T, R, K, A, M] and recall [T, K, A, M], -1 where no ground truth
    num_r = len(RECALL_THRESHOLDS)
    precision = -np.ones((num_t, num_r, num_cat, num_a, 1))
    recall = -np.ones((num_t, num_cat, num_a, 1))
    d_cat = d_group // num_img
    g_cat = g_group // num_img
    for k in range(num_cat):
        dk = np.flatnonzero(d_cat == k)  # already in (image, rank) order, as pycocotools concatenates
        order = np.argsort(-d_score[dk], kind="mergesort")
        for a in range(num_a):
            npig = int(np.count_nonzero(~gt_ignored_by_area[a][g_cat == k]))
            if npig == 0:
                continue
            matched = (dt_matched[a][:, dk] >= 0)[:, order]
            ignored = dt_ignored[a][:, dk][:, order]
            tps = np.logical_and(matched, np.logical_not(ignored))
            fps = np.logical_and(np.logical_not(matched), np.logical_not(ignored))
            tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
            fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
            nd = tp_sum.shape[1]
            rc = tp_sum / npig
            pr = tp_sum / (fp_sum + tp_sum + _EPS)
            recall[:, k, a, 0] = rc[:, -1] if nd else 0
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            for t in range(num_t):
                inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
                q = np.zeros(num_r)
                inside = inds < nd
                q[inside] = pr[t, inds[inside]]
                precision[t, :, k, a, 0] = q

    stats = _summarize(precision, recall)
    out: dict = dict(zip(STAT_NAMES, stats))
    if return_arrays:
        out.update(
            precision=precision,
            recall=recall,
            iou_thresholds=IOU_THRESHOLDS.copy(),
            rec_thresholds=RECALL_THRESHOLDS.copy(),
            area_ranges=dict(AREA_RANGES),
            category_ids=cat_ids,
            dt_index=dt["index"][d_sel],
            dt_score=d_score,
            dt_match=_lookup(g_ann_position, dt_matched[0]),
            dt_ignored=dt_ignored[0],
        )
    return out


def _lookup(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[index]`` where ``index >= 0``, else -1."""
    out = np.full(index.shape, -1, dtype=np.int64)
    out[index >= 0] = values[index[index >= 0]]
    return out


def _annotation_positions(gt: dict, g: dict, image_index: dict, cat_index: dict) -> np.ndarray:
    """Position in ``gt["annotations"]`` of each evaluated ground truth (before grouping)."""
    positions = [
        n for n, a in enumerate(gt["annotations"])
        if a.get("image_id") in image_index and a.get("category_id") in cat_index
    ]  # fmt: skip
    return np.asarray(positions, dtype=np.int64)


def _buckets(groups: np.ndarray, g_count: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Groups split by their number of ground truths rounded up to a power of two (less padding)."""
    if len(groups) == 0:
        return []
    width = 1 << np.ceil(np.log2(np.maximum(g_count[groups], 1))).astype(np.int64)
    return [(groups[width == w], int(w)) for w in np.unique(width)]


def _summarize(precision: np.ndarray, recall: np.ndarray) -> list[float]:
    """pycocotools' ``summarize()`` for keypoints: means over entries ``> -1`` (else -1)."""
    labels = list(AREA_RANGES)

    def one(ap: bool, iou: float | None = None, area: str = "all") -> float:
        aind = [i for i, lbl in enumerate(labels) if lbl == area]
        mind = [0]
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        s = s[:, :, :, aind, mind] if ap else s[:, :, aind, mind]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    return [
        one(True), one(True, 0.5), one(True, 0.75), one(True, area="medium"),
        one(True, area="large"), one(False), one(False, 0.5), one(False, 0.75),
        one(False, area="medium"), one(False, area="large"),
    ]  # fmt: skip


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

    ``gt``/``results`` as in :func:`evaluate_keypoints`; the result dicts are copied first
    (``COCO.loadRes`` writes into them); an empty list is evaluated as "no detections".
    """
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = _load_gt(gt)
    results = copy.deepcopy(_load_results(results))
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
