"""Checks of the exercises of ``06_decoding_dark.ipynb``: DARK's Taylor step (06.1), the quarter
offset decoder (06.2) and flipping heatmaps back for flip testing (06.3).

Each check compares the answer with ``course_lib.dark`` / ``course_lib.decode``; when it differs,
it computes what the usual slips would have returned (the step-1 second difference, no cross
term, no clip or no negative-definite test, the wrong sign; each axis tested on its own at the
border, a shift toward the lower neighbour; a shift to the left, no swap, rows mirrored ...)
and names the one that matches on every case.
"""

from __future__ import annotations

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, report, same


def _as_array(got) -> np.ndarray | None:
    """The learner's answer as a float64 array, or None when it is not numeric."""
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    try:
        return np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _first_slip(answers: list, per_case: list[list[tuple[np.ndarray, str]]],
                atol: float) -> str | None:
    """The mistake of the first slip that gives the learner's answer on every case, or None."""
    for j, (_, message) in enumerate(per_case[0]):
        if all(same(got, case[j][0], atol=atol) for got, case in zip(answers, per_case)):
            return message
    return None


# --- 06.1 the DARK Taylor step ---------------------------------------------------------------


def _log_gaussian_patch(dx: float, dy: float, sxx: float, syy: float, sxy: float) -> np.ndarray:
    """5x5 log of a 2-D Gaussian centred at ``(dx, dy)`` from the patch centre (exactly
    quadratic: every stencil gives the same second derivatives)."""
    inv = np.linalg.inv(np.array([[sxx, sxy], [sxy, syy]]))
    ys, xs = np.mgrid[-2:3, -2:3].astype(np.float64)
    d = np.stack([xs - dx, ys - dy], -1)
    return -0.5 * np.einsum("...i,ij,...j->...", d, inv, d)


def _not_quadratic_patches() -> dict[str, np.ndarray]:
    """Log patches that are NOT quadratic, so the step-1 stencil (L[x+1] - 2 L[x] + L[x-1]) and
    DARK's step-2 stencil (L[x+2] - 2 L[x] + L[x-2]) / 4 give different steps."""
    ys, xs = np.mgrid[-2:3, -2:3].astype(np.float64)
    heavy = -2.0 * np.log1p(((xs - 0.3) ** 2 + (ys + 0.2) ** 2 + 0.4 * (xs - 0.3) * ys) / 6.0)
    two = np.log(np.exp(-((xs - 0.25) ** 2 + (ys - 0.1) ** 2) / 5.0)
                 + 0.4 * np.exp(-((xs + 1.0) ** 2 + (ys + 0.8) ** 2) / 3.0))
    return {"heavy-tailed peak at (+0.3, -0.2) (not quadratic)": heavy,
            "two overlapping bumps (not quadratic)": two}


def _dark_cases() -> dict[str, np.ndarray]:
    return {
        "round peak at (+0.3, -0.2)": _log_gaussian_patch(0.3, -0.2, 4.0, 4.0, 0.0),
        "elongated, tilted peak at (-0.4, 0.45)": _log_gaussian_patch(-0.4, 0.45, 6.0, 3.0, 1.5),
        "peak exactly on the pixel": _log_gaussian_patch(0.0, 0.0, 4.0, 4.0, 0.0),
        "far peak (the step must be clipped)": _log_gaussian_patch(1.8, -0.3, 4.0, 4.0, 0.0),
        "saddle (no maximum: no step)": np.add.outer(
            0.1 * np.arange(5) ** 2, -0.1 * np.arange(5) ** 2 + 0.05 * np.arange(5)),
        "flat patch (no step)": np.full((5, 5), -3.0),
        **_not_quadratic_patches(),
    }


def _dark_variant(L: np.ndarray, *, stencil: int = 2, cross: float = 0.25, grad: float = 0.5,
                  sign: float = -1.0, clip: bool = True, negdef: bool = True,
                  swap: bool = False) -> np.ndarray:
    """The Taylor step of one 5x5 log patch with the given (possibly wrong) choices."""
    gx, gy = grad * (L[2, 3] - L[2, 1]), grad * (L[3, 2] - L[1, 2])
    if stencil == 2:
        hxx, hyy = 0.25 * (L[2, 4] - 2 * L[2, 2] + L[2, 0]), 0.25 * (L[4, 2] - 2 * L[2, 2] + L[0, 2])
    else:
        hxx, hyy = L[2, 3] - 2 * L[2, 2] + L[2, 1], L[3, 2] - 2 * L[2, 2] + L[1, 2]
    hxy = cross * (L[3, 3] - L[1, 3] - L[3, 1] + L[1, 1])
    det = hxx * hyy - hxy * hxy
    if (negdef and not (hxx < 0 and det > 0)) or det == 0:
        return np.zeros(2)
    step = sign * np.array([hyy * gx - hxy * gy, hxx * gy - hxy * gx]) / det
    step = np.clip(step, -1.0, 1.0) if clip else step
    return step[::-1].copy() if swap else step


_DARK_SLIPS = [
    (dict(stencil=1), "dxx and dyy were taken from the immediate neighbours (L[2, 3] - 2 L[2, 2] "
     "+ L[2, 1], the step-1 stencil); DARK uses the step-2 stencil (L[2, 4] - 2 L[2, 2] + "
     "L[2, 0]) / 4, the central difference of the central differences. On a quadratic patch "
     "both agree; on the two patches that are not quadratic they do not"),
    (dict(cross=0.0), "the cross derivative dxy is missing (it is what turns the step of a "
     "tilted peak): dxy = (L[3, 3] - L[1, 3] - L[3, 1] + L[1, 1]) / 4"),
    (dict(cross=1.0), "the cross derivative needs the factor 1/4: (L[3, 3] - L[1, 3] - L[3, 1] "
     "+ L[1, 1]) / 4"),
    (dict(grad=1.0), "the gradient is the central difference (L[2, 3] - L[2, 1]) / 2: the "
     "factor 1/2 is missing"),
    (dict(sign=1.0), "the step has the wrong sign: the maximum is at m - H^-1 g"),
    (dict(clip=False, negdef=False), "that is MMPose's rule (a step whenever det(H) != 0, no "
     "clip); the course steps only when H is negative definite and clips each component to "
     "[-1, 1]"),
    (dict(clip=False), "the step is not clipped: clip each component to [-1, 1]"),
    (dict(negdef=False), "a step was taken where H is not negative definite (saddle): step "
     "only when dxx < 0 and det(H) > 0, else return (0, 0)"),
    (dict(swap=True), "the step came back as (dy, dx): return (dx, dy), x first (dx reads along "
     "a row: (L[2, 3] - L[2, 1]) / 2)"),
]


def check_dark_step(dark_step) -> bool:
    """Exercise 06.1: ``dark_step(log_patch [5, 5]) -> (dx, dy)``, the DARK Taylor step with
    the course's rule (0 unless the Hessian is negative definite, each component clipped to
    [-1, 1]); second derivatives with DARK's step-2 stencil (two cases are not quadratic)."""
    from course_lib.dark import taylor_step

    problems: list[str] = []
    answers, slips = [], []
    for name, patch in _dark_cases().items():
        got, err = call(dark_step, patch.copy())
        if err:
            return report("06.1 DARK Taylor step", [f"{name}: {err}"])
        problems += compare_arrays(f"{name}: (dx, dy)", got, taylor_step(patch), atol=1e-6)
        answers.append(_as_array(got))
        slips.append([(_dark_variant(patch, **options), message)
                      for options, message in _DARK_SLIPS])
    if problems:
        slip = _first_slip(answers, slips, atol=1e-6)
        problems += [slip] if slip else []
    return report("06.1 DARK Taylor step", problems,
                  passed_message="exact on quadratic log-peaks, the step-2 stencil elsewhere, "
                                 "safe on saddles and flat maps")


# --- 06.2 the quarter offset -----------------------------------------------------------------


def _quarter_cases() -> dict[str, np.ndarray]:
    """Named [12, 10] maps: interior peaks, peaks on, next to and one pixel inside each border
    (where HRNet's joint rule 1 < x < W-1 and 1 < y < H-1 decides), equal neighbours."""
    ys, xs = np.mgrid[0:12, 0:10].astype(np.float64)

    def gauss(cx, cy):
        return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0).astype(np.float32)

    tie = gauss(5.0, 6.0)
    tie[6, 4] = tie[6, 6]  # equal left and right neighbours: no shift in x
    twin = gauss(3.0, 3.0) + gauss(7.0, 8.0)  # two equal maxima: the first in row-major order
    return {
        "peak at (4.3, 6.8)": gauss(4.3, 6.8),
        "peak at (5.0, 3.3), x on a pixel centre": gauss(5.0, 3.3),
        "peak at (6.7, 3.2)": gauss(6.7, 3.2),
        "peak on the left border (x = 0)": gauss(-0.3, 5.6),
        "peak at x = 1 (both neighbours exist)": gauss(1.3, 5.7),
        "peak at x = 2": gauss(1.7, 4.3),
        "peak at x = W-2 = 8": gauss(8.3, 6.6),
        "peak at y = 1": gauss(3.6, 0.8),
        "peak at y = H-2 = 10": gauss(6.3, 9.7),
        "peak on the bottom border": gauss(3.6, 11.2),
        "equal neighbours": tie,
        "two equal maxima": twin,
    }


def _quarter_variant(hm: np.ndarray, *, low: int = 2, joint: bool = True, sign: float = 1.0,
                     size: float = 0.25, swap: bool = False, wrap: bool = False,
                     last: bool = False) -> np.ndarray:
    """The quarter-offset decode of one map with the given (possibly wrong) border rule."""
    h, w = hm.shape
    flat = hm.ravel()
    first = int(np.argmax(flat)) if not last else flat.size - 1 - int(np.argmax(flat[::-1]))
    y, x = divmod(first, w)
    if wrap:  # no border rule at all: indices wrap (x - 1 = -1) or clamp (x + 1 = W)
        dx = hm[y, min(x + 1, w - 1)] - hm[y, x - 1]
        dy = hm[min(y + 1, h - 1), x] - hm[y - 1, x]
        return np.array([x + size * np.sign(dx), y + size * np.sign(dy)])
    in_x, in_y = low <= x <= w - 2, low <= y <= h - 2
    do_x, do_y = (in_x and in_y, in_x and in_y) if joint else (in_x, in_y)
    dx = hm[y, x + 1] - hm[y, x - 1] if do_x else 0.0
    dy = hm[y + 1, x] - hm[y - 1, x] if do_y else 0.0
    if swap:
        dx, dy = dy, dx
    return np.array([x + sign * size * np.sign(dx), y + sign * size * np.sign(dy)])


_QUARTER_SLIPS = [
    (dict(low=1, joint=False), "each axis was tested on its own with 1 <= x <= W-2: HRNet and "
     "SimpleBaseline shift both axes only when 1 < x < W-1 and 1 < y < H-1 (get_final_preds)"),
    (dict(joint=False), "each axis was tested on its own (MMPose's refine_keypoints): HRNet "
     "shifts x and y only when 1 < x < W-1 AND 1 < y < H-1, both at once"),
    (dict(low=1), "x = 1 and y = 1 are not refined by the reference: 1 < x < W-1 (x >= 2), "
     "although both neighbours exist there"),
    (dict(sign=-1.0), "the shift goes toward the LOWER neighbour: add 0.25 * sign(h[y, x+1] - "
     "h[y, x-1]), toward the higher one"),
    (dict(size=0.5), "the offset is a quarter pixel (0.25), not half a pixel"),
    (dict(swap=True), "x and y are swapped: the x offset compares h[y, x+1] with h[y, x-1] "
     "(columns of the [H, W] map)"),
    (dict(last=True), "of two equal maxima the LAST one was taken: ties go to the first "
     "maximum in row-major order (what np.argmax returns)"),
    (dict(wrap=True), "the border rule is missing: at x = 0, h[y, x-1] is the LAST column "
     "(numpy wraps -1); shift only when 1 < x < W-1 and 1 < y < H-1"),
]


def check_quarter_decode(quarter_decode) -> bool:
    """Exercise 06.2: ``quarter_decode(heatmap [H, W]) -> (x, y)``: argmax plus the quarter
    offset toward the higher neighbour, both axes only when ``1 < x < W-1 and 1 < y < H-1``
    (HRNet's ``get_final_preds``)."""
    from course_lib.decode import decode

    problems: list[str] = []
    answers, slips = [], []
    for name, hm in _quarter_cases().items():
        got, err = call(quarter_decode, hm.copy())
        if err:
            return report("06.2 quarter offset", [f"{name}: {err}"])
        expected, _ = decode(hm[None, None], method="quarter")
        problems += compare_arrays(f"{name}: (x, y)", got, expected[0, 0], atol=1e-6)
        answers.append(_as_array(got))
        slips.append([(_quarter_variant(hm, **options), message)
                      for options, message in _QUARTER_SLIPS])
    if problems:
        slip = _first_slip(answers, slips, atol=1e-6)
        problems += [slip] if slip else []
    return report("06.2 quarter offset", problems,
                  passed_message="quarter offsets, HRNet's joint border rule and ties as the "
                                 "reference")


# --- 06.3 flip back --------------------------------------------------------------------------


def _flip_slips(maps: np.ndarray, pairs) -> list[tuple[np.ndarray, str]]:
    """What the usual slips of 06.3 return for ``maps [K, H, W]``, with the mistake they make."""
    from course_lib.decode import flip_back as reference

    def right(a):
        out = a.copy()
        out[..., 1:] = a[..., :-1]
        return out

    def left(a):
        out = a.copy()
        out[..., :-1] = a[..., 1:]
        return out

    swapped = reference(maps[None], pairs, shift=False)[0]  # mirrored and swapped, no shift
    rows = maps[:, ::-1, :].copy()
    for a, b in pairs:
        rows[[a, b]] = rows[[b, a]]
    return [
        (reference(maps[None], (), shift=True)[0], "the left/right channels are not swapped: "
         "swap the two maps of every flip pair"),
        (swapped, "the one-pixel shift to the right is missing (HRNet: out[..., 1:] = "
         "out[..., :-1])"),
        (left(swapped), "the maps were shifted LEFT (or shifted right before the mirror, "
         "which is the same): mirror and swap first, then shift one pixel right, "
         "out[..., 1:] = out[..., :-1] (column 0 keeps its value)"),
        (np.roll(swapped, 1, axis=-1), "np.roll wraps the last column around to column 0; "
         "HRNet's shift keeps column 0 as it is"),
        (right(rows), "the rows were mirrored (a vertical flip): mirror the columns, the last "
         "axis"),
        (right(maps[[*_perm(len(maps), pairs)]]), "the maps are not mirrored: reverse the "
         "columns (heatmaps[:, :, ::-1]) before swapping and shifting"),
    ]


def _perm(k: int, pairs) -> list[int]:
    perm = list(range(k))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


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
        slip = _first_slip([_as_array(got)], [_flip_slips(maps, pairs)], atol=1e-6)
        problems += [f"hint: {slip}"] if slip else []
    return report("06.3 flip back", problems, passed_message="mirror, swap pairs, shift right")
