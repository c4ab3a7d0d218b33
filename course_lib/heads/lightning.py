"""Lightning Pose's ``HeatmapHead``: pixel shuffle + transposed convolutions, a spatial softmax,
targets that sum to one, and the sub-pixel soft-argmax ``run_subpixelmaxima``.

Taught in ``10_beyond_heatmaps.ipynb``. Facts from Lightning Pose
(``lightning_pose/models/heads/heatmap.py``, ``data/heatmaps.py``, ``losses/losses.py``):

* **Network.** ``PixelShuffle(2)`` (``C`` channels -> ``C/4``, size x2), then
  ``n = log2(backbone_stride) - downsample_factor - 1`` transposed convolutions ``3x3``, stride 2,
  padding 1, output padding 1 (each doubles the size), NO BatchNorm or ReLU between them; the
  inner ones have ``deconv_out_channels`` channels (default: ``K``). Weights Xavier-uniform with
  gain 0.01, biases 0. A final 2-D spatial softmax (temperature 1) makes each map sum to one.
  The heatmap stride is ``2 ** downsample_factor``: with a stride-32 ResNet and the default factor
  2, two transposed convolutions give heatmaps at stride 4.
* **Targets.** An untruncated Gaussian of ``sigma = 1.25`` heatmap px at the exact keypoint
  (``x_hm = x_in / 2**downsample_factor``, pixel centres at integers), normalised to sum one.
  Unlabelled keypoints and keypoints outside the crop get a zero map (weight 0). Lightning Pose
  gives OCCLUDED keypoints (``v = 1``) a uniform map when its labels carry visibility; COCO's
  ``v = 1`` keypoints have positions, so the course keeps their Gaussian by default
  (``occluded="gaussian"``; ``"uniform"`` is Lightning Pose's choice).
* **Loss.** MSE between the softmaxed prediction and the target, times the map size ``H * W``,
  averaged over labelled maps: ``sum_nk w_nk sum_yx (p - t)^2 / sum_nk w_nk``. (Lightning Pose's
  loss factory multiplies it by ``1 / (2 exp(log_weight)) = 0.5``; a constant, left out.)
* **Decoder** (``run_subpixelmaxima``): ``downsample_factor`` times, bicubic x2 upsampling
  (``align_corners=False``) followed by the 5x5 binomial blur ``[1 4 6 4 1]^2 / 256`` with zero
  padding, back to input resolution; a softmax at temperature 1000 (multiplying); the
  expectation of the pixel coordinates; a grid correction. Score: the mass of that softmax in the
  5x5 square (``floor(2 * 1.25) = 2``) around the truncated expectation, in ``[0, 1]``.

**The grid correction, derived.** ``interpolate(..., scale 2, align_corners=False)`` puts
output pixel ``j`` at input coordinate ``(j + 0.5) / 2 - 0.5``. Composed ``d`` times, pixel ``j``
of the upsampled map sits at heatmap coordinate ``u = (j + 0.5) / 2**d - 0.5`` (induction:
``((j + 0.5) / 2**(d-1) - 0.5 + 0.5) / 2 - 0.5``; the symmetric blur moves nothing). In input
pixels, ``x_in = 2**d u = j + 0.5 - 2**(d-1)``: the correction is

    c(d) = 0.5 - 2**(d - 1)  ->  -0.5, -1.5, -3.5 input px for d = 1, 2, 3,

and ``u = (j + c(d)) / 2**d``. Lightning Pose subtracts 0.5, 1.5 and 2.5: right for 1 and 2,
one input pixel (1/8 heatmap px) short for 3 (:data:`LIGHTNING_POSE_CORRECTIONS`; the tests show
zero bias with :func:`grid_correction` at every factor, and that bias with theirs).

**Floor** on exact targets: the temperature-1000 softmax is nearly an argmax on the upsampled
grid (steps of ``2**-d`` heatmap px), so a keypoint between grid points is read with an error of
up to about 0.11 heatmap px at factor 1, 0.002 at 2 and 0.001 at 3 (zero mean: no bias).

**Flip.** The maps flip back with :func:`course_lib.heads.common.flip_heatmaps` (the one-pixel
shift of the course): the flipped-back peak sits ``1/stride`` px right of the original's.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from course_lib.coco import FLIP_PAIRS
from course_lib.heads import common

#: Lightning Pose's constants in ``run_subpixelmaxima`` (input px), for comparison.
LIGHTNING_POSE_CORRECTIONS = {1: -0.5, 2: -1.5, 3: -2.5}
SIGMA = 1.25
TEMPERATURE = 1000.0
OCCLUDED = ("gaussian", "uniform")


@dataclasses.dataclass
class LightningOutput:
    """``heatmaps [N, K, H, W]``: each map sums to one (after the final spatial softmax)."""

    heatmaps: torch.Tensor


def grid_correction(downsample_factor: int) -> float:
    """``c(d) = 0.5 - 2**(d-1)`` input px, added to the expectation on the upsampled grid
    (derivation in the module docstring)."""
    return 0.5 - 2.0 ** (int(downsample_factor) - 1)


def make_upsampling_layers(in_channels: int, out_channels: int, int_channels: int,
                           n_layers: int) -> nn.Sequential:
    """``PixelShuffle(2)`` then ``n_layers`` ``ConvTranspose2d(3, stride 2, padding 1,
    output_padding 1)``, initialised Xavier-uniform (gain 0.01), zero bias."""
    if n_layers < 1:
        raise ValueError(f"n_layers: expected at least one transposed convolution, got {n_layers}")
    if in_channels % 4:
        raise ValueError(f"in_channels: PixelShuffle(2) needs a multiple of 4, got {in_channels}")
    layers: list[nn.Module] = [nn.PixelShuffle(2)]
    for i in range(n_layers):
        cin = in_channels // 4 if i == 0 else int_channels
        cout = out_channels if i == n_layers - 1 else int_channels
        conv = nn.ConvTranspose2d(cin, cout, kernel_size=3, stride=2, padding=1, output_padding=1)
        nn.init.xavier_uniform_(conv.weight, gain=0.01)
        nn.init.zeros_(conv.bias)
        layers.append(conv)
    return nn.Sequential(*layers)


def encode(keypoints_hm, visible, *, heatmap_size, sigma: float = SIGMA,
           occluded: str = "gaussian") -> tuple[dict, np.ndarray]:
    """Targets ``{"heatmaps": [..., K, H, W] float32}`` (each labelled map sums to one) and
    weights ``[..., K]`` (1: labelled and inside the crop, ``0 <= x < W``, ``0 <= y < H``)."""
    kp, labelled = common.check_keypoints(keypoints_hm, visible)
    w, h = common.check_size(heatmap_size)
    sigma = common.check_positive(sigma, "sigma")
    if occluded not in OCCLUDED:
        raise ValueError(f"occluded: expected one of {OCCLUDED}, got {occluded!r}")
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < w) & (kp[..., 1] >= 0) & (kp[..., 1] < h)
    weights = labelled & inside
    maps = common.gaussian_maps(torch.from_numpy(kp), (w, h), sigma).numpy()
    if occluded == "uniform":
        vis = np.asarray(visible.cpu() if hasattr(visible, "cpu") else visible)
        maps = np.where((vis == 1)[..., None, None], 1.0 / (w * h), maps)
    maps = np.where(weights[..., None, None], maps, 0.0).astype(np.float32)
    return {"heatmaps": maps}, weights.astype(np.float32)


def loss(output: LightningOutput, targets: dict, weights) -> torch.Tensor:
    """``sum_nk w_nk sum_yx (p - t)^2 / max(sum w, 1)``: Lightning Pose's MSE times ``H * W``."""
    pred = output.heatmaps.float()
    target = common.as_tensor(targets["heatmaps"], pred)
    per_map = ((pred - target) ** 2).sum(dim=(-2, -1))
    return common.weighted_mean(per_map, common.as_tensor(weights, pred))


def upsample(maps: torch.Tensor) -> torch.Tensor:
    """Bicubic x2 (``align_corners=False``), then the 5x5 binomial blur with zero padding."""
    n, k, h, w = maps.shape
    up = nn.functional.interpolate(maps, size=(2 * h, 2 * w), mode="bicubic",
                                   align_corners=False)
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=maps.dtype, device=maps.device)
    kernel = (taps[:, None] * taps[None, :] / 256.0)[None, None]
    blurred = nn.functional.conv2d(up.reshape(n * k, 1, 2 * h, 2 * w), kernel, padding=2)
    return blurred.reshape(n, k, 2 * h, 2 * w)


@torch.no_grad()
def decode(output: LightningOutput, *, downsample_factor: int = 2,
           temperature: float = TEMPERATURE, correction: float | None = None):
    """``run_subpixelmaxima`` with the derived grid correction -> ``(coords [N, K, 2] heatmap
    px, scores [N, K])``. ``correction`` (input px) overrides :func:`grid_correction`, for
    instance ``LIGHTNING_POSE_CORRECTIONS[3]``."""
    maps = output.heatmaps.float()
    if maps.ndim != 4:
        raise ValueError(f"heatmaps: expected [N, K, H, W], got shape {tuple(maps.shape)}")
    d = int(downsample_factor)
    for _ in range(d):
        maps = upsample(maps)
    probs = common.spatial_softmax(maps, temperature)
    grid = common.spatial_expectation(probs)  # upsampled (input) pixels
    scores = common.window_mass(probs, grid[..., 0].floor(), grid[..., 1].floor(),
                                radius=int(math.floor(2 * SIGMA)))
    c = grid_correction(d) if correction is None else float(correction)
    return (grid + c) / 2.0**d, scores


def flip_back(output: LightningOutput, flip_pairs=FLIP_PAIRS) -> LightningOutput:
    """Heatmaps of the mirrored crop brought back with the course's one-pixel shift."""
    return LightningOutput(common.flip_heatmaps(output.heatmaps, flip_pairs))


def ideal_output(targets: dict) -> LightningOutput:
    """What a perfect network outputs: the target maps themselves."""
    return LightningOutput(torch.as_tensor(targets["heatmaps"], dtype=torch.float32))


class LightningHead(common.Head):
    """Lightning Pose's ``HeatmapHead`` on backbone features ``[N, C, h, w]`` -> heatmaps
    ``[N, K, h * 2**(n+1), w * 2**(n+1)]`` at stride ``2**downsample_factor``."""

    def __init__(self, in_channels: int, num_keypoints: int, heatmap_size, *,
                 downsample_factor: int = 2, backbone_stride: int = 32,
                 deconv_out_channels: int | None = None, final_softmax: bool = True,
                 sigma: float = SIGMA, temperature: float = TEMPERATURE,
                 occluded: str = "gaussian") -> None:
        super().__init__()
        if downsample_factor not in (1, 2, 3):
            raise ValueError(f"downsample_factor: expected 1, 2 or 3, got {downsample_factor!r}")
        self.num_keypoints, self.heatmap_size = num_keypoints, common.check_size(heatmap_size)
        self.downsample_factor, self.stride = downsample_factor, 2.0**downsample_factor
        self.sigma, self.temperature, self.occluded = sigma, temperature, occluded
        self.final_softmax = final_softmax
        n_layers = int(math.log2(backbone_stride)) - downsample_factor - 1
        self.upsampling_layers = make_upsampling_layers(
            in_channels, num_keypoints, deconv_out_channels or num_keypoints, n_layers)

    def forward(self, features: torch.Tensor) -> LightningOutput:
        maps = self.upsampling_layers(features)
        return LightningOutput(common.spatial_softmax(maps) if self.final_softmax else maps)

    def encode(self, keypoints_hm, visible):
        return encode(keypoints_hm, visible, heatmap_size=self.heatmap_size, sigma=self.sigma,
                      occluded=self.occluded)

    def loss(self, output, targets, weights):
        return loss(output, targets, weights)

    def decode(self, output):
        return decode(output, downsample_factor=self.downsample_factor,
                      temperature=self.temperature)

    def flip_back(self, output, flip_pairs=FLIP_PAIRS):
        return flip_back(output, flip_pairs)
