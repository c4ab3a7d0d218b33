"""Gaussian heatmap targets: keypoints (in heatmap pixels) -> heatmaps and target weights.

Taught in ``02_gaussian_heatmaps.ipynb``. The inverse direction (heatmaps -> keypoints) is
``course_lib.decode``; for the ``msra`` mode the pair is exact at integer centres with the
argmax decoder, ``decode(encode(k)) == k`` (tested in ``tests/test_heatmaps.py``).

Pixel convention (MSRA): heatmap pixel ``i`` covers ``[i - 0.5, i + 0.5)`` and its centre is
``i``. A keypoint at ``(x, y)`` heatmap pixels gets, in each mode:

``msra``      (SimpleBaseline / HRNet, MMPose ``MSRAHeatmap``): the Gaussian is centred on the
              *rounded* keypoint ``(round(x), round(y))`` (halves rounded up, i.e.
              ``floor(x + 0.5)``) and truncated to the ``(2r+1) x (2r+1)`` patch around it,
              ``r = floor(3 sigma)``. Its value is exactly 1 at the rounded centre and
              ``exp(-1 / (2 sigma^2))`` one pixel away. The rounding is the "bias" (up to half a
              heatmap pixel of error before any network is trained).
``unbiased``  (DARK, MMPose ``generate_unbiased_gaussian_heatmaps``): the exact sub-pixel centre,
              evaluated over the whole map (not truncated); the peak sits at ``(x, y)``.
``udp``       (UDP, MMPose ``generate_udp_gaussian_heatmaps``): the exact sub-pixel centre, but
              only inside the same truncated patch as ``msra`` (around the rounded centre).

Target weights: 1 for a labelled keypoint (``visible > 0``) whose Gaussian reaches the map, 0
otherwise; a keypoint with weight 0 also gets an all-zero map. "Reaches the map" uses MMPose's
support for each mode: the patch ``round(x) +- r`` for ``msra``/``udp`` (weight 0 exactly when the
patch holds no pixel of the map, i.e. the map would be empty), and the window ``x +- 3 sigma``
for ``unbiased`` (weight 0 when no pixel centre lies inside it).

Two deliberate, documented departures from MMPose's loop code, both only for keypoints that lie
outside the map: MMPose rounds with ``int(x + 0.5)``, which truncates towards zero, so for
``x < -0.5`` its centre is one pixel too far right (we use ``floor(x + 0.5)``); and its bound
test ``right < 0`` (``right = round(x) + r + 1``) keeps weight 1 for a patch that ends at pixel
-1, i.e. an empty map (we give such a keypoint weight 0). For ``unbiased`` MMPose's bounds are
``x - 3 sigma >= W`` and ``x + 3 sigma + 1 < 0``; ours are the symmetric ``x - 3 sigma > W - 1``
and ``x + 3 sigma < 0``. When ``3 sigma`` is not an integer MMPose's patch is one pixel wider on
the left/top; we keep it symmetric (identical for the course's sigma = 2 and any sigma with
integer ``3 sigma``).

Bounds: ``sigma`` lies in ``[MIN_SIGMA, max(W, H)]`` heatmap pixels (below, ``2 sigma^2``
underflows and the targets turn NaN; above, the Gaussian is flat over the map and its patch grows
without bound) and :func:`encode` refuses targets over ``MAX_OUTPUT_BYTES`` (2 GiB) instead of
exhausting memory; both raise ``ValueError`` saying why.

Each keypoint gets its own map: the batch axis is NOT merged. MMPose's multi-person target (one
map per keypoint type, the max over people) is ``heatmaps.max(axis=0)`` of ours.
"""

from __future__ import annotations

import math

import numpy as np

MODES = ("msra", "unbiased", "udp")
MIN_SIGMA = 0.01  # heatmap px; below it the target is one pixel anyway, and 2 sigma^2 underflows
MAX_OUTPUT_BYTES = 2 * 1024**3  # encode refuses targets larger than this (float32 maps)


def check_size(heatmap_size) -> tuple[int, int]:
    """``heatmap_size`` as ``(W, H)``, two positive ints (``ValueError`` otherwise)."""
    try:
        width, height = heatmap_size
    except (TypeError, ValueError):
        raise ValueError(
            f"heatmap_size: expected (W, H), two positive ints, got {heatmap_size!r}"
        ) from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
               for v in (width, height)):
        raise ValueError(f"heatmap_size: expected (W, H), two positive ints, got {heatmap_size!r}")
    return int(width), int(height)


def check_sigma(sigma, heatmap_size) -> float:
    """``sigma`` as a float in ``[MIN_SIGMA, max(W, H)]`` heatmap pixels (``ValueError``
    otherwise): a smaller one makes ``2 sigma^2`` underflow (NaN targets), a wider Gaussian is
    flat over the map and its patch would grow without bound."""
    width, height = check_size(heatmap_size)
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}") from None
    if isinstance(sigma, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"sigma: expected a positive finite number, got {sigma!r}")
    if value < MIN_SIGMA:
        raise ValueError(f"sigma: expected at least {MIN_SIGMA} heatmap pixels, got {sigma!r}")
    if value > max(width, height):
        raise ValueError(
            f"sigma: expected at most max(W, H) = {max(width, height)} heatmap pixels for maps "
            f"of {width} x {height} (a wider Gaussian is flat over the map), got {sigma!r}"
        )
    return value


def _check_inputs(keypoints, visible, heatmap_size, sigma, mode):
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    width, height = check_size(heatmap_size)
    sigma = check_sigma(sigma, heatmap_size)
    if hasattr(keypoints, "detach"):
        keypoints = keypoints.detach().cpu().numpy()
    if hasattr(visible, "detach"):
        visible = visible.detach().cpu().numpy()
    keypoints = np.asarray(keypoints)
    visible = np.asarray(visible)
    if keypoints.dtype.kind not in "iuf":
        raise ValueError(f"keypoints: expected a real number array, got dtype {keypoints.dtype}")
    if visible.dtype.kind not in "biuf":
        raise ValueError(f"visible: expected a bool or number array, got dtype {visible.dtype}")
    if keypoints.ndim < 2 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints: expected shape [..., K, 2], got shape {keypoints.shape}")
    if visible.shape != keypoints.shape[:-1]:
        raise ValueError(
            f"visible: expected shape {keypoints.shape[:-1]} (keypoints' shape without the last "
            f"axis), got shape {visible.shape}"
        )
    if keypoints.size == 0:
        raise ValueError(f"keypoints: empty input (shape {keypoints.shape})")
    labelled = visible > 0
    if not np.all(np.isfinite(keypoints[labelled])):
        raise ValueError("keypoints: NaN or inf in a labelled keypoint (visible > 0)")
    return keypoints.astype(np.float64), labelled, (int(width), int(height)), sigma


def patch_radius(sigma: float) -> int:
    """Half-size ``r = floor(3 sigma)`` of the truncated patch of the ``msra``/``udp`` modes."""
    return int(math.floor(3.0 * float(sigma) + 1e-9))


def round_half_up(x: np.ndarray) -> np.ndarray:
    """The nearest pixel centre of ``x`` with halves rounded up, ``floor(x + 0.5)`` (float64, so
    that far-away points do not overflow an integer). The ``msra`` centre; Python's ``round``
    rounds halves to even instead (``round(2.5) == 2``)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def target_weights(keypoints, visible, *, heatmap_size, sigma=2.0, mode="msra") -> np.ndarray:
    """Target weights ``[..., K]`` float32 of :func:`encode` (see the module docstring)."""
    kp, labelled, (width, height), sigma = _check_inputs(
        keypoints, visible, heatmap_size, sigma, mode
    )
    return _weights(kp, labelled, width, height, sigma, mode)


def _weights(kp, labelled, width, height, sigma, mode):
    x, y = kp[..., 0], kp[..., 1]
    with np.errstate(invalid="ignore"):
        if mode == "unbiased":
            reach = 3.0 * sigma
            inside = (x + reach >= 0) & (x - reach <= width - 1)
            inside &= (y + reach >= 0) & (y - reach <= height - 1)
        else:
            r = patch_radius(sigma)
            mx = round_half_up(np.where(labelled, x, 0.0))  # unlabelled (maybe NaN) -> 0
            my = round_half_up(np.where(labelled, y, 0.0))
            inside = (mx + r >= 0) & (mx - r <= width - 1) & (my + r >= 0) & (my - r <= height - 1)
    return (labelled & inside).astype(np.float32)


def encode(keypoints, visible, *, heatmap_size, sigma=2.0, mode="msra"):
    """Gaussian heatmap targets for keypoints given in HEATMAP pixels.

    Taught in ``02_gaussian_heatmaps.ipynb``.

    Args:
        keypoints: ``[..., K, 2]`` ``(x, y)`` in heatmap pixels (pixel ``i`` centred on ``i``).
        visible: ``[..., K]`` COCO visibility (0 not labelled, 1 occluded, 2 visible) or bool.
        heatmap_size: ``(W, H)`` of the maps.
        sigma: standard deviation of the Gaussian in heatmap pixels, in
            ``[MIN_SIGMA, max(W, H)]`` (:func:`check_sigma`).
        mode: ``"msra"`` | ``"unbiased"`` | ``"udp"`` (see the module docstring).

    Returns:
        ``(heatmaps [..., K, H, W] float32, weights [..., K] float32)``; a keypoint with weight 0
        has an all-zero map. Vectorised over every leading axis and keypoint (no Python loop).
        Targets larger than ``MAX_OUTPUT_BYTES`` (2 GiB) are refused with ``ValueError``.

    Each map is the outer product of two 1-D Gaussian factors (the Gaussian is separable);
    ``msra``/``udp`` write only each keypoint's truncated patch into zeros, ``unbiased`` writes
    every map with one broadcast multiply. The maps are bit-identical to the per-keypoint loop of
    ``benchmarks/bench_encode.py``.
    """
    kp, labelled, (width, height), sigma = _check_inputs(
        keypoints, visible, heatmap_size, sigma, mode
    )
    size = math.prod(kp.shape[:-1]) * width * height * 4
    if size > MAX_OUTPUT_BYTES:
        raise ValueError(
            f"heatmap_size: {kp.shape[:-1]} maps of {width} x {height} would take "
            f"{size / 1024**3:.1f} GiB (at most {MAX_OUTPUT_BYTES / 1024**3:.0f} GiB): encode "
            "smaller batches or smaller maps"
        )
    weights = _weights(kp, labelled, width, height, sigma, mode)
    flat = kp.reshape(-1, 2)
    kept = np.flatnonzero(weights.reshape(-1) > 0)
    if mode == "unbiased":
        heatmaps = _encode_unbiased(flat, kept, width, height, sigma)
    else:
        heatmaps = _encode_patch(flat, kept, width, height, sigma, mode)
    return heatmaps.reshape(*kp.shape[:-1], height, width), weights


def _gaussian_1d(offsets, sigma):
    """``exp(-d^2 / (2 sigma^2))`` in float64, rounded once to float32.

    The 2-D Gaussian is separable, ``exp(-(dx^2 + dy^2) / 2s^2) = exp(-dx^2 / 2s^2) *
    exp(-dy^2 / 2s^2)``: a map is the outer product of one 1-D factor per axis. Each factor is
    computed exactly as MMPose's loop code computes its 1-D kernels, so the float32 products are
    bit-identical to the per-keypoint loop (``benchmarks/bench_encode.py``).
    """
    return np.exp(-(offsets**2) / (2.0 * sigma * sigma)).astype(np.float32)


def _encode_unbiased(flat, kept, width, height, sigma):
    # Dense: every map is the outer product of its two 1-D factors, written straight into the
    # output by one broadcast multiply (no temporary the size of the output). A dropped
    # keypoint has all-zero factors, hence an all-zero map.
    m = flat.shape[0]
    gx = np.zeros((m, width), dtype=np.float32)
    gy = np.zeros((m, height), dtype=np.float32)
    gx[kept] = _gaussian_1d(np.arange(width, dtype=np.float64) - flat[kept, 0:1], sigma)
    gy[kept] = _gaussian_1d(np.arange(height, dtype=np.float64) - flat[kept, 1:2], sigma)
    out = np.empty((m, height, width), dtype=np.float32)
    return np.multiply(gy[:, :, None], gx[:, None, :], out=out)


def _encode_patch(flat, kept, width, height, sigma, mode):
    # Sparse: only the (2r+1)^2 patch of each kept keypoint is written, as the outer product of
    # two short 1-D factors, through a (2r+1) x (2r+1) window of the output. At a border the
    # window slides back inside the map (so no write ever leaves its own map) and the factors
    # are zero where the window leaves the patch (the truncation |offset| <= r).
    m = flat.shape[0]
    out = np.zeros((m, height, width), dtype=np.float32)  # untouched pages cost nothing
    if kept.size == 0:
        return out
    r = patch_radius(sigma)
    win_w, win_h = min(2 * r + 1, width), min(2 * r + 1, height)
    pts = flat[kept]
    centre = round_half_up(pts).astype(np.int64)  # [M, 2] rounded centres (inside the map)
    left = np.clip(centre[:, 0] - r, 0, width - win_w)
    top = np.clip(centre[:, 1] - r, 0, height - win_h)
    dx = left[:, None] + np.arange(win_w) - centre[:, 0:1]  # [M, win_w] in [-3r, 3r]
    dy = top[:, None] + np.arange(win_h) - centre[:, 1:2]  # [M, win_h] in [-3r, 3r]
    if mode == "msra":  # the same Gaussian for every keypoint: look it up, zero past r
        table = np.zeros(6 * r + 1, dtype=np.float32)
        table[2 * r:4 * r + 1] = _gaussian_1d(np.arange(-r, r + 1, dtype=np.float64), sigma)
        gx, gy = table[dx + 3 * r], table[dy + 3 * r]
    else:  # udp: sub-pixel centre inside the patch around the rounded centre
        frac = pts - centre
        gx = np.where(np.abs(dx) <= r, _gaussian_1d(dx - frac[:, 0:1], sigma), 0.0)
        gy = np.where(np.abs(dy) <= r, _gaussian_1d(dy - frac[:, 1:2], sigma), 0.0)
    windows = np.lib.stride_tricks.sliding_window_view(
        out.reshape(m * height, width), (win_h, win_w), writeable=True
    )
    windows[kept * height + top, left] = gy[:, :, None] * gx[:, None, :]
    return out


def quantization_error(x, stride: float) -> np.ndarray:
    """Error (input pixels) of the MSRA target's argmax for a keypoint at input pixel ``x``.

    The target peaks at ``round(x / stride)`` heatmap pixels, read back as that times ``stride``;
    the error is ``round(x / stride) * stride - x`` (signed, in ``[-stride/2, stride/2)``).
    Taught in ``02_gaussian_heatmaps.ipynb``.
    """
    if not float(stride) > 0:
        raise ValueError(f"stride: expected a positive number, got {stride!r}")
    x = np.asarray(x, dtype=np.float64)
    return round_half_up(x / stride) * stride - x
