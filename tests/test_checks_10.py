"""The exercise checks of notebook 10: pass on the reference solution, fail on an unimplemented
stub, and reject each plausible wrong answer ("mutant") with a message naming its mistake."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib import checks


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "0")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 10.x")


# --- 10.1 the grid correction of the sub-pixel soft-argmax ---------------------------------------


def grid_correction(d):
    return 0.5 - 2 ** (d - 1)


CORRECTION_MUTANTS = {
    "Lightning Pose's table": (lambda d: {1: -0.5, 2: -1.5, 3: -2.5}.get(d, 0.5 - d),
                               "Lightning Pose's table"),
    "sign flipped": (lambda d: 2 ** (d - 1) - 0.5, "sign is flipped"),
    "heatmap pixels": (lambda d: (0.5 - 2 ** (d - 1)) / 2**d, "in heatmap pixels"),
    "align_corners=True": (lambda d: 0.0, "align_corners"),
    "one upsampling only": (lambda d: -0.5, "ONE x2 upsampling"),
    "linear in d": (lambda d: -0.5 * d, "do not add linearly"),
    "2**d": (lambda d: 0.5 - 2**d, "power of two"),
}


def test_grid_correction_check_shows_the_bias_it_leaves(capsys):
    checks.check_grid_correction(CORRECTION_MUTANTS["Lightning Pose's table"][0])
    out = capsys.readouterr().out
    assert "at factor 3 is off by +0.125 heatmap px" in out, out


# --- 10.2 the SimCC label --------------------------------------------------------------------------


def simcc_label(x_in, num_bins, split_ratio=2.0, sigma=6.0):
    mu = math.floor(split_ratio * x_in + 0.5)
    b = np.arange(num_bins)
    return np.exp(-((b - mu) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def label(mu, num_bins, sigma, *, norm="density", denom=None):
    b = np.arange(num_bins)
    g = np.exp(-((b - mu) ** 2) / (denom or 2 * sigma**2))
    return {"density": g / (sigma * math.sqrt(2 * math.pi)), "sum": g / g.sum(), "peak": g}[norm]


LABEL_MUTANTS = {
    "sub-pixel centre": (lambda x, n, split_ratio=2.0, sigma=6.0: label(split_ratio * x, n, sigma),
                         "NEAREST bin"),
    "np.round": (lambda x, n, split_ratio=2.0, sigma=6.0: label(np.round(split_ratio * x), n,
                                                                sigma), "halves to even"),
    "truncated": (lambda x, n, split_ratio=2.0, sigma=6.0: label(int(split_ratio * x), n, sigma),
                  "truncated"),
    "no split ratio": (lambda x, n, split_ratio=2.0, sigma=6.0: label(math.floor(x + 0.5), n,
                                                                      sigma), "split ratio"),
    "sum one": (lambda x, n, split_ratio=2.0, sigma=6.0: label(
        math.floor(split_ratio * x + 0.5), n, sigma, norm="sum"), "normalised to sum one"),
    "peak one": (lambda x, n, split_ratio=2.0, sigma=6.0: label(
        math.floor(split_ratio * x + 0.5), n, sigma, norm="peak"), "is missing"),
    "sigma in pixels": (lambda x, n, split_ratio=2.0, sigma=6.0: label(
        math.floor(split_ratio * x + 0.5), n, sigma * split_ratio), "already in bins"),
    "no 2 in the exponent": (lambda x, n, split_ratio=2.0, sigma=6.0: label(
        math.floor(split_ratio * x + 0.5), n, sigma, denom=sigma**2), "the 2 is missing"),
}


def test_simcc_label_check_accepts_a_torch_answer():
    def torch_label(x_in, num_bins, split_ratio=2.0, sigma=6.0):
        return torch.as_tensor(simcc_label(x_in, num_bins, split_ratio, sigma))

    assert checks.check_simcc_label(torch_label) is True


# --- 10.3 the peak term of the fusion loss ---------------------------------------------------------


def centre(p):
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum()
    ys, xs = np.mgrid[0:p.shape[0], 0:p.shape[1]]
    return np.array([(p * xs).sum(), (p * ys).sum()])


def peak_term(pred, target):
    gap = centre(np.maximum(pred, 0.0)) - centre(target)
    return float(np.sqrt((gap**2).sum() + 1e-12))


def argmax_xy(p):
    y, x = np.unravel_index(int(np.argmax(p)), np.shape(p))
    return np.array([x, y], dtype=np.float64)


PEAK_MUTANTS = {
    "no relu": (lambda p, t: float(np.hypot(*(centre(p) - centre(t)))), "relu(h)"),
    "squared": (lambda p, t: float(((centre(np.maximum(p, 0)) - centre(t)) ** 2).sum()),
                "squared distance"),
    "L1": (lambda p, t: float(np.abs(centre(np.maximum(p, 0)) - centre(t)).sum()),
           "|dx| + |dy|"),
    "softmax": (lambda p, t: float(np.hypot(*(centre(np.exp(p - p.max())) - centre(t)))),
                "not a softmax"),
    "argmax": (lambda p, t: float(np.hypot(*(argmax_xy(p) - argmax_xy(t)))), "argmaxes"),
    "weighted": (lambda p, t: 0.5 * peak_term(p, t), "term's weight"),
}


# --- every check: the solution passes, the stub fails, each mutant is named ----------------------

EXERCISES = {  # number: (check, solution, {mutant name: (mutant, phrase the message must hold)})
    "10.1": (checks.check_grid_correction, grid_correction, CORRECTION_MUTANTS),
    "10.2": (checks.check_simcc_label, simcc_label, LABEL_MUTANTS),
    "10.3": (checks.check_peak_term, peak_term, PEAK_MUTANTS),
}


@pytest.mark.parametrize("number", EXERCISES)
def test_the_check_passes_the_solution_and_fails_the_stub(number, capsys):
    check, solution, _ = EXERCISES[number]
    assert check(solution) is True
    assert f"[PASS] {number}" in capsys.readouterr().out
    assert check(stub) is False
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize("number, name", [(n, m) for n, (_, _, mutants) in EXERCISES.items()
                                          for m in mutants])
def test_the_check_names_the_mistake(number, name, capsys):
    check, _, mutants = EXERCISES[number]
    mutant, phrase = mutants[name]
    assert check(mutant) is False
    out = capsys.readouterr().out
    assert f"[FAIL] {number}" in out and phrase in out, out


def test_peak_term_check_accepts_torch(capsys):
    def torch_peak(pred, target):
        p = torch.relu(torch.as_tensor(pred))
        t = torch.as_tensor(target)
        ys, xs = torch.meshgrid(torch.arange(p.shape[0]), torch.arange(p.shape[1]),
                                indexing="ij")
        e = [torch.stack([(m * xs).sum(), (m * ys).sum()]) / m.sum() for m in (p, t)]
        return torch.linalg.vector_norm(e[0] - e[1])

    assert checks.check_peak_term(torch_peak) is True


@pytest.mark.parametrize("check", [check for check, _, _ in EXERCISES.values()])
def test_the_checks_raise_when_strict(check, monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(checks.ExerciseError):
        check(stub)


def test_each_check_says_what_it_verifies_in_its_first_paragraph():
    for check, _, _ in EXERCISES.values():
        first = check.__doc__.strip().split("\n\n")[0]
        assert first.startswith("10.") and len(first) > 60
