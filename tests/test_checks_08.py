"""Checks of the 08_oks_evaluation exercises: pass on the reference, fail on stubs and on
plausible wrong answers (and raise under COURSE_STRICT=1)."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks, evaluate
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
