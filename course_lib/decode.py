"""Decoding heatmaps into keypoints: argmax, quarter offset, DARK, soft-argmax, several peaks, flip test.

Taught in ``06_decoding_dark.ipynb`` (the C++ twin of :func:`decode` is ``07_dark_cpp.ipynb``).

Conventions (shared with the C++ decoder, ``course_lib.native``):

* Heatmaps are ``[N, K, H, W]`` (numpy or torch, float32; float64 and float16 are converted to
  float32). Decoded coordinates are ``(x, y)`` in HEATMAP pixels: pixel ``i`` covers
  ``[i - 0.5, i + 0.5)`` and its centre is ``i``. :func:`decode_to_image` maps them back to
  image pixels through the inverse transforms of ``03_topdown_data.ipynb``.
* ``argmax``: the first maximum in row-major order (what ``numpy.argmax`` returns); the score is
  the map's maximum. A map whose maximum is not positive (``<= 0``) holds no keypoint: its
  coordinates are the marker ``(-1, -1)``, its score is that (non-positive) maximum, and it is
  never refined.
* ``quarter`` (as HRNet's and SimpleBaseline's ``get_final_preds``): ``x += 0.25 *
  sign(h[y, x+1] - h[y, x-1])`` and ``y += 0.25 * sign(h[y+1, x] - h[y-1, x])`` on the raw map,
  both only when ``1 < x < W-1 and 1 < y < H-1`` (``2 <= x <= W-2``, ``2 <= y <= H-2``): the
  reference tests the two axes jointly, so a peak in the first two or the last column keeps its
  integer y as well (MMPose's ``refine_keypoints`` uses the same bounds per axis).
* ``dark`` (Zhang et al., "Distribution-Aware Coordinate Representation", CVPR 2020, as MMPose's
  ``refine_keypoints_dark``): blur the map with a Gaussian (OpenCV's kernel for ``blur_kernel``,
  zero padding), rescale it to the original maximum, take ``log(max(value, 1e-10))``, then one
  Newton step from the integer argmax of the RAW map, refined only when ``2 <= x <= W-3`` and
  ``2 <= y <= H-3``. The derivatives, the step and the course's safety rule (step only where the
  Hessian is negative definite, each component clipped to one pixel; MMPose steps whenever
  ``det(H) != 0``) live in ``course_lib.dark``, shared with the C++ decoder.

  **Local window.** The blurred values are needed only at the 13 points of the stencil (within
  two pixels of the argmax), and a blurred value depends on the raw values within the kernel
  radius ``r`` of it. So :func:`decode` blurs a ``(2(r+2)+1)^2`` window around the argmax
  (zeros outside the map, as the full-map blur pads with zeros), separably, instead of the
  whole map, and rescales by the largest blurred value of the 5x5 centre instead of the whole
  blurred map. A positive scale cancels in the differences of logarithms, so the result equals
  the full-map blur (``dark.blur_heatmaps``, ``dark.dark_loop``) except where the ``1e-10`` floor
  bites (tested in ``tests/test_decode.py``).
* ``soft_argmax`` (as Lightning Pose decodes, with kornia's ``spatial_softmax2d``):
  ``p = softmax(temperature * h)`` over each map (the "temperature" MULTIPLIES the logits, so a
  larger value is sharper), coordinates = the expectation of the pixel-centre coordinates under
  ``p`` (pixel centres at integers, as above), score = the probability mass in the
  ``(2 * radius + 1)^2`` square around the rounded expectation (Lightning Pose: ``radius =
  floor(2 * 1.25) = 2``; it truncates the coordinates, we round them). No marker: a flat map
  gives the map's centre with a small score.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from course_lib.coco import FLIP_PAIRS, flip_index
from course_lib.dark import (
    blur_matrix,
    check_kernel,
    check_kernel_for,
    check_temperature,
    log_modulated,
    taylor_step,
)
from course_lib.dark import check_heatmaps as _check_heatmaps
from course_lib.dark import is_torch as _is_torch

METHODS = ("argmax", "quarter", "dark", "soft_argmax")
BACKENDS = ("numpy", "torch", "cpp")
NO_KEYPOINT = -1.0  # the coordinates given to a map whose maximum is not positive

# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _halves(half: int, h: int, w: int) -> tuple[int, int]:
    """A window's half-sizes ``(rows, columns)`` cut to the map: offsets beyond ``H - 1`` (or
    ``W - 1``) from a pixel of the map always fall outside it (zeros), so the window of a huge
    kernel or radius is never larger than about four times the map."""
    return min(half, h - 1), min(half, w - 1)


def _windows_numpy(flat: np.ndarray, h: int, w: int, m, y, x, half: tuple[int, int]) -> np.ndarray:
    """``[P, 2 hy + 1, 2 hx + 1]`` float64 windows of half-sizes ``half = (hy, hx)`` around
    ``(y, x)`` of maps ``m`` (zeros outside the map)."""
    yy = y[:, None] + np.arange(-half[0], half[0] + 1)
    xx = x[:, None] + np.arange(-half[1], half[1] + 1)
    inside = ((yy >= 0) & (yy < h))[:, :, None] & ((xx >= 0) & (xx < w))[:, None, :]
    lin = (m * (h * w))[:, None, None] + (np.clip(yy, 0, h - 1) * w)[:, :, None] \
        + np.clip(xx, 0, w - 1)[:, None, :]
    vals = np.take(flat.reshape(-1), lin).astype(np.float64)
    vals[~inside] = 0.0
    return vals


# ---------------------------------------------------------------------------------------------
# numpy backend
# ---------------------------------------------------------------------------------------------


def _refine_numpy(flat, h, w, m, y, x, peak, method, blur_kernel):
    """Sub-pixel offsets ``[P, 2]`` for integer positions ``(m, y, x)`` of maps ``flat[M, H*W]``."""
    off = np.zeros((len(m), 2), dtype=np.float64)
    if method == "quarter":
        ix = iy = (x >= 2) & (x <= w - 2) & (y >= 2) & (y <= h - 2)  # HRNet: jointly
        right = flat[m, y * w + np.minimum(x + 1, w - 1)]
        left = flat[m, y * w + np.maximum(x - 1, 0)]
        below = flat[m, np.minimum(y + 1, h - 1) * w + x]
        above = flat[m, np.maximum(y - 1, 0) * w + x]
        off[:, 0] = np.where(ix, 0.25 * np.sign(right - left), 0.0)
        off[:, 1] = np.where(iy, 0.25 * np.sign(below - above), 0.0)
    elif method == "dark":
        sel = np.flatnonzero((x >= 2) & (x <= w - 3) & (y >= 2) & (y <= h - 3))
        half = blur_kernel // 2 + 2
        hy, hx = _halves(half, h, w)
        g = blur_matrix(blur_kernel)
        gy, gx = g[:, half - hy:half + hy + 1], g[:, half - hx:half + hx + 1]
        for part in _chunks(sel, (2 * hy + 1) * (2 * hx + 1)):  # bounded temporaries
            win = _windows_numpy(flat, h, w, m[part], y[part], x[part], (hy, hx))
            logp = log_modulated(gy @ win @ gx.T, peak[part].astype(np.float64))
            off[part] = taylor_step(logp)
    return off


def _chunks(index: np.ndarray, per_item: int, budget: int = 1 << 22) -> list[np.ndarray]:
    """``index`` in pieces of at most ``budget`` window values (``per_item`` each)."""
    step = max(1, budget // max(per_item, 1))
    return [index[s:s + step] for s in range(0, len(index), step)]


def _soft_argmax_numpy(flat, h, w, temperature, radius):
    logits = flat.astype(np.float64)
    with np.errstate(over="ignore"):  # shifted logits are <= 0: at worst -inf, exp gives 0
        p = np.exp((logits - logits.max(axis=1, keepdims=True)) * temperature)
    p /= p.sum(axis=1, keepdims=True)
    p3 = p.reshape(-1, h, w)
    x = p3.sum(axis=1) @ np.arange(w, dtype=np.float64)
    y = p3.sum(axis=2) @ np.arange(h, dtype=np.float64)
    xi = np.clip(np.round(x), 0, w - 1).astype(np.int64)
    yi = np.clip(np.round(y), 0, h - 1).astype(np.int64)
    half = _halves(radius, h, w)
    mass = np.zeros(len(p))
    for part in _chunks(np.arange(len(p)), (2 * half[0] + 1) * (2 * half[1] + 1)):
        mass[part] = _windows_numpy(p, h, w, part, yi[part], xi[part], half).sum(axis=(1, 2))
    return np.stack([x, y], -1), mass


def _decode_numpy(maps, method, blur_kernel, temperature, radius):
    n, k, h, w = maps.shape
    flat = maps.reshape(n * k, h * w)
    if method == "soft_argmax":
        coords, scores = _soft_argmax_numpy(flat, h, w, temperature, radius)
    else:
        idx = flat.argmax(axis=1) if flat.shape[0] else np.zeros(0, dtype=np.int64)
        scores = flat[np.arange(n * k), idx]
        y, x = np.divmod(idx, w)
        coords = np.stack([x, y], -1).astype(np.float64)
        pos = np.flatnonzero(scores > 0)
        coords[scores <= 0] = NO_KEYPOINT
        if method != "argmax" and pos.size:
            coords[pos] += _refine_numpy(
                flat, h, w, pos, y[pos], x[pos], scores[pos], method, blur_kernel
            )
    return coords.reshape(n, k, 2).astype(np.float32), scores.reshape(n, k).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# torch backend (same rules; runs on the tensor's device)
# ---------------------------------------------------------------------------------------------


def _windows_torch(flat, h, w, m, y, x, half):
    import torch

    yy = y[:, None] + torch.arange(-half[0], half[0] + 1, device=flat.device)
    xx = x[:, None] + torch.arange(-half[1], half[1] + 1, device=flat.device)
    inside = ((yy >= 0) & (yy < h))[:, :, None] & ((xx >= 0) & (xx < w))[:, None, :]
    lin = yy.clamp(0, h - 1)[:, :, None] * w + xx.clamp(0, w - 1)[:, None, :]
    vals = flat[m[:, None, None], lin].double()
    return torch.where(inside, vals, torch.zeros_like(vals))


def _decode_torch(maps, method, blur_kernel, temperature, radius):
    import torch

    n, k, h, w = maps.shape
    flat = maps.reshape(n * k, h * w)
    dev = flat.device
    if method == "soft_argmax":
        logits = flat.double()
        p = torch.softmax((logits - logits.amax(dim=1, keepdim=True)) * temperature, dim=1)
        p3 = p.reshape(-1, h, w)
        x = p3.sum(dim=1) @ torch.arange(w, dtype=torch.float64, device=dev)
        y = p3.sum(dim=2) @ torch.arange(h, dtype=torch.float64, device=dev)
        xi = torch.round(x).clamp(0, w - 1).long()
        yi = torch.round(y).clamp(0, h - 1).long()
        m = torch.arange(n * k, device=dev)
        scores = _windows_torch(p, h, w, m, yi, xi, _halves(radius, h, w)).sum(dim=(1, 2))
        coords = torch.stack([x, y], -1)
    else:
        if flat.shape[0]:
            idx = flat.argmax(dim=1)  # the first maximal index, as numpy
            scores = flat.gather(1, idx[:, None])[:, 0]
        else:
            scores = flat.new_zeros(0)
            idx = torch.zeros(0, dtype=torch.long, device=dev)
        y, x = torch.div(idx, w, rounding_mode="floor"), idx % w
        coords = torch.stack([x, y], -1).double()
        coords[scores <= 0] = NO_KEYPOINT
        pos = torch.nonzero(scores > 0).flatten()
        if method == "quarter" and pos.numel():
            px, py = x[pos], y[pos]
            ix = iy = (px >= 2) & (px <= w - 2) & (py >= 2) & (py <= h - 2)  # HRNet: jointly
            right = flat[pos, py * w + (px + 1).clamp(max=w - 1)]
            left = flat[pos, py * w + (px - 1).clamp(min=0)]
            below = flat[pos, (py + 1).clamp(max=h - 1) * w + px]
            above = flat[pos, (py - 1).clamp(min=0) * w + px]
            zero = torch.zeros(len(pos), dtype=torch.float64, device=dev)
            offx = torch.where(ix, 0.25 * torch.sign(right - left).double(), zero)
            offy = torch.where(iy, 0.25 * torch.sign(below - above).double(), zero)
            coords[pos] += torch.stack([offx, offy], -1)
        elif method == "dark" and pos.numel():
            px, py = x[pos], y[pos]
            sel = torch.nonzero((px >= 2) & (px <= w - 3) & (py >= 2) & (py <= h - 3)).flatten()
            if sel.numel():
                m, ys, xs = pos[sel], py[sel], px[sel]
                half = blur_kernel // 2 + 2
                hy, hx = _halves(half, h, w)
                win = _windows_torch(flat, h, w, m, ys, xs, (hy, hx))
                g = torch.as_tensor(blur_matrix(blur_kernel), device=dev)
                patch = g[:, half - hy:half + hy + 1] @ win @ g[:, half - hx:half + hx + 1].T
                logp = log_modulated(patch, scores[m].double())
                coords[m] += taylor_step(logp)
    return coords.reshape(n, k, 2).float(), scores.reshape(n, k).float()


# ---------------------------------------------------------------------------------------------
# C++ backend (course_lib.native, 07_dark_cpp.ipynb)
# ---------------------------------------------------------------------------------------------


@functools.cache
def _warn_native_missing(reason: str) -> None:
    """Warn once per reason (the cache makes the second call a no-op)."""
    warnings.warn(
        f"decode(backend='cpp'): the C++ decoder is not available ({reason}); "
        "falling back to the numpy backend, which gives the same results more slowly. "
        "See 07_dark_cpp.ipynb to build it.",
        RuntimeWarning,
        stacklevel=3,
    )


def _native_module():
    """``course_lib.native`` when it is importable and its extension is built, else a reason."""
    try:
        from course_lib import native
    except Exception as exc:  # ImportError, or a build failure inside the import
        return None, f"importing course_lib.native failed: {type(exc).__name__}: {exc}"
    try:
        reason = native.unavailable_reason()  # silent: the one warning below says it
    except Exception as exc:
        return None, f"course_lib.native.unavailable_reason() raised {type(exc).__name__}: {exc}"
    return (None, reason) if reason else (native, "")


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def decode(
    heatmaps: Any,
    *,
    method: str = "dark",
    blur_kernel: int = 11,
    backend: str = "numpy",
    temperature: float = 20.0,
    radius: int = 2,
) -> tuple[Any, Any]:
    """Decode ``[N, K, H, W]`` heatmaps into ``(coords [N, K, 2], scores [N, K])``.

    ``coords`` are ``(x, y)`` in heatmap pixels (float32), ``scores`` float32; the rules of each
    ``method`` (argmax | quarter | dark | soft_argmax) are in the module docstring. Backends:
    ``numpy`` (returns numpy arrays), ``torch`` (returns tensors on the input's device), ``cpp``
    (``course_lib.native.decode``; numpy arrays; when the extension is not available it warns
    once and uses numpy; ``soft_argmax`` always runs in numpy). ``temperature`` (positive and
    finite; the logits are shifted by the map's maximum first, so a huge value is safe) and
    ``radius`` (cut to ``max(H, W)``: a larger square holds the same mass) are used by
    ``soft_argmax`` only; ``dark`` refuses a ``blur_kernel`` above ``2 * max(H, W, 5) + 1``
    (``course_lib.dark.check_kernel_for``, as the C++ decoder). Taught in
    ``06_decoding_dark.ipynb``.
    """
    _check_choice("method", method, METHODS)
    _check_choice("backend", backend, BACKENDS)
    blur_kernel = check_kernel(blur_kernel)
    temperature = check_temperature(temperature)
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius: expected a non-negative int, got {radius!r}")
    maps = _check_heatmaps(heatmaps)
    if method == "dark":
        blur_kernel = check_kernel_for(blur_kernel, *maps.shape[-2:])
    radius = min(int(radius), max(maps.shape[-2:]))  # a larger square holds the same mass
    if backend == "torch":
        import torch

        if not _is_torch(maps):
            maps = torch.from_numpy(maps)
        return _decode_torch(maps, method, blur_kernel, float(temperature), int(radius))
    if _is_torch(maps):
        maps = maps.cpu().numpy()
    if backend == "cpp" and method != "soft_argmax":
        native, reason = _native_module()
        if native is not None:
            coords, scores = native.decode(np.ascontiguousarray(maps), method, blur_kernel)
            return np.asarray(coords, dtype=np.float32), np.asarray(scores, dtype=np.float32)
        _warn_native_missing(reason)
    return _decode_numpy(maps, method, blur_kernel, float(temperature), int(radius))


def _ranked_peaks(maps: np.ndarray, threshold: float, nms_kernel: int, max_peaks: int):
    """``(map, y, x, value, rank)`` of the ``max_peaks`` highest peaks of each map (rank 0 the
    highest; one point per plateau, its first pixel in row-major order), or None."""
    from scipy import ndimage

    n, k, h, w = maps.shape
    pooled = ndimage.maximum_filter(
        maps, size=(1, 1, nms_kernel, nms_kernel), mode="constant", cval=-np.inf
    )
    peaks = (maps == pooled) & (maps >= threshold)
    structure = np.zeros((3, 3, 3, 3), dtype=bool)
    structure[1, 1] = True  # 8-connectivity inside one map, never across maps
    labels, num = ndimage.label(peaks, structure=structure)
    if num == 0:
        return None
    _, first = np.unique(labels.ravel(), return_index=True)
    first = first[1:]  # label 0 is the background
    m, yx = np.divmod(first, h * w)
    y, x = np.divmod(yx, w)
    vals = maps.reshape(n * k, h * w)[m, yx]
    order = np.lexsort((first, -vals, m))  # by map, then highest value, then row-major
    m, y, x, vals = m[order], y[order], x[order], vals[order]
    rank = np.arange(len(m)) - np.searchsorted(m, m, side="left")
    keep = rank < max_peaks
    return m[keep], y[keep], x[keep], vals[keep], rank[keep]


def decode_multi(
    heatmaps: Any,
    *,
    threshold: float,
    max_peaks: int,
    method: str = "dark",
    blur_kernel: int = 11,
    nms_kernel: int = 3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Several keypoints per map (one per person), as bottom-up methods decode.

    A pixel is a peak when it equals the max-pool of its ``nms_kernel`` x ``nms_kernel``
    neighbourhood (NMS) and its value is ``>= threshold`` (> 0). Peak pixels touching each other
    (8-connectivity) form a plateau of equal values: each plateau gives one point, its first
    pixel in row-major order (the argmax rule). The ``max_peaks`` highest peaks of each map are
    refined with ``method`` (argmax | quarter | dark, the same rules as :func:`decode`).

    Returns numpy ``coords [N, K, max_peaks, 2]`` (heatmap px; unused slots hold ``(-1, -1)``),
    ``scores [N, K, max_peaks]`` (peak values, highest first; unused slots 0) and
    ``counts [N, K]`` (int64, the number of peaks found, at most ``max_peaks``).
    """
    _check_choice("method", method, ("argmax", "quarter", "dark"))
    blur_kernel = check_kernel(blur_kernel)
    if not (isinstance(threshold, (int, float, np.floating)) and threshold > 0):
        raise ValueError(f"threshold: expected a positive number, got {threshold!r}")
    if isinstance(max_peaks, bool) or not isinstance(max_peaks, (int, np.integer)) or max_peaks < 1:
        raise ValueError(f"max_peaks: expected a positive int, got {max_peaks!r}")
    if isinstance(nms_kernel, bool) or not isinstance(nms_kernel, (int, np.integer)) or \
            nms_kernel < 1 or nms_kernel % 2 == 0:
        raise ValueError(f"nms_kernel: expected an odd positive int, got {nms_kernel!r}")
    maps = _check_heatmaps(heatmaps)
    if _is_torch(maps):
        maps = maps.cpu().numpy()
    n, k, h, w = maps.shape
    if method == "dark":
        blur_kernel = check_kernel_for(blur_kernel, h, w)
    coords = np.full((n, k, max_peaks, 2), NO_KEYPOINT, dtype=np.float32)
    scores = np.zeros((n, k, max_peaks), dtype=np.float32)
    counts = np.zeros((n, k), dtype=np.int64)
    found = _ranked_peaks(maps, threshold, nms_kernel, max_peaks)
    if found is None:
        return coords, scores, counts
    m, y, x, vals, rank = found
    flat = maps.reshape(n * k, h * w)
    pts = np.stack([x, y], -1).astype(np.float64)
    if method != "argmax":
        pts += _refine_numpy(flat, h, w, m, y, x, vals, method, blur_kernel)
    ni, ki = np.divmod(m, k)
    coords[ni, ki, rank] = pts
    scores[ni, ki, rank] = vals
    np.add.at(counts, (ni, ki), 1)
    return coords, scores, counts


def flip_back(heatmaps_flipped: Any, flip_pairs=FLIP_PAIRS, *, shift: bool = True) -> Any:
    """Heatmaps predicted on a horizontally flipped image, brought back to the original image.

    ``[..., K, H, W]`` numpy or torch (same type out). Mirror the columns, swap each left/right
    pair of channels, then, when ``shift`` (the MSRA convention), move every column one pixel
    right as HRNet does (``out[..., 1:] = out[..., :-1]``; column 0 is kept). Use
    ``shift=False`` under UDP. Why the shift: see ``06_decoding_dark.ipynb`` (flip test).
    """
    maps = _check_heatmaps(heatmaps_flipped, min_ndim=3, exact=False)
    perm = flip_index(maps.shape[-3], flip_pairs)  # refuses pairs out of range or overlapping
    if _is_torch(maps):
        import torch

        out = torch.flip(maps, dims=[-1])[..., torch.as_tensor(perm, device=maps.device), :, :]
        if shift and out.shape[-1] > 1:
            out[..., 1:] = out[..., :-1].clone()
        return out
    out = maps[..., perm, :, ::-1].copy()
    if shift and out.shape[-1] > 1:
        out[..., 1:] = out[..., :-1].copy()
    return out


def fuse_flip(heatmaps: Any, heatmaps_flipped: Any, flip_pairs=FLIP_PAIRS, *,
              shift: bool = True) -> Any:
    """The flip test: the average of ``heatmaps`` and :func:`flip_back` of ``heatmaps_flipped``
    (decode the result, not the two maps separately)."""
    maps = _check_heatmaps(heatmaps, min_ndim=3, exact=False)
    back = flip_back(heatmaps_flipped, flip_pairs, shift=shift)
    if tuple(maps.shape) != tuple(back.shape):
        raise ValueError(
            f"heatmaps_flipped: expected the shape of heatmaps {tuple(maps.shape)}, "
            f"got {tuple(back.shape)}"
        )
    return 0.5 * (maps + back)


def points_to_image(coords: Any, center: Any, scale: Any, input_size: tuple[int, int],
                    heatmap_size: tuple[int, int], rotation: Any = 0.0, *,
                    udp: bool = False) -> np.ndarray:
    """Points ``[N, K, 2]`` in heatmap pixels -> IMAGE pixels, crop by crop:
    ``transforms.heatmap_to_crop``, then ``transforms.crop_to_image`` (the inverses of
    ``03_topdown_data.ipynb``). ``center``/``scale`` ``[N, 2]`` (or ``[2]`` for N = 1) as
    ``transforms.box_to_center_scale`` gives them, ``rotation`` a number or ``[N]`` degrees,
    sizes ``(W, H)``. Any head's points map back this way (``course_lib.predict``)."""
    from course_lib import transforms

    coords = np.asarray(coords, dtype=np.float64)
    n = len(coords)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 2)
    rotation = np.broadcast_to(np.asarray(rotation, dtype=np.float64), (n,))
    if len(center) != n or len(scale) != n:
        raise ValueError(
            f"center, scale: expected {n} rows (one per instance), got {len(center)} and "
            f"{len(scale)}"
        )
    out = np.empty(coords.shape, dtype=np.float64)
    for i in range(n):
        crop = transforms.heatmap_to_crop(coords[i], input_size, heatmap_size, udp=udp)
        out[i] = transforms.crop_to_image(crop, center[i], scale[i], input_size,
                                          float(rotation[i]), udp=udp)
    return out


def decode_to_image(
    heatmaps: Any,
    center: Any,
    scale: Any,
    input_size: tuple[int, int],
    rotation: Any = 0.0,
    *,
    udp: bool = False,
    method: str = "dark",
    blur_kernel: int = 11,
    backend: str = "numpy",
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``[N, K, H, W]`` heatmaps and map the points to IMAGE pixels
    (:func:`points_to_image`). Returns numpy ``(keypoints [N, K, 2] float64, scores [N, K])``;
    maps without a keypoint keep the marker ``(-1, -1)``.
    """
    coords, scores = decode(heatmaps, method=method, blur_kernel=blur_kernel, backend=backend)
    if _is_torch(coords):
        coords, scores = coords.cpu().numpy(), scores.cpu().numpy()
    n, k, h, w = tuple(heatmaps.shape)
    out = points_to_image(coords, center, scale, input_size, (w, h), rotation, udp=udp)
    out[scores <= 0] = NO_KEYPOINT
    return out, scores
