"""Checks of the exercises of ``04_resnet_deconv.ipynb``: the output size of a transposed
convolution (04.1), the parameter count of the deconvolution head (04.2), the head itself (04.3).

Each check compares the answer with torch / ``course_lib.models``; when it differs, it computes
what the usual slips would have returned (the ordinary convolution's formula, ``- padding``
instead of ``- 2 * padding``, a bias on the transposed convolutions, BatchNorm's running
statistics counted as parameters, 3x3 kernels ...) and names the one that matches.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from course_lib.checks.reporting import call, diagnose, fmt, report

_DECONV_CASES = [(8, 4, 2, 1, 0), (6, 4, 2, 1, 0), (7, 3, 2, 1, 1), (5, 3, 1, 1, 0),
                 (4, 2, 2, 0, 0), (3, 5, 3, 2, 2)]


def _deconv_slips() -> list[tuple[np.ndarray, str]]:
    """What the usual slips of 04.1 return on ``_DECONV_CASES``, with the mistake they make."""
    n, k, s, p, op = (np.array(c) for c in zip(*_DECONV_CASES))
    return [
        ((n + 2 * p - k) // s + 1, "that is the output of an ordinary convolution; a transposed "
         "one inverts it: (size - 1) * stride - 2 * padding + kernel + output_padding"),
        ((n - 1) * s - 2 * p + k, "output_padding is missing: it adds that many pixels to one "
         "side of the output"),
        ((n - 1) * s - p + k + op, "padding is taken off both ends of the output: - 2 * padding"),
        (n * s - 2 * p + k + op, "the kernel copies are stride apart, so n inputs span "
         "(n - 1) * stride: (size - 1) * stride, not size * stride"),
        ((n - 1) * s + 2 * p + k + op, "padding shrinks a transposed convolution's output: "
         "- 2 * padding"),
        ((n - 1) * s - 2 * p + 1 + op, "the kernel is missing: each input pixel spreads a whole "
         "kernel, + kernel"),
        (2 * n, "only kernel 4, stride 2, padding 1 doubles a size; use the general formula"),
    ]


def check_deconv_output_size(deconv_output_size: Callable) -> bool:
    """04.1: ``deconv_output_size(size, kernel, stride, padding, output_padding=0)`` -> the
    output length of ``nn.ConvTranspose2d`` along one axis (compared with torch itself)."""
    import torch

    problems: list[str] = []
    got_all = []
    for size, k, st, pad, opad in _DECONV_CASES:
        name = f"deconv_output_size({size}, {k}, {st}, {pad}, {opad})"
        got, err = call(deconv_output_size, size, k, st, pad, opad)
        if err:
            return report("04.1 transposed convolution output size", [f"{name} {err}"])
        layer = torch.nn.ConvTranspose2d(1, 1, k, stride=st, padding=pad, output_padding=opad)
        want = int(layer(torch.zeros(1, 1, size, size)).shape[-1])
        got_all.append(got)
        if got != want:
            problems.append(f"{name} = {fmt(got)}, expected {want}")
    if problems:
        slip = diagnose(got_all, _deconv_slips(), atol=0)
        problems += [slip] if slip else []
    return report("04.1 transposed convolution output size", problems,
                  passed_message="(in - 1) * stride - 2 * padding + kernel + output_padding")


_HEAD_CASES = [(2048, 17), (512, 17), (64, 5)]


def _head_count(cin: int, k: int, *, kernel: int = 4, deconvs: int = 3, first_only: bool = True,
                bias: bool = False, bn: int = 2, final: int = 1, final_bias: bool = True) -> int:
    """The parameters of a deconvolution head built with the given (possibly wrong) choices."""
    ins = [cin] + [256 if first_only else cin] * (deconvs - 1)
    total = sum(c * 256 * kernel * kernel + (256 if bias else 0) for c in ins)
    total += deconvs * bn * 256
    return total + (256 * k * final * final + (k if final_bias else 0) if final else 0)


def _head_slips() -> list[tuple[np.ndarray, str]]:
    """What the usual slips of 04.2 return on ``_HEAD_CASES``, with the mistake they make."""
    def on_cases(**choice) -> np.ndarray:
        return np.array([_head_count(c, k, **choice) for c, k in _HEAD_CASES])

    return [
        (on_cases(bias=True), "the transposed convolutions have no bias: BatchNorm follows them"),
        (on_cases(bn=0), "each BatchNorm has a scale and a shift per channel (2 x 256)"),
        (on_cases(bn=4), "BatchNorm's running mean and variance are buffers, not trainable "
         "parameters: 2 per channel"),
        (on_cases(final_bias=False), "the final 1x1 convolution has a bias (one per keypoint)"),
        (on_cases(kernel=3), "the transposed convolutions have 4x4 kernels (16 weights per pair "
         "of channels)"),
        (on_cases(first_only=False), "only the first transposed convolution reads in_channels; "
         "the next two map 256 -> 256"),
        (on_cases(final=0), "the final 1x1 convolution (256 -> num_keypoints, with bias) is "
         "missing"),
        (on_cases(final=3), "the final convolution is 1x1, not 3x3"),
        (on_cases(deconvs=2), "there are three transposed convolutions (x8), each with its "
         "BatchNorm"),
    ]


@lru_cache(maxsize=8)
def _reference_head_parameters(cin: int, k: int) -> int:
    """``count_parameters(DeconvHead(cin, k))``, built once per case (the head is large)."""
    from course_lib.models import DeconvHead, count_parameters

    return count_parameters(DeconvHead(cin, k))


def check_head_parameters(head_parameters: Callable) -> bool:
    """04.2: ``head_parameters(in_channels, num_keypoints)`` -> the number of trainable
    parameters of SimpleBaseline's head (``course_lib.models.DeconvHead``)."""
    problems: list[str] = []
    got_all = []
    for cin, k in _HEAD_CASES:
        got, err = call(head_parameters, cin, k)
        if err:
            return report("04.2 parameters of the deconvolution head",
                          [f"head_parameters({cin}, {k}) {err}"])
        want = _reference_head_parameters(cin, k)
        got_all.append(got if isinstance(got, (int, float, np.number)) else np.nan)
        if got != want:
            problems.append(f"head_parameters({cin}, {k}) = {fmt(got)}, expected {want:,}")
    if problems:
        slip = diagnose(got_all, _head_slips(), atol=0)
        problems += [slip] if slip else []
    return report("04.2 parameters of the deconvolution head", problems,
                  passed_message="3 x (4x4 transposed conv + BN) + a 1x1 conv with bias")


_HEAD_ORDER = ["ConvTranspose2d", "BatchNorm2d", "ReLU"] * 3 + ["Conv2d"]


def _layer_problems(head) -> list[str]:
    """What is wrong with the layers of a learner's head (kinds, order, sizes, biases)."""
    import torch

    problems: list[str] = []
    layers = [m for m in head.modules() if type(m).__name__ in set(_HEAD_ORDER)]
    kinds = [type(m).__name__ for m in layers]
    for kind in ("ConvTranspose2d", "BatchNorm2d", "ReLU"):
        if kinds.count(kind) != 3:
            problems.append(f"{kinds.count(kind)} {kind} layers, expected 3")
    if not problems and kinds != _HEAD_ORDER:
        problems.append(f"layers in the order {', '.join(kinds)}; expected 3 x [ConvTranspose2d, "
                        "BatchNorm2d, ReLU] (BN right after each transposed conv), then Conv2d")
    for m in layers:
        if isinstance(m, torch.nn.ConvTranspose2d):
            if (m.kernel_size, m.stride, m.padding) != ((4, 4), (2, 2), (1, 1)):
                problems.append(f"a transposed convolution has kernel {m.kernel_size}, stride "
                                f"{m.stride}, padding {m.padding}; expected 4, 2, 1")
            if m.bias is not None:
                problems.append("the transposed convolutions have no bias (bias=False): "
                                "BatchNorm follows them and has its own shift")
            if m.out_channels != 256:
                problems.append(f"a transposed convolution has {m.out_channels} output channels,"
                                " expected 256")
        if type(m) is torch.nn.Conv2d and m.kernel_size != (1, 1):
            problems.append(f"the final convolution has kernel {m.kernel_size}, expected 1x1")
    return list(dict.fromkeys(problems))


def check_make_head(make_head: Callable) -> bool:
    """04.3: ``make_head(in_channels, num_keypoints)`` -> an ``nn.Module`` mapping
    ``[N, C, h, w]`` to ``[N, K, 8h, 8w]`` with SimpleBaseline's layers."""
    import torch

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
    problems: list[str] = []
    if tuple(out.shape) != (2, 5, 24, 32):
        problems.append(f"output shape {tuple(out.shape)} for input [2, 64, 3, 4], "
                        "expected (2, 5, 24, 32): three x2 upsamplings, then K maps")
    problems += _layer_problems(head)
    return report("04.3 the deconvolution head", problems,
                  passed_message="[N, C, h, w] -> [N, K, 8h, 8w]")
