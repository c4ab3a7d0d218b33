"""Checks of the exercises of ``07_dark_cpp.ipynb``: OpenCV's Gaussian kernel (07.1), the first
maximum in two passes (07.2) and DARK's Hessian solve written in C++ (07.3, compiled here).

Each check compares the answer with ``course_lib.dark`` / numpy; when it differs, it computes what
the usual slips would have returned (a fixed sigma, no normalisation, taps centred on ksize / 2,
the 2 missing in the exponent; the last maximum, a maximum started at 0, (row, col) instead of
the flat index; no clip, no negative-definite test, the wrong sign, a transposed inverse) and
names the one that matches. Numbers are written with ``reporting.fmt`` (no numpy reprs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, diagnose, fmt, report

_KSIZES = (11, 13, 17, 25, 41)


def _kernel(ksize: int, *, sigma: float | None = None, centre: float | None = None,
            two: float = 2.0, square: bool = True, normalise: bool = True) -> np.ndarray:
    """A 1-D Gaussian kernel built with the given (possibly wrong) choices."""
    sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8 if sigma is None else sigma
    x = np.arange(ksize) - ((ksize - 1) / 2 if centre is None else centre)
    w = np.exp(-x * x / (two * (sigma * sigma if square else sigma)))
    return w / w.sum() if normalise else w


def _kernel_slips() -> list[tuple[np.ndarray, str]]:
    """What the usual slips of 07.1 return on every ksize (concatenated), with their mistake."""
    def on_all(fn) -> np.ndarray:
        return np.concatenate([fn(k) for k in _KSIZES])

    return [
        (on_all(lambda k: _kernel(k, sigma=2.0)), "sigma looks fixed at 2; OpenCV derives it "
         "from ksize: sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8"),
        (on_all(lambda k: _kernel(k, normalise=False)), "the weights are not normalised: divide "
         "them by their sum (it must be 1)"),
        (on_all(lambda k: _kernel(k, sigma=0.3 * (k * 0.5 - 1) + 0.8)), "sigma uses ksize "
         "instead of ksize - 1: 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8"),
        (on_all(lambda k: _kernel(k, centre=k // 2 + 0.5)), "the taps are not centred: x runs "
         "from -(ksize - 1) / 2 to (ksize - 1) / 2"),
        (on_all(lambda k: _kernel(k, two=1.0)), "the exponent is -x^2 / (2 sigma^2): the 2 is "
         "missing"),
        (on_all(lambda k: _kernel(k, square=False)), "the exponent is -x^2 / (2 sigma^2): sigma "
         "was not squared"),
    ]


def check_opencv_gaussian_kernel(opencv_gaussian_kernel: Callable) -> bool:
    """Exercise 07.1: ``opencv_gaussian_kernel(ksize) -> [ksize]`` float weights of
    ``cv2.getGaussianKernel(ksize, 0)`` for ``ksize >= 11`` (sigma from the kernel size)."""
    from course_lib.dark import gaussian_kernel_1d

    problems, answers = [], []
    for ksize in _KSIZES:
        got, err = call(opencv_gaussian_kernel, ksize)
        if err:
            return report("07.1 OpenCV's Gaussian kernel", [f"ksize={ksize}: {err}"])
        found = compare_arrays(f"ksize={ksize}", got, gaussian_kernel_1d(ksize), atol=1e-7)
        if found and np.shape(got) == (ksize,):
            g = np.asarray(got, dtype=np.float64)
            if abs(g.sum() - 1.0) > 1e-6:
                found.append(f"ksize={ksize}: the weights sum to {fmt(g.sum())}, expected 1")
        problems += found
        answers.append(np.asarray(got, dtype=np.float64).ravel() if np.ndim(got) else [np.nan])
    if problems:
        slip = diagnose(np.concatenate(answers), _kernel_slips(), atol=1e-7)
        problems += [slip] if slip else []
    return report("07.1 OpenCV's Gaussian kernel", problems,
                  passed_message="the weights cv2.GaussianBlur uses, to 1e-7")


def _argmax_cases() -> dict[str, np.ndarray]:
    """Named heatmaps for 07.2: random maps, flat tops and equal maxima, all-negative maps."""
    rng = np.random.default_rng(71)
    plateau = np.zeros((1, 2, 6, 7), np.float32)
    plateau[0, 0, 2:4, 3:6] = 0.8  # a flat top: the first pixel in row-major order wins
    plateau[0, 1, 5, 6] = plateau[0, 1, 0, 6] = plateau[0, 1, 3, 0] = 0.5  # three equal maxima
    return {
        "random maps [3, 4, 9, 11]": rng.random((3, 4, 9, 11), dtype=np.float32),
        "plateaus and ties": plateau,
        "all negative": -rng.random((2, 2, 5, 6), dtype=np.float32),
    }


def _argmax_slips(maps: np.ndarray) -> list[tuple[tuple[np.ndarray, np.ndarray], str]]:
    """What the usual slips of 07.2 return for ``maps``, with the mistake they make."""
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, -1)
    score = flat.max(-1)
    first = (flat == score[..., None]).argmax(-1)
    last = flat.shape[-1] - 1 - (flat[..., ::-1] == score[..., None]).argmax(-1)
    zero_start = np.maximum(score, 0.0)
    zero_index = np.where(score > 0, first, 0)
    y, x = np.divmod(first, w)
    return [
        ((last, score), "of equal maxima the LAST one was kept (a >= comparison): keep the first "
         "one in row-major order, as np.argmax"),
        ((zero_index, zero_start), "the running maximum started at 0, so an all-negative map gets "
         "score 0 at index 0: start from the map's first value (or -inf)"),
        ((x * h + y, score), "the index is the row-major flat position y * W + x, not x * H + y"),
        ((first + (np.arange(n * k) * h * w).reshape(n, k), score), "the index counts from the "
         "start of each map (0 ... H*W - 1), not from the start of the batch"),
    ]


def check_first_argmax(first_argmax: Callable) -> bool:
    """Exercise 07.2: ``first_argmax(heatmaps [N, K, H, W]) -> (index [N, K], score [N, K])``
    in two passes (the max, then the first pixel equal to it), as numpy's argmax."""
    problems = []
    for name, maps in _argmax_cases().items():
        got, err = call(first_argmax, maps.copy())
        if err:
            return report("07.2 first maximum in two passes", [f"{name}: {err}"])
        if not (isinstance(got, tuple) and len(got) == 2):
            return report("07.2 first maximum in two passes", [
                f"{name}: expected a tuple (index, score), got {type(got).__name__}"])
        flat = maps.reshape(maps.shape[0], maps.shape[1], -1)
        found = compare_arrays(f"{name}: index", got[0], flat.argmax(-1), atol=0)
        found += compare_arrays(f"{name}: score", got[1], flat.max(-1), atol=0)
        if found and compare_arrays("", got[1], flat.argmax(-1), atol=0) == [] and \
                compare_arrays("", got[0], flat.max(-1), atol=0) == []:
            found.append("(score, index) came back swapped: return (index, score)")
        elif found:
            slips = [(np.concatenate([np.ravel(a) for a in v]), m) for v, m in _argmax_slips(maps)]
            mine = np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in got]) \
                if all(np.shape(a) == flat.shape[:2] for a in got) else np.array([np.nan])
            slip = diagnose(mine, slips, atol=0)
            found += [slip] if slip else []
        problems += found
    return report("07.2 first maximum in two passes", list(dict.fromkeys(problems)),
                  passed_message="the first maximum in row-major order, ties included")


def _taylor_derivative_cases() -> tuple[list[str], np.ndarray]:
    """Named rows (dx, dy, dxx, dxy, dyy) covering maxima, saddles, flat maps and clipping."""
    named = {
        "round peak": (0.04, -0.03, -0.125, 0.0, -0.125),
        "tilted, elongated peak": (0.02, 0.05, -0.2, 0.06, -0.09),
        "peak on the pixel": (0.0, 0.0, -0.125, 0.0, -0.125),
        "far peak (step clipped to 1)": (0.5, -0.1, -0.125, 0.0, -0.125),
        "saddle (no step)": (0.05, 0.05, -0.1, 0.0, 0.1),
        "valley, dxx > 0 (no step)": (0.05, 0.05, 0.1, 0.0, 0.1),
        "flat (no step)": (0.0, 0.0, 0.0, 0.0, 0.0),
        "dxx < 0 but det < 0 (no step)": (0.01, 0.02, -0.1, 0.2, -0.1),
    }
    rng = np.random.default_rng(72)
    rand = rng.normal(0, 0.1, (64, 5))
    names = list(named) + [f"random case {i}" for i in range(len(rand))]
    return names, np.concatenate([np.array(list(named.values())), rand])


def _patches_from_derivatives(d: np.ndarray) -> np.ndarray:
    """5x5 log patches whose central differences are exactly the rows of ``d``."""
    patch = np.zeros((len(d), 5, 5))
    dx, dy, dxx, dxy, dyy = d.T
    patch[:, 2, 3], patch[:, 2, 1] = dx, -dx
    patch[:, 3, 2], patch[:, 1, 2] = dy, -dy
    patch[:, 2, 4] = patch[:, 2, 0] = 2 * dxx
    patch[:, 4, 2] = patch[:, 0, 2] = 2 * dyy
    patch[:, 3, 3] = patch[:, 1, 1] = dxy
    patch[:, 1, 3] = patch[:, 3, 1] = -dxy
    return patch


def _build_taylor_step(source: str) -> tuple[Any, str | None]:
    """``(module, None)`` with ``source`` compiled, or ``(None, why it cannot be built)``."""
    from course_lib import native

    try:
        return native.build_snippet(source, "taylor_step"), None
    except native.NativeBuildError as exc:
        indented = str(exc).replace(chr(10), chr(10) + "      ")
        return None, f"the C++ source does not compile:\n      {indented}"
    except (native.NativeUnavailableError, ValueError) as exc:
        return None, f"cannot build the C++ source here: {exc}"


def _step_slips(d: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """What the usual slips of 07.3 return on the derivative rows ``d``, with their mistake."""
    dx, dy, dxx, dxy, dyy = d.T
    det = dxx * dyy - dxy * dxy
    ok = (dxx < 0) & (det > 0)
    safe = np.where(det != 0, det, 1.0)
    sx, sy = -(dyy * dx - dxy * dy) / safe, -(dxx * dy - dxy * dx) / safe
    tx, ty = -(dxx * dx - dxy * dy) / safe, -(dyy * dy - dxy * dx) / safe  # H^-1 transposed

    def rule(x, y, where=ok, clip=True):
        out = np.where(where[:, None], np.stack([x, y], -1), 0.0)
        return np.clip(out, -1.0, 1.0) if clip else out

    return [
        (rule(sx, sy, clip=False), "the step is not clipped: std::clamp each component to "
         "[-1, 1]"),
        (rule(sx, sy, where=det != 0), "a step was taken where H is not negative definite "
         "(saddle, valley): step only when dxx < 0 and det > 0"),
        (rule(sx, sy, where=det > 0), "the test needs dxx < 0 too: det > 0 alone also accepts a "
         "valley (a minimum, dxx > 0)"),
        (rule(-sx, -sy), "the step has the wrong sign: (sx, sy) = -H^-1 g"),
        (rule(tx, ty), "dxx and dyy are swapped in H^-1 = [[dyy, -dxy], [-dxy, dxx]] / det"),
        (rule(sy, sx), "sx and sy are swapped: o[2 * i] is the x step"),
    ]


def _derivative_case_problems(taylor_step_cpp: Callable, names: list[str],
                              d: np.ndarray) -> list[str]:
    """The learner's step on the derivative rows ``d`` against ``course_lib.dark.taylor_step``:
    the first four wrong cases by name, then how many more, then the likely mistake."""
    from course_lib.dark import taylor_step

    got, err = call(taylor_step_cpp, d.copy())
    if err:
        return [f"taylor_step: {err}"]
    expected = np.asarray(taylor_step(_patches_from_derivatives(d)))
    problems = []
    got = np.asarray(got, dtype=np.float64)
    if got.shape != expected.shape:
        return [f"taylor_step: shape {got.shape}, expected {expected.shape}"]
    bad = np.flatnonzero(np.abs(got - expected).max(axis=1) > 1e-9)
    for i in bad[:4]:
        problems.append(f"{names[i]}: (dx, dy, dxx, dxy, dyy) = {fmt(tuple(d[i]), 4)}: "
                        f"step {fmt(tuple(got[i]), 4)}, expected {fmt(tuple(expected[i]), 4)}")
    if len(bad) > 4:
        problems.append(f"... and {len(bad) - 4} more of {len(d)} cases")
    if problems:
        slip = diagnose(got, _step_slips(d), atol=1e-9)
        problems += [slip] if slip else []
    return problems


def _heatmap_derivatives(maps: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Rows ``(dx, dy, dxx, dxy, dyy)`` of the blurred log-maps ``maps [1, 17, H, W]`` at the
    integer argmax ``base [1, 17, 2]``, with DARK's central differences."""
    from course_lib.dark import LOG_FLOOR, blur_heatmaps

    logs = np.log(np.maximum(blur_heatmaps(maps, 11), LOG_FLOOR))[0].astype(np.float64)
    x, y = base[0, :, 0].astype(int), base[0, :, 1].astype(int)
    k = np.arange(17)
    return np.stack([
        0.5 * (logs[k, y, x + 1] - logs[k, y, x - 1]),
        0.5 * (logs[k, y + 1, x] - logs[k, y - 1, x]),
        0.25 * (logs[k, y, x + 2] - 2 * logs[k, y, x] + logs[k, y, x - 2]),
        0.25 * (logs[k, y + 1, x + 1] - logs[k, y - 1, x + 1] - logs[k, y + 1, x - 1]
                + logs[k, y - 1, x - 1]),
        0.25 * (logs[k, y + 2, x] - 2 * logs[k, y, x] + logs[k, y - 2, x]),
    ], -1)


def _end_to_end_problems(taylor_step_cpp: Callable) -> list[str]:
    """Argmax + the learner's step on 17 Gaussian heatmaps against ``course_lib.decode``'s DARK."""
    from course_lib.decode import decode

    ys, xs = np.mgrid[0:64, 0:48]
    rng = np.random.default_rng(73)
    cx, cy = rng.uniform(3, 44, (17, 1, 1)), rng.uniform(3, 60, (17, 1, 1))
    maps = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0).astype(np.float32)[None]
    base, _ = decode(maps, method="argmax")
    steps, err = call(taylor_step_cpp, _heatmap_derivatives(maps, base))
    if err:
        return [f"taylor_step on heatmap derivatives: {err}"]
    dark, _ = decode(maps, method="dark")
    return compare_arrays("argmax + your step vs course_lib.decode DARK (heatmap px)",
                          base[0] + np.asarray(steps), dark[0], atol=1e-4)


def check_taylor_step_cpp(source: str) -> bool:
    """Exercise 07.3: the Hessian solve of DARK in C++. ``source`` is a cppimport C++ file with
    ``PYBIND11_MODULE(taylor_step, m)`` defining ``taylor_step(d [M, 5]) -> [M, 2]`` for rows
    ``(dx, dy, dxx, dxy, dyy)``. Compiled here (gcc's errors are reported), then compared with
    ``course_lib.decode``: on derivative cases, and as the last step of DARK on heatmaps."""
    title = "07.3 DARK's Hessian solve in C++"
    if not isinstance(source, str):
        return report(title, [f"expected the C++ source as a str, got {type(source).__name__}"])
    module, why = _build_taylor_step(source)
    if why is not None:
        return report(title, [why])
    names, d = _taylor_derivative_cases()
    problems = _derivative_case_problems(module.taylor_step, names, d)
    if not problems:  # end to end: argmax + your step on real heatmaps = course_lib.decode's DARK
        problems = _end_to_end_problems(module.taylor_step)
    return report(title, problems, passed_message=f"{len(d)} derivative cases exact, and DARK on "
                  "17 heatmaps equals course_lib.decode to 1e-4 px")
