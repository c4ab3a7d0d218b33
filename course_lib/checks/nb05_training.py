"""Checks of the exercises of ``05_training_mse.ipynb``: the MSE loss with target weights (05.1)
and the warm-up learning rate (05.2).

Each check compares the answer with ``course_lib.losses`` / ``course_lib.train``; when it
differs, it computes what the usual slips would have returned (HRNet's factor 0.5, the weights
ignored or squared, a mean over the labelled maps only, a sum, an L1 error; a warm-up counted
from 0, without a cap, one step too long ...) and names the one that matches on every case.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, fmt, report, same

_MSE_CASES = [((2, 3, 4, 5), "binary"), ((1, 17, 8, 6), "binary"), ((4, 2, 3, 3), "binary"),
              ((3, 4, 5, 4), "fractional")]


def _mse_inputs():
    """``(name, pred, target, weights)`` per case: random maps, 0/1 weights with one masked
    map per case, and one case with fractional weights (0.5, 1, 0), where squaring the weight
    (HRNet's ``(w P - w G)^2``) shows."""
    import torch

    g = torch.Generator().manual_seed(5)
    cases = []
    for (n, k, h, w), kind in _MSE_CASES:
        pred = torch.rand(n, k, h, w, generator=g)
        target = torch.rand(n, k, h, w, generator=g)
        weights = (torch.rand(n, k, generator=g) > 0.4).float()
        if kind == "fractional":
            weights = weights * torch.where(torch.rand(n, k, generator=g) > 0.5, 1.0, 0.5)
        weights[0, 0] = 0.0
        name = f"masked_mse on [{n}, {k}, {h}, {w}]" + (" (weights 0, 0.5, 1)"
                                                          if kind == "fractional" else "")
        cases.append((name, pred, target, weights))
    return cases


def _mse_slips(pred, target, weights) -> list[tuple[float, str]]:
    """What the usual slips of 05.1 return on one case, with the mistake they make."""
    sq = (pred - target) ** 2
    w = weights[:, :, None, None]
    h, wd = pred.shape[2:]
    labelled = max(float(weights.sum()), 1e-12)
    return [(float(v), m) for v, m in [
        (0.5 * (w * sq).mean(), "that is HRNet's 0.5 * MSE; here the factor 0.5 is left out"),
        (sq.mean(), "the weights are ignored: multiply each keypoint's squared errors by its "
         "weight"),
        ((w * sq).sum() / (labelled * h * wd), "you normalised by the weight sum (a mean over the "
         "labelled maps only); the course's loss, like MMPose's KeypointMSELoss, divides by all "
         "N*K*H*W elements, masked maps included"),
        ((w * sq).sum() / labelled, "you divided the sum by the weight sum (the number of "
         "labelled keypoints); take the mean over all N*K*H*W elements"),
        (((w * pred - w * target) ** 2).mean(), "the weights were applied before squaring "
         "((w*P - w*G)^2, HRNet's form): that squares the weight, which only 0/1 weights "
         "survive; multiply the squared error by the weight"),
        ((w * sq).sum(), "that is the sum; take the mean over all N*K*H*W elements"),
        ((w * sq).sum(dim=(2, 3)).mean(), "the pixels of each map were summed, not averaged: "
         "divide by H*W too (the mean over all N*K*H*W elements)"),
        ((w * (pred - target).abs()).mean(), "that is the absolute (L1) error; square the "
         "difference"),
    ]]


def _first_slip(answers: list, slips: list[list[tuple[float, str]]], *,
                atol: float) -> str | None:
    """The mistake of the first slip whose value equals the learner's answer on every case."""
    for j, (_, message) in enumerate(slips[0]):
        if all(same(got, case[j][0], atol=atol) for got, case in zip(answers, slips)):
            return message
    return None


def check_masked_mse(masked_mse: Callable) -> bool:
    """05.1: ``masked_mse(pred, target, weights)`` (torch tensors ``[N, K, H, W]``, ``[N, K]``)
    -> the scalar mean over all N*K*H*W elements of ``weights * (pred - target) ** 2``."""
    from course_lib.losses import keypoint_mse_loss

    problems: list[str] = []
    answers, slips = [], []
    for name, pred, target, weights in _mse_inputs():
        got, err = call(masked_mse, pred.clone(), target.clone(), weights.clone())
        if err:
            return report("05.1 MSE with target weights", [f"{name} {err}"])
        want = keypoint_mse_loss(pred, target, weights)
        found = compare_arrays(name, got, want.numpy(), atol=1e-6)
        if found and not problems:
            problems += found
        answers.append(got.detach().cpu().numpy() if hasattr(got, "detach") else got)
        slips.append(_mse_slips(pred, target, weights))
    if problems:
        slip = _first_slip(answers, slips, atol=1e-6)
        problems += [slip] if slip else []
    return report("05.1 MSE with target weights", problems,
                  passed_message="masked keypoints contribute nothing, the mean runs over all")


_WARMUP_CASES = [(1e-3, 4), (2e-3, 50), (0.1, 1)]


def _warmup_steps(warm: int) -> list[int]:
    return sorted({0, 1, warm - 1, warm, warm + 7, 3 * warm})


def _warmup_slips(step: int, base: float, warm: int) -> list[tuple[float, str]]:
    """What the usual slips of 05.2 return at one step, with the mistake they make."""
    inside = step < warm
    return [
        (base * min(1.0, step / warm), "step 0 would have a zero learning rate: count steps "
         "from 1 (base_lr * (step + 1) / warmup_steps)"),
        (base, "there is no warm-up: the steps before warmup_steps must ramp up to base_lr"),
        (base * (step + 1) / warm, "the warm-up never stops: from step warmup_steps - 1 on the "
         "rate stays at base_lr (cap it)"),
        (base * (step + 1) / warm if step <= warm else base, "step warmup_steps is already past "
         "the warm-up (step < warmup_steps, not <=): it gets base_lr"),
        (base * (step + 1) / (warm + 1) if inside else base, "divide by warmup_steps: the rate "
         "must reach base_lr at step warmup_steps - 1"),
        (base * (step + 1) / warm if inside else 0.1 * base, "after the warm-up the rate is "
         "base_lr; the decay by 10 comes much later, at the milestones (not in this exercise)"),
    ]


def check_warmup_lr(warmup_lr: Callable) -> bool:
    """05.2: ``warmup_lr(step, base_lr, warmup_steps)`` -> the learning rate of step ``step``
    (0-based): ``base_lr * (step + 1) / warmup_steps`` during the warm-up, ``base_lr`` after."""
    from course_lib.train import learning_rate

    problems: list[str] = []
    answers, slips = [], []
    for base, warm in _WARMUP_CASES:
        for step in _warmup_steps(warm):
            name = f"warmup_lr({step}, {fmt(base)}, {warm})"
            got, err = call(warmup_lr, step, base, warm)
            if err:
                return report("05.2 warm-up learning rate", [f"{name} {err}"])
            if not isinstance(got, (int, float, np.integer, np.floating)):
                return report("05.2 warm-up learning rate",
                              [f"{name}: expected a number, got {type(got).__name__}"])
            want = learning_rate(step, base_lr=base, warmup_steps=warm)
            answers.append(float(got))
            slips.append(_warmup_slips(step, base, warm))
            if abs(float(got) - want) > 1e-12 and len(problems) < 3:
                problems.append(f"{name} = {fmt(got)}, expected {fmt(want)}")
    if problems:
        slip = _first_slip(answers, slips, atol=1e-12)
        problems += [slip] if slip else []
    return report("05.2 warm-up learning rate", problems,
                  passed_message="linear from base_lr / warmup_steps up to base_lr")
