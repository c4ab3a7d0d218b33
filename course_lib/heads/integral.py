"""Integral regression: a soft-argmax trained end to end, L1 on the coordinates, optionally
with DSNT's Jensen-Shannon regulariser.

Taught in ``10_beyond_heatmaps.ipynb``. Sun et al., "Integral Human Pose Regression" (ECCV
2018); Nibali et al., "Numerical Coordinate Regression with Convolutional Neural Networks"
(DSNT, 2018). Facts from MMPose (``models/heads/regression_heads/integral_regression_head.py``,
``dsnt_head.py``, ``JSDiscretLoss``) and dsntnn (``dsntnn/__init__.py``):

* **Network** (MMPose's ``IntegralRegressionHead``): SimpleBaseline's deconvolutions and 1x1
  convolution to ``K`` logit maps; ``p = softmax(beta * logits)`` over each map (``beta = 1``);
  coordinates = the expectation of the pixel-centre coordinates under ``p`` (centres at
  integers, so the output is in heatmap px; MMPose divides by ``W``, ``H``). The whole decoder
  is in the forward pass: the network is trained through it. Output ``coords [N, K, 2]`` and
  the distributions ``heatmaps [N, K, H, W]`` (each sums to one).
* **Targets**: the keypoints themselves, heatmap px; weight 1 for a labelled keypoint inside the
  map's extent ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``.
* **Loss**: ``L1 = sum_nk w_nk (|dx| + |dy|) / (2 max(sum w, 1))`` heatmap px (the mean absolute
  error over labelled coordinates), plus, when ``js_weight > 0``, DSNT's regulariser
  ``js_weight * sum_nk w_nk JS(p_nk || g_nk) / max(sum w, 1)`` with ``g`` an untruncated Gaussian
  of ``js_sigma`` heatmap px at the exact keypoint, normalised to sum one, ``JS(p || g) =
  (KL(p || m) + KL(g || m)) / 2``, ``m = (p + g) / 2``, natural logarithms, ``KL(a || b) =
  sum a (log(a + 1e-24) - log(b + 1e-24))`` (dsntnn's ``js_reg_losses``). Defaults: ``js_sigma =
  1`` px and weight 1 when enabled (dsntnn's example: Euclidean loss + ``js_reg_losses(...,
  sigma_t=1.0)``); MMPose's DSNT config uses a sigma-2 MSRA target instead.
* **Decoder**: the coordinates of the output. Score: the mass of ``p`` in the 5x5 square around
  the rounded expectation, in ``[0, 1]``. Floor on exact targets: none (below 1e-4 px).

**Flip.** Coordinates flip back exactly, ``x -> W - 1/stride - x`` (MMPose's
``flip_coordinates`` with ``shift_coords=True``); the distributions with the course's one-pixel
shift (they are not decoded).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from course_lib.coco import FLIP_PAIRS
from course_lib.heads import common
from course_lib.models import DeconvHead

JS_SIGMA = 1.0


@dataclasses.dataclass
class IntegralOutput:
    """``coords [N, K, 2]`` (x, y) heatmap px; ``heatmaps [N, K, H, W]`` summing to one."""

    coords: torch.Tensor
    heatmaps: torch.Tensor


def soft_argmax(logits: torch.Tensor, beta: float = 1.0) -> IntegralOutput:
    """``p = softmax(beta * logits)`` per map, coordinates ``E_p[(x, y)]`` (differentiable)."""
    probs = common.spatial_softmax(logits.float(), beta)
    return IntegralOutput(common.spatial_expectation(probs), probs)


def encode(keypoints_hm, visible, *, heatmap_size) -> tuple[dict, np.ndarray]:
    """Targets ``{"keypoints": [..., K, 2] float32}`` (heatmap px) and weights ``[..., K]``."""
    kp, labelled = common.check_keypoints(keypoints_hm, visible)
    w, h = common.check_size(heatmap_size)
    inside = (kp[..., 0] >= -0.5) & (kp[..., 0] < w - 0.5)
    inside &= (kp[..., 1] >= -0.5) & (kp[..., 1] < h - 0.5)
    weights = (labelled & inside).astype(np.float32)
    return {"keypoints": kp.astype(np.float32)}, weights


def _kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * (torch.log(a + 1e-24) - torch.log(b + 1e-24))).sum(dim=(-2, -1))


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence of maps ``[..., H, W]`` that sum to one (nats), ``[...]``."""
    m = 0.5 * (p + q)
    return 0.5 * (_kl(p, m) + _kl(q, m))


def loss(output: IntegralOutput, targets: dict, weights, *, js_weight: float = 0.0,
         js_sigma: float = JS_SIGMA) -> torch.Tensor:
    """L1 on the coordinates, plus DSNT's JS regulariser when ``js_weight > 0`` (module
    docstring)."""
    coords = output.coords.float()
    kp = common.as_tensor(targets["keypoints"], coords)
    w = common.as_tensor(weights, coords)
    total = common.weighted_mean((coords - kp).abs().sum(dim=-1), w) / 2.0
    if js_weight > 0:
        h, wd = output.heatmaps.shape[-2:]
        gauss = common.gaussian_maps(kp, (wd, h), float(js_sigma))
        total = total + js_weight * common.weighted_mean(
            js_divergence(output.heatmaps.float(), gauss), w)
    return total


@torch.no_grad()
def decode(output: IntegralOutput):
    """``(coords [N, K, 2] heatmap px, scores [N, K])``: the output's coordinates, and the mass
    of its distribution in the 5x5 square around them."""
    coords = output.coords.float()
    h, w = output.heatmaps.shape[-2:]
    cx = common.round_half_up(coords[..., 0]).clamp(0, w - 1)
    cy = common.round_half_up(coords[..., 1]).clamp(0, h - 1)
    return coords.clone(), common.window_mass(output.heatmaps.float(), cx, cy, radius=2)


def flip_back(output: IntegralOutput, flip_pairs=FLIP_PAIRS, *, stride: float = 4
              ) -> IntegralOutput:
    """Coordinates brought back exactly, distributions with the one-pixel shift."""
    width = output.heatmaps.shape[-1]
    return IntegralOutput(
        common.flip_coordinates(output.coords, flip_pairs, width=width, stride=stride),
        common.flip_heatmaps(output.heatmaps, flip_pairs))


def ideal_output(targets: dict, *, heatmap_size, sigma: float = JS_SIGMA) -> IntegralOutput:
    """What a perfect network outputs: the keypoints, with Gaussian distributions around them."""
    kp = torch.as_tensor(targets["keypoints"], dtype=torch.float32)
    return IntegralOutput(kp.clone(), common.gaussian_maps(kp, tuple(heatmap_size), sigma))


class IntegralHead(common.Head):
    """Deconvolutions + 1x1 convolution + soft-argmax on backbone features ``[N, C, h, w]`` ->
    coordinates ``[N, K, 2]`` and distributions ``[N, K, h * 2**num_deconv, ...]``."""

    def __init__(self, in_channels: int, num_keypoints: int, heatmap_size, *, stride: int = 4,
                 num_deconv: int = 3, deconv_channels: int = 256, beta: float = 1.0,
                 js_weight: float = 0.0, js_sigma: float = JS_SIGMA) -> None:
        super().__init__()
        self.num_keypoints, self.heatmap_size = num_keypoints, common.check_size(heatmap_size)
        self.stride, self.beta, self.js_weight, self.js_sigma = stride, beta, js_weight, js_sigma
        # without deconvolutions the 1x1 convolution reads the backbone's channels
        width = deconv_channels if num_deconv else in_channels
        self.deconv = DeconvHead(in_channels, num_keypoints, channels=width,
                                 num_layers=num_deconv)

    def forward(self, features: torch.Tensor) -> IntegralOutput:
        return soft_argmax(self.deconv(features), self.beta)

    def encode(self, keypoints_hm, visible):
        return encode(keypoints_hm, visible, heatmap_size=self.heatmap_size)

    def loss(self, output, targets, weights):
        return loss(output, targets, weights, js_weight=self.js_weight, js_sigma=self.js_sigma)

    def decode(self, output):
        return decode(output)

    def flip_back(self, output, flip_pairs=FLIP_PAIRS):
        return flip_back(output, flip_pairs, stride=self.stride)
