"""Checks of the 08_oks_evaluation exercises: pass on the reference, fail on stubs and on
plausible wrong answers (and raise under COURSE_STRICT=1)."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks, evaluate
from course_lib.checks import nb08_oks
from course_lib.coco import OKS_SIGMAS


@pytest.fixture(autouse=True)
def _strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")


def _stub(*args, **kwargs):
    raise NotImplementedError("exercise")


# -- 08.1 OKS -------------------------------------------------------------------------------


def test_check_oks_passes_on_reference():
    assert checks.check_oks(evaluate.oks) is True


def test_check_oks_fails_on_stub():
    with pytest.raises(checks.ExerciseError, match="not implemented"):
        checks.check_oks(_stub)


def test_check_oks_fails_when_unlabelled_keypoints_count():
    def oks_all_keypoints(pred, gt, visible, area):
        d2 = ((np.asarray(pred) - np.asarray(gt)) ** 2).sum(axis=1)
        return float(np.mean(np.exp(-d2 / (2 * OKS_SIGMAS) ** 2 / area / 2)))

    with pytest.raises(checks.ExerciseError, match="v > 0"):
        checks.check_oks(oks_all_keypoints)


def test_check_oks_fails_with_sqrt_area_as_scale():
    def oks_wrong_scale(pred, gt, visible, area):
        d2 = ((np.asarray(pred) - np.asarray(gt)) ** 2).sum(axis=1)
        e = d2 / (2 * OKS_SIGMAS) ** 2 / np.sqrt(area) / 2
        return float(np.mean(np.exp(-e)[np.asarray(visible) > 0]))

    with pytest.raises(checks.ExerciseError):
        checks.check_oks(oks_wrong_scale)


# -- 08.2 matching --------------------------------------------------------------------------


def test_check_match_image_passes_on_reference():
    assert checks.check_match_image(lambda m, t: evaluate.match_image(m, t)[0]) is True


def test_check_match_image_fails_on_stub():
    with pytest.raises(checks.ExerciseError, match="not implemented"):
        checks.check_match_image(_stub)


def test_check_match_image_fails_when_a_person_is_matched_twice():
    def best_column(matrix, threshold):
        m = np.asarray(matrix)
        if m.shape[0] == 0:
            return np.zeros(0, dtype=int)
        best = m.argmax(axis=1)
        return np.where(m.max(axis=1) >= threshold, best, -1)

    with pytest.raises(checks.ExerciseError, match="case 1"):
        checks.check_match_image(best_column)


# -- 08.3 AP ----------------------------------------------------------------------------------


def test_check_average_precision_passes_on_reference():
    assert checks.check_average_precision(evaluate.average_precision) is True


def test_check_average_precision_fails_on_stub():
    with pytest.raises(checks.ExerciseError, match="not implemented"):
        checks.check_average_precision(_stub)


def test_check_average_precision_fails_without_envelope():
    def ap_raw(precision, recall):
        p, r = np.asarray(precision), np.asarray(recall)
        idx = np.searchsorted(r, np.linspace(0, 1, 101), side="left")
        return float(np.mean(np.where(idx < len(p), p[np.minimum(idx, len(p) - 1)], 0.0)))

    with pytest.raises(checks.ExerciseError, match="case"):
        checks.check_average_precision(ap_raw)


def test_check_reports_without_raising_when_not_strict(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_STRICT", "0")
    assert checks.check_oks(_stub) is False
    assert "[FAIL] 08.1" in capsys.readouterr().out


# -- mutants: every plausible wrong answer fails, with a message naming its mistake ----------


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "0")


def oks_variant(**choices):
    """A learner's OKS with the given (possibly wrong) choices: the variants the check diagnoses
    by (``nb08_oks._oks_variant``), as a learner's function."""
    return lambda pred, gt, visible, area: nb08_oks._oks_variant(pred, gt, visible, area, **choices)

OKS_MUTANTS = {
    "k = sigma": (dict(k=1.0), "k = sigma was used"),
    "all 17 keypoints": (dict(labelled="all"), "v > 0"),
    "sum / 17": (dict(labelled="over17"), "divided by 17"),
    "sqrt(area)": (dict(scale="sqrt"), "sqrt(area) was used as s^2"),
    "area squared": (dict(scale="square"), "area^2 was used"),
    "no 2": (dict(two=1.0), "the 2 is missing"),
    "d, not d^2": (dict(squared=False), "not squared"),
    "sum": (dict(labelled="sum"), "summed"),
}


@pytest.mark.parametrize("name", OKS_MUTANTS)
def test_check_oks_rejects_mutant(name, lenient, capsys):
    assert checks.check_oks(oks_variant()) is True
    capsys.readouterr()
    options, message = OKS_MUTANTS[name]
    assert checks.check_oks(oks_variant(**options)) is False
    out = capsys.readouterr().out
    assert message in out and "np.float" not in out, out
    hints = [line for line in out.splitlines() if line.startswith("   - ") and "case" not in line]
    assert len(hints) == 1, out  # one hint, the right one


def greedy(*, pick="best", strict=False, reuse=False, fallback=True):
    def match(matrix, threshold):
        m = np.asarray(matrix)
        taken = np.zeros(m.shape[1], bool)
        out = []
        for row in m:
            ok = (row > threshold) if strict else (row >= threshold)
            order = np.argsort(-row, kind="stable") if pick == "best" else np.arange(len(row))
            if not fallback:
                order = order[:1]
            g = next((int(c) for c in order if ok[c] and (reuse or not taken[c])), -1)
            if g >= 0:
                taken[g] = True
            out.append(g)
        return out
    return match


def match_by_person(matrix, threshold):
    return nb08_oks._per_person(np.asarray(matrix), threshold)


def match_hungarian(matrix, threshold):
    from scipy.optimize import linear_sum_assignment

    m = np.asarray(matrix)
    out = [-1] * len(m)
    if len(m):
        rows, cols = linear_sum_assignment(np.where(m >= threshold, m, 0.0), maximize=True)
        for r, c in zip(rows, cols):
            out[r] = int(c) if m[r, c] >= threshold else -1
    return out


MATCH_MUTANTS = {
    "first free person over the threshold": (greedy(pick="first"), "the FIRST free person"),
    "a person matched twice": (greedy(reuse=True), "matched twice"),
    "best person taken -> unmatched": (greedy(fallback=False), "best FREE person"),
    "strict threshold": (greedy(strict=True), "not >"),
    "person by person": (match_by_person, "person by person"),
    "Hungarian": (match_hungarian, "Hungarian"),
}


@pytest.mark.parametrize("name", MATCH_MUTANTS)
def test_check_match_image_rejects_mutant(name, lenient, capsys):
    assert checks.check_match_image(greedy()) is True
    capsys.readouterr()
    mutant, message = MATCH_MUTANTS[name]
    assert checks.check_match_image(mutant) is False
    assert message in capsys.readouterr().out


def ap_variant(**choices):
    """A learner's AP with the given (possibly wrong) choices (``nb08_oks._ap_variant``)."""
    return lambda precision, recall: nb08_oks._ap_variant(precision, recall, **choices)


AP_MUTANTS = {
    "no envelope": (dict(envelope="none"), "envelope is missing"),
    "11-point interpolation": (dict(points=11), "11-point interpolation of PASCAL VOC"),
    "11 points, no envelope": (dict(points=11, envelope="none"), "11 recall points and no "
                                                                  "envelope"),
    "trapezoid": (dict(how="trapezoid"), "trapezoid rule"),
    "trapezoid, no envelope": (dict(how="trapezoid", envelope="none"), "raw curve was integrated"),
    "linear interpolation": (dict(how="interp"), "linearly interpolated"),
    "side='right'": (dict(side="right"), "side='left'"),
    "envelope left to right": (dict(envelope="left"), "left to right"),
    "100 points": (dict(points=100), "100 recall levels"),
    "mean of the envelope": (dict(how="mean"), "mean of the envelope"),
}


@pytest.mark.parametrize("name", AP_MUTANTS)
def test_check_average_precision_rejects_mutant(name, lenient, capsys):
    assert checks.check_average_precision(ap_variant()) is True
    capsys.readouterr()
    options, message = AP_MUTANTS[name]
    assert checks.check_average_precision(ap_variant(**options)) is False
    assert message in capsys.readouterr().out
