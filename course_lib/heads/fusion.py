"""The fusion head: heatmap + offset + variance branches on shared features, a six-term loss.

Taught in ``10_beyond_heatmaps.ipynb``. The design is described in words by the HRFormer project
the course started from (a heatmap branch, a K x 2 offset branch for the quantisation error, a
variance branch; loss weights heatmap MSE 1.0, offset SmoothL1 1.0, peak L2 0.5, variance
alignment to sigma = 2 0.1, spatial overlap 0.05, distribution shape/entropy 0.05). Where the
words leave a choice, the course's choice is stated below (marked *choice*) and tested.

**Network.** SimpleBaseline's deconvolutions (``models.DeconvHead``: ``num_deconv`` x
(ConvTranspose 4x4/2 + BN + ReLU)) give the SHARED features ``F [N, D, H, W]`` at stride 4; three
1x1 convolutions read them: heatmaps ``[N, K, H, W]`` (``deconv.final_layer``), offsets
``[N, K, 2, H, W]`` and log-variances ``[N, K, 2, H, W]`` (channel ``2k`` is x of keypoint
``k``, ``2k + 1`` its y). All three initialised ``N(0, 0.001)``, bias 0.

**Frames** (heatmap px, pixel ``i`` centred on ``i``). Keypoint ``u``, its cell ``c =
round_half_up(u)``. The heatmap target is the course's MSRA Gaussian (sigma 2) centred on ``c``:
the heatmap says WHICH cell. *Choice*: the offset is a dense field, the vector from a pixel's
centre to the keypoint, ``o(x, y) = u - (x, y)``, trained on the ``(2R+1)^2`` pixels around
``c`` (``R = offset_radius = 1``, so ``|o| < 1.5``); the "K x 2 offset" is the field read at the
decoded cell. It says WHERE in the cell: ``c + o(c) = u`` exactly, whatever the rounding.
*Choice*: the variance branch predicts ``s = log sigma_hat^2`` (x and y, px^2) of the
keypoint's heatmap Gaussian, read at ``c``; the decoder's Gaussian fit uses it as the width.

**The six terms** (``w [N, K]`` the target weights, ``mean_w`` the mean over keypoints with
``w = 1``; ``h`` prediction, ``t`` target; ``P = relu(h) / sum relu(h)`` and ``Q = t / sum t``
the maps read as distributions; ``E_P`` a centre of mass, ``H(P) = -sum P log(P + 1e-12)``):

1. ``heatmap`` (1.0): ``mean over n, k, y, x of w (h - t)^2``, the course's MSE
   (``losses.keypoint_mse_loss``).
2. ``offset`` (1.0): ``SmoothL1_beta=1(o(p) - (u - p))`` averaged over both axes and the
   window pixels ``p`` inside the map, for keypoints with ``w = 1`` and ``c`` inside the map.
3. ``peak`` (0.5), *choice*: the Euclidean (L2) distance ``sqrt(|E_P - E_Q|^2 + 1e-12)`` px
   between the centres of mass of prediction and target, ``mean_w`` (``E_Q = c`` away from the
   borders). It pulls the heatmap's mass onto the target cell, as integral regression does.
4. ``variance`` (0.1), *choice*: ``mean_w of mean over axes (s(c) - log sigma^2)^2`` with
   ``sigma = 2`` (``c`` inside the map): the variance branch aligned, in log space, with the
   target's sigma.
5. ``overlap`` (0.05), *choice*: the soft Dice loss ``1 - (2 sum relu(h) t + e) / (sum relu(h)^2
   + sum t^2 + e)``, ``e = 1e-6``, ``mean_w``: spatial overlap of the raw maps.
6. ``entropy`` (0.05), *choice*: ``|H(P) - H(Q)|`` nats, ``mean_w``: the prediction's spread
   (its shape) matched to the target's.

A perfect output (:func:`ideal_output`) makes every term 0 (up to the ``1e-6`` of term 3).
Scale: term 1 is a mean over every pixel (``pi sigma^2 / (H W)`` for an all-zero prediction,
0.004 on 64 x 48 maps); the others are per keypoint, of order 1, the peak term (in pixels) the
largest at the start: ``10_beyond_heatmaps.ipynb`` ablates them one at a time.

**Decoder** (:func:`decode_steps`): the argmax ``m``; a soft-argmax over the 5x5 window around
``m`` (weights ``relu(h)``); a Gaussian fit at ``n = round(soft-argmax)``: along each axis,
``log h(n + 1) - log h(n - 1) = 2 (mu - n) / sigma^2`` for a Gaussian, so ``mu = n +
sigma_hat^2 (log h(n+1) - log h(n-1)) / 2`` with the predicted ``sigma_hat^2`` (floor 1e-10,
step clipped to one pixel, only when ``1 <= n <= W - 2``); the cell ``c_hat = round(mu)``;
finally ``c_hat + o(c_hat)``: the offset replaces the heatmap's fraction (adding it to ``mu``
would count the sub-pixel part twice). Score: the heatmap's maximum (about 1 for a confident
peak, as the MSE head). Floor on exact targets: none.

**Flip.** Maps (heatmaps, both fields) flip back with the one-pixel shift
(``common.flip_heatmaps``), so a field value moves from column ``x' = W - x`` of the mirrored
crop to column ``x``; the x offset becomes ``-o_x - 1/stride``. Then ``x + o(x) = W - u' -
1/stride = u``: the decoded keypoint comes back EXACTLY. ``y`` offsets and variances only move.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from course_lib import heatmaps as hm
from course_lib.coco import FLIP_PAIRS
from course_lib.heads import common
from course_lib.models import DeconvHead

TERM_WEIGHTS = {"heatmap": 1.0, "offset": 1.0, "peak": 0.5, "variance": 0.1,
                "overlap": 0.05, "entropy": 0.05}
SIGMA = 2.0


@dataclasses.dataclass
class FusionOutput:
    """``heatmaps [N, K, H, W]``, ``offsets [N, K, 2, H, W]`` (heatmap px, ``u - pixel``),
    ``log_variances [N, K, 2, H, W]`` (``log sigma_hat^2``, px^2)."""

    heatmaps: torch.Tensor
    offsets: torch.Tensor
    log_variances: torch.Tensor


def encode(keypoints_hm, visible, *, heatmap_size, sigma: float = SIGMA) -> tuple[dict, np.ndarray]:
    """Targets ``{"heatmaps": [..., K, H, W] (MSRA), "keypoints": [..., K, 2]}`` and the MSRA
    weights ``[..., K]`` (``course_lib.heatmaps.encode``)."""
    kp, labelled = common.check_keypoints(keypoints_hm, visible)
    maps, weights = hm.encode(kp, labelled, heatmap_size=common.check_size(heatmap_size),
                              sigma=sigma, mode="msra")
    return {"heatmaps": maps, "keypoints": kp.astype(np.float32)}, weights


def distribution(maps: torch.Tensor) -> torch.Tensor:
    """``relu(h) / sum relu(h)`` per map (zeros for a map without positive values)."""
    pos = torch.relu(maps)
    return pos / (pos.sum(dim=(-2, -1), keepdim=True) + 1e-12)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """``-sum P log(P + 1e-12)`` per map, nats."""
    return -(probs * torch.log(probs + 1e-12)).sum(dim=(-2, -1))


def dice(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Soft Dice coefficient per map: ``(2 sum a t + e) / (sum a^2 + sum t^2 + e)``."""
    inter = (pred * target).sum(dim=(-2, -1))
    return (2.0 * inter + eps) / ((pred**2).sum(dim=(-2, -1)) + (target**2).sum(dim=(-2, -1))
                                  + eps)


def offset_term(offsets: torch.Tensor, keypoints: torch.Tensor, cell: torch.Tensor,
                weights: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Term 2: SmoothL1 between the field and ``u - p`` over the window pixels ``p`` around the
    cell (inside the map), both axes, weighted mean."""
    h, w = offsets.shape[-2:]
    steps = torch.arange(-radius, radius + 1, device=offsets.device, dtype=keypoints.dtype)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    px = cell[..., 0:1] + dx.reshape(-1)  # [N, K, P]
    py = cell[..., 1:2] + dy.reshape(-1)
    valid = ((px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)).float()
    pred = common.read_at(offsets, px, py)  # [N, K, P, 2]
    target = keypoints[:, :, None, :] - torch.stack([px, py], dim=-1)
    err = nn.functional.smooth_l1_loss(pred, target, reduction="none", beta=1.0).mean(dim=-1)
    mask = weights[..., None] * valid
    return (err * mask).sum() / mask.sum().clamp(min=1.0)


def loss_terms(output: FusionOutput, targets: dict, weights, *, sigma: float = SIGMA,
               offset_radius: int = 1) -> dict[str, torch.Tensor]:
    """The six terms of the module docstring, unweighted, as a dict of scalar tensors."""
    h = output.heatmaps.float()
    t = common.as_tensor(targets["heatmaps"], h)
    kp = common.as_tensor(targets["keypoints"], h)
    w = common.as_tensor(weights, h)
    height, width = h.shape[-2:]
    cell = common.round_half_up(kp)
    inside = (cell[..., 0] >= 0) & (cell[..., 0] <= width - 1)
    inside &= (cell[..., 1] >= 0) & (cell[..., 1] <= height - 1)
    w_cell = w * inside.float()
    p, q = distribution(h), distribution(t)
    gap = common.spatial_expectation(p) - common.spatial_expectation(q)
    s = common.read_at(output.log_variances.float(), cell[..., 0], cell[..., 1])  # [N, K, 2]
    return {
        "heatmap": (w[..., None, None] * (h - t) ** 2).mean(),
        "offset": offset_term(output.offsets.float(), kp, cell, w_cell, offset_radius),
        "peak": common.weighted_mean(torch.sqrt((gap**2).sum(dim=-1) + 1e-12), w),
        "variance": common.weighted_mean(((s - math.log(sigma**2)) ** 2).mean(dim=-1), w_cell),
        "overlap": common.weighted_mean(1.0 - dice(torch.relu(h), t), w),
        "entropy": common.weighted_mean((entropy(p) - entropy(q)).abs(), w),
    }


def loss(output: FusionOutput, targets: dict, weights, *, term_weights=None,
         sigma: float = SIGMA, offset_radius: int = 1) -> torch.Tensor:
    """``sum_i weight_i * term_i`` (``TERM_WEIGHTS`` by default; a term of weight 0 is skipped)."""
    chosen = check_term_weights(term_weights)
    terms = loss_terms(output, targets, weights, sigma=sigma, offset_radius=offset_radius)
    return sum((chosen[name] * value for name, value in terms.items() if chosen[name]),
               output.heatmaps.new_zeros(()))


def check_term_weights(term_weights=None) -> dict[str, float]:
    """``TERM_WEIGHTS`` updated with ``term_weights`` (unknown names are an error)."""
    chosen = dict(TERM_WEIGHTS)
    unknown = set(term_weights or {}) - set(chosen)
    if unknown:
        raise ValueError(f"term_weights: unknown terms {sorted(unknown)}; expected {list(chosen)}")
    chosen.update({k: float(v) for k, v in (term_weights or {}).items()})
    return chosen


def _soft_argmax_window(h: torch.Tensor, mx: torch.Tensor, my: torch.Tensor, radius: int):
    m = h.shape[0]
    win = common.local_windows(torch.relu(h), mx, my, radius)
    steps = torch.arange(-radius, radius + 1, dtype=h.dtype, device=h.device)
    mass = win.sum(dim=(1, 2))
    safe = mass.clamp(min=1e-12)
    sx = mx + torch.where(mass > 0, (win.sum(1) * steps).sum(1) / safe, 0.0)
    sy = my + torch.where(mass > 0, (win.sum(2) * steps).sum(1) / safe, 0.0)
    return torch.stack([sx, sy], dim=-1).reshape(m, 2)


def _gaussian_fit(h: torch.Tensor, variance: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor):
    """``n + sigma_hat^2 (log h(n+1) - log h(n-1)) / 2`` per axis (module docstring)."""
    height, width = h.shape[-2:]
    win = torch.log(common.local_windows(h, nx, ny, 1).clamp(min=1e-10))  # [M, 3, 3]
    step_x = (variance[:, 0] * (win[:, 1, 2] - win[:, 1, 0]) / 2.0).clamp(-1.0, 1.0)
    step_y = (variance[:, 1] * (win[:, 2, 1] - win[:, 0, 1]) / 2.0).clamp(-1.0, 1.0)
    step_x = torch.where((nx >= 1) & (nx <= width - 2), step_x, 0.0)
    step_y = torch.where((ny >= 1) & (ny <= height - 2), step_y, 0.0)
    return torch.stack([nx + step_x, ny + step_y], dim=-1)


@torch.no_grad()
def decode_steps(output: FusionOutput, *, radius: int = 2) -> dict[str, torch.Tensor]:
    """Every stage of the decoder, ``[N, K, 2]`` heatmap px each: ``argmax``, ``soft_argmax``,
    ``gaussian_fit``, ``cell``, ``offset`` and ``coords`` (= cell + offset), plus ``scores``."""
    h = output.heatmaps.float()
    n, k, height, width = h.shape
    flat = h.reshape(n * k, height * width)
    scores, idx = flat.max(dim=1)
    mx, my = (idx % width).to(h.dtype), (idx // width).to(h.dtype)
    maps = h.reshape(n * k, height, width)
    soft = _soft_argmax_window(maps, mx, my, radius)
    nx = common.round_half_up(soft[:, 0]).clamp(0, width - 1)
    ny = common.round_half_up(soft[:, 1]).clamp(0, height - 1)
    log_var = common.read_at(output.log_variances.float(), nx.reshape(n, k), ny.reshape(n, k))
    variance = torch.exp(log_var.reshape(n * k, 2)).clamp(0.1, 100.0)
    fit = _gaussian_fit(maps, variance, nx, ny)
    cx = common.round_half_up(fit[:, 0]).clamp(0, width - 1).reshape(n, k)
    cy = common.round_half_up(fit[:, 1]).clamp(0, height - 1).reshape(n, k)
    offset = common.read_at(output.offsets.float(), cx, cy)
    cell = torch.stack([cx, cy], dim=-1)
    return {"argmax": torch.stack([mx, my], -1).reshape(n, k, 2),
            "soft_argmax": soft.reshape(n, k, 2), "gaussian_fit": fit.reshape(n, k, 2),
            "cell": cell, "offset": offset, "coords": cell + offset,
            "scores": scores.reshape(n, k)}


def decode(output: FusionOutput, *, radius: int = 2):
    """``(coords [N, K, 2] heatmap px, scores [N, K])`` of :func:`decode_steps`."""
    steps = decode_steps(output, radius=radius)
    return steps["coords"], steps["scores"]


def flip_back(output: FusionOutput, flip_pairs=FLIP_PAIRS, *, stride: float = 4) -> FusionOutput:
    """The output of the mirrored crop brought back (module docstring): decoded points exact."""
    offsets = common.flip_heatmaps(output.offsets, flip_pairs, keypoint_axis=-4)
    offsets = torch.stack([-offsets[:, :, 0] - 1.0 / float(stride), offsets[:, :, 1]], dim=2)
    return FusionOutput(
        common.flip_heatmaps(output.heatmaps, flip_pairs), offsets,
        common.flip_heatmaps(output.log_variances, flip_pairs, keypoint_axis=-4))


def ideal_output(targets: dict, *, sigma: float = SIGMA) -> FusionOutput:
    """What a perfect network outputs: the target maps, the exact offset field ``u - (x, y)``
    everywhere, and ``log sigma^2`` everywhere."""
    maps = torch.as_tensor(targets["heatmaps"], dtype=torch.float32)
    kp = torch.as_tensor(targets["keypoints"], dtype=torch.float32)
    height, width = maps.shape[-2:]
    xs = torch.arange(width, dtype=torch.float32)
    ys = torch.arange(height, dtype=torch.float32)
    dx = (kp[..., 0, None, None] - xs).expand(*maps.shape)
    dy = (kp[..., 1, None, None] - ys[:, None]).expand(*maps.shape)
    log_var = torch.full((*maps.shape[:-2], 2, height, width), math.log(sigma**2))
    return FusionOutput(maps, torch.stack([dx, dy], dim=-3), log_var)


class FusionHead(common.Head):
    """Shared deconvolution features and three 1x1 branches (module docstring): backbone
    features ``[N, C, h, w]`` -> :class:`FusionOutput` at ``h * 2**num_deconv``."""

    def __init__(self, in_channels: int, num_keypoints: int, heatmap_size, *, stride: int = 4,
                 sigma: float = SIGMA, num_deconv: int = 3, deconv_channels: int = 256,
                 offset_radius: int = 1, term_weights=None) -> None:
        super().__init__()
        self.num_keypoints, self.heatmap_size = num_keypoints, common.check_size(heatmap_size)
        self.stride, self.sigma, self.offset_radius = stride, sigma, offset_radius
        self.term_weights = check_term_weights(term_weights)
        # without deconvolutions the 1x1 convolution reads the backbone's channels
        width = deconv_channels if num_deconv else in_channels
        self.deconv = DeconvHead(in_channels, num_keypoints, channels=width,
                                 num_layers=num_deconv)
        self.offset_layer = nn.Conv2d(width, 2 * num_keypoints, kernel_size=1)
        self.variance_layer = nn.Conv2d(width, 2 * num_keypoints, kernel_size=1)
        for layer in (self.offset_layer, self.variance_layer):
            nn.init.normal_(layer.weight, std=0.001)
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> FusionOutput:
        shared = self.deconv.deconv_layers(features)
        n, _, h, w = shared.shape
        k = self.num_keypoints
        return FusionOutput(self.deconv.final_layer(shared),
                            self.offset_layer(shared).reshape(n, k, 2, h, w),
                            self.variance_layer(shared).reshape(n, k, 2, h, w))

    def encode(self, keypoints_hm, visible):
        return encode(keypoints_hm, visible, heatmap_size=self.heatmap_size, sigma=self.sigma)

    def loss(self, output, targets, weights):
        return loss(output, targets, weights, term_weights=self.term_weights, sigma=self.sigma,
                    offset_radius=self.offset_radius)

    def decode(self, output):
        return decode(output)

    def flip_back(self, output, flip_pairs=FLIP_PAIRS):
        return flip_back(output, flip_pairs, stride=self.stride)
