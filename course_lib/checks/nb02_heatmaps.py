"""Checks of the exercises of ``02_gaussian_heatmaps.ipynb``: the MSRA Gaussian target (02.1) and
the quantization error of the argmax (02.2)."""

from __future__ import annotations

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, report


def _check_gaussian_cases() -> list[tuple[tuple[float, float], tuple[int, int], float]]:
    """``((x, y), heatmap_size, sigma)`` cases for 02.1: inside, near a border, outside the map."""
    return [((10.4, 7.6), (24, 32), 2.0), ((0.3, 30.8), (24, 32), 1.0),
            ((20.0, 3.49), (24, 16), 3.0), ((-4.0, 8.0), (16, 16), 2.0)]


def check_gaussian_target(gaussian_target) -> bool:
    """02.1: ``gaussian_target(x, y, *, heatmap_size, sigma)`` -> the ``[H, W]`` MSRA target of
    one keypoint (Gaussian on the rounded centre, value 1 there, truncated at 3 sigma)."""
    from course_lib.heatmaps import encode

    problems: list[str] = []
    for (x, y), size, sigma in _check_gaussian_cases():
        got, err = call(gaussian_target, x, y, heatmap_size=size, sigma=sigma)
        if err:
            problems.append(f"gaussian_target({x}, {y}, heatmap_size={size}, sigma={sigma}) {err}")
            break
        expected = encode(np.array([[x, y]]), np.array([2]), heatmap_size=size, sigma=sigma)[0][0]
        found = compare_arrays(f"gaussian_target({x}, {y}, heatmap_size={size}, sigma={sigma})",
                               got, expected, atol=1e-5)
        if found and np.shape(got) == expected.shape:
            g = np.asarray(got, dtype=np.float64)
            peak = np.unravel_index(int(g.argmax()), g.shape)
            want = np.unravel_index(int(expected.argmax()), expected.shape)
            if peak != want:
                found.append(f"its peak is at (row, col) {peak}, expected {want} "
                             "(the ROUNDED keypoint)")
            elif np.count_nonzero(g) != np.count_nonzero(expected):
                found.append(f"{np.count_nonzero(g)} non-zero pixels, expected "
                             f"{np.count_nonzero(expected)} (truncate at 3 sigma)")
        problems += found
    return report("02.1 MSRA Gaussian target", problems,
                  passed_message="value 1 at the rounded centre, exp(-d^2 / 2 sigma^2) around it")


def check_argmax_error(argmax_error) -> bool:
    """02.2: ``argmax_error(x, y, *, stride, sigma)`` -> the distance in INPUT pixels between a
    keypoint at input ``(x, y)`` and the argmax of its MSRA target on a heatmap of ``stride``,
    read back as ``argmax * stride``."""
    from course_lib.heatmaps import quantization_error

    problems: list[str] = []
    for x, y, stride, sigma in [(30.3, 33.6, 4, 2.0), (13.1, 7.9, 8, 1.0), (50.2, 61.7, 2, 2.0),
                                (21.0, 18.0, 4, 3.0)]:
        got, err = call(argmax_error, x, y, stride=stride, sigma=sigma)
        if err:
            problems.append(f"argmax_error({x}, {y}, stride={stride}, sigma={sigma}) {err}")
            break
        want = float(np.hypot(quantization_error(x, stride), quantization_error(y, stride)))
        try:
            value = float(got)
        except (TypeError, ValueError):
            problems.append(f"argmax_error: expected a number, got {type(got).__name__}")
            break
        if not abs(value - want) <= 1e-4:
            hint = " (in heatmap pixels? multiply by the stride)" if abs(
                value * stride - want) < 1e-4 else ""
            problems.append(f"argmax_error({x}, {y}, stride={stride}, sigma={sigma}) = "
                            f"{value:.4f}, expected {want:.4f}{hint}")
    return report("02.2 argmax quantization error", problems,
                  passed_message="the error is at most stride/2 per axis, whatever sigma")
