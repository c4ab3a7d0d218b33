"""A drop-in for the ``heatmaps_to_keypoints`` package: ``decode_heatmaps(heatmaps)``.

Taught in ``07_dark_cpp.ipynb``. That package decodes ``[N, K, H, W]`` heatmaps in C++ and
returns, per image and keypoint, an object with ``.x``, ``.y`` (normalised to ``[0, 1]``) and
``.score``. Users of it can switch to the course's decoder by changing one import::

    from course_lib.heatmaps_to_keypoints import decode_heatmaps
    results = decode_heatmaps(heatmaps)          # heatmaps: float32 [N, K, H, W], CPU, contiguous
    nose = results[0][0]; print(nose.x, nose.y, nose.score)

Decoding is DARK with the rules of ``course_lib.decode`` (the C++ backend of
``course_lib.native`` when it is available, numpy otherwise: identical results).

Normalisation (our choice, stated because the package's text only says "[0, 1]"): the MSRA
pixel convention of the course, where heatmap pixel ``i`` covers ``[i - 0.5, i + 0.5)`` and a
heatmap coordinate is an input-crop coordinate divided by the stride. So ``x = x_hm / W`` and
``y = y_hm / H``: multiply by the crop's width and height to get crop pixels
(``x * input_width == x_hm * stride``). Decoded points lie in ``[0, (W - 1) / W]``. A map whose
maximum is not positive holds no keypoint: its ``x`` and ``y`` are ``-1.0`` (outside
``[0, 1]``) and its ``score`` is that maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Keypoint:
    """One decoded keypoint: ``x``, ``y`` normalised to ``[0, 1]`` (``-1`` when absent)."""

    x: float
    y: float
    score: float


def _check_input(heatmaps: Any) -> np.ndarray:
    """The package's input rules: float32, 4 dimensions, on the CPU, contiguous."""
    if hasattr(heatmaps, "detach") and hasattr(heatmaps, "device"):  # a torch tensor
        if heatmaps.device.type != "cpu":
            raise ValueError(
                f"heatmaps: expected a CPU tensor, got one on {heatmaps.device} "
                "(call .cpu() first)"
            )
        if str(heatmaps.dtype) != "torch.float32":
            raise ValueError(f"heatmaps: expected dtype float32, got {heatmaps.dtype}")
        if heatmaps.dim() != 4:
            raise ValueError(
                f"heatmaps: expected 4 dimensions [N, K, H, W], got shape {tuple(heatmaps.shape)}"
            )
        if not heatmaps.is_contiguous():
            raise ValueError("heatmaps: expected a contiguous tensor (call .contiguous() first)")
        return heatmaps.detach().numpy()
    if not isinstance(heatmaps, np.ndarray):
        raise ValueError(
            f"heatmaps: expected a torch.Tensor or numpy array, got {type(heatmaps).__name__}"
        )
    if heatmaps.dtype != np.float32:
        raise ValueError(f"heatmaps: expected dtype float32, got {heatmaps.dtype}")
    if heatmaps.ndim != 4:
        raise ValueError(
            f"heatmaps: expected 4 dimensions [N, K, H, W], got shape {heatmaps.shape}"
        )
    if not heatmaps.flags.c_contiguous:
        raise ValueError(
            "heatmaps: expected a C-contiguous array (call np.ascontiguousarray first)"
        )
    return heatmaps


def to_normalized(coords: np.ndarray, heatmap_size: tuple[int, int]) -> np.ndarray:
    """Heatmap pixels ``[..., 2]`` -> normalised ``(x / W, y / H)``; ``(-1, -1)`` is kept."""
    w, h = heatmap_size
    coords = np.asarray(coords, dtype=np.float64)
    out = coords / np.array([w, h], dtype=np.float64)
    return np.where(coords == -1.0, -1.0, out)


def from_normalized(points: np.ndarray, heatmap_size: tuple[int, int]) -> np.ndarray:
    """The inverse of :func:`to_normalized`: ``(x * W, y * H)`` heatmap pixels; ``-1`` is kept."""
    w, h = heatmap_size
    points = np.asarray(points, dtype=np.float64)
    out = points * np.array([w, h], dtype=np.float64)
    return np.where(points == -1.0, -1.0, out)


def decode_heatmaps(heatmaps: Any) -> list[list[Keypoint]]:
    """Decode ``[N, K, H, W]`` float32 heatmaps (a CPU, contiguous torch tensor or numpy array)
    into ``results[n][k]`` :class:`Keypoint` objects (``.x``, ``.y`` in ``[0, 1]``, ``.score``).

    Sub-pixel refinement is DARK (``course_lib.decode`` rules). See the module docstring for the
    normalisation and for maps without a keypoint.
    """
    from course_lib.decode import decode

    maps = _check_input(heatmaps)
    n, k, h, w = maps.shape
    coords, scores = decode(maps, method="dark", backend="cpp")
    points = to_normalized(coords, (w, h))
    return [
        [Keypoint(float(points[i, j, 0]), float(points[i, j, 1]), float(scores[i, j]))
         for j in range(k)]
        for i in range(n)
    ]
