"""Greedy matching of many images at once, accumulation and summary: pycocotools' rules, vectorised.

Taught in ``08_oks_evaluation.ipynb``, through :func:`course_lib.evaluate.evaluate_keypoints`
(the same rules one image at a time: ``course_lib.evaluate.match_image``,
``precision_recall`` and ``average_precision``). Steps 4 to 6 of ``evaluate_keypoints``, one
public function each (steps 1 to 3 are in ``course_lib.evaluate_arrays``):

4. :func:`match_areas`: greedy matching of many images at once (:func:`_match_groups`), per
   area range and OKS threshold;
5. :func:`accumulate`: the ``precision``/``recall`` arrays of ``COCOeval.eval``;
6. :func:`summarize`: the ten stats.

``course_lib.evaluate`` imports this module; it imports only ``course_lib.evaluate_arrays``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from course_lib.evaluate_arrays import EPS, Groups, Pairs


@dataclass(frozen=True)
class Matches:
    """Step 4: the matching of every kept detection, per area range and threshold."""

    matched: np.ndarray  # [A, T, N] matched ground truth (position in GroupedGt), -1 if none
    ignored: np.ndarray  # [A, T, N] detection ignored (neither true nor false positive)
    gt_ignored: np.ndarray  # [A, G] ground truth ignored in the area range


# ---------------------------------------------------------------------------------------------
# Step 4: greedy matching, many images at once
# ---------------------------------------------------------------------------------------------


def match_areas(groups: Groups, pairs: Pairs, thresholds: np.ndarray,
                area_ranges: dict[str, tuple[float, float]]) -> Matches:
    """Step 4: greedy matching per area range and threshold; images bucketed by their number of
    ground truths (:func:`_buckets`), each bucket matched at once (:func:`_match_groups`)."""
    gt, dt = groups.gt, groups.dt
    area = gt.arrays["area"]
    gt_ignored = np.stack([gt.arrays["ignore"] | (area < lo) | (area > hi)
                           for lo, hi in area_ranges.values()])
    matched = np.full((len(area_ranges), len(thresholds), len(dt.group)), -1, dtype=np.int64)
    with_both = np.flatnonzero((gt.count > 0) & (dt.count > 0))
    for members, width in _buckets(with_both, gt.count):
        dm, positions = _match_bucket(groups, pairs, members, width, gt_ignored, thresholds)
        matched[:, :, dm] = positions
    ignored = np.zeros(matched.shape, dtype=bool)
    for a, (lo, hi) in enumerate(area_ranges.values()):
        m = matched[a]
        hit = m >= 0
        ignored[a] = np.broadcast_to((dt.area < lo) | (dt.area > hi), m.shape)
        ignored[a][hit] = gt_ignored[a][m[hit]]
    return Matches(matched=matched, ignored=ignored, gt_ignored=gt_ignored)


def _buckets(groups: np.ndarray, g_count: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Groups split by their number of ground truths rounded up to a power of two (less padding)."""
    if len(groups) == 0:
        return []
    width = 1 << np.ceil(np.log2(np.maximum(g_count[groups], 1))).astype(np.int64)
    return [(groups[width == w], int(w)) for w in np.unique(width)]


def _match_bucket(groups: Groups, pairs: Pairs, members: np.ndarray, width: int,
                  gt_ignored: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The groups ``members`` padded to ``[B, depth, width]`` and matched per area range.

    Returns ``(detections [n], matched ground truth [A, T, n])``, positions in the groups.
    """
    gt, dt = groups.gt, groups.dt
    slot = np.full(len(gt.count), -1, dtype=np.int64)
    slot[members] = np.arange(len(members))
    depth = int(dt.count[members].max())
    p = np.flatnonzero(slot[pairs.group] >= 0)
    oks_pad = np.full((len(members), depth, width), -1.0)
    oks_pad[slot[pairs.group[p]], dt.rank[pairs.dt[p]], gt.local[pairs.gt[p]]] = pairs.oks[p]
    gm = np.flatnonzero(slot[gt.group] >= 0)
    g_slot = (slot[gt.group[gm]], gt.local[gm])
    crowd_pad = np.zeros((len(members), width), dtype=bool)
    crowd_pad[g_slot] = gt.arrays["crowd"][gm]
    dm = np.flatnonzero(slot[dt.group] >= 0)
    d_slot = slot[dt.group[dm]]
    first_gt = gt.start[dt.group[dm]][None, :]
    out = np.empty((len(gt_ignored), len(thresholds), len(dm)), dtype=np.int64)
    for a in range(len(gt_ignored)):
        ign_pad = np.ones((len(members), width), dtype=bool)
        ign_pad[g_slot] = gt_ignored[a][gm]
        local = _match_groups(oks_pad, ign_pad, crowd_pad, thresholds)  # [B, T, depth]
        col = local[d_slot, :, dt.rank[dm]].T  # [T, n]
        out[a] = np.where(col >= 0, first_gt + col, -1)
    return dm, out


def _match_groups(
    oks_pad: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """Greedy matching of many images at once: ``oks_pad [B, D, G]`` (-1 = no pair), flags
    ``[B, G]`` → matched ground-truth column ``[B, T, D]`` (-1 = unmatched). Same rule as
    ``course_lib.evaluate.match_image``, one detection rank at a time for all images and
    thresholds together."""
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


# ---------------------------------------------------------------------------------------------
# Steps 5 and 6: accumulate and summarize
# ---------------------------------------------------------------------------------------------


def accumulate(groups: Groups, matches: Matches,
               rec_thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 5: ``precision [T, R, K, A, 1]`` and ``recall [T, K, A, 1]`` as pycocotools'
    ``accumulate()``, -1 where an area range has no regular ground truth."""
    num_a, num_t, _ = matches.matched.shape
    num_cat = len(groups.cat_ids)
    precision = -np.ones((num_t, len(rec_thresholds), num_cat, num_a, 1))
    recall = -np.ones((num_t, num_cat, num_a, 1))
    d_cat = groups.dt.group // groups.num_img
    g_cat = groups.gt.group // groups.num_img
    for k in range(num_cat):
        dk = np.flatnonzero(d_cat == k)  # already in (image, rank) order, as pycocotools concatenates
        order = np.argsort(-groups.dt.score[dk], kind="mergesort")
        for a in range(num_a):
            npig = int(np.count_nonzero(~matches.gt_ignored[a][g_cat == k]))
            if npig == 0:
                continue
            matched = (matches.matched[a][:, dk] >= 0)[:, order]
            ignored = matches.ignored[a][:, dk][:, order]
            precision[:, :, k, a, 0], recall[:, k, a, 0] = _curve(matched, ignored, npig,
                                                                  rec_thresholds)
    return precision, recall


def _curve(matched: np.ndarray, ignored: np.ndarray, npig: int,
           rec_thresholds: np.ndarray) -> tuple[np.ndarray, Any]:
    """Sampled precision ``[T, R]`` and final recall ``[T]`` of detections in score order."""
    tps = np.logical_and(matched, np.logical_not(ignored))
    fps = np.logical_and(np.logical_not(matched), np.logical_not(ignored))
    tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
    fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
    nd = tp_sum.shape[1]
    rc = tp_sum / npig
    pr = tp_sum / (fp_sum + tp_sum + EPS)
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # the envelope, right to left
    sampled = np.zeros((len(rc), len(rec_thresholds)))
    for t in range(len(rc)):
        inds = np.searchsorted(rc[t], rec_thresholds, side="left")
        inside = inds < nd
        sampled[t, inside] = pr[t, inds[inside]]
    return sampled, (rc[:, -1] if nd else 0)


def summarize(precision: np.ndarray, recall: np.ndarray, iou_thresholds: np.ndarray,
              area_names: list[str]) -> list[float]:
    """Step 6: pycocotools' ``summarize()`` for keypoints: means over entries ``> -1`` (else -1),
    in the order of ``course_lib.evaluate.STAT_NAMES``."""

    def one(ap: bool, iou: float | None = None, area: str = "all") -> float:
        aind = [i for i, lbl in enumerate(area_names) if lbl == area]
        mind = [0]
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == iou_thresholds)[0]]
        s = s[:, :, :, aind, mind] if ap else s[:, :, aind, mind]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    return [
        one(True), one(True, 0.5), one(True, 0.75), one(True, area="medium"),
        one(True, area="large"), one(False), one(False, 0.5), one(False, 0.75),
        one(False, area="medium"), one(False, area="large"),
    ]  # fmt: skip
