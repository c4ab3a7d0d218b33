"""What every head of ``course_lib.heads`` shares: the interface, input checks, flips, windows.

Taught in ``10_beyond_heatmaps.ipynb``.

Pixel conventions (the course's MSRA ones, ``course_lib.transforms``): a crop of ``W_in`` input
pixels maps to ``W = W_in / stride`` heatmap pixels with ``x_hm = x_in / stride``; heatmap pixel
``i`` covers ``[i - 0.5, i + 0.5)`` and its centre is ``i``. A horizontal flip of the crop maps
``x_in -> (W_in - 1) - x_in``, that is, in heatmap pixels,

    u -> W - 1/stride - u                                       (1)

Mirroring the columns of a map sends column ``i`` to ``W - 1 - i``: that is (1) only up to
``1 - 1/stride`` pixels. :func:`flip_heatmaps` makes up for whole pixels only, the one-pixel
shift of HRNet (``course_lib.decode.flip_back``): a map flipped back from the mirrored crop
peaks ``1/stride`` heatmap pixels to the RIGHT of the original's (``+0.125`` px after the
flip-test average at stride 4, the figure ``tests/test_decode.py`` measures). Coordinates,
offsets and 1-D vectors can be flipped back exactly: see each head's ``flip_back``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib.coco import FLIP_PAIRS, flip_index


class Head(nn.Module):
    """The interface of every head: backbone features in, its output (a dataclass) out.

    ``forward(features [N, C, h, w]) -> output``; ``encode(keypoints_hm, visible)`` ->
    ``(targets dict of numpy arrays, weights [..., K])``; ``loss(output, targets, weights)`` ->
    scalar tensor; ``decode(output)`` -> ``(coords [N, K, 2] (x, y) heatmap px, scores [N, K])``;
    ``flip_back(output_of_mirrored_crop, flip_pairs)`` -> the output brought back to the crop.
    Subclasses set ``num_keypoints``, ``heatmap_size`` ``(W, H)`` and ``stride``.
    """

    num_keypoints: int
    heatmap_size: tuple[int, int]
    stride: float

    def encode(self, keypoints_hm: Any, visible: Any) -> tuple[dict, np.ndarray]:
        raise NotImplementedError

    def loss(self, output: Any, targets: dict, weights: Any) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, output: Any) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def flip_back(self, output: Any, flip_pairs=FLIP_PAIRS) -> Any:
        raise NotImplementedError

    def fuse_flip(self, output: Any, output_mirrored: Any, flip_pairs=FLIP_PAIRS) -> Any:
        """The flip test: the average of ``output`` and the flipped-back mirrored output."""
        return average_outputs(output, self.flip_back(output_mirrored, flip_pairs))


def average_outputs(a: Any, b: Any) -> Any:
    """Field-by-field average of two outputs of the same dataclass."""
    values = {f.name: 0.5 * (getattr(a, f.name) + getattr(b, f.name))
              for f in dataclasses.fields(a)}
    return dataclasses.replace(a, **values)


def check_size(size: Any, name: str = "heatmap_size") -> tuple[int, int]:
    """``(W, H)`` as two positive ints, or a ``ValueError`` naming ``name``."""
    try:
        width, height = size
        w, h = int(width), int(height)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected (W, H), two positive ints, got {size!r}") from None
    if w != width or h != height or w < 1 or h < 1:
        raise ValueError(f"{name}: expected (W, H), two positive ints, got {size!r}")
    return w, h


def check_positive(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive number, got {value!r}") from None
    if not math.isfinite(out) or out <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return out


def check_keypoints(keypoints: Any, visible: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(keypoints [..., K, 2] float64, labelled [..., K] bool)`` from numpy or torch input.

    Unlabelled keypoints (``visible <= 0``) may hold anything (NaN included): they are set to 0.
    """
    kp = np.asarray(keypoints.detach().cpu() if hasattr(keypoints, "detach") else keypoints)
    vis = np.asarray(visible.detach().cpu() if hasattr(visible, "detach") else visible)
    if kp.dtype.kind not in "iuf" or kp.ndim < 2 or kp.shape[-1] != 2:
        raise ValueError(f"keypoints: expected real numbers of shape [..., K, 2], got "
                         f"{kp.dtype} {kp.shape}")
    if vis.shape != kp.shape[:-1] or vis.dtype.kind not in "biuf":
        raise ValueError(f"visible: expected numbers of shape {kp.shape[:-1]}, got "
                         f"{vis.dtype} {vis.shape}")
    labelled = vis > 0
    kp = np.where(labelled[..., None], kp.astype(np.float64), 0.0)
    if not np.all(np.isfinite(kp)):
        raise ValueError("keypoints: NaN or inf in a labelled keypoint (visible > 0)")
    return kp, labelled


def as_tensor(x: Any, like: torch.Tensor) -> torch.Tensor:
    """``x`` (numpy or torch) as a float tensor on the device of ``like``."""
    return torch.as_tensor(x, dtype=torch.float32, device=like.device)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(w * v) / max(sum(w), 1)`` over ``[N, K]``: the mean over labelled keypoints."""
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """The nearest pixel centre, halves rounded up: ``floor(x + 0.5)`` (``heatmaps.round_half_up``)."""
    return torch.floor(x + 0.5)


def flip_permutation(num_keypoints: int, flip_pairs=FLIP_PAIRS) -> torch.Tensor:
    """Channel order of a flipped output (``coco.flip_index``), checked against ``K``."""
    pairs = tuple(tuple(p) for p in flip_pairs)
    if any(not (0 <= a < num_keypoints and 0 <= b < num_keypoints) for a, b in pairs):
        raise ValueError(f"flip_pairs: expected indices below K={num_keypoints}, got {pairs}")
    return torch.as_tensor(flip_index(num_keypoints, pairs), dtype=torch.long)


def flip_heatmaps(maps: torch.Tensor, flip_pairs=FLIP_PAIRS, *, shift: bool = True,
                  keypoint_axis: int = -3) -> torch.Tensor:
    """Maps ``[..., K, ..., H, W]`` of a mirrored crop brought back: columns mirrored, left/right
    channels swapped (``keypoint_axis``), then, when ``shift``, every column moved one pixel
    right (``out[..., 1:] = out[..., :-1]``, column 0 kept), as ``course_lib.decode.flip_back``.
    The peak lands ``1/stride`` px right of the original's (module docstring)."""
    perm = flip_permutation(maps.shape[keypoint_axis], flip_pairs).to(maps.device)
    out = torch.flip(maps, dims=[-1]).index_select(keypoint_axis % maps.ndim, perm)
    if shift and out.shape[-1] > 1:
        out[..., 1:] = out[..., :-1].clone()
    return out


def flip_coordinates(coords: torch.Tensor, flip_pairs=FLIP_PAIRS, *, width: int,
                     stride: float) -> torch.Tensor:
    """Points ``[..., K, 2]`` (heatmap px) found in a mirrored crop, brought back EXACTLY with
    (1): ``x -> width - 1/stride - x``, ``y`` unchanged, left/right keypoints swapped."""
    perm = flip_permutation(coords.shape[-2], flip_pairs).to(coords.device)
    out = coords.index_select(coords.ndim - 2, perm).clone()
    out[..., 0] = float(width) - 1.0 / float(stride) - out[..., 0]
    return out


def local_windows(maps: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
                  radius: int) -> torch.Tensor:
    """The ``(2r+1) x (2r+1)`` windows of ``maps [M, H, W]`` around integer centres ``cx, cy``
    ``[M]`` (clamped into the map), zeros outside the map: ``[M, 2r+1, 2r+1]``, row ``i``,
    column ``j`` is the pixel ``(cx - r + j, cy - r + i)``."""
    m, h, w = maps.shape
    padded = nn.functional.pad(maps, (radius, radius, radius, radius))
    steps = torch.arange(2 * radius + 1, device=maps.device)
    xs = cx.long().clamp(0, w - 1)[:, None] + steps  # padded coordinates start at cx - r
    ys = cy.long().clamp(0, h - 1)[:, None] + steps
    rows = torch.arange(m, device=maps.device)[:, None, None]
    return padded[rows, ys[:, :, None], xs[:, None, :]]


def read_at(field: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """Values of ``field [N, K, C, H, W]`` at integer pixels ``cx, cy [N, K, ...]`` (clamped into
    the map): ``[N, K, ..., C]``."""
    n, k, c, h, w = field.shape
    extra = cx.shape[2:]
    x = cx.long().clamp(0, w - 1).reshape(n, k, 1, -1).expand(n, k, c, -1)
    y = cy.long().clamp(0, h - 1).reshape(n, k, 1, -1).expand(n, k, c, -1)
    flat = field.reshape(n, k, c, h * w).gather(3, y * w + x)  # [N, K, C, P]
    return flat.permute(0, 1, 3, 2).reshape(n, k, *extra, c)


def spatial_expectation(probs: torch.Tensor) -> torch.Tensor:
    """``E[(x, y)]`` of maps ``[..., H, W]`` that sum to one, pixel centres at integers:
    ``[..., 2]`` (kornia's ``spatial_expectation2d`` with ``normalized_coordinates=False``)."""
    h, w = probs.shape[-2:]
    xs = torch.arange(w, dtype=probs.dtype, device=probs.device)
    ys = torch.arange(h, dtype=probs.dtype, device=probs.device)
    return torch.stack([(probs.sum(-2) * xs).sum(-1), (probs.sum(-1) * ys).sum(-1)], -1)


def spatial_softmax(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax of ``temperature * logits`` over each ``[H, W]`` map (kornia's
    ``spatial_softmax2d``: the temperature MULTIPLIES, a larger value is sharper)."""
    shape = logits.shape
    flat = logits.reshape(*shape[:-2], shape[-2] * shape[-1]) * temperature
    return torch.softmax(flat, dim=-1).reshape(shape)


def window_mass(probs: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
                radius: int = 2) -> torch.Tensor:
    """Probability mass of ``probs [N, K, H, W]`` in the ``(2r+1)^2`` square around integer
    pixels ``cx, cy [N, K]``: ``[N, K]`` (the soft-argmax score of Lightning Pose)."""
    n, k, h, w = probs.shape
    win = local_windows(probs.reshape(n * k, h, w), cx.reshape(-1), cy.reshape(-1), radius)
    return win.sum(dim=(1, 2)).reshape(n, k)


def gaussian_maps(keypoints: torch.Tensor, heatmap_size: tuple[int, int],
                  sigma: float) -> torch.Tensor:
    """Untruncated Gaussians at the exact points ``[..., K, 2]`` (heatmap px), each normalised
    to sum one over the map (plus ``1e-24``, as dsntnn's ``make_gauss``): ``[..., K, H, W]``."""
    w, h = heatmap_size
    xs = torch.arange(w, dtype=keypoints.dtype, device=keypoints.device)
    ys = torch.arange(h, dtype=keypoints.dtype, device=keypoints.device)
    gx = torch.exp(-((xs - keypoints[..., 0:1]) ** 2) / (2.0 * sigma * sigma))
    gy = torch.exp(-((ys - keypoints[..., 1:2]) ** 2) / (2.0 * sigma * sigma))
    maps = gy[..., :, None] * gx[..., None, :]
    return maps / (maps.sum(dim=(-2, -1), keepdim=True) + 1e-24)
