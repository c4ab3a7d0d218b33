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


# --- mutants: every plausible wrong answer fails, with a message naming its mistake ----------


def _dark_parts(L):
    L = np.asarray(L, dtype=np.float64)
    g = np.array([0.5 * (L[2, 3] - L[2, 1]), 0.5 * (L[3, 2] - L[1, 2])])
    hxx = 0.25 * (L[2, 4] - 2 * L[2, 2] + L[2, 0])
    hyy = 0.25 * (L[4, 2] - 2 * L[2, 2] + L[0, 2])
    hxy = 0.25 * (L[3, 3] - L[1, 3] - L[3, 1] + L[1, 1])
    return L, g, hxx, hyy, hxy


def _course_rule(g, hess, *, sign=-1.0):
    if not (hess[0, 0] < 0 and np.linalg.det(hess) > 0):
        return np.zeros(2)
    return np.clip(sign * np.linalg.solve(hess, g), -1, 1)


def dark_step_1_stencil(log_patch):  # second differences from the immediate neighbours
    L, g, _, _, hxy = _dark_parts(log_patch)
    hxx, hyy = L[2, 3] - 2 * L[2, 2] + L[2, 1], L[3, 2] - 2 * L[2, 2] + L[1, 2]
    return _course_rule(g, np.array([[hxx, hxy], [hxy, hyy]]))


def dark_step_variant(*, grad=1.0, cross=1.0, sign=-1.0, clip=True, negdef=True, swap=False):
    def step(log_patch):
        L, g, hxx, hyy, hxy = _dark_parts(log_patch)
        hess = np.array([[hxx, cross * hxy], [cross * hxy, hyy]])
        g = grad * g
        if negdef and not (hxx < 0 and np.linalg.det(hess) > 0):
            return np.zeros(2)
        if np.linalg.det(hess) == 0:
            return np.zeros(2)
        out = sign * np.linalg.solve(hess, g)
        out = np.clip(out, -1, 1) if clip else out
        return out[::-1] if swap else out
    return step


DARK_MUTANTS = {
    "step-1 stencil": (dark_step_1_stencil, "step-1 stencil"),
    "no cross term": (dark_step_variant(cross=0.0), "cross derivative dxy is missing"),
    "cross term x4": (dark_step_variant(cross=4.0), "factor 1/4"),
    "gradient x2": (dark_step_variant(grad=2.0), "factor 1/2 is missing"),
    "wrong sign": (dark_step_variant(sign=1.0), "wrong sign"),
    "MMPose's rule": (dark_step_unclamped, "MMPose's rule"),
    "no clip": (dark_step_variant(clip=False), "not clipped"),
    "no negative-definite test": (dark_step_variant(negdef=False), "not negative definite"),
    "(dy, dx)": (dark_step_variant(swap=True), "(dy, dx)"),
}


@pytest.mark.parametrize("name", DARK_MUTANTS)
def test_check_dark_step_rejects_mutant(name, capsys):
    assert checks.check_dark_step(dark_step_variant()) is True  # the variant machinery is right
    capsys.readouterr()
    mutant, message = DARK_MUTANTS[name]
    assert checks.check_dark_step(mutant) is False
    out = capsys.readouterr().out
    assert message in out, out
    assert "np.float" not in out, out


def test_step_1_stencil_differs_only_off_quadratic_patches(capsys):
    assert checks.check_dark_step(dark_step_1_stencil) is False
    out = capsys.readouterr().out
    assert "not quadratic" in out and "round peak" not in out, out


def quarter_variant(*, low=2, joint=True, sign=1.0, size=0.25, swap=False, first=True):
    def decode(hm):
        hm = np.asarray(hm)
        h, w = hm.shape
        flat = hm.ravel()
        idx = int(np.argmax(flat)) if first else len(flat) - 1 - int(np.argmax(flat[::-1]))
        y, x = divmod(idx, w)
        in_x, in_y = low <= x <= w - 2, low <= y <= h - 2
        do_x, do_y = (in_x and in_y,) * 2 if joint else (in_x, in_y)
        dx = hm[y, x + 1] - hm[y, x - 1] if do_x else 0.0
        dy = hm[y + 1, x] - hm[y - 1, x] if do_y else 0.0
        if swap:
            dx, dy = dy, dx
        return np.array([x + sign * size * np.sign(dx), y + sign * size * np.sign(dy)])
    return decode


QUARTER_MUTANTS = {
    "old course rule (per axis, 1 <= x <= W-2)": (quarter_variant(low=1, joint=False),
                                                  "each axis was tested on its own with 1 <= x"),
    "MMPose's per-axis rule": (quarter_variant(joint=False), "MMPose's refine_keypoints"),
    "joint, but x = 1 refined": (quarter_variant(low=1), "x = 1 and y = 1 are not refined"),
    "toward the lower neighbour": (quarter_toward_lower, "LOWER neighbour"),
    "half a pixel": (quarter_variant(size=0.5), "quarter pixel (0.25)"),
    "x and y swapped": (quarter_variant(swap=True), "x and y are swapped"),
    "no border rule": (quarter_no_border_rule, "border rule is missing"),
}


@pytest.mark.parametrize("name", QUARTER_MUTANTS)
def test_check_quarter_decode_rejects_mutant(name, capsys):
    assert checks.check_quarter_decode(quarter_variant()) is True
    capsys.readouterr()
    mutant, message = QUARTER_MUTANTS[name]
    assert checks.check_quarter_decode(mutant) is False
    assert message in capsys.readouterr().out


def test_check_quarter_decode_names_the_tie_rule(capsys):
    assert checks.check_quarter_decode(quarter_variant(first=False)) is False
    out = capsys.readouterr().out
    assert "two equal maxima" in out and "LAST one" in out, out


def _shift_right(a):
    out = a.copy()
    out[..., 1:] = a[..., :-1]
    return out


def _shift_left(a):
    out = a.copy()
    out[..., :-1] = a[..., 1:]
    return out


def _swap(maps, pairs):
    out = maps.copy()
    for a, b in pairs:
        out[[a, b]] = out[[b, a]]
    return out


FLIP_MUTANTS = {
    "no swap": (flip_no_swap, "not swapped"),
    "no shift": (flip_no_shift, "shift to the right is missing"),
    "shifted left": (lambda m, p: _shift_left(_swap(np.asarray(m)[:, :, ::-1], p)),
                     "shifted LEFT"),
    "shift before mirror": (lambda m, p: _swap(_shift_right(np.asarray(m))[:, :, ::-1], p),
                            "shifted right before the mirror"),  # = a left shift
    "np.roll": (lambda m, p: np.roll(_swap(np.asarray(m)[:, :, ::-1], p), 1, axis=-1),
                "np.roll"),
    "rows mirrored": (lambda m, p: _shift_right(_swap(np.asarray(m)[:, ::-1, :], p)),
                      "rows were mirrored"),
    "not mirrored": (lambda m, p: _shift_right(_swap(np.asarray(m), p)), "not mirrored"),
}


@pytest.mark.parametrize("name", FLIP_MUTANTS)
def test_check_flip_back_rejects_mutant(name, capsys):
    mutant, message = FLIP_MUTANTS[name]
    assert checks.check_flip_back(mutant) is False
    assert message in capsys.readouterr().out
