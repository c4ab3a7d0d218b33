"""Checks of the exercises of ``05_training_mse.ipynb``: the MSE loss with target weights (05.1)
and the warm-up learning rate (05.2)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, report


def check_masked_mse(masked_mse: Callable) -> bool:
    """05.1: ``masked_mse(pred, target, weights)`` (torch tensors ``[N, K, H, W]``, ``[N, K]``)
    -> the scalar mean over all N*K*H*W elements of ``weights * (pred - target) ** 2``."""
    import torch

    from course_lib.losses import keypoint_mse_loss

    problems: list[str] = []
    g = torch.Generator().manual_seed(5)
    for n, k, h, w in [(2, 3, 4, 5), (1, 17, 8, 6), (4, 2, 3, 3)]:
        pred = torch.rand(n, k, h, w, generator=g)
        target = torch.rand(n, k, h, w, generator=g)
        weights = (torch.rand(n, k, generator=g) > 0.4).float()
        weights[0, 0] = 0.0
        got, err = call(masked_mse, pred, target, weights)
        if err:
            problems.append(f"masked_mse on [{n}, {k}, {h}, {w}] {err}")
            break
        want = keypoint_mse_loss(pred, target, weights)
        found = compare_arrays(f"masked_mse on [{n}, {k}, {h}, {w}]", got, want.numpy(), atol=1e-6)
        if found:
            value = float(np.asarray(got.detach() if hasattr(got, "detach") else got))
            if abs(value - 0.5 * float(want)) < 1e-6:
                found.append("that is HRNet's 0.5 * MSE; here the factor 0.5 is left out")
            elif abs(value - float(((pred - target) ** 2).mean())) < 1e-6:
                found.append("the weights are ignored: multiply each keypoint's squared errors "
                             "by its weight")
        problems += found
    return report("05.1 MSE with target weights", problems,
                  passed_message="masked keypoints contribute nothing, the mean runs over all")


def check_warmup_lr(warmup_lr: Callable) -> bool:
    """05.2: ``warmup_lr(step, base_lr, warmup_steps)`` -> the learning rate of step ``step``
    (0-based): ``base_lr * (step + 1) / warmup_steps`` during the warm-up, ``base_lr`` after."""
    from course_lib.train import learning_rate

    problems: list[str] = []
    for base, warm in [(1e-3, 4), (2e-3, 50), (0.1, 1)]:
        for step in sorted({0, 1, warm - 1, warm, warm + 7, 3 * warm}):
            got, err = call(warmup_lr, step, base, warm)
            if err:
                problems.append(f"warmup_lr({step}, {base}, {warm}) {err}")
                break
            want = learning_rate(step, base_lr=base, warmup_steps=warm)
            if not isinstance(got, (int, float, np.floating)) or abs(float(got) - want) > 1e-12:
                hint = ""
                if isinstance(got, (int, float)) and abs(float(got) - base * step / warm) < 1e-12:
                    hint = " (step 0 would have a zero learning rate: count steps from 1)"
                problems.append(f"warmup_lr({step}, {base}, {warm}) = {got!r}, "
                                f"expected {want:.6g}{hint}")
        if problems:
            break
    return report("05.2 warm-up learning rate", problems,
                  passed_message="linear from base_lr / warmup_steps up to base_lr")
