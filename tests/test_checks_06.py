"""The exercise checks of notebook 06: pass on the reference, fail on a stub and on wrong answers."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks
from course_lib import decode as D


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "0")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 06.x")


# --- 06.1 the DARK Taylor step ----------------------------------------------------------------


def dark_step_reference(log_patch):
    return D.taylor_step(np.asarray(log_patch, dtype=np.float64))


def dark_step_unclamped(log_patch):  # MMPose's rule: any invertible Hessian, no clipping
    L = np.asarray(log_patch, dtype=np.float64)
    g = np.array([0.5 * (L[2, 3] - L[2, 1]), 0.5 * (L[3, 2] - L[1, 2])])
    hxy = 0.25 * (L[3, 3] - L[1, 3] - L[3, 1] + L[1, 1])
    hess = np.array([[0.25 * (L[2, 4] - 2 * L[2, 2] + L[2, 0]), hxy],
                     [hxy, 0.25 * (L[4, 2] - 2 * L[2, 2] + L[0, 2])]])
    if np.linalg.det(hess) == 0:
        return np.zeros(2)
    return -np.linalg.solve(hess, g)


def dark_step_no_cross_term(log_patch):
    L = np.asarray(log_patch, dtype=np.float64)
    dx, dy = 0.5 * (L[2, 3] - L[2, 1]), 0.5 * (L[3, 2] - L[1, 2])
    dxx = 0.25 * (L[2, 4] - 2 * L[2, 2] + L[2, 0])
    dyy = 0.25 * (L[4, 2] - 2 * L[2, 2] + L[0, 2])
    if dxx >= 0 or dyy >= 0:
        return np.zeros(2)
    return np.clip([-dx / dxx, -dy / dyy], -1, 1)


def test_check_dark_step(capsys):
    assert checks.check_dark_step(dark_step_reference) is True
    assert "[PASS] 06.1" in capsys.readouterr().out
    assert checks.check_dark_step(stub) is False
    assert "not implemented yet" in capsys.readouterr().out
    assert checks.check_dark_step(dark_step_unclamped) is False
    assert checks.check_dark_step(dark_step_no_cross_term) is False
    assert "tilted" in capsys.readouterr().out


def test_check_dark_step_raises_when_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(checks.ExerciseError, match="06.1"):
        checks.check_dark_step(stub)


# --- 06.2 the quarter offset ------------------------------------------------------------------


def quarter_reference(hm):
    return D.decode(np.asarray(hm, np.float32)[None, None], method="quarter")[0][0, 0]


def quarter_toward_lower(hm):
    return 2 * D.decode(np.asarray(hm, np.float32)[None, None], method="argmax")[0][0, 0] \
        - quarter_reference(hm)


def quarter_no_border_rule(hm):
    hm = np.asarray(hm)
    y, x = np.unravel_index(int(np.argmax(hm)), hm.shape)
    right, left = hm[y, min(x + 1, hm.shape[1] - 1)], hm[y, x - 1]  # x - 1 wraps at x = 0
    down, up = hm[min(y + 1, hm.shape[0] - 1), x], hm[y - 1, x]
    return np.array([x + 0.25 * np.sign(right - left), y + 0.25 * np.sign(down - up)])


def test_check_quarter_decode(capsys):
    assert checks.check_quarter_decode(quarter_reference) is True
    assert checks.check_quarter_decode(stub) is False
    assert checks.check_quarter_decode(quarter_toward_lower) is False
    assert checks.check_quarter_decode(quarter_no_border_rule) is False
    assert "border" in capsys.readouterr().out


# --- 06.3 flip back ---------------------------------------------------------------------------


def flip_reference(maps, pairs):
    return D.flip_back(np.asarray(maps), pairs, shift=True)


def flip_no_swap(maps, pairs):
    return D.flip_back(np.asarray(maps), (), shift=True)


def flip_no_shift(maps, pairs):
    return D.flip_back(np.asarray(maps), pairs, shift=False)


def test_check_flip_back(capsys):
    assert checks.check_flip_back(flip_reference) is True
    assert checks.check_flip_back(stub) is False
    assert checks.check_flip_back(flip_no_swap) is False
    assert "not swapped" in capsys.readouterr().out
    assert checks.check_flip_back(flip_no_shift) is False
    assert "shift" in capsys.readouterr().out
    torch = pytest.importorskip("torch")
    assert checks.check_flip_back(lambda m, p: torch.from_numpy(flip_reference(m, p))) is True
