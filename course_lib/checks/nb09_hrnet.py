"""Checks of the exercises of ``09_hrnet_hrformer.ipynb``: the output size of a strided
convolution (09.1), the number of attention windows of a padded map (09.2) and the parameters of
HRNet's exchange unit (09.3)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from course_lib.checks.reporting import call, report


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_conv_output_size(conv_output_size: Callable) -> bool:
    """09.1: ``conv_output_size(size, kernel, stride, padding)`` -> the output length of
    ``nn.Conv2d`` along one axis, an int (compared with torch itself, odd sizes included)."""
    import torch

    problems: list[str] = []
    cases = [(64, 3, 2, 1), (25, 3, 2, 1), (3, 3, 2, 1), (24, 1, 1, 0), (7, 3, 1, 1),
             (10, 4, 3, 0), (9, 5, 2, 2)]
    for size, k, s, p in cases:
        got, err = call(conv_output_size, size, k, s, p)
        if err:
            problems.append(f"conv_output_size({size}, {k}, {s}, {p}) {err}")
            break
        layer = torch.nn.Conv2d(1, 1, k, stride=s, padding=p)
        want = int(layer(torch.zeros(1, 1, size, size)).shape[-1])
        if _is_int(got) and got == want:
            continue
        hint = ""
        if isinstance(got, float) and math.isclose(got, (size + 2 * p - k) / s + 1):
            hint = (" (a fraction: a convolution fits a whole number of kernel positions, "
                    "round down with //)")
        elif got == (size - k) // s + 1:
            hint = " (the padding is missing: it adds 2 * padding to the size)"
        elif got == size // s:
            hint = (" (size // stride is right for even sizes only: an odd size is rounded up, "
                    "e.g. 25 -> 13)")
        elif got == (size - 1) * s - 2 * p + k:
            hint = " (that is a transposed convolution's size, notebook 04)"
        problems.append(f"conv_output_size({size}, {k}, {s}, {p}) = {got!r}, expected {want}"
                        f"{hint}")
    return report("09.1 output size of a strided convolution", problems,
                  passed_message="(size + 2 * padding - kernel) // stride + 1")


def check_num_windows(num_windows: Callable) -> bool:
    """09.2: ``num_windows(height, width, window)`` -> how many ``window x window`` attention
    windows cover an ``height x width`` map padded to whole windows, as HRFormer pads it
    (``course_lib.models.hrformer.window_padding``)."""
    from course_lib.models.hrformer import window_padding

    problems: list[str] = []
    for h, w, win in [(32, 24, 7), (64, 48, 7), (14, 7, 7), (8, 6, 7), (4, 3, 7), (16, 12, 4),
                      (22, 15, 5)]:
        got, err = call(num_windows, h, w, win)
        if err:
            problems.append(f"num_windows({h}, {w}, {win}) {err}")
            break
        want = ((h + sum(window_padding(h, win))) // win) * ((w + sum(window_padding(w, win)))
                                                            // win)
        if _is_int(got) and got == want:
            continue
        hint = ""
        if got == (h // win) * (w // win):
            hint = " (rounded down: the map is padded to whole windows, so round up per axis)"
        elif got == math.ceil(h * w / (win * win)) or got == h * w // (win * win):
            hint = (" (the area divided by a window's area: windows do not straddle, count them "
                    "per axis, then multiply)")
        elif got == (h // win + 1) * (w // win + 1):
            hint = " (a size that is already a multiple of the window needs no padding)"
        elif got == h * w:
            hint = " (that is the number of tokens, not of windows)"
        problems.append(f"num_windows({h}, {w}, {win}) = {got!r}, expected {want}{hint}")
    return report("09.2 windows of a padded map", problems,
                  passed_message="ceil(H / w) * ceil(W / w)")


def _reference_fuse_parameters(channels: list[int]) -> int:
    from torch import nn

    from course_lib.models import HighResolutionModule, count_parameters

    unit = HighResolutionModule([nn.Identity() for _ in channels], list(channels))
    return count_parameters(unit.fuse_layers)


def _fuse_variants(channels: list[int]) -> dict[str, int]:
    """Plausible wrong counts of the exchange unit, by the mistake that gives them."""
    no_bn = with_bias = one_step = all_to_low = 0
    for i, ci in enumerate(channels):
        for j, cj in enumerate(channels):
            if j > i:
                no_bn += cj * ci
                with_bias += cj * ci + ci + 2 * ci
                one_step += cj * ci + 2 * ci
                all_to_low += cj * ci + 2 * ci
            elif j < i:
                k = i - j
                no_bn += 9 * cj * cj * (k - 1) + 9 * cj * ci
                with_bias += (9 * cj * cj + 3 * cj) * (k - 1) + 9 * cj * ci + 3 * ci
                one_step += 9 * cj * ci + 2 * ci
                all_to_low += (9 * cj * ci + 2 * ci) + (9 * ci * ci + 2 * ci) * (k - 1)
    return {"BatchNorm": no_bn, "bias": with_bias, "one step": one_step, "channels": all_to_low}


def check_fuse_parameters(fuse_parameters: Callable) -> bool:
    """09.3: ``fuse_parameters(channels)`` -> the trainable parameters of the exchange unit
    (``fuse_layers``) of an HRNet module whose branches have ``channels`` (every output kept),
    counted by ``course_lib.models.HighResolutionModule``."""
    hints = {
        "BatchNorm": "every convolution is followed by a BatchNorm: a scale and a shift per "
                     "output channel",
        "bias": "the convolutions have no bias: BatchNorm follows them",
        "one step": "a branch k levels higher goes down by k stride-2 3x3 convolutions, "
                    "not one",
        "channels": "on the way down the intermediate steps keep the channels of the higher "
                    "branch; only the last step changes them",
    }
    problems: list[str] = []
    for channels in ([32, 64], [32, 64, 128], [18, 36, 72, 144], [48, 96, 192, 384]):
        got, err = call(fuse_parameters, list(channels))
        if err:
            problems.append(f"fuse_parameters({channels}) {err}")
            break
        want = _reference_fuse_parameters(channels)
        if _is_int(got) and got == want:
            continue
        mistake = next((k for k, v in _fuse_variants(channels).items() if got == v), None)
        hint = f" ({hints[mistake]})" if mistake else ""
        problems.append(f"fuse_parameters({channels}) = {got!r}, expected {want}{hint}")
    return report("09.3 parameters of the exchange unit", problems,
                  passed_message="1x1 conv + BN up, k x (3x3/2 conv + BN) down, identity across")
