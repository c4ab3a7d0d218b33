"""COCO keypoint ground truth and results as arrays, grouped per image, and the OKS of every pair.

Taught in ``08_oks_evaluation.ipynb``, through :func:`course_lib.evaluate.evaluate_keypoints`
(the rules it reproduces are listed in ``course_lib.evaluate``'s docstring and shown one idea at
a time by that module's teaching functions). pycocotools' ``COCOeval(iouType="keypoints")``
loops over images and detections in Python; ``evaluate_keypoints`` processes every image at once
in numpy, in six steps. The first three are here, one public function each:

1. :func:`build_arrays`: ground truth and results as arrays, every entry validated;
2. :func:`group`: both grouped by (category, image); detections sorted by score, the first
   ``maxDets`` of each group kept;
3. :func:`pair_oks`: the OKS of every (detection, ground truth) pair of a group, bit-identical
   to ``computeOks``, far-apart pairs skipped (:func:`_surely_below_half`).

Steps 4 to 6 (matching, accumulating, summarizing) are in ``course_lib.evaluate_matching``.
Also here, for ``06_decoding_dark.ipynb``: :func:`keypoint_errors` and :func:`pck`, the distance
errors of decoded keypoints and the fraction within a tolerance (outliers do not hide them).
``course_lib.evaluate`` and ``course_lib.evaluate_matching`` import this module; it imports
only ``course_lib.coco``.
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from course_lib.coco import NUM_KEYPOINTS, OKS_SIGMAS, is_number

EPS = np.spacing(1)  # pycocotools adds it to the area (OKS) and to tp + fp (precision)
_CHUNK = 1 << 16  # pairs per OKS batch (bounds the memory of the [P, K] temporaries)


@dataclass(frozen=True)
class Arrays:
    """Step 1: the evaluated ground truths and results as arrays."""

    num_img: int  # images of the ground truth
    cat_ids: list  # its category ids, sorted
    gt: dict  # per evaluated annotation, file order (see _gt_arrays)
    dt: dict  # per result of an evaluated category, input order (see _dt_arrays)
    gt_position: np.ndarray  # [G] position of each evaluated annotation in gt["annotations"]


@dataclass(frozen=True)
class GroupedGt:
    """Ground truths grouped by ``category * num_img + image``, file order inside a group."""

    arrays: dict  # the arrays of _gt_arrays, in grouped order
    group: np.ndarray  # [G] group of each ground truth
    local: np.ndarray  # [G] position inside its group
    position: np.ndarray  # [G] position in gt["annotations"]
    start: np.ndarray  # [num_groups] first ground truth of each group
    count: np.ndarray  # [num_groups] ground truths of each group


@dataclass(frozen=True)
class GroupedDt:
    """Detections by group, then score (best first, ties in input order), maxDets per group."""

    group: np.ndarray  # [N] group of each kept detection
    rank: np.ndarray  # [N] rank inside its group
    count: np.ndarray  # [num_groups] kept detections of each group
    score: np.ndarray  # [N]
    area: np.ndarray  # [N] the area COCO.loadRes assigns
    xy: np.ndarray  # [N, K, 2] predicted keypoints
    lo: np.ndarray  # [N, 2] box of the predicted keypoints
    hi: np.ndarray  # [N, 2]
    index: np.ndarray  # [N] position in the results list


@dataclass(frozen=True)
class Groups:
    """Step 2: ground truths and detections grouped by (category, image)."""

    gt: GroupedGt
    dt: GroupedDt
    num_img: int
    cat_ids: list


@dataclass(frozen=True)
class Pairs:
    """Step 3: every (detection, ground truth) pair of a group and its OKS."""

    dt: np.ndarray  # [P] detection (position in GroupedDt)
    gt: np.ndarray  # [P] ground truth (position in GroupedGt)
    group: np.ndarray  # [P] their group
    oks: np.ndarray  # [P] OKS, -1 where surely below every threshold (never matches)


# ---------------------------------------------------------------------------------------------
# Step 1: ground truth and results as arrays
# ---------------------------------------------------------------------------------------------


def build_arrays(gt: dict, results: list) -> Arrays:
    """Step 1: the ids, the ground-truth arrays and the result arrays, each entry validated.

    ``gt``: a loaded COCO keypoint annotation dict; ``results``: a list of result dicts.
    Raises ``ValueError`` naming the first bad entry (see ``course_lib.evaluate``).
    """
    image_ids = list(np.unique(np.asarray([img["id"] for img in gt["images"]])))
    image_ids = [i.item() if hasattr(i, "item") else i for i in image_ids]
    image_index = {i: n for n, i in enumerate(image_ids)}
    cat_ids = sorted({c["id"] for c in gt["categories"]})
    cat_index = {c: n for n, c in enumerate(cat_ids)}
    g = _gt_arrays(gt, image_index, cat_index)
    dt = _dt_arrays(results, image_index, cat_index)
    positions = [
        n for n, a in enumerate(gt["annotations"])
        if a.get("image_id") in image_index and a.get("category_id") in cat_index
    ]  # fmt: skip
    return Arrays(num_img=len(image_ids), cat_ids=cat_ids, gt=g, dt=dt,
                  gt_position=np.asarray(positions, dtype=np.int64))


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


def _evaluated_annotations(gt: dict, image_index: dict, cat_index: dict) -> list:
    """The annotations of evaluated images and categories, checked for keys and unique ids."""
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
    return anns


def _gt_arrays(gt: dict, image_index: dict, cat_index: dict) -> dict:
    """The arrays of the evaluated ground truths (file order) that OKS and matching read."""
    anns = _evaluated_annotations(gt, image_index, cat_index)
    kp = _keypoint_array("gt['annotations']", [a["keypoints"] for a in anns], 3 * NUM_KEYPOINTS)
    kp = kp.reshape(-1, NUM_KEYPOINTS, 3)
    if not np.all(np.isfinite(kp)):
        raise ValueError("gt: keypoints contain NaN or inf")
    iscrowd = [a.get("iscrowd", 0) for a in anns]
    num_kp = [a.get("num_keypoints") for a in anns]
    no_kp = np.asarray([n == 0 for n in num_kp], dtype=bool)
    missing = np.asarray([n is None for n in num_kp], dtype=bool)
    if missing.any():  # no num_keypoints: count the labelled keypoints instead
        no_kp[missing] = ~np.any(kp[missing, :, 2] > 0, axis=1)
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
        "bbox": np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4),
        "area": np.asarray([a["area"] for a in anns], dtype=np.float64),
        "crowd": np.asarray([int(c) != 0 for c in iscrowd], dtype=bool),
        "ignore": np.asarray([bool(c) for c in iscrowd], dtype=bool) | no_kp,
    }


def _result_columns(results: list) -> dict:
    """``image_id``, ``category_id``, ``score``, ``keypoints`` of every result, as lists."""
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
    return columns


def _is_real(v: Any) -> bool:
    """An int or a float (numpy's too), finite or not; never a bool or a string."""
    return isinstance(v, (int, float, np.integer, np.floating)) and \
        not isinstance(v, (bool, np.bool_))


def _is_int_id(v: Any) -> bool:
    """An int id: an int (numpy's too) or a float equal to one (pycocotools compares ids with
    ``==``, so ``1.0`` is category 1); never a bool, a string or ``None``."""
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, np.integer)):
        return True
    return isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer()


def _id_positions(ids: list, index: dict, key: str) -> np.ndarray:
    """Position of each id in ``index`` (-1 where absent), after checking that every id is an
    int id (:func:`_is_int_id`): a string ``"1"`` would silently match nothing."""
    if not set(map(type, ids)) <= {int}:
        bad = next((i for i, v in enumerate(ids) if not _is_int_id(v)), None)
        if bad is not None:
            raise ValueError(f"results[{bad}][{key!r}]: expected an int id, got {ids[bad]!r} "
                             f"({type(ids[bad]).__name__})")
    return np.fromiter(map(index.get, ids, itertools.repeat(-1)), dtype=np.int64, count=len(ids))


def _result_values(columns: dict, image_index: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image position [N], score [N], keypoints [N, 51])`` of the results, validated."""
    n = len(columns["score"])
    image = _id_positions(columns["image_id"], image_index, "image_id")
    if n and image.min() < 0:
        unknown = sorted({columns["image_id"][i] for i in np.flatnonzero(image < 0)}, key=str)
        raise ValueError(
            f"results: {len(unknown)} image_id(s) not in the ground truth's images, e.g. "
            f"{unknown[:5]} (pycocotools refuses such results too)"
        )
    scores = columns["score"]
    if not set(map(type, scores)) <= {float, int}:
        bad = next((i for i, v in enumerate(scores) if not _is_real(v)), None)
        if bad is not None:
            raise ValueError(f"results[{bad}]['score']: expected a number, got {scores[bad]!r}")
    score = np.asarray(scores, dtype=np.float64).reshape(n)
    if not np.all(np.isfinite(score)):
        raise ValueError(f"results[{int(np.flatnonzero(~np.isfinite(score))[0])}]['score']: not finite")
    kp = _keypoint_array("results", columns["keypoints"], 3 * NUM_KEYPOINTS)
    if not np.all(np.isfinite(kp)):
        bad = int(np.flatnonzero(~np.isfinite(kp).all(axis=1))[0])
        raise ValueError(f"results[{bad}]['keypoints']: contains NaN or inf")
    return image, score, kp


def _result_boxes(results: list) -> np.ndarray:
    """``[N, 4]`` boxes of results that all carry a ``bbox`` of 4 finite numbers, or
    ``ValueError`` naming the first result that does not."""
    boxes = [r.get("bbox") for r in results]
    flat = list(itertools.chain.from_iterable(b for b in boxes if isinstance(b, (list, tuple))))
    if set(map(type, boxes)) <= {list, tuple} and set(map(len, boxes)) <= {4} and \
            set(map(type, flat)) <= {int, float}:
        out = np.asarray(flat, dtype=np.float64).reshape(-1, 4)
        if np.isfinite(out).all():
            return out
    for i, bb in enumerate(boxes):
        if not (isinstance(bb, (list, tuple)) and len(bb) == 4 and all(map(is_number, bb))):
            raise ValueError(
                f"results[{i}]['bbox']: expected 4 finite numbers [x, y, w, h] (the first result "
                f"has a bbox, so every result needs one: its area is the detection's), got {bb!r}"
            )
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def _result_areas(results: list, box_area: np.ndarray) -> np.ndarray:
    """The area ``COCO.loadRes`` assigns; the branch is chosen by the FIRST result. A result's
    ``segmentation`` is never read (keypoint results need no mask; pycocotools' C decoder
    would read a malformed RLE string past its end): the keypoint box decides, as in
    ``loadRes``'s keypoint branch (``course_lib.evaluate.pycocotools_stats`` drops it too)."""
    first = results[0] if results else {}
    if "bbox" in first and not first["bbox"] == []:
        boxes = _result_boxes(results)
        return boxes[:, 2] * boxes[:, 3]
    return box_area  # w * h of the box spanned by the predicted keypoints


def without_masks(results: list) -> list:
    """Shallow copies of the result dicts without their ``segmentation`` (see
    :func:`_result_areas`)."""
    return [{k: v for k, v in r.items() if k != "segmentation"} if isinstance(r, dict) and
            "segmentation" in r else r for r in results]


def _dt_arrays(results: list, image_index: dict, cat_index: dict) -> dict:
    """The arrays of the results of evaluated categories (input order), validated."""
    columns = _result_columns(results)
    image, score, kp = _result_values(columns, image_index)
    category = _id_positions(columns["category_id"], cat_index, "category_id")
    x, y = kp[:, 0::3], kp[:, 1::3]
    x0, x1, y0, y1 = x.min(axis=1), x.max(axis=1), y.min(axis=1), y.max(axis=1)
    area = _result_areas(results, (x1 - x0) * (y1 - y0))
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
# Step 2: grouping by (category, image)
# ---------------------------------------------------------------------------------------------


def group(arrays: Arrays, max_dets: int) -> Groups:
    """Step 2: ground truths and detections grouped by (category, image).

    Detections are sorted by score inside a group (highest first, ties in input order: a stable
    sort) and only the first ``max_dets`` of each group are kept.
    """
    num_groups = len(arrays.cat_ids) * arrays.num_img
    return Groups(gt=_group_gt(arrays, num_groups), dt=_group_dt(arrays, num_groups, max_dets),
                  num_img=arrays.num_img, cat_ids=arrays.cat_ids)


def _group_gt(arrays: Arrays, num_groups: int) -> GroupedGt:
    """The ground truths grouped, file order inside a group."""
    g_group = arrays.gt["category"] * arrays.num_img + arrays.gt["image"]
    order = np.argsort(g_group, kind="stable")
    g = {k: (v[order] if isinstance(v, np.ndarray) else v) for k, v in arrays.gt.items()}
    g_group = g_group[order]
    count = np.bincount(g_group, minlength=num_groups)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    return GroupedGt(arrays=g, group=g_group, local=np.arange(len(g_group)) - start[g_group],
                     position=arrays.gt_position[order], start=start, count=count)


def _group_dt(arrays: Arrays, num_groups: int, max_dets: int) -> GroupedDt:
    """The detections by group, then score; the first ``max_dets`` of each group."""
    dt = arrays.dt
    d_group = dt["category"] * arrays.num_img + dt["image"]
    order = np.lexsort((np.arange(len(d_group)), -dt["score"], d_group))
    d_group = d_group[order]
    count_all = np.bincount(d_group, minlength=num_groups)
    start_all = np.concatenate([[0], np.cumsum(count_all)[:-1]])
    rank = np.arange(len(d_group)) - start_all[d_group]
    keep = rank < max_dets
    sel = order[keep]
    d_group = d_group[keep]
    return GroupedDt(
        group=d_group, rank=rank[keep], count=np.bincount(d_group, minlength=num_groups),
        score=dt["score"][sel], area=dt["area"][sel], xy=dt["xy"][sel], lo=dt["lo"][sel],
        hi=dt["hi"][sel], index=dt["index"][sel],
    )  # fmt: skip


def annotation_match(groups: Groups, matched: np.ndarray) -> np.ndarray:
    """Position in ``gt["annotations"]`` of each matched ground truth (-1 where unmatched)."""
    out = np.full(matched.shape, -1, dtype=np.int64)
    out[matched >= 0] = groups.gt.position[matched[matched >= 0]]
    return out


# ---------------------------------------------------------------------------------------------
# Step 3: OKS of every pair of a group
# ---------------------------------------------------------------------------------------------


def pair_oks(groups: Groups, sigmas: Any = OKS_SIGMAS) -> Pairs:
    """Step 3: the OKS of every (detection, ground truth) pair of a group, in batches.

    Pairs that :func:`_surely_below_half` rules out keep ``-1`` (below every threshold).
    """
    gt, dt = groups.gt, groups.dt
    pairs_per_dt = gt.count[dt.group]
    pair_dt = np.repeat(np.arange(len(dt.group)), pairs_per_dt)
    pair_offset = np.arange(len(pair_dt)) - np.repeat(np.cumsum(pairs_per_dt) - pairs_per_dt,
                                                      pairs_per_dt)
    pair_group = dt.group[pair_dt]
    pair_gt = gt.start[pair_group] + pair_offset
    variances = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    values = np.full(len(pair_dt), -1.0)
    todo = np.flatnonzero(~_surely_below_half(dt.lo, dt.hi, gt.arrays, pair_dt, pair_gt,
                                              variances))
    for s in range(0, len(todo), _CHUNK):
        rows = todo[s:s + _CHUNK]
        values[rows] = _pair_oks(dt.xy[pair_dt[rows]], gt.arrays, pair_gt[rows], variances)
    return Pairs(dt=pair_dt, gt=pair_gt, group=pair_group, oks=values)


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
        e = (dx**2 + dy**2) / variances[cols] / (g["area"][gj][:, None] + EPS) / 2
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
    bound = (gap**2).sum(axis=1) / variances.max() / (area + EPS) / 2
    return (bound > np.log(2.0) * (1 + 1e-6)) & ~g["no_label"][pair_gt] & (area > 0)


def keypoint_errors(pred: Any, gt: Any, visible: Any) -> np.ndarray:
    """Euclidean distances ``[..., K]`` between predicted and true ``(x, y)``; NaN where unlabelled.

    ``pred`` and ``gt`` are ``[..., K, 2]`` in the same pixels; ``visible`` is ``[..., K]`` (True,
    or a COCO flag ``v > 0``, where the keypoint is labelled). Read them with ``np.nanmedian`` and
    :func:`pck`. Taught in ``06_decoding_dark.ipynb`` (the decoders on a trained network's crops).
    """
    p, g = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or p.ndim < 2 or p.shape[-1] != 2:
        raise ValueError(f"pred, gt: expected equal shapes [..., K, 2], got {p.shape}, {g.shape}")
    v = np.asarray(visible)
    if v.shape != p.shape[:-1]:
        raise ValueError(f"visible: expected shape {p.shape[:-1]}, got {v.shape}")
    d = np.hypot(p[..., 0] - g[..., 0], p[..., 1] - g[..., 1])
    return np.where(v > 0, d, np.nan)


def pck(errors: Any, scale: Any, alpha: float) -> float:
    """PCK: the fraction of labelled keypoints (non-NaN ``errors``) with ``error < alpha * scale``.

    ``scale`` broadcasts to ``errors`` (e.g. ``sqrt(area)[:, None]`` per person, or 1 for a
    tolerance of ``alpha`` pixels); strict ``<`` as MMPose's ``keypoint_pck_accuracy``. NaN when
    nothing is labelled. Taught in ``06_decoding_dark.ipynb``.
    """
    e = np.asarray(errors, dtype=np.float64)
    if not alpha > 0:
        raise ValueError(f"alpha: expected a positive number, got {alpha!r}")
    limit = alpha * np.broadcast_to(np.asarray(scale, dtype=np.float64), e.shape)
    labelled = ~np.isnan(e)
    return float((e[labelled] < limit[labelled]).mean()) if labelled.any() else float("nan")
