"""SimCC: keypoints as two 1-D classifications, one over x bins and one over y bins.

Taught in ``10_beyond_heatmaps.ipynb``. Li et al., "SimCC: a Simple Coordinate Classification
Perspective for Human Pose Estimation" (ECCV 2022); facts from MMPose
(``mmpose/codecs/simcc_label.py``, ``models/heads/coord_cls_heads/simcc_head.py``,
``models/losses/classification_loss.py``):

* **Bins.** ``split_ratio`` ``k`` bins per INPUT pixel (2 by default): ``B_x = round(W_in k)`` x
  bins, ``B_y = round(H_in k)``, bin ``b`` centred on input pixel ``b / k``, i.e. on heatmap pixel
  ``b / (k * stride)`` (``W_in = stride * W``). A keypoint at heatmap ``u`` sits at bin
  coordinate ``beta = k * stride * u``.
* **Targets** (Gaussian label smoothing): per axis, ``exp(-(b - mu)^2 / (2 sigma^2)) /
  (sigma sqrt(2 pi))`` with ``mu = round(beta)`` (the nearest bin, as MMPose; halves rounded up,
  where MMPose's ``np.around`` rounds them to even) and ``sigma`` in BINS (MMPose's default 6.0;
  its 256x192 configs use 6.0 with ``k = 2``, i.e. 3 input px). Weight 0 for an unlabelled
  keypoint, or when ``mu +- 3 sigma`` holds no bin of an axis (MMPose's test, made symmetric as in
  ``course_lib.heatmaps``).
* **Network** (MMPose's ``SimCCHead``): SimpleBaseline's deconvolutions (``num_deconv`` of them,
  3 by default; 0 is MMPose's "without deconv" variant) and a 1x1 convolution to ``K`` maps of
  ``h x w``, each flattened, then two linear layers ``h * w -> B_x`` and ``h * w -> B_y``
  (weights ``N(0, 0.01)``, bias 0). Output: logits ``x [N, K, B_x]``, ``y [N, K, B_y]``.
* **Loss** (``KLDiscretLoss`` with its defaults ``beta = 1``, ``label_softmax = False``,
  ``use_target_weight = True``): ``(1 / K) sum_nk w_nk [mean_b KL_b(t_x || softmax(beta x))
  + mean_b KL_b(t_y || softmax(beta y))]`` with ``KL_b = t_b (log t_b - log p_b)``: the mean over
  bins, and a SUM over the batch (MMPose divides by ``K`` only).
* **Decoder**: the first maximum of each vector (``get_simcc_maximum``), ``u = b / (k stride)``.
  Floor on exact targets: half a bin, ``1 / (2 k stride)`` heatmap px (0.0625 at ``k = 2``,
  stride 4): the label is centred on the nearest bin; zero for keypoints on bin centres.
  The bins span input px ``[0, W_in - 1/k]``: a keypoint beyond them decodes to the edge bin.
* **Score**: ``min`` over the two axes of the peak of ``softmax(beta v)`` times ``sigma
  sqrt(2 pi)``, i.e. relative to the peak of a perfect label: about 1 for an output as sharp as
  the label, lower for a flatter one. (MMPose scores the raw maximum logits, which the KL loss
  leaves free up to a constant; the course needs scores comparable to 0.2 for the rescoring.)

**Flip.** The flip ``x_in -> W_in - 1 - x_in`` is ``beta -> k (W_in - 1) - beta = (B_x - 1) -
beta - (k - 1)``: mirror the x vector, swap the left/right keypoints, then shift it ``k - 1``
bins LEFT (exact for an integer ``k``; the last ``k - 1`` bins keep their mirrored values). The y
vector only swaps keypoints. MMPose's ``flip_vectors`` does not shift: its flipped-back x
vector peaks ``k - 1`` bins, ``(k - 1) / k`` input px, right of the original's.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from course_lib.coco import FLIP_PAIRS
from course_lib.heads import common
from course_lib.models import DeconvHead

SPLIT_RATIO = 2.0
SIGMA = 6.0  # bins


@dataclasses.dataclass
class SimCCOutput:
    """Logits ``x [N, K, B_x]`` and ``y [N, K, B_y]``."""

    x: torch.Tensor
    y: torch.Tensor


def num_bins(heatmap_size, stride: float = 4, split_ratio: float = SPLIT_RATIO) -> tuple[int, int]:
    """``(B_x, B_y) = round(W_in k), round(H_in k)`` with ``W_in = stride * W``."""
    w, h = common.check_size(heatmap_size)
    return int(round(w * stride * split_ratio)), int(round(h * stride * split_ratio))


def _labels(mu: np.ndarray, bins: int, sigma: float) -> np.ndarray:
    grid = np.arange(bins, dtype=np.float64)
    g = np.exp(-((grid - mu[..., None]) ** 2) / (2.0 * sigma * sigma))
    return g / (sigma * math.sqrt(2.0 * math.pi))


def encode(keypoints_hm, visible, *, heatmap_size, stride: float = 4,
           split_ratio: float = SPLIT_RATIO, sigma: float = SIGMA) -> tuple[dict, np.ndarray]:
    """Targets ``{"x": [..., K, B_x], "y": [..., K, B_y]}`` float32 and weights ``[..., K]``."""
    kp, labelled = common.check_keypoints(keypoints_hm, visible)
    sigma = common.check_positive(sigma, "sigma")
    scale = common.check_positive(stride, "stride") * common.check_positive(split_ratio,
                                                                             "split_ratio")
    bx, by = num_bins(heatmap_size, stride, split_ratio)
    mu = np.floor(kp * scale + 0.5)  # the nearest bin
    reach = 3.0 * sigma
    weights = labelled.copy()
    for axis, bins in ((0, bx), (1, by)):
        weights &= (mu[..., axis] + reach >= 0) & (mu[..., axis] - reach <= bins - 1)
    keep = weights[..., None]
    tx = np.where(keep, _labels(mu[..., 0], bx, sigma), 0.0).astype(np.float32)
    ty = np.where(keep, _labels(mu[..., 1], by, sigma), 0.0).astype(np.float32)
    return {"x": tx, "y": ty}, weights.astype(np.float32)


def loss(output: SimCCOutput, targets: dict, weights, *, beta: float = 1.0) -> torch.Tensor:
    """MMPose's ``KLDiscretLoss`` (module docstring): mean KL over bins, weighted, summed over
    keypoints and the batch, divided by ``K``."""
    w = common.as_tensor(weights, output.x)
    total = output.x.new_zeros(())
    for pred, name in ((output.x, "x"), (output.y, "y")):
        log_p = torch.log_softmax(pred.float() * beta, dim=-1)
        target = common.as_tensor(targets[name], pred)
        kl = nn.functional.kl_div(log_p, target, reduction="none").mean(dim=-1)  # [N, K]
        total = total + (kl * w).sum()
    return total / output.x.shape[1]


@torch.no_grad()
def decode(output: SimCCOutput, *, stride: float = 4, split_ratio: float = SPLIT_RATIO,
           sigma: float = SIGMA, beta: float = 1.0):
    """``(coords [N, K, 2] heatmap px, scores [N, K])``: the argmax bin of each axis over
    ``k * stride``; the score of the module docstring."""
    coords, peaks = [], []
    for logits in (output.x.float(), output.y.float()):
        coords.append(logits.argmax(dim=-1).to(torch.float32) / (split_ratio * stride))
        peaks.append(torch.softmax(logits * beta, dim=-1).amax(dim=-1))
    scores = torch.minimum(peaks[0], peaks[1]) * (sigma * math.sqrt(2.0 * math.pi))
    return torch.stack(coords, dim=-1), scores


def flip_back(output: SimCCOutput, flip_pairs=FLIP_PAIRS, *,
              split_ratio: float = SPLIT_RATIO) -> SimCCOutput:
    """Vectors of the mirrored crop brought back exactly (module docstring): x mirrored and
    shifted ``k - 1`` bins left, both axes with the left/right keypoints swapped."""
    shift = int(round(split_ratio)) - 1
    if abs(split_ratio - round(split_ratio)) > 1e-9 or shift < 0:
        raise ValueError(f"split_ratio: an exact flip needs a positive integer, got {split_ratio}")
    perm = common.flip_permutation(output.x.shape[1], flip_pairs).to(output.x.device)
    x = torch.flip(output.x, dims=[-1]).index_select(1, perm)
    if shift:
        x[..., :-shift] = x[..., shift:].clone()
    return SimCCOutput(x, output.y.index_select(1, perm))


def ideal_output(targets: dict) -> SimCCOutput:
    """What a perfect network outputs: logits whose softmax is the (normalised) label."""
    def logit(t):
        return torch.log(torch.as_tensor(t, dtype=torch.float32) + 1e-12)

    return SimCCOutput(logit(targets["x"]), logit(targets["y"]))


class SimCCHead(common.Head):
    """MMPose's ``SimCCHead`` on backbone features ``[N, C, h, w]`` -> logits over
    ``B_x = W_in k`` and ``B_y = H_in k`` bins (``W_in = stride * W`` of ``heatmap_size``)."""

    def __init__(self, in_channels: int, num_keypoints: int, heatmap_size, *, stride: int = 4,
                 split_ratio: float = SPLIT_RATIO, sigma: float = SIGMA, num_deconv: int = 3,
                 deconv_channels: int = 256, backbone_stride: int = 32, beta: float = 1.0) -> None:
        super().__init__()
        self.num_keypoints, self.heatmap_size = num_keypoints, common.check_size(heatmap_size)
        self.stride, self.split_ratio, self.sigma, self.beta = stride, split_ratio, sigma, beta
        w, h = self.heatmap_size
        factor = stride * 2**num_deconv / backbone_stride  # feature px per heatmap px
        fw, fh = w * factor, h * factor
        if fw != int(fw) or fh != int(fh) or fw < 1 or fh < 1:
            raise ValueError(f"heatmap_size {heatmap_size} at stride {stride} does not match "
                             f"{num_deconv} deconvolutions on stride-{backbone_stride} features")
        # without deconvolutions the 1x1 convolution reads the backbone's channels
        width = deconv_channels if num_deconv else in_channels
        self.deconv = DeconvHead(in_channels, num_keypoints, channels=width,
                                 num_layers=num_deconv)
        bx, by = num_bins(self.heatmap_size, stride, split_ratio)
        self.mlp_head_x = nn.Linear(int(fw * fh), bx)
        self.mlp_head_y = nn.Linear(int(fw * fh), by)
        for layer in (self.mlp_head_x, self.mlp_head_y):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> SimCCOutput:
        flat = torch.flatten(self.deconv(features), 2)  # [N, K, h * w]
        return SimCCOutput(self.mlp_head_x(flat), self.mlp_head_y(flat))

    def encode(self, keypoints_hm, visible):
        return encode(keypoints_hm, visible, heatmap_size=self.heatmap_size, stride=self.stride,
                      split_ratio=self.split_ratio, sigma=self.sigma)

    def loss(self, output, targets, weights):
        return loss(output, targets, weights, beta=self.beta)

    def decode(self, output):
        return decode(output, stride=self.stride, split_ratio=self.split_ratio, sigma=self.sigma,
                      beta=self.beta)

    def flip_back(self, output, flip_pairs=FLIP_PAIRS):
        return flip_back(output, flip_pairs, split_ratio=self.split_ratio)
