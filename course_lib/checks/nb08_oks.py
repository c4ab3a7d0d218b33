"""Checks of the exercises of ``08_oks_evaluation.ipynb``: the OKS of one pair (08.1), COCO's
greedy matching of one image (08.2) and the 101-point average precision (08.3).

Each check compares the answer with ``course_lib.evaluate``; when it differs, it computes what
the usual slips would have returned (k = sigma instead of 2 sigma, sqrt(area) as s^2, the 2 of
the exponent missing, unlabelled keypoints counted; the first free person over the threshold
instead of the best one, a person matched twice, a strict threshold, an optimal assignment; no
envelope, 11-point interpolation, a trapezoid, linear interpolation ...) and names the one that
matches on every case.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.reporting import call, diagnose, fmt, report

# --- 08.1 OKS --------------------------------------------------------------------------------


def _oks_cases() -> list[tuple]:
    """(pred, gt, visible, area) cases for 08.1: exact, shifted, partly unlabelled, tiny area,
    a large error (where the slips differ most)."""
    rng = np.random.default_rng(8)
    gt = rng.uniform(20, 120, (17, 2))
    all_visible = np.full(17, 2)
    some = np.where(rng.random(17) < 0.4, 0, rng.choice([1, 2], 17))
    some[0] = 2
    return [
        (gt.copy(), gt, all_visible, 5000.0),
        (gt + rng.normal(0, 3, gt.shape), gt, all_visible, 5000.0),
        (gt + rng.normal(0, 3, gt.shape), gt, some, 5000.0),
        (gt + rng.normal(0, 3, gt.shape), gt, some, 400.0),
        (gt + rng.normal(0, 8, gt.shape), gt, some, 9000.0),
    ]


def _oks_variant(pred, gt, visible, area, *, k: float = 2.0, two: float = 2.0,
                 scale: str = "area", squared: bool = True, labelled: str = "mean") -> float:
    """The OKS of one pair computed with the given (possibly wrong) choices."""
    from course_lib.coco import OKS_SIGMAS

    d2 = ((np.asarray(pred, float) - np.asarray(gt, float)) ** 2).sum(axis=1)
    d2 = d2 if squared else np.sqrt(d2)
    s2 = {"area": area, "sqrt": np.sqrt(area), "square": area**2}[scale]
    ks = np.exp(-d2 / ((k * OKS_SIGMAS) ** 2 * two * (s2 + np.spacing(1))))
    vis = np.asarray(visible) > 0
    if labelled == "all":
        return float(ks.mean())
    if labelled == "sum":
        return float(ks[vis].sum())
    if labelled == "over17":
        return float(ks[vis].sum() / 17)
    return float(ks[vis].mean())


_OKS_SLIPS = [
    (dict(k=1.0), "k = sigma was used: COCO's OKS_SIGMAS are the sigmas, and the constant of "
     "the exponent is k = 2 sigma, so k^2 = (2 * OKS_SIGMAS)^2"),
    (dict(labelled="all"), "all 17 keypoints were averaged: only keypoints with v > 0 count; "
     "average over those"),
    (dict(labelled="over17"), "the sum over the labelled keypoints was divided by 17: average "
     "over the labelled ones (v > 0) only"),
    (dict(scale="sqrt"), "sqrt(area) was used as s^2: the scale is the area itself, s^2 = area"),
    (dict(scale="square"), "area^2 was used as s^2: the scale is the area itself, s^2 = area"),
    (dict(two=1.0), "the exponent is d^2 / (2 s^2 k^2): the 2 is missing"),
    (dict(squared=False), "the distance was not squared: the exponent uses d^2"),
    (dict(labelled="sum"), "the similarities were summed: OKS is their mean"),
]


def check_oks(oks: Callable) -> bool:
    """08.1: ``oks(pred [17, 2], gt [17, 2], visible [17], area) -> float`` (COCO's OKS)."""
    from course_lib.evaluate import oks as reference

    problems: list[str] = []
    values = []
    for i, (pred, gt, visible, area) in enumerate(_oks_cases()):
        got, err = call(oks, pred.copy(), gt.copy(), visible.copy(), area)
        if err:
            return report("08.1 OKS of one pair", [f"case {i}: {err}"])
        try:
            value = float(got)
        except (TypeError, ValueError):
            return report("08.1 OKS of one pair",
                          [f"case {i}: expected a number, got {type(got).__name__}"])
        expected = reference(pred, gt, visible, area)
        values.append(value)
        if not abs(value - expected) <= 1e-6:
            problems.append(f"case {i} (area {fmt(area)}, {int((visible > 0).sum())} labelled "
                            f"keypoints): got {fmt(value)}, expected {fmt(expected)}")
    if problems:
        variants = [(np.array([_oks_variant(*case, **options) for case in _oks_cases()]), message)
                    for options, message in _OKS_SLIPS]
        slip = diagnose(np.array(values), variants, atol=1e-6)
        problems += [slip] if slip else []
    return report("08.1 OKS of one pair", problems,
                  passed_message="sigmas, area and unlabelled keypoints handled as COCO does")


# --- 08.2 greedy matching --------------------------------------------------------------------


def _matching_cases() -> list[tuple[np.ndarray, float]]:
    """(oks_matrix [D, G] with detections sorted by score, threshold) for 08.2 (no ties)."""
    return [
        (np.array([[0.9, 0.1], [0.2, 0.8]]), 0.5),  # each detection its own person
        (np.array([[0.7, 0.6], [0.9, 0.3]]), 0.5),  # the first detection takes the contested one
        (np.array([[0.7, 0.6], [0.9, 0.3]]), 0.75),  # at 0.75 only the second one matches
        (np.array([[0.4, 0.3], [0.55, 0.2], [0.95, 0.85]]), 0.5),  # below threshold: unmatched
        (np.array([[0.6, 0.9], [0.8, 0.2]]), 0.5),  # the best person is not the first one
        (np.array([[0.9, 0.8], [0.95, 0.7]]), 0.5),  # its best person is taken: the next best
        (np.array([[0.5, 0.3]]), 0.5),  # OKS exactly at the threshold matches
        (np.zeros((0, 2)), 0.5),  # no detections
    ]


def _greedy(m: np.ndarray, t: float, *, pick: str = "best", strict: bool = False,
            reuse: bool = False, fallback: bool = True) -> list[int]:
    """COCO's greedy matching with the given (possibly wrong) choices."""
    taken = np.zeros(m.shape[1], bool)
    out = []
    for row in m:
        ok = (row > t) if strict else (row >= t)
        free = ok & (~taken | reuse)
        if not fallback:  # only the best person overall; taken -> unmatched
            best = int(np.argmax(row)) if len(row) else -1
            free = np.zeros_like(free)
            if best >= 0 and ok[best] and not taken[best]:
                free[best] = True
        cand = np.flatnonzero(free)
        g = -1 if not len(cand) else int(cand[0] if pick == "first" else cand[np.argmax(row[cand])])
        if g >= 0:
            taken[g] = True
        out.append(g)
    return out


def _per_person(m: np.ndarray, t: float) -> list[int]:
    """Matching by columns: each person (in order) takes its best free detection."""
    out = [-1] * len(m)
    for g in range(m.shape[1] if len(m) else 0):
        free = [d for d in range(len(m)) if out[d] < 0 and m[d, g] >= t]
        if free:
            out[max(free, key=lambda d: m[d, g])] = g
    return out


def _optimal(m: np.ndarray, t: float) -> list[int]:
    """The assignment that maximises the summed OKS above the threshold (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    out = [-1] * len(m)
    if len(m):
        rows, cols = linear_sum_assignment(np.where(m >= t, m, 0.0), maximize=True)
        for r, c in zip(rows, cols):
            out[r] = int(c) if m[r, c] >= t else -1
    return out


_MATCH_SLIPS = [
    (lambda m, t: _greedy(m, t, pick="first"), "each detection took the FIRST free person with "
     "OKS >= threshold; COCO takes the BEST one (the highest OKS among the free people)"),
    (lambda m, t: _greedy(m, t, reuse=True), "a person was matched twice: once a person is "
     "taken, later detections must skip it"),
    (lambda m, t: _greedy(m, t, fallback=False), "when a detection's best person is already "
     "taken it stayed unmatched; it takes the best FREE person instead"),
    (lambda m, t: _greedy(m, t, strict=True), "an OKS equal to the threshold matches (OKS >= "
     "threshold, not >)"),
    (_per_person, "the matching went person by person (columns); COCO goes detection by "
     "detection (rows, best score first)"),
    (_optimal, "that is an optimal (Hungarian) assignment; COCO's matching is greedy, "
     "detections in score order"),
]


def check_match_image(match_image: Callable) -> bool:
    """08.2: ``match_image(oks_matrix [D, G], threshold) -> [D]`` matched column or -1."""
    from course_lib.evaluate import match_image as reference

    problems: list[str] = []
    answers = []
    for i, (matrix, thr) in enumerate(_matching_cases()):
        got, err = call(match_image, matrix.copy(), thr)
        if err:
            return report("08.2 greedy matching of one image", [f"case {i}: {err}"])
        expected = reference(matrix, thr)[0]
        try:
            got_arr = np.asarray(got, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError):
            return report("08.2 greedy matching of one image",
                          [f"case {i}: expected a list of ints, got {type(got).__name__}"])
        answers.append(got_arr)
        if got_arr.shape != expected.shape or not np.array_equal(got_arr, expected):
            problems.append(f"case {i} (threshold {fmt(thr)}): got {got_arr.tolist()}, expected "
                            f"{expected.tolist()} for OKS {matrix.tolist()}")
    if problems:
        for slip, message in _MATCH_SLIPS:
            wrong = [np.asarray(slip(m, t), dtype=np.int64) for m, t in _matching_cases()]
            if all(a.shape == w.shape and np.array_equal(a, w) for a, w in zip(answers, wrong)):
                problems.append(message)
                break
    return report("08.2 greedy matching of one image", problems,
                  passed_message="best free person first, each person matched at most once")


# --- 08.3 average precision ------------------------------------------------------------------


def _ap_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    from course_lib.evaluate import precision_recall

    return [precision_recall(flags, n) for flags, n in (
        ([True, False, True], 2),
        ([True, True, True, True], 4),
        ([False, True, False, True, True], 5),
        ([True, False, False, True, False, True, True], 6),
        ([False, False, True, True, False, True], 7),
    )]  # fmt: skip


def _ap_variant(precision, recall, *, envelope: str = "right", points: int = 101,
                side: str = "left", how: str = "sample") -> float:
    """The AP of one curve computed with the given (possibly wrong) choices."""
    p, r = np.asarray(precision, float), np.asarray(recall, float)
    if envelope == "right":
        p = np.maximum.accumulate(p[::-1])[::-1]
    elif envelope == "left":
        p = np.maximum.accumulate(p)
    if how == "trapezoid":
        return float(np.trapezoid(p, r))
    if how == "mean":
        return float(p.mean())
    levels = np.linspace(0, 1, points)
    if how == "interp":
        return float(np.mean(np.interp(levels, r, p, right=0.0)))
    i = np.searchsorted(r, levels, side=side)
    return float(np.mean(np.where(i < len(p), p[np.minimum(i, len(p) - 1)], 0.0)))


_AP_SLIPS = [
    (dict(envelope="none"), "the precision envelope is missing: first make each precision the "
     "maximum of itself and every precision to its right, then sample"),
    (dict(points=11), "that is the 11-point interpolation of PASCAL VOC 2007; COCO samples the "
     "envelope at 101 recall levels 0, 0.01, ..., 1"),
    (dict(points=11, envelope="none"), "11 recall points and no envelope: COCO samples the "
     "precision ENVELOPE at 101 recall levels"),
    (dict(how="trapezoid"), "the curve was integrated (trapezoid rule); COCO samples the "
     "envelope at the 101 recall levels, no integration"),
    (dict(how="trapezoid", envelope="none"), "the raw curve was integrated (trapezoid rule); "
     "COCO samples the precision envelope at the 101 recall levels"),
    (dict(how="interp"), "the envelope was linearly interpolated (np.interp); COCO takes it at "
     "the first point whose recall is >= r"),
    (dict(how="interp", envelope="none"), "the raw precision was linearly interpolated; COCO "
     "takes the precision envelope at the first point whose recall is >= r"),
    (dict(side="right"), "the first point whose recall is > r was taken; COCO takes the first "
     "one whose recall is >= r (searchsorted side='left')"),
    (dict(envelope="left"), "the envelope ran left to right (a running maximum from the start); "
     "each precision takes the maximum of the points to its RIGHT"),
    (dict(points=100), "100 recall levels; COCO uses the 101 levels 0, 0.01, ..., 1"),
    (dict(how="mean"), "that is the mean of the envelope over the detections; COCO averages it "
     "over the 101 recall levels"),
]


def check_average_precision(average_precision: Callable) -> bool:
    """08.3: ``average_precision(precision, recall) -> float`` (COCO's 101-point AP)."""
    from course_lib.evaluate import average_precision as reference

    problems: list[str] = []
    values = []
    for i, (precision, recall) in enumerate(_ap_cases()):
        got, err = call(average_precision, list(precision), list(recall))
        if err:
            return report("08.3 AP from precision and recall", [f"case {i}: {err}"])
        try:
            value = float(got)
        except (TypeError, ValueError):
            return report("08.3 AP from precision and recall",
                          [f"case {i}: expected a number, got {type(got).__name__}"])
        expected = reference(precision, recall)
        values.append(value)
        if not abs(value - expected) <= 1e-9:
            problems.append(f"case {i}: got {fmt(value)}, expected {fmt(expected)}")
    if problems:
        variants = [(np.array([_ap_variant(p, r, **options) for p, r in _ap_cases()]), message)
                    for options, message in _AP_SLIPS]
        slip = diagnose(np.array(values), variants, atol=1e-9)
        problems += [slip] if slip else []
    return report("08.3 AP from precision and recall", problems,
                  passed_message="envelope + 101 recall points, as COCO computes it")
