"""Checks of the exercises of ``10_beyond_heatmaps.ipynb``: the grid correction of Lightning Pose's
sub-pixel soft-argmax (10.1), the SimCC label of one coordinate (10.2) and the peak term of the
fusion loss (10.3).

Each check compares the answer with ``course_lib.heads`` (``lightning.grid_correction``,
``simcc.encode``, ``fusion.loss_terms``); when it differs, it computes what the usual slips would
have returned (Lightning Pose's own table, a flipped sign, a correction in heatmap pixels; a
label on the sub-pixel bin, halves rounded to even, a label normalised to sum one; a peak term
without the ``relu``, squared, or between argmaxes ...) and names the one that matches.
"""

from __future__ import annotations

import math

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, diagnose, fmt, report, same

_FACTORS = (1, 2, 3, 4)


def _correction_slips() -> list[tuple[list[float], str]]:
    """What the usual slips of 10.1 return for ``_FACTORS``, with the mistake they make."""
    d = np.array(_FACTORS, dtype=np.float64)
    right = 0.5 - 2.0 ** (d - 1)
    return [
        (-(d - 0.5), "that is Lightning Pose's table (-0.5, -1.5, -2.5): right for factors 1 "
         "and 2, one input pixel short at 3. Each x2 upsampling halves the pixel, so the earlier "
         "shifts double: c(d) = 0.5 - 2**(d - 1)"),
        (-right, "the sign is flipped: pixel j of the upsampled map sits at input coordinate "
         "j + 0.5 - 2**(d - 1), so the correction added to j is 0.5 - 2**(d - 1) (negative)"),
        (right / 2.0**d, "that is the correction in heatmap pixels; decode adds it to the "
         "expectation in upsampled (input) pixels, before dividing by 2**d"),
        (np.zeros_like(d), "zero would hold for align_corners=True; with align_corners=False "
         "(bicubic, as Lightning Pose) output pixel j sits at (j + 0.5) / 2 - 0.5"),
        (np.full_like(d, -0.5), "-0.5 is the shift of ONE x2 upsampling; composed d times the "
         "shifts add up to 0.5 - 2**(d - 1)"),
        (-0.5 * d, "the shifts do not add linearly: each upsampling halves the pixel, so the "
         "shift of the earlier steps doubles (0.5 - 2**(d - 1))"),
        (0.5 - 2.0**d, "off by a power of two: the shift is 2**(d - 1) - 0.5, not 2**d - 0.5"),
    ]


def _lightning_bias(correction: float, factor: int) -> float:
    """Mean x error (heatmap px) of ``lightning.decode`` with ``correction`` on exact targets."""
    import torch

    from course_lib.heads import lightning

    w, h = 96 // 2**factor, 128 // 2**factor
    rng = np.random.default_rng(factor)
    kp = np.stack([rng.uniform(2, w - 3, (1, 8)), rng.uniform(2, h - 3, (1, 8))], -1)
    targets, _ = lightning.encode(kp, np.ones((1, 8)), heatmap_size=(w, h))
    out = lightning.LightningOutput(torch.as_tensor(targets["heatmaps"]))
    coords, _ = lightning.decode(out, downsample_factor=factor, correction=correction)
    return float((coords.numpy()[..., 0] - kp[..., 0]).mean())


def _as_float(value) -> float | None:
    """``value`` as a finite float, or None (not a number, NaN, inf)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def check_grid_correction(grid_correction) -> bool:
    """10.1: ``grid_correction(d)`` -> the constant (input px) that Lightning Pose's sub-pixel
    soft-argmax adds after ``d`` bicubic x2 upsamplings (``align_corners=False``): zero bias at
    every factor, ``0.5 - 2**(d - 1)``."""
    from course_lib.heads.lightning import grid_correction as reference

    answers, problems = [], []
    for d in _FACTORS:
        got, err = call(grid_correction, d)
        if err:
            return report("10.1 grid correction", [f"grid_correction({d}) {err}"])
        answers.append(got)
        expected = reference(d)
        if not same(got, expected, atol=1e-9):
            problems.append(f"grid_correction({d}) = {fmt(got)}, expected {fmt(expected)}")
            value = _as_float(got)
            if value is not None and abs(value) < 100 and d <= 3:
                bias = _lightning_bias(value, d)
                problems.append(f"with it, lightning.decode at factor {d} is off by "
                                f"{bias:+.3f} heatmap px on exact targets (the right constant: "
                                f"{_lightning_bias(expected, d):+.4f})")
    if problems:
        slip = diagnose(answers, _correction_slips(), atol=1e-9)
        problems += [f"likely: {slip}"] if slip else []
    return report("10.1 grid correction", problems,
                  passed_message="0.5 - 2**(d - 1): zero bias at every factor")


def _first_slip(answers: list, slips: list[list[tuple]], atol: float = 1e-6) -> str | None:
    """The mistake of the first slip whose answers equal the learner's on EVERY case (one list
    of ``(answer, message)`` per case, in the same order), or None."""
    for j, (_, message) in enumerate(slips[0]):
        if all(same(got, case[j][0], atol=atol) for got, case in zip(answers, slips)):
            return message
    return None


_LABEL_CASES = [(10.25, 192, 2.0, 6.0), (33.6, 192, 2.0, 6.0), (0.2, 192, 2.0, 6.0),
                (47.3, 288, 3.0, 4.0), (71.9, 192, 2.0, 3.0)]


def _label(mu: float, bins: int, sigma: float, *, denom: float | None = None) -> np.ndarray:
    b = np.arange(bins, dtype=np.float64)
    return np.exp(-((b - mu) ** 2) / (denom or 2.0 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def _label_slips(x: float, bins: int, k: float, sigma: float) -> list[tuple[np.ndarray, str]]:
    """What the usual slips of 10.2 return for one case, with the mistake they make."""
    mu = math.floor(k * x + 0.5)
    right = _label(mu, bins, sigma)
    return [
        (_label(k * x, bins, sigma), "the Gaussian is centred on the sub-pixel bin coordinate "
         "k * x; SimCC's label (MMPose's SimCCLabel) is centred on the NEAREST bin, "
         "floor(k * x + 0.5)"),
        (_label(float(np.round(k * x)), bins, sigma), "the centre was rounded with round / "
         "np.round, which round halves to even: use floor(k * x + 0.5)"),
        (_label(math.floor(k * x), bins, sigma), "the centre was truncated (int or floor); "
         "round it to the nearest bin: floor(k * x + 0.5)"),
        (_label(math.floor(x + 0.5), bins, sigma), "the split ratio is missing: bin b covers "
         "input pixel b / k, so a point at x sits at bin coordinate k * x"),
        (right / right.sum(), "the label was normalised to sum one; it is the Gaussian density "
         "exp(-(b - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))"),
        (right * sigma * math.sqrt(2 * math.pi), "the factor 1 / (sigma sqrt(2 pi)) is "
         "missing: the label is the Gaussian density, its peak is 1 / (sigma sqrt(2 pi))"),
        (_label(mu, bins, sigma * k), "sigma is already in bins (6 bins = 3 input px at k = 2): "
         "do not multiply it by the split ratio"),
        (_label(mu, bins, sigma, denom=sigma**2), "the exponent is -(b - mu)^2 / (2 sigma^2): "
         "the 2 is missing"),
    ]


def check_simcc_label(simcc_label) -> bool:
    """10.2: ``simcc_label(x_in, num_bins, split_ratio, sigma)`` -> the ``[num_bins]`` SimCC
    label of one coordinate (input px): the Gaussian density of ``sigma`` bins centred on the
    nearest bin ``floor(split_ratio * x_in + 0.5)``, as ``course_lib.heads.simcc.encode``."""
    from course_lib.heads import simcc

    problems: list[str] = []
    answers = []
    for x, bins, k, sigma in _LABEL_CASES:
        name = f"simcc_label({fmt(x)}, {bins}, split_ratio={fmt(k)}, sigma={fmt(sigma)})"
        got, err = call(simcc_label, x, bins, split_ratio=k, sigma=sigma)
        if err:
            return report("10.2 SimCC label", [f"{name} {err}"])
        answers.append(got)
        width = int(round(bins / (4 * k)))  # heatmap columns at stride 4
        targets, _ = simcc.encode(np.array([[[x / 4.0, 10.0]]]), np.ones((1, 1)),
                                  heatmap_size=(width, 32), stride=4, split_ratio=k, sigma=sigma)
        problems += [] if problems else compare_arrays(name, got, targets["x"][0, 0], atol=1e-6)
    if problems:
        slip = _first_slip(answers, [_label_slips(*case) for case in _LABEL_CASES])
        problems += [f"likely: {slip}"] if slip else []
    return report("10.2 SimCC label", problems,
                  passed_message="a Gaussian density on the nearest bin, as simcc.encode")


def _peak_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """``(prediction, target)`` maps ``[32, 24]`` for 10.3: a shifted, noisy, partly negative
    prediction against an MSRA target; a flat negative offset; a second blob."""
    from course_lib import heatmaps as hm

    ys, xs = np.mgrid[0:32, 0:24].astype(np.float64)
    rng = np.random.default_rng(10)

    def gauss(cx, cy, s=2.0):
        return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * s * s))

    def target(x, y):
        return hm.encode(np.array([[[x, y]]]), np.ones((1, 1)), heatmap_size=(24, 32),
                         sigma=2.0, mode="msra")[0][0, 0]

    return [(gauss(11.3, 14.6) + rng.normal(0, 0.05, (32, 24)), target(10.2, 15.4)),
            (gauss(6.0, 22.0, 3.0) - 0.1, target(7.6, 20.1)),
            (gauss(16.0, 8.0) + 0.6 * gauss(5.0, 25.0), target(15.5, 8.4))]


def _peak_reference(pred: np.ndarray, target: np.ndarray) -> float:
    import torch

    from course_lib.heads import fusion

    h = torch.as_tensor(pred, dtype=torch.float32)[None, None]
    zeros = torch.zeros(1, 1, 2, *pred.shape)
    out = fusion.FusionOutput(h, zeros, zeros)
    targets = {"heatmaps": target[None, None].astype(np.float32),
               "keypoints": np.array([[[5.0, 5.0]]], np.float32)}
    return float(fusion.loss_terms(out, targets, np.ones((1, 1), np.float32))["peak"])


def _peak_slips(pred: np.ndarray, target: np.ndarray) -> list[tuple[float, str]]:
    """What the usual slips of 10.3 return for one case, with the mistake they make."""
    ys, xs = np.mgrid[0:pred.shape[0], 0:pred.shape[1]].astype(np.float64)

    def centre(p):
        p = p / p.sum()
        return np.array([(p * xs).sum(), (p * ys).sum()])

    def argmax(p):
        y, x = np.unravel_index(int(np.argmax(p)), p.shape)
        return np.array([x, y], dtype=np.float64)

    gap = centre(np.maximum(pred, 0)) - centre(target)
    soft = np.exp(pred - pred.max())
    return [
        (float(np.hypot(*(centre(pred) - centre(target)))), "negative values were kept: the "
         "prediction is read as a distribution P = relu(h) / sum relu(h)"),
        (float((gap**2).sum()), "that is the squared distance; the term is the distance itself "
         "(in pixels): sqrt(|E_P - E_Q|^2)"),
        (float(np.abs(gap).sum()), "that is |dx| + |dy|; the term is the Euclidean distance "
         "sqrt(dx^2 + dy^2)"),
        (float(np.hypot(*(centre(soft) - centre(target)))), "P is relu(h) normalised to sum "
         "one, not a softmax (the softmax of a heatmap is almost uniform)"),
        (float(np.hypot(*(argmax(pred) - argmax(target)))), "that is the distance between the "
         "argmaxes; the term compares the centres of mass E_P and E_Q"),
        (0.5 * float(np.hypot(*gap)), "0.5 is the term's weight in the loss; the term itself "
         "is unweighted"),
    ]


def check_peak_term(peak_term) -> bool:
    """10.3: ``peak_term(pred, target)`` for one keypoint's maps ``[H, W]`` -> the fusion loss's
    peak term: the Euclidean distance (px) between the centres of mass of ``relu(pred)`` and of
    ``target``, each normalised to sum one, as ``course_lib.heads.fusion.loss_terms``."""
    problems: list[str] = []
    answers = []
    for i, (pred, target) in enumerate(_peak_cases(), start=1):
        got, err = call(peak_term, pred.copy(), target.copy())
        if err:
            return report("10.3 peak term", [f"case {i}: {err}"])
        answers.append(got)
        expected = _peak_reference(pred, target)
        if not problems and not same(got, expected, atol=2e-4):
            problems.append(f"case {i}: got {fmt(got)}, expected {fmt(expected)} px")
    if problems:
        slip = _first_slip(answers, [_peak_slips(p, t) for p, t in _peak_cases()], atol=2e-4)
        problems += [f"likely: {slip}"] if slip else []
    return report("10.3 peak term", problems,
                  passed_message="the distance between the centres of mass, as fusion.loss_terms")
