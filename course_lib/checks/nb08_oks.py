"""Checks of the exercises of ``08_oks_evaluation.ipynb``: the OKS of one pair (08.1), COCO's
greedy matching of one image (08.2) and the 101-point average precision (08.3)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.reporting import call, report


def _oks_cases() -> list[tuple]:
    """(pred, gt, visible, area) cases for 08.1: exact, shifted, partly unlabelled, tiny area."""
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
    ]


def check_oks(oks: Callable) -> bool:
    """08.1: ``oks(pred [17, 2], gt [17, 2], visible [17], area) -> float`` (COCO's OKS)."""
    from course_lib.evaluate import oks as reference

    problems: list[str] = []
    for i, (pred, gt, visible, area) in enumerate(_oks_cases()):
        got, err = call(oks, pred.copy(), gt.copy(), visible.copy(), area)
        if err:
            problems.append(f"case {i}: {err}")
            break
        expected = reference(pred, gt, visible, area)
        try:
            value = float(got)
        except (TypeError, ValueError):
            problems.append(f"case {i}: expected a number, got {type(got).__name__}")
            break
        if not abs(value - expected) <= 1e-6:
            hint = ""
            if i == 2:
                hint = " (only keypoints with v > 0 count: average over those)"
            elif i == 3:
                hint = " (the scale is the area itself: s² = area)"
            problems.append(f"case {i}: got {value:.6f}, expected {expected:.6f}{hint}")
    return report("08.1 OKS of one pair", problems,
                  passed_message="sigmas, area and unlabelled keypoints handled as COCO does")


def _matching_cases() -> list[tuple[np.ndarray, float]]:
    """(oks_matrix [D, G] with detections sorted by score, threshold) for 08.2 (no ties)."""
    return [
        (np.array([[0.9, 0.1], [0.2, 0.8]]), 0.5),  # each detection its own person
        (np.array([[0.7, 0.6], [0.9, 0.3]]), 0.5),  # the first detection takes the contested one
        (np.array([[0.7, 0.6], [0.9, 0.3]]), 0.75),  # at 0.75 only the second one matches
        (np.array([[0.4, 0.3], [0.55, 0.2], [0.95, 0.85]]), 0.5),  # below threshold: unmatched
        (np.zeros((0, 2)), 0.5),  # no detections
    ]


def check_match_image(match_image: Callable) -> bool:
    """08.2: ``match_image(oks_matrix [D, G], threshold) -> [D]`` matched column or -1."""
    from course_lib.evaluate import match_image as reference

    problems: list[str] = []
    for i, (matrix, thr) in enumerate(_matching_cases()):
        got, err = call(match_image, matrix.copy(), thr)
        if err:
            problems.append(f"case {i}: {err}")
            break
        expected = reference(matrix, thr)[0]
        try:
            got_arr = np.asarray(got, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError):
            problems.append(f"case {i}: expected a list of ints, got {type(got).__name__}")
            break
        if got_arr.shape != expected.shape or not np.array_equal(got_arr, expected):
            problems.append(f"case {i} (threshold {thr}): got {got_arr.tolist()}, expected "
                            f"{expected.tolist()} for OKS {matrix.tolist()}")
    return report("08.2 greedy matching of one image", problems,
                  passed_message="best free person first, each person matched at most once")


def check_average_precision(average_precision: Callable) -> bool:
    """08.3: ``average_precision(precision, recall) -> float`` (COCO's 101-point AP)."""
    from course_lib.evaluate import average_precision as reference
    from course_lib.evaluate import precision_recall

    cases = [precision_recall(flags, n) for flags, n in (
        ([True, False, True], 2),
        ([True, True, True, True], 4),
        ([False, True, False, True, True], 5),
        ([True, False, False, True, False, True, True], 6),
    )]  # fmt: skip
    problems: list[str] = []
    for i, (precision, recall) in enumerate(cases):
        got, err = call(average_precision, list(precision), list(recall))
        if err:
            problems.append(f"case {i}: {err}")
            break
        expected = reference(precision, recall)
        try:
            value = float(got)
        except (TypeError, ValueError):
            problems.append(f"case {i}: expected a number, got {type(got).__name__}")
            break
        if not abs(value - expected) <= 1e-9:
            raw = float(np.mean(np.interp(np.linspace(0, 1, 101), recall, precision)))
            hint = ""
            trapezoid = float(np.trapezoid(precision, recall))
            if abs(value - trapezoid) < 1e-9 or abs(value - raw) < 1e-9:
                hint = " (sample the precision envelope at the 101 recall points, no integration)"
            problems.append(f"case {i}: got {value:.6f}, expected {expected:.6f}{hint}")
    return report("08.3 AP from precision and recall", problems,
                  passed_message="envelope + 101 recall points, as COCO computes it")
