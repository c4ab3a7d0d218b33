"""The math of DARK that the numpy and the C++ decoders share: the blur kernel and the Newton step.

Taught in ``06_decoding_dark.ipynb`` (derived there) and ``07_dark_cpp.ipynb`` (the same step in
C++, ``cpp/dark_decoder.cpp``: ``newton_step`` there is :func:`newton_step` here, line by line).
``course_lib.decode`` and ``course_lib.native`` both import this module; it imports neither.

DARK (Zhang et al., CVPR 2020; MMPose's ``refine_keypoints_dark``) refines the integer argmax of a
heatmap by one Newton step on the logarithm of the blurred ("modulated") map:

* **kernel**: OpenCV's ``getGaussianKernel(ksize, 0)``, :func:`gaussian_kernel_1d`;
* **derivatives** at the argmax, by central differences on the log-map ``L``
  (:func:`derivatives`): ``dx = (L[x+1] - L[x-1]) / 2``, ``dxx = (L[x+2] - 2 L[x] + L[x-2]) / 4``
  (the step-2 stencil, as MMPose), ``dxy = (L[y+1,x+1] - L[y-1,x+1] - L[y+1,x-1] + L[y-1,x-1]) / 4``;
* **Newton step** ``-H^-1 g`` (:func:`newton_step`) with the course's **safety rule**, our one
  deliberate departure from MMPose (which steps whenever ``det(H) != 0``): step only where the
  Hessian is negative definite (``dxx < 0`` and ``det > 0``: the quadratic model has a maximum),
  and clip each component to ``[-MAX_STEP, MAX_STEP]``. On a clean peak neither rule triggers;
  on a flat or noisy map MMPose's step can move a point tens of thousands of pixels away.

The decoders blur only a small window around the argmax (:func:`blur_matrix`); :func:`dark_loop`
is the plain reference they are tested against: the whole map blurred (:func:`blur_heatmaps`,
exactly MMPose's ``gaussian_blur``), then a Python loop over keypoints.

Both decoders also share their input checks (:func:`check_heatmaps`, :func:`check_kernel_for`,
:func:`check_temperature`), so they refuse the same input with the same message: in particular
a ``blur_kernel`` above :func:`max_kernel` (``2 * max(H, W, 5) + 1``), whose blur is flat over
the map and whose window would grow without bound.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LOG_FLOOR = 1e-10  # values below it are floored before the log (MMPose)
MAX_STEP = 1.0  # each component of a step is clipped to [-MAX_STEP, MAX_STEP] heatmap px
MAX_KERNEL = 2**21 + 1  # the widest kernel at all (16 MiB of weights); per map: max_kernel()

_SMALL_KERNELS = {  # OpenCV's fixed kernels for ksize <= 9 and sigma <= 0 (getGaussianKernel)
    1: [1.0],
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
    9: [v / 256 for v in (4, 13, 30, 51, 60, 51, 30, 13, 4)],  # OpenCV >= 5 (4.x computes it)
}


# ---------------------------------------------------------------------------------------------
# Input checks shared by the decoders (course_lib.decode, course_lib.native)
# ---------------------------------------------------------------------------------------------


def check_kernel(blur_kernel: Any) -> int:
    """``blur_kernel`` as an int after checking that it is odd, positive and at most
    ``MAX_KERNEL`` (the bound without a map; :func:`check_kernel_for` bounds it by the map)."""
    if isinstance(blur_kernel, bool) or not isinstance(blur_kernel, (int, np.integer)):
        raise ValueError(f"blur_kernel: expected an odd positive int, got {blur_kernel!r}")
    if blur_kernel < 1 or blur_kernel % 2 == 0:
        raise ValueError(f"blur_kernel: expected an odd positive int, got {blur_kernel}")
    if blur_kernel > MAX_KERNEL:
        raise ValueError(f"blur_kernel: expected at most {MAX_KERNEL}, got {blur_kernel}")
    return int(blur_kernel)


def max_kernel(height: int, width: int) -> int:
    """The widest blur kernel for maps of ``height x width``: ``2 * max(H, W, 5) + 1``. A wider
    Gaussian blurs the whole map flat, and its window would grow without bound; maps under 5
    pixels are never refined, so the default 11 is accepted for every map."""
    return 2 * max(int(height), int(width), 5) + 1


def check_kernel_for(blur_kernel: Any, height: int, width: int) -> int:
    """:func:`check_kernel`, and at most :func:`max_kernel` for maps of ``height x width``
    (numpy and C++ decoders refuse the same kernels, with this message)."""
    k = check_kernel(blur_kernel)
    most = max_kernel(height, width)
    if k > most:
        raise ValueError(
            f"blur_kernel: expected at most {most} (2 * max(H, W, 5) + 1 for maps of {height} x "
            f"{width}: a wider kernel blurs the whole map flat), got {k}"
        )
    return k


def is_torch(x: Any) -> bool:
    """True for a torch tensor (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _count_non_finite(x: Any) -> int:
    host = x.numpy() if is_torch(x) and x.device.type == "cpu" else x  # numpy is faster on CPU
    if is_torch(host):
        import torch

        return int((~torch.isfinite(host)).sum()) if not bool(torch.isfinite(host).all()) else 0
    return int((~np.isfinite(host)).sum()) if not np.isfinite(host).all() else 0


def check_heatmaps(heatmaps: Any, *, min_ndim: int = 4, exact: bool = True) -> Any:
    """The heatmaps as float32 (numpy array or torch tensor, as given), after checking them:
    a float array of ``min_ndim`` dimensions (at least, unless ``exact``), maps of at least
    1x1 pixel, finite values (``ValueError`` naming what is wrong otherwise)."""
    if is_torch(heatmaps):
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
    bad = _count_non_finite(x)
    if bad:
        raise ValueError(f"heatmaps: contains {bad} non-finite values (NaN or inf)")
    return x


def check_temperature(temperature: Any) -> float:
    """The soft-argmax ``temperature`` as a float: a positive, finite number (``inf`` would make
    every logit ``inf`` or ``NaN``; large finite values are safe, see ``course_lib.decode``)."""
    ok = isinstance(temperature, (int, float, np.integer, np.floating)) and \
        not isinstance(temperature, (bool, np.bool_))
    value = float(temperature) if ok else float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"temperature: expected a positive finite number, got {temperature!r}")
    return value


def gaussian_kernel_1d(ksize: int) -> np.ndarray:
    """OpenCV's ``getGaussianKernel(ksize, 0)`` (float64, sums to 1), without importing cv2.

    ``sigma = 0.3 * ((ksize - 1) / 2 - 1) + 0.8`` (2.0 for ksize 11, the kernel DARK uses for
    sigma-2 targets); for ``ksize <= 9`` OpenCV (5.x) uses fixed tables instead.
    """
    ksize = check_kernel(ksize)
    if ksize in _SMALL_KERNELS:
        return np.array(_SMALL_KERNELS[ksize], dtype=np.float64)
    sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) * 0.5
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def derivatives(log_patch: Any) -> tuple[Any, Any, Any, Any, Any]:
    """``(dx, dy, dxx, dyy, dxy)`` of ``[..., 5, 5]`` log patches centred on the argmax (rows are
    y, columns x), by central differences; second derivatives with the step-2 stencil."""
    L = log_patch
    if tuple(L.shape[-2:]) != (5, 5):
        raise ValueError(f"log_patch: expected an array [..., 5, 5], got shape {tuple(L.shape)}")
    c = L[..., 2, 2]
    dx = 0.5 * (L[..., 2, 3] - L[..., 2, 1])
    dy = 0.5 * (L[..., 3, 2] - L[..., 1, 2])
    dxx = 0.25 * (L[..., 2, 4] - 2 * c + L[..., 2, 0])
    dyy = 0.25 * (L[..., 4, 2] - 2 * c + L[..., 0, 2])
    dxy = 0.25 * (L[..., 3, 3] - L[..., 1, 3] - L[..., 3, 1] + L[..., 1, 1])
    return dx, dy, dxx, dyy, dxy


def newton_step(dx: Any, dy: Any, dxx: Any, dyy: Any, dxy: Any) -> Any:
    """``[..., 2]`` = ``(sx, sy)`` = ``-H^-1 g`` with the safety rule (module docstring): 0 where
    the Hessian ``[[dxx, dxy], [dxy, dyy]]`` is not negative definite, each component clipped to
    ``[-MAX_STEP, MAX_STEP]``. numpy or torch arrays (same type out)."""
    if hasattr(dx, "detach"):
        import torch

        where, stack, clip = torch.where, torch.stack, torch.clamp
    else:
        where, stack, clip = np.where, np.stack, np.clip
    det = dxx * dyy - dxy * dxy
    ok = (dxx < 0) & (det > 0)
    safe = where(ok, det, det * 0 + 1)  # no division by zero where the step is not taken
    sx = where(ok, -(dyy * dx - dxy * dy) / safe, dx * 0)
    sy = where(ok, -(dxx * dy - dxy * dx) / safe, dy * 0)
    return clip(stack([sx, sy], -1), -MAX_STEP, MAX_STEP)


def taylor_step(log_patch: Any) -> Any:
    """DARK's step from ``[..., 5, 5]`` log-modulated patches (numpy float64 or torch):
    :func:`newton_step` of :func:`derivatives`. Returns ``[..., 2]`` = ``(dx, dy)``."""
    if not hasattr(log_patch, "detach"):
        log_patch = np.asarray(log_patch, dtype=np.float64)
    return newton_step(*derivatives(log_patch))


def blur_matrix(blur_kernel: int) -> np.ndarray:
    """``G [5, S]`` with ``(G @ window @ G.T)[2 + dy, 2 + dx]`` = the blurred value at the
    offset ``(dx, dy)`` from the centre of an ``S x S`` window, ``S = 2 (r + 2) + 1``: the blur
    restricted to the 5x5 points the derivatives need."""
    g = gaussian_kernel_1d(blur_kernel)
    r = blur_kernel // 2
    half = r + 2
    u = np.arange(2 * half + 1)[None, :] - half - (np.arange(5)[:, None] - 2)
    return np.where(np.abs(u) <= r, g[np.clip(u + r, 0, 2 * r)], 0.0)


def log_modulated(patch: Any, peak: Any) -> Any:
    """Rescale blurred ``[P, 5, 5]`` patches to the original maximum ``peak [P]`` (by each patch's
    largest value: the scale cancels in the differences of logs), floor at ``LOG_FLOOR``, log."""
    if hasattr(patch, "detach"):
        import torch as xp

        pmax = patch.amax(dim=(-2, -1))
    else:
        xp = np
        pmax = patch.max(axis=(-2, -1))
    scale = xp.where(pmax > 0, peak / xp.where(pmax > 0, pmax, pmax * 0 + 1), pmax * 0)
    return xp.log(xp.clip(patch * scale[:, None, None], LOG_FLOOR, None))


# ---------------------------------------------------------------------------------------------
# The plain reference, MMPose style: full-map blur, then a Python loop over keypoints
# ---------------------------------------------------------------------------------------------


def _as_maps(heatmaps: Any, *, min_ndim: int) -> np.ndarray:
    """Heatmaps ``[..., H, W]`` (numpy or torch) as a float32 numpy array, checked."""
    if hasattr(heatmaps, "detach"):
        heatmaps = heatmaps.detach().cpu().numpy()
    maps = np.asarray(heatmaps, dtype=np.float32)
    if (min_ndim == 4 and maps.ndim != 4) or maps.ndim < min_ndim:
        want = "a 4-D array [N, K, H, W]" if min_ndim == 4 else "an array [..., H, W]"
        raise ValueError(f"heatmaps: expected {want}, got shape {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("heatmaps: contains non-finite values (NaN or inf)")
    return maps


def blur_heatmaps(heatmaps: np.ndarray, blur_kernel: int = 11) -> np.ndarray:
    """DARK's modulation of whole maps, exactly MMPose's ``gaussian_blur``: pad with zeros,
    ``cv2.GaussianBlur`` (kernel ``blur_kernel``, OpenCV's sigma), crop, and rescale each map so
    its maximum equals the original maximum. ``[..., H, W]`` float32 in, a new array out."""
    maps = _as_maps(heatmaps, min_ndim=2)
    h, w = maps.shape[-2:]
    blur_kernel = check_kernel_for(blur_kernel, h, w)
    import cv2

    b = blur_kernel // 2
    out = np.empty_like(maps)
    for idx in np.ndindex(*maps.shape[:-2]):
        origin_max = maps[idx].max()
        padded = np.zeros((h + 2 * b, w + 2 * b), dtype=np.float32)
        padded[b : b + h, b : b + w] = maps[idx]
        blurred = cv2.GaussianBlur(padded, (blur_kernel, blur_kernel), 0)[b : b + h, b : b + w]
        bmax = blurred.max()
        out[idx] = blurred * (origin_max / bmax) if bmax != 0 else blurred
    return out


def dark_loop(heatmaps: np.ndarray, blur_kernel: int = 11, *, safe: bool = True) -> np.ndarray:
    """The plain per-keypoint DARK of ``06_decoding_dark.ipynb`` (MMPose style): full-map blur
    (:func:`blur_heatmaps`), then a Python loop over keypoints. ``safe=False`` applies any step
    whose Hessian is invertible, unclamped, as MMPose does. Returns ``coords [N, K, 2]`` float64.
    The test oracle of ``course_lib.decode.decode``, the baseline of ``benchmarks/bench_decode.py``.
    """
    maps = _as_maps(heatmaps, min_ndim=4)
    n, k, h, w = maps.shape
    logs = np.log(np.maximum(blur_heatmaps(maps, blur_kernel), LOG_FLOOR))
    coords = np.zeros((n, k, 2))
    for i in range(n):
        for j in range(k):
            hm, L = maps[i, j], logs[i, j]
            y, x = np.unravel_index(int(np.argmax(hm)), hm.shape)
            if hm[y, x] <= 0:
                coords[i, j] = -1.0
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
