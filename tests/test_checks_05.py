"""The exercise checks of notebook 05 against plausible wrong answers ("mutants"): each mutant
must fail, with a message that names its mistake; the reference passes and a stub fails."""

from __future__ import annotations

import pytest

from course_lib import checks


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "0")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 05.x")


# --- 05.1 masked MSE -----------------------------------------------------------------------


def masked_mse(pred, target, weights):
    return (weights[:, :, None, None] * (pred - target) ** 2).mean()


def _w(weights):
    return weights[:, :, None, None]


MSE_MUTANTS = {
    "HRNet's 0.5": (lambda p, t, w: 0.5 * masked_mse(p, t, w), "0.5 * MSE"),
    "weights ignored": (lambda p, t, w: ((p - t) ** 2).mean(), "weights are ignored"),
    "normalised by the weight sum": (
        lambda p, t, w: ((p - t) ** 2).mean(dim=(2, 3)).mul(w).sum() / w.sum(),
        "normalised by the weight sum"),
    "sum / weight sum": (lambda p, t, w: (_w(w) * (p - t) ** 2).sum() / w.sum(),
                         "divided the sum by the weight sum"),
    "weights squared": (lambda p, t, w: ((_w(w) * p - _w(w) * t) ** 2).mean(),
                        "applied before squaring"),
    "sum": (lambda p, t, w: (_w(w) * (p - t) ** 2).sum(), "that is the sum"),
    "pixels summed": (lambda p, t, w: (_w(w) * (p - t) ** 2).sum(dim=(2, 3)).mean(),
                      "divide by H*W too"),
    "L1": (lambda p, t, w: (_w(w) * (p - t).abs()).mean(), "absolute (L1)"),
}


def test_masked_mse_reference_and_stub(capsys):
    assert checks.check_masked_mse(masked_mse)
    assert "[PASS] 05.1" in capsys.readouterr().out
    assert not checks.check_masked_mse(stub)
    assert "not implemented" in capsys.readouterr().out
    assert checks.check_masked_mse(lambda p, t, w: float(masked_mse(p, t, w)))  # a float is fine


@pytest.mark.parametrize("name", MSE_MUTANTS)
def test_masked_mse_rejects_mutant(name, capsys):
    mutant, message = MSE_MUTANTS[name]
    assert not checks.check_masked_mse(mutant)
    out = capsys.readouterr().out
    assert message in out, out
    assert "tensor(" not in out and "np.float" not in out, out


# --- 05.2 warm-up ------------------------------------------------------------------------


def warmup_lr(step, base_lr, warmup_steps):
    return base_lr * min(1.0, (step + 1) / warmup_steps)


WARMUP_MUTANTS = {
    "from zero": (lambda s, b, w: b * min(1.0, s / w), "count steps from 1"),
    "no warm-up": (lambda s, b, w: b, "there is no warm-up"),
    "no cap": (lambda s, b, w: b * (s + 1) / w, "never stops"),
    "<= warmup_steps": (lambda s, b, w: b * (s + 1) / w if s <= w else b, "not <="),
    "warmup_steps + 1": (lambda s, b, w: b * (s + 1) / (w + 1) if s < w else b,
                         "divide by warmup_steps"),
    "decays after": (lambda s, b, w: b * (s + 1) / w if s < w else 0.1 * b, "milestones"),
}


def test_warmup_lr_reference_and_stub(capsys):
    assert checks.check_warmup_lr(warmup_lr)
    assert not checks.check_warmup_lr(stub)
    assert "not implemented" in capsys.readouterr().out
    assert not checks.check_warmup_lr(lambda s, b, w: "fast")
    assert "expected a number" in capsys.readouterr().out


@pytest.mark.parametrize("name", WARMUP_MUTANTS)
def test_warmup_lr_rejects_mutant(name, capsys):
    mutant, message = WARMUP_MUTANTS[name]
    assert not checks.check_warmup_lr(mutant)
    assert message in capsys.readouterr().out
