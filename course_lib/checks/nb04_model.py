"""Checks of the exercises of ``04_resnet_deconv.ipynb``: the output size of a transposed
convolution (04.1), the parameter count of the deconvolution head (04.2), the head itself (04.3)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.reporting import call, report


def check_deconv_output_size(deconv_output_size: Callable) -> bool:
    """04.1: ``deconv_output_size(size, kernel, stride, padding, output_padding=0)`` -> the
    output length of ``nn.ConvTranspose2d`` along one axis (compared with torch itself)."""
    import torch

    problems: list[str] = []
    cases = [(8, 4, 2, 1, 0), (6, 4, 2, 1, 0), (7, 3, 2, 1, 1), (5, 3, 1, 1, 0), (4, 2, 2, 0, 0),
             (3, 5, 3, 2, 2)]
    for size, k, st, pad, opad in cases:
        got, err = call(deconv_output_size, size, k, st, pad, opad)
        if err:
            problems.append(f"deconv_output_size({size}, {k}, {st}, {pad}, {opad}) {err}")
            break
        layer = torch.nn.ConvTranspose2d(1, 1, k, stride=st, padding=pad, output_padding=opad)
        want = int(layer(torch.zeros(1, 1, size, size)).shape[-1])
        if got != want:
            hint = ""
            if got == (size + 2 * pad - k) // st + 1:
                hint = (" (that is the output of an ordinary convolution; "
                        "a transposed one inverts it)")
            problems.append(f"deconv_output_size({size}, {k}, {st}, {pad}, {opad}) = {got!r}, "
                            f"expected {want}{hint}")
    return report("04.1 transposed convolution output size", problems,
                  passed_message="(in - 1) * stride - 2 * padding + kernel + output_padding")


def check_head_parameters(head_parameters: Callable) -> bool:
    """04.2: ``head_parameters(in_channels, num_keypoints)`` -> the number of trainable
    parameters of SimpleBaseline's head (``course_lib.models.DeconvHead``)."""
    from course_lib.models import DeconvHead, count_parameters

    problems: list[str] = []
    for cin, k in [(2048, 17), (512, 17), (64, 5)]:
        got, err = call(head_parameters, cin, k)
        if err:
            problems.append(f"head_parameters({cin}, {k}) {err}")
            break
        want = count_parameters(DeconvHead(cin, k))
        if got != want:
            hint = ""
            if isinstance(got, (int, np.integer)):
                diff = int(got) - want
                if diff == 3 * 256:
                    hint = " (the transposed convolutions have no bias: BatchNorm follows them)"
                elif diff == -3 * 512:
                    hint = " (each BatchNorm has a scale and a shift per channel)"
                elif diff == -k:
                    hint = " (the final 1x1 convolution has a bias)"
            problems.append(f"head_parameters({cin}, {k}) = {got!r}, expected {want}{hint}")
    return report("04.2 parameters of the deconvolution head", problems,
                  passed_message="3 x (4x4 transposed conv + BN) + a 1x1 conv with bias")


def check_make_head(make_head: Callable) -> bool:
    """04.3: ``make_head(in_channels, num_keypoints)`` -> an ``nn.Module`` mapping
    ``[N, C, h, w]`` to ``[N, K, 8h, 8w]`` with SimpleBaseline's layers."""
    import torch

    problems: list[str] = []
    head, err = call(make_head, 64, 5)
    if err:
        return report("04.3 the deconvolution head", [f"make_head(64, 5) {err}"])
    if not isinstance(head, torch.nn.Module):
        return report("04.3 the deconvolution head",
                      [f"make_head: expected an nn.Module, got {type(head).__name__}"])
    try:
        out = head.eval()(torch.zeros(2, 64, 3, 4))
    except Exception as exc:  # the learner's module may fail in any way
        return report("04.3 the deconvolution head",
                      [f"the head failed on a [2, 64, 3, 4] input: {type(exc).__name__}: {exc}"])
    if tuple(out.shape) != (2, 5, 24, 32):
        problems.append(f"output shape {tuple(out.shape)} for input [2, 64, 3, 4], "
                        "expected (2, 5, 24, 32): three x2 upsamplings, then K maps")
    kinds = [type(m).__name__ for m in head.modules()]
    if kinds.count("ConvTranspose2d") != 3:
        problems.append(f"{kinds.count('ConvTranspose2d')} ConvTranspose2d layers, expected 3")
    if kinds.count("BatchNorm2d") != 3:
        problems.append(f"{kinds.count('BatchNorm2d')} BatchNorm2d layers, expected 3")
    for m in head.modules():
        if isinstance(m, torch.nn.ConvTranspose2d) and (m.kernel_size, m.stride, m.padding) != (
                (4, 4), (2, 2), (1, 1)):
            problems.append(f"a transposed convolution has kernel {m.kernel_size}, stride "
                            f"{m.stride}, padding {m.padding}; expected 4, 2, 1")
            break
    return report("04.3 the deconvolution head", problems,
                  passed_message="[N, C, h, w] -> [N, K, 8h, 8w]")
