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
* ``quarter``: ``x += 0.25 * sign(h[y, x+1] - h[y, x-1])`` when ``1 <= x <= W-2`` (same for
  ``y`` with rows), computed on the raw map.
* ``dark`` (Zhang et al., "Distribution-Aware Coordinate Representation", CVPR 2020, as MMPose's
  ``refine_keypoints_dark``): blur the map with a Gaussian (OpenCV's kernel for ``blur_kernel``,
  zero padding), rescale it to the original maximum, take ``log(max(value, 1e-10))``, then one
  Newton step ``-H^-1 g`` from the integer argmax of the RAW map, with central differences
  ``dx = (L[x+1] - L[x-1]) / 2``, ``dxx = (L[x+2] - 2 L[x] + L[x-2]) / 4`` and
  ``dxy = (L[y+1,x+1] - L[y-1,x+1] - L[y+1,x-1] + L[y-1,x-1]) / 4``; refined only when
  ``2 <= x <= W-3`` and ``2 <= y <= H-3``.

  **Our deliberate departure from MMPose**, which applies the step whenever ``det(H) != 0``: the
  step is applied only when the Hessian is negative definite (``dxx < 0`` and ``det > 0``: the
  quadratic model of the log-heatmap has a maximum), and each component is clipped to
  ``[-1, 1]`` heatmap pixel. Why: on a clean peak the step is below half a pixel and neither
  rule ever triggers, but on a noisy or flat map the Hessian is nearly singular or indefinite
  and the unclamped step moves the point by hundreds, even tens of thousands, of pixels, far
  outside the map (``06_decoding_dark.ipynb`` shows it). With our rule a refined point always
  stays within one pixel of the argmax, which is the only information a flat map carries.

  **Local window.** The blurred values are needed only at the 13 points of the stencil (within
  two pixels of the argmax), and a blurred value depends on the raw values within the kernel
  radius ``r`` of it. So :func:`decode` blurs a ``(2(r+2)+1)^2`` window around the argmax
  (zeros outside the map, as the full-map blur pads with zeros), separably, instead of the
  whole map, and rescales by the largest blurred value of the 5x5 centre instead of the whole
  blurred map. A positive scale cancels in the differences of logarithms, so the result equals
  the full-map blur (:func:`blur_heatmaps`, :func:`dark_loop`) except where the ``1e-10`` floor
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

METHODS = ("argmax", "quarter", "dark", "soft_argmax")
BACKENDS = ("numpy", "torch", "cpp")
LOG_FLOOR = 1e-10  # the log floor of DARK (MMPose)
MAX_STEP = 1.0  # each component of a DARK step is clipped to [-MAX_STEP, MAX_STEP] heatmap px
NO_KEYPOINT = -1.0  # the coordinates given to a map whose maximum is not positive

_SMALL_KERNELS = {  # OpenCV's fixed kernels for ksize <= 7 and sigma <= 0 (getGaussianKernel)
    1: [1.0],
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
    9: [v / 256 for v in (4, 13, 30, 51, 60, 51, 30, 13, 4)],  # OpenCV >= 5 (4.x computes it)
}


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _check_heatmaps(heatmaps: Any, *, min_ndim: int = 4, exact: bool = True) -> Any:
    """The heatmaps as float32 (numpy array or torch tensor, as given), after checking them."""
    if _is_torch(heatmaps):
        import torch

        x = heatmaps.detach()
        if not x.is_floating_point():
            raise ValueError(f"heatmaps: expected a floating-point tensor, got dtype {x.dtype}")
        x = x.float()
    else:
        if not isinstance(heatmaps, np.ndarray):
            raise ValueError(
                "heatmaps: expected a numpy array or a torch tensor, "
                f"got {type(heatmaps).__name__}"
            )
        if heatmaps.dtype not in (np.float16, np.float32, np.float64):
            raise ValueError(
                f"heatmaps: expected a float32 or float64 array, got dtype {heatmaps.dtype}"
            )
        x = np.ascontiguousarray(heatmaps, dtype=np.float32)
    shape = tuple(x.shape)
    if (exact and len(shape) != min_ndim) or len(shape) < min_ndim:
        want = "a 4-D array [N, K, H, W]" if exact else "an array [..., K, H, W]"
        raise ValueError(f"heatmaps: expected {want}, got shape {shape}")
    if shape[-1] < 1 or shape[-2] < 1:
        raise ValueError(f"heatmaps: expected maps of at least 1x1 pixel, got shape {shape}")
    host = x.numpy() if _is_torch(x) and x.device.type == "cpu" else x  # numpy is faster on CPU
    if _is_torch(host):
        finite = bool(torch.isfinite(host).all())
    else:
        finite = bool(np.isfinite(host).all())
    if not finite:
        if _is_torch(host):
            bad = int((~torch.isfinite(host)).sum())
        else:
            bad = int((~np.isfinite(host)).sum())
        raise ValueError(f"heatmaps: contains {bad} non-finite values (NaN or inf)")
    return x


def _check_kernel(blur_kernel: int) -> int:
    if isinstance(blur_kernel, bool) or not isinstance(blur_kernel, (int, np.integer)):
        raise ValueError(f"blur_kernel: expected an odd positive int, got {blur_kernel!r}")
    if blur_kernel < 1 or blur_kernel % 2 == 0:
        raise ValueError(f"blur_kernel: expected an odd positive int, got {blur_kernel}")
    return int(blur_kernel)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Building blocks: OpenCV's Gaussian kernel, the full-map modulation, the Taylor step
# ---------------------------------------------------------------------------------------------


def gaussian_kernel_1d(ksize: int) -> np.ndarray:
    """OpenCV's ``getGaussianKernel(ksize, 0)`` (float64, sums to 1), without importing cv2.

    ``sigma = 0.3 * ((ksize - 1) / 2 - 1) + 0.8`` (2.0 for ksize 11, the kernel DARK uses for
    sigma-2 targets); for ``ksize <= 9`` OpenCV (5.x) uses fixed tables instead.
    """
    ksize = _check_kernel(ksize)
    if ksize in _SMALL_KERNELS:
        return np.array(_SMALL_KERNELS[ksize], dtype=np.float64)
    sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) * 0.5
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def blur_heatmaps(heatmaps: np.ndarray, blur_kernel: int = 11) -> np.ndarray:
    """DARK's modulation of whole maps, exactly MMPose's ``gaussian_blur``: pad with zeros,
    ``cv2.GaussianBlur`` (kernel ``blur_kernel``, OpenCV's sigma), crop, and rescale each map so
    its maximum equals the original maximum. ``[..., H, W]`` float32 in, a new array out."""
    import cv2

    blur_kernel = _check_kernel(blur_kernel)
    maps = _check_heatmaps(heatmaps, min_ndim=2, exact=False)
    if _is_torch(maps):
        maps = maps.cpu().numpy()
    b = blur_kernel // 2
    h, w = maps.shape[-2:]
    out = np.empty_like(maps)
    for idx in np.ndindex(*maps.shape[:-2]):
        origin_max = maps[idx].max()
        padded = np.zeros((h + 2 * b, w + 2 * b), dtype=np.float32)
        padded[b : b + h, b : b + w] = maps[idx]
        blurred = cv2.GaussianBlur(padded, (blur_kernel, blur_kernel), 0)[b : b + h, b : b + w]
        bmax = blurred.max()
        out[idx] = blurred * (origin_max / bmax) if bmax != 0 else blurred
    return out


def taylor_step(log_patch: Any) -> Any:
    """DARK's Newton step from 5x5 patches of the log-modulated map centred on the argmax.

    ``log_patch`` is ``[..., 5, 5]`` (numpy or torch; rows are y, columns x; the argmax at
    ``[2, 2]``). Returns ``[..., 2]`` = ``(dx, dy)`` = ``-H^-1 g``, set to 0 where the Hessian is
    not negative definite and clipped to ``[-1, 1]`` per component (see the module docstring).
    """
    L = log_patch
    if _is_torch(L):
        import torch

        where, stack = torch.where, torch.stack

        def clip(v):
            return torch.clamp(v, -MAX_STEP, MAX_STEP)
    else:
        L = np.asarray(L, dtype=np.float64)
        where, stack = np.where, np.stack

        def clip(v):
            return np.clip(v, -MAX_STEP, MAX_STEP)

    if tuple(L.shape[-2:]) != (5, 5):
        raise ValueError(f"log_patch: expected an array [..., 5, 5], got shape {tuple(L.shape)}")
    c = L[..., 2, 2]
    dx = 0.5 * (L[..., 2, 3] - L[..., 2, 1])
    dy = 0.5 * (L[..., 3, 2] - L[..., 1, 2])
    dxx = 0.25 * (L[..., 2, 4] - 2 * c + L[..., 2, 0])
    dyy = 0.25 * (L[..., 4, 2] - 2 * c + L[..., 0, 2])
    dxy = 0.25 * (L[..., 3, 3] - L[..., 1, 3] - L[..., 3, 1] + L[..., 1, 1])
    det = dxx * dyy - dxy * dxy
    ok = (dxx < 0) & (det > 0)
    safe = where(ok, det, det * 0 + 1)
    sx = where(ok, -(dyy * dx - dxy * dy) / safe, dx * 0)
    sy = where(ok, -(dxx * dy - dxy * dx) / safe, dy * 0)
    return clip(stack([sx, sy], -1))


def _blur_matrix(blur_kernel: int) -> np.ndarray:
    """``G [5, S]`` with ``(G @ window @ G.T)[2 + dy, 2 + dx]`` = the blurred value at the
    offset ``(dx, dy)`` from the centre of an ``S x S`` window, ``S = 2 (r + 2) + 1``."""
    g = gaussian_kernel_1d(blur_kernel)
    r = blur_kernel // 2
    half = r + 2
    u = np.arange(2 * half + 1)[None, :] - half - (np.arange(5)[:, None] - 2)
    return np.where(np.abs(u) <= r, g[np.clip(u + r, 0, 2 * r)], 0.0)


def _windows_numpy(flat: np.ndarray, h: int, w: int, m, y, x, half: int) -> np.ndarray:
    """``[P, S, S]`` float64 windows of half-size ``half`` around ``(y, x)`` of maps ``m``
    (zeros outside the map)."""
    offs = np.arange(-half, half + 1)
    yy, xx = y[:, None] + offs, x[:, None] + offs
    inside = ((yy >= 0) & (yy < h))[:, :, None] & ((xx >= 0) & (xx < w))[:, None, :]
    lin = (m * (h * w))[:, None, None] + (np.clip(yy, 0, h - 1) * w)[:, :, None] \
        + np.clip(xx, 0, w - 1)[:, None, :]
    vals = np.take(flat.reshape(-1), lin).astype(np.float64)
    vals[~inside] = 0.0
    return vals


def _log_modulated(patch, peak, xp):
    """Rescale blurred 5x5 patches to the original maximum, floor at 1e-10, take the log."""
    pmax = patch.amax(dim=(-2, -1)) if xp.__name__ == "torch" else patch.max(axis=(-2, -1))
    scale = xp.where(pmax > 0, peak / xp.where(pmax > 0, pmax, pmax * 0 + 1), pmax * 0)
    return xp.log(xp.clip(patch * scale[:, None, None], LOG_FLOOR, None))


# ---------------------------------------------------------------------------------------------
# numpy backend
# ---------------------------------------------------------------------------------------------


def _refine_numpy(flat, h, w, m, y, x, peak, method, blur_kernel):
    """Sub-pixel offsets ``[P, 2]`` for integer positions ``(m, y, x)`` of maps ``flat[M, H*W]``."""
    off = np.zeros((len(m), 2), dtype=np.float64)
    if method == "quarter":
        ix, iy = (x >= 1) & (x <= w - 2), (y >= 1) & (y <= h - 2)
        right = flat[m, y * w + np.minimum(x + 1, w - 1)]
        left = flat[m, y * w + np.maximum(x - 1, 0)]
        below = flat[m, np.minimum(y + 1, h - 1) * w + x]
        above = flat[m, np.maximum(y - 1, 0) * w + x]
        off[:, 0] = np.where(ix, 0.25 * np.sign(right - left), 0.0)
        off[:, 1] = np.where(iy, 0.25 * np.sign(below - above), 0.0)
    elif method == "dark":
        sel = np.flatnonzero((x >= 2) & (x <= w - 3) & (y >= 2) & (y <= h - 3))
        if sel.size:
            half = blur_kernel // 2 + 2
            win = _windows_numpy(flat, h, w, m[sel], y[sel], x[sel], half)
            g = _blur_matrix(blur_kernel)
            patch = g @ win @ g.T
            logp = _log_modulated(patch, peak[sel].astype(np.float64), np)
            off[sel] = taylor_step(logp)
    return off


def _soft_argmax_numpy(flat, h, w, temperature, radius):
    logits = flat.astype(np.float64) * temperature
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    p3 = p.reshape(-1, h, w)
    x = p3.sum(axis=1) @ np.arange(w, dtype=np.float64)
    y = p3.sum(axis=2) @ np.arange(h, dtype=np.float64)
    xi = np.clip(np.round(x), 0, w - 1).astype(np.int64)
    yi = np.clip(np.round(y), 0, h - 1).astype(np.int64)
    mass = _windows_numpy(p, h, w, np.arange(len(p)), yi, xi, radius).sum(axis=(1, 2))
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

    offs = torch.arange(-half, half + 1, device=flat.device)
    yy, xx = y[:, None] + offs, x[:, None] + offs
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
        p = torch.softmax(flat.double() * temperature, dim=1)
        p3 = p.reshape(-1, h, w)
        x = p3.sum(dim=1) @ torch.arange(w, dtype=torch.float64, device=dev)
        y = p3.sum(dim=2) @ torch.arange(h, dtype=torch.float64, device=dev)
        xi = torch.round(x).clamp(0, w - 1).long()
        yi = torch.round(y).clamp(0, h - 1).long()
        m = torch.arange(n * k, device=dev)
        scores = _windows_torch(p, h, w, m, yi, xi, radius).sum(dim=(1, 2))
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
            ix, iy = (px >= 1) & (px <= w - 2), (py >= 1) & (py <= h - 2)
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
                win = _windows_torch(flat, h, w, m, ys, xs, blur_kernel // 2 + 2)
                g = torch.as_tensor(_blur_matrix(blur_kernel), device=dev)
                patch = g @ win @ g.T
                logp = _log_modulated(patch, scores[m].double(), torch)
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
    once and uses numpy; ``soft_argmax`` always runs in numpy). ``temperature`` and ``radius``
    are used by ``soft_argmax`` only. Taught in ``06_decoding_dark.ipynb``.
    """
    _check_choice("method", method, METHODS)
    _check_choice("backend", backend, BACKENDS)
    blur_kernel = _check_kernel(blur_kernel)
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius: expected a non-negative int, got {radius!r}")
    maps = _check_heatmaps(heatmaps)
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
    from scipy import ndimage

    _check_choice("method", method, ("argmax", "quarter", "dark"))
    blur_kernel = _check_kernel(blur_kernel)
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
    coords = np.full((n, k, max_peaks, 2), NO_KEYPOINT, dtype=np.float32)
    scores = np.zeros((n, k, max_peaks), dtype=np.float32)
    counts = np.zeros((n, k), dtype=np.int64)
    pooled = ndimage.maximum_filter(
        maps, size=(1, 1, nms_kernel, nms_kernel), mode="constant", cval=-np.inf
    )
    peaks = (maps == pooled) & (maps >= threshold)
    structure = np.zeros((3, 3, 3, 3), dtype=bool)
    structure[1, 1] = True  # 8-connectivity inside one map, never across maps
    labels, num = ndimage.label(peaks, structure=structure)
    if num == 0:
        return coords, scores, counts
    _, first = np.unique(labels.ravel(), return_index=True)
    first = first[1:]  # label 0 is the background
    m, yx = np.divmod(first, h * w)
    y, x = np.divmod(yx, w)
    flat = maps.reshape(n * k, h * w)
    vals = flat[m, yx]
    order = np.lexsort((first, -vals, m))  # by map, then highest value, then row-major
    m, y, x, vals = m[order], y[order], x[order], vals[order]
    start = np.searchsorted(m, m, side="left")
    rank = np.arange(len(m)) - start
    keep = rank < max_peaks
    m, y, x, vals, rank = m[keep], y[keep], x[keep], vals[keep], rank[keep]
    pts = np.stack([x, y], -1).astype(np.float64)
    if method != "argmax":
        pts += _refine_numpy(flat, h, w, m, y, x, vals, method, blur_kernel)
    ni, ki = np.divmod(m, k)
    coords[ni, ki, rank] = pts
    scores[ni, ki, rank] = vals
    np.add.at(counts, (ni, ki), 1)
    return coords, scores, counts


def dark_loop(heatmaps: np.ndarray, blur_kernel: int = 11, *, safe: bool = True) -> np.ndarray:
    """The plain per-keypoint DARK of ``06_decoding_dark.ipynb`` (MMPose style): full-map blur
    (:func:`blur_heatmaps`), then a Python loop over keypoints. ``safe=False`` applies any step
    whose Hessian is invertible, unclamped, as MMPose does. Returns ``coords [N, K, 2]`` float64.
    The test oracle of :func:`decode` and the baseline of ``benchmarks/bench_decode.py``."""
    maps = _check_heatmaps(heatmaps)
    if _is_torch(maps):
        maps = maps.cpu().numpy()
    n, k, h, w = maps.shape
    logs = np.log(np.maximum(blur_heatmaps(maps, blur_kernel), LOG_FLOOR))
    coords = np.zeros((n, k, 2))
    for i in range(n):
        for j in range(k):
            hm, L = maps[i, j], logs[i, j]
            y, x = np.unravel_index(int(np.argmax(hm)), hm.shape)
            if hm[y, x] <= 0:
                coords[i, j] = NO_KEYPOINT
                continue
            coords[i, j] = x, y
            if not (2 <= x <= w - 3 and 2 <= y <= h - 3):
                continue
            dx = 0.5 * (L[y, x + 1] - L[y, x - 1])
            dy = 0.5 * (L[y + 1, x] - L[y - 1, x])
            dxx = 0.25 * (L[y, x + 2] - 2 * L[y, x] + L[y, x - 2])
            dyy = 0.25 * (L[y + 2, x] - 2 * L[y, x] + L[y - 2, x])
            dxy = 0.25 * (L[y + 1, x + 1] - L[y - 1, x + 1] - L[y + 1, x - 1] + L[y - 1, x - 1])
            hessian = np.array([[dxx, dxy], [dxy, dyy]], dtype=np.float64)
            det = dxx * dyy - dxy * dxy
            if safe and not (dxx < 0 and det > 0):
                continue
            if det == 0:
                continue
            step = -np.linalg.solve(hessian, np.array([dx, dy], dtype=np.float64))
            coords[i, j] += np.clip(step, -MAX_STEP, MAX_STEP) if safe else step
    return coords


def flip_back(heatmaps_flipped: Any, flip_pairs=FLIP_PAIRS, *, shift: bool = True) -> Any:
    """Heatmaps predicted on a horizontally flipped image, brought back to the original image.

    ``[..., K, H, W]`` numpy or torch (same type out). Mirror the columns, swap each left/right
    pair of channels, then, when ``shift`` (the MSRA convention), move every column one pixel
    right as HRNet does (``out[..., 1:] = out[..., :-1]``; column 0 is kept). Use
    ``shift=False`` under UDP. Why the shift: see ``06_decoding_dark.ipynb`` (flip test).
    """
    maps = _check_heatmaps(heatmaps_flipped, min_ndim=3, exact=False)
    k = maps.shape[-3]
    if any(not (0 <= a < k and 0 <= b < k) for a, b in flip_pairs):
        raise ValueError(f"flip_pairs: expected indices below K={k}, got {tuple(flip_pairs)}")
    perm = flip_index(k, tuple(flip_pairs))
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
    """Decode ``[N, K, H, W]`` heatmaps and map the points to IMAGE pixels.

    ``center``/``scale`` are ``[N, 2]`` (or ``[2]`` for N = 1) as
    ``transforms.box_to_center_scale`` gives them, ``input_size`` the crop's ``(W, H)``,
    ``rotation`` a number or ``[N]`` degrees. Heatmap px -> crop px with
    ``transforms.heatmap_to_crop``, then crop -> image with ``transforms.crop_to_image`` (the
    inverses of ``03_topdown_data.ipynb``). Returns numpy ``(keypoints [N, K, 2] float64,
    scores [N, K])``; maps without a keypoint keep the marker ``(-1, -1)``.
    """
    from course_lib import transforms

    coords, scores = decode(heatmaps, method=method, blur_kernel=blur_kernel, backend=backend)
    if _is_torch(coords):
        coords, scores = coords.cpu().numpy(), scores.cpu().numpy()
    n, k, h, w = tuple(heatmaps.shape)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 2)
    rotation = np.broadcast_to(np.asarray(rotation, dtype=np.float64), (n,))
    if len(center) != n or len(scale) != n:
        raise ValueError(
            f"center, scale: expected {n} rows (one per instance), got {len(center)} and "
            f"{len(scale)}"
        )
    out = np.empty((n, k, 2), dtype=np.float64)
    for i in range(n):
        crop = transforms.heatmap_to_crop(coords[i].astype(np.float64), input_size, (w, h),
                                          udp=udp)
        out[i] = transforms.crop_to_image(crop, center[i], scale[i], input_size,
                                          float(rotation[i]), udp=udp)
    out[scores <= 0] = NO_KEYPOINT
    return out, scores
