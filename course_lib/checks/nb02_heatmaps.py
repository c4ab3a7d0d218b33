"""Checks of the exercises of ``02_gaussian_heatmaps.ipynb``: the MSRA Gaussian target (02.1) and
the quantization error of the argmax (02.2).

Each check compares the answer with ``course_lib.heatmaps``; when it differs, it computes what
the usual slips would have returned (Python's ``round``, which rounds halves to even; no
truncation; a disc instead of a square patch; swapped x/y; an answer in heatmap pixels ...) and
names the one that matches.
"""

from __future__ import annotations

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, diagnose, fmt, report, same


def _check_gaussian_cases() -> list[tuple[tuple[float, float], tuple[int, int], float]]:
    """``((x, y), heatmap_size, sigma)`` cases for 02.1: inside, halves (10.5 rounds up to 11,
    where Python's ``round`` gives 10), near a border, partly and wholly outside the map."""
    return [((10.4, 7.6), (24, 32), 2.0), ((10.5, 13.5), (24, 32), 2.0),
            ((0.3, 30.8), (24, 32), 1.0), ((20.0, 3.49), (24, 16), 3.0),
            ((-4.0, 8.0), (16, 16), 2.0), ((-9.0, 5.0), (16, 16), 2.0)]


def _gaussian_slips(x: float, y: float, size: tuple[int, int],
                    sigma: float) -> list[tuple[np.ndarray, str]]:  # fmt: skip
    """What the usual slips of 02.1 return for one case, with the mistake they make."""
    w, h = size
    cols, rows = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)[:, None]
    r = int(3 * sigma)

    def target(cx, cy, *, cut="square", denom=2 * sigma**2, at=None):
        px, py = at if at is not None else (cx, cy)
        g = np.exp(-((cols - px) ** 2 + (rows - py) ** 2) / denom)
        dx, dy = np.abs(cols - cx), np.abs(rows - cy)
        keep = {"square": (dx <= r) & (dy <= r), "none": np.ones((h, w), bool),
                "disc": dx**2 + dy**2 <= r**2, "strict": (dx < r) & (dy < r)}[cut]
        return np.where(keep, g, 0.0)

    mx, my = np.floor(x + 0.5), np.floor(y + 0.5)
    right = target(mx, my)
    return [
        (target(np.round(x), np.round(y)), "the centre was rounded with round / np.round, which "
         "round halves to even (round(10.5) = 10): use floor(x + 0.5), halves go up"),
        (target(np.floor(x), np.floor(y)), "the centre was truncated (int(x) or floor(x)); "
         "round it to the nearest pixel: floor(x + 0.5)"),
        (target(float(int(x + 0.5)), float(int(y + 0.5))), "int(x + 0.5) truncates towards "
         "zero, so a keypoint left of the map (x < -0.5) lands one pixel too far right: use "
         "floor(x + 0.5)"),
        (target(mx, my, at=(x, y)), "the Gaussian is centred on the sub-pixel (x, y): that is "
         "the UDP target; MSRA centres it on the ROUNDED keypoint"),
        (target(x, y, cut="none"), "that is DARK's unbiased target (sub-pixel centre, whole "
         "map); MSRA rounds the centre and truncates at 3 sigma"),
        (target(mx, my, cut="none"), "the Gaussian is not truncated: set it to 0 beyond 3 sigma "
         "from the rounded centre (in x or in y)"),
        (target(mx, my, cut="disc"), "the patch was cut to a disc of radius 3 sigma; MSRA keeps "
         "the square |dx| <= 3 sigma and |dy| <= 3 sigma"),
        (target(mx, my, cut="strict"), "pixels exactly 3 sigma away were dropped: keep "
         "|d| <= 3 sigma"),
        (target(my, mx), "x and y are swapped: x is the column, y the row of the [H, W] map"),
        (right / (2 * np.pi * sigma**2), "the Gaussian was normalised (1 / (2 pi sigma^2)); "
         "the target's peak is exactly 1"),
        (right / max(right.sum(), 1e-12), "the map was normalised to sum 1; the target's peak is "
         "exactly 1"),
        (target(mx, my, denom=sigma**2), "the exponent is -d^2 / (2 sigma^2): the 2 is missing"),
        (target(mx, my, denom=2 * sigma), "the exponent is -d^2 / (2 sigma^2): sigma was not "
         "squared"),
    ]


def check_gaussian_target(gaussian_target) -> bool:
    """02.1: ``gaussian_target(x, y, *, heatmap_size, sigma)`` -> the ``[H, W]`` MSRA target of
    one keypoint (Gaussian on the rounded centre, value 1 there, truncated at 3 sigma)."""
    from course_lib.heatmaps import encode

    problems: list[str] = []
    answers = []
    for (x, y), size, sigma in _check_gaussian_cases():
        name = f"gaussian_target({fmt(x)}, {fmt(y)}, heatmap_size={size}, sigma={fmt(sigma)})"
        got, err = call(gaussian_target, x, y, heatmap_size=size, sigma=sigma)
        if err:
            return report("02.1 MSRA Gaussian target", [f"{name} {err}"])
        answers.append(got)
        expected = encode(np.array([[x, y]]), np.array([2]), heatmap_size=size, sigma=sigma)[0][0]
        found = compare_arrays(name, got, expected, atol=1e-5)
        if found and not problems:
            problems += found
            if np.shape(got) == expected.shape[::-1] and size[0] != size[1]:
                problems.append("the map is [W, H]; numpy images are [H, W] (rows are y)")
    if problems:
        slip = _gaussian_diagnosis(answers)
        problems += [slip] if slip else []
    return report("02.1 MSRA Gaussian target", problems,
                  passed_message="value 1 at the rounded centre, exp(-d^2 / 2 sigma^2) around it")


def _gaussian_diagnosis(answers: list) -> str | None:
    """The mistake of the first slip that gives the learner's answer on every case, or None."""
    slips = [_gaussian_slips(x, y, size, sigma) for (x, y), size, sigma in _check_gaussian_cases()]
    for j, (_, message) in enumerate(slips[0]):
        if all(same(got, case[j][0], atol=1e-5) for got, case in zip(answers, slips)):
            return message
    return None


_ARGMAX_CASES = [(30.3, 33.6, 4, 2.0), (13.1, 7.9, 8, 1.0), (50.2, 61.7, 2, 2.0),
                 (21.0, 18.0, 4, 3.0), (42.6, 9.2, 4, 2.0)]


def _argmax_slips() -> list[tuple[np.ndarray, str]]:
    """What the usual slips of 02.2 return on ``_ARGMAX_CASES``, with the mistake they make."""
    c = np.array(_ARGMAX_CASES, dtype=np.float64)
    x, y, s = c[:, 0], c[:, 1], c[:, 2]
    ex, ey = np.floor(x / s + 0.5) * s - x, np.floor(y / s + 0.5) * s - y
    col, row = np.floor(x / s + 0.5), np.floor(y / s + 0.5)
    return [
        (np.hypot(ex, ey) / s, "that is the error in heatmap pixels: multiply by the stride"),
        (np.hypot((col + 0.5) * s - 0.5 - x, (row + 0.5) * s - 0.5 - y), "the argmax was read "
         "back as (i + 0.5) * stride - 0.5 (cv2.resize's area alignment); the course maps heatmap "
         "pixel i to input pixel i * stride (MSRA)"),
        (np.hypot(col * s - y, row * s - x), "x and y are swapped: argmax of an [H, W] map gives "
         "(row, col) = (y, x)"),
        (np.hypot(np.floor(x / s) * s - x, np.floor(y / s) * s - y), "the keypoint was truncated "
         "(int(x / stride)); the MSRA target rounds it to the nearest heatmap pixel"),
        (np.abs(ex) + np.abs(ey), "that is |dx| + |dy|; the Euclidean error is sqrt(dx^2 + dy^2)"),
        (ex**2 + ey**2, "that is the squared error; take the square root"),
        (np.abs(ex), "only the x error was returned; the Euclidean error uses x and y"),
    ]


def check_argmax_error(argmax_error) -> bool:
    """02.2: ``argmax_error(x, y, *, stride, sigma)`` -> the distance in INPUT pixels between a
    keypoint at input ``(x, y)`` and the argmax of its MSRA target on a heatmap of ``stride``,
    read back as ``argmax * stride``."""
    from course_lib.heatmaps import quantization_error

    problems: list[str] = []
    values, wants = [], []
    for x, y, stride, sigma in _ARGMAX_CASES:
        name = f"argmax_error({fmt(x)}, {fmt(y)}, stride={stride}, sigma={fmt(sigma)})"
        got, err = call(argmax_error, x, y, stride=stride, sigma=sigma)
        if err:
            return report("02.2 argmax quantization error", [f"{name} {err}"])
        try:
            value = float(got)
        except (TypeError, ValueError):
            return report("02.2 argmax quantization error",
                          [f"{name}: expected a number, got {type(got).__name__}"])
        want = float(np.hypot(quantization_error(x, stride), quantization_error(y, stride)))
        values.append(value)
        wants.append(want)
        if not abs(value - want) <= 1e-4:
            problems.append(f"{name} = {fmt(value, 5)}, expected {fmt(want, 5)}")
    if problems:
        slip = diagnose(np.array(values), _argmax_slips(), atol=1e-4)
        problems += [slip] if slip else []
    return report("02.2 argmax quantization error", problems,
                  passed_message="the error is at most stride/2 per axis, whatever sigma")
