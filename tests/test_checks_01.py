"""Exercise checks of 01_coco_keypoints: pass on the reference solution, fail on an unimplemented
stub, and reject every plausible wrong answer ("mutant") with a message that names its mistake."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks, coco


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.delenv("COURSE_STRICT", raising=False)


def stub(*args, **kwargs):
    raise NotImplementedError("write your solution")


def _table(flat):
    return np.asarray(flat, dtype=float).reshape(17, 3)


# -- 01.1 decode the 51 numbers -------------------------------------------------------------------

def decode(flat):
    t = _table(flat)
    return t[:, :2], t[:, 2].astype(int)


DECODE_MUTANTS = {
    "column-major": (lambda f: (np.asarray(f, float).reshape(3, 17).T[:, :2],
                                np.asarray(f, float).reshape(3, 17)[2].astype(int)), "17 x's"),
    "columns shifted": (lambda f: (_table(f)[:, 1:], _table(f)[:, 0].astype(int)),
                        "xy read from columns 1-2"),
    "x and y swapped": (lambda f: (_table(f)[:, [1, 0]], _table(f)[:, 2].astype(int)),
                        "x and y are swapped"),
    "transposed xy": (lambda f: (_table(f)[:, :2].T, _table(f)[:, 2].astype(int)),
                      "shape (2, 17)"),
    "v as floats": (lambda f: (_table(f)[:, :2], _table(f)[:, 2]), "integers"),
}


@pytest.mark.parametrize("name", DECODE_MUTANTS)
def test_decode_rejects_mutant(name, capsys):
    mutant, message = DECODE_MUTANTS[name]
    assert not checks.check_decode_keypoints(mutant)
    assert message in capsys.readouterr().out


def test_decode_check_passes_the_solution_and_fails_the_stub(capsys):
    assert checks.check_decode_keypoints(decode)
    assert not checks.check_decode_keypoints(stub)
    assert "not implemented" in capsys.readouterr().out


# -- 01.2 box and num_keypoints -----------------------------------------------------------------

def box_and_count(flat, *, include_unlabelled=False, corners=False, plus_one=False, count="v>0",
                  box_of="v>0"):
    t = _table(flat)
    counted = {"v>0": t[:, 2] > 0, "v=2": t[:, 2] == 2, "all": np.ones(17, bool)}[count]
    boxed = np.ones(17, bool) if include_unlabelled else {"v>0": t[:, 2] > 0,
                                                          "v=2": t[:, 2] == 2}[box_of]
    if not boxed.any():
        return int(counted.sum()), None
    (x0, y0), (x1, y1) = t[boxed, :2].min(0), t[boxed, :2].max(0)
    w, h = (x1, y1) if corners else (x1 - x0 + plus_one, y1 - y0 + plus_one)
    return int(counted.sum()), [x0, y0, w, h]


BOX_MUTANTS = {
    "unlabelled (0, 0) in the box": (dict(include_unlabelled=True), "(0, 0) of unlabelled"),
    "corners instead of w, h": (dict(corners=True), "[x0, y0, x1, y1]"),
    "pixel count w + 1": (dict(plus_one=True), "x1 - x0 + 1"),
    "counts only visible": (dict(count="v=2"), "occluded ones (v = 1) too"),
    "counts all 17": (dict(count="all"), "not all 17"),
    "box of visible only": (dict(box_of="v=2"), "must include the occluded"),
}


@pytest.mark.parametrize("name", BOX_MUTANTS)
def test_box_rejects_mutant(name, capsys):
    options, message = BOX_MUTANTS[name]
    assert not checks.check_keypoint_box(lambda flat: box_and_count(flat, **options))
    assert message in capsys.readouterr().out


def test_box_check_passes_the_solution_and_fails_the_stub(capsys):
    assert checks.check_keypoint_box(box_and_count)
    assert not checks.check_keypoint_box(stub)
    assert not checks.check_keypoint_box(lambda flat: (np.int64(3), [np.float64(1.5)] * 4))
    out = capsys.readouterr().out
    assert "not implemented" in out and "np.float64" not in out and "np.int64" not in out


# -- 01.3 mirror a keypoint list ----------------------------------------------------------------

def flip(flat, width, *, shift=0.0, swap=True, mirror_unlabelled=False, move_v=True, axis=0):
    t = _table(flat)
    lab = t[:, 2] > 0 if not mirror_unlabelled else np.ones(17, bool)
    out = t.copy()
    out[lab, axis] = (width - 1) - t[lab, axis] + shift
    if swap:
        perm = coco.flip_index(17, coco.FLIP_PAIRS)
        v = out[:, 2].copy()
        out = out[perm]
        if not move_v:
            out[:, 2] = v
    return out.reshape(-1).tolist()


FLIP_MUTANTS = {
    "W - x": (dict(shift=1.0), "off by one"),
    "W - 2 - x": (dict(shift=-1.0), "off by one"),
    "no left/right swap": (dict(swap=False), "not swapped"),
    "unlabelled mirrored too": (dict(mirror_unlabelled=True), "must stay 0, 0, 0"),
    "v left behind": (dict(move_v=False), "each v must move with its keypoint"),
    "mirrored y": (dict(axis=1), "y was mirrored"),
}


@pytest.mark.parametrize("name", FLIP_MUTANTS)
def test_flip_rejects_mutant(name, capsys):
    options, message = FLIP_MUTANTS[name]
    assert not checks.check_flip_keypoints(lambda flat, w: flip(flat, w, **options))
    assert message in capsys.readouterr().out


def test_flip_check_passes_the_solution_and_fails_the_stub(capsys):
    assert checks.check_flip_keypoints(flip)
    assert checks.check_flip_keypoints(coco.flip_keypoint_list)
    assert not checks.check_flip_keypoints(stub)
    assert not checks.check_flip_keypoints(lambda flat, w: _table(flip(flat, w)))
    out = capsys.readouterr().out
    assert "not implemented" in out and "flat list of 51" in out
