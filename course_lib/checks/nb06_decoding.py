"""Checks of the exercises of ``06_decoding_dark.ipynb``: DARK's Taylor step (06.1), the quarter
offset decoder (06.2) and flipping heatmaps back for flip testing (06.3)."""

from __future__ import annotations

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, report


def _log_gaussian_patch(dx: float, dy: float, sxx: float, syy: float, sxy: float) -> np.ndarray:
    """5x5 log of a 2-D Gaussian centred at ``(dx, dy)`` from the patch centre (exactly
    quadratic)."""
    cov = np.array([[sxx, sxy], [sxy, syy]])
    inv = np.linalg.inv(cov)
    ys, xs = np.mgrid[-2:3, -2:3].astype(np.float64)
    d = np.stack([xs - dx, ys - dy], -1)
    return -0.5 * np.einsum("...i,ij,...j->...", d, inv, d)


def check_dark_step(dark_step) -> bool:
    """Exercise 06.1: ``dark_step(log_patch [5, 5]) -> (dx, dy)``, the DARK Taylor step with
    the course's rule (0 unless the Hessian is negative definite, each component clipped to
    [-1, 1])."""
    from course_lib.dark import taylor_step

    cases = {
        "round peak at (+0.3, -0.2)": _log_gaussian_patch(0.3, -0.2, 4.0, 4.0, 0.0),
        "elongated, tilted peak at (-0.4, 0.45)": _log_gaussian_patch(-0.4, 0.45, 6.0, 3.0, 1.5),
        "peak exactly on the pixel": _log_gaussian_patch(0.0, 0.0, 4.0, 4.0, 0.0),
        "far peak (the step must be clipped)": _log_gaussian_patch(1.8, -0.3, 4.0, 4.0, 0.0),
        "saddle (no maximum: no step)": np.add.outer(
            0.1 * np.arange(5) ** 2, -0.1 * np.arange(5) ** 2 + 0.05 * np.arange(5)),
        "flat patch (no step)": np.full((5, 5), -3.0),
    }
    problems = []
    for name, patch in cases.items():
        got, err = call(dark_step, patch.copy())
        if err:
            problems.append(f"{name}: {err}")
            break
        problems += compare_arrays(f"{name}: (dx, dy)", got, taylor_step(patch), atol=1e-6)
    return report("06.1 DARK Taylor step", problems,
                  passed_message="exact on quadratic log-peaks, safe on saddles and flat maps")


def check_quarter_decode(quarter_decode) -> bool:
    """Exercise 06.2: ``quarter_decode(heatmap [H, W]) -> (x, y)``: argmax plus the quarter
    offset toward the higher neighbour, interior only."""
    from course_lib.decode import decode

    ys, xs = np.mgrid[0:12, 0:10].astype(np.float64)

    def gauss(cx, cy):
        return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0).astype(np.float32)

    tie = gauss(5.0, 6.0)
    tie[6, 4] = tie[6, 6]  # equal left and right neighbours: no shift in x
    cases = {
        "peak at (4.3, 6.8)": gauss(4.3, 6.8),
        "peak at (6.7, 3.2)": gauss(6.7, 3.2),
        "peak on the left border (x = 0)": gauss(-0.3, 5.6),
        "peak on the bottom border": gauss(3.6, 11.2),
        "equal neighbours": tie,
    }
    problems = []
    for name, hm in cases.items():
        got, err = call(quarter_decode, hm.copy())
        if err:
            problems.append(f"{name}: {err}")
            break
        expected, _ = decode(hm[None, None], method="quarter")
        problems += compare_arrays(f"{name}: (x, y)", got, expected[0, 0], atol=1e-6)
    return report("06.2 quarter offset", problems,
                  passed_message="quarter offsets, borders and ties as the reference")


def check_flip_back(flip_back) -> bool:
    """Exercise 06.3: ``flip_back(heatmaps_flipped [K, H, W], flip_pairs) -> [K, H, W]``:
    mirror, swap the pairs, shift one pixel right (MSRA)."""
    from course_lib.decode import flip_back as reference

    rng = np.random.default_rng(6)
    pairs = ((1, 2), (3, 4))
    maps = rng.random((5, 6, 7)).astype(np.float32)
    got, err = call(flip_back, maps.copy(), pairs)
    if err:
        return report("06.3 flip back", [err])
    expected = reference(maps[None], pairs, shift=True)[0]
    problems = compare_arrays("flipped-back heatmaps", got, expected, atol=1e-6)
    if problems:
        g = np.asarray(got.detach().cpu().numpy() if hasattr(got, "detach") else got)
        if g.shape == expected.shape:
            hints = {
                "the left/right channels are not swapped":
                    reference(maps[None], ((0, 0),), shift=True)[0],
                "the one-pixel shift to the right is missing":
                    reference(maps[None], pairs, shift=False)[0],
            }
            problems += [f"hint: {h}" for h, wrong in hints.items() if np.allclose(g, wrong)]
    return report("06.3 flip back", problems, passed_message="mirror, swap pairs, shift right")
