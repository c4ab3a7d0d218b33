"""Heads past the MSE heatmap: four answers to the quantisation error, each with its targets,
loss, decoder and flip side by side.

Taught in ``10_beyond_heatmaps.ipynb`` (the plain deconvolution head is ``course_lib.models``,
``04_resnet_deconv.ipynb``). Each head reads the backbone's features ``[N, C, H_in/32, W_in/32]``
(``models.ResNetBackbone``, ``out_channels`` 512 for ResNet-18):

* ``fusion`` (:mod:`.fusion`): heatmap + dense offset + variance branches on shared
  deconvolution features, a six-term loss; decoded by soft-argmax and a local Gaussian fit,
  the cell corrected by the predicted offset. Score: the heatmap's maximum.
* ``lightning`` (:mod:`.lightning`): Lightning Pose's ``HeatmapHead``, pixel shuffle and
  transposed convolutions, a spatial softmax, targets summing to one, MSE times ``H * W``;
  decoded by ``run_subpixelmaxima`` with the grid correction derived for every
  ``downsample_factor``. Score: the softmax mass around the point.
* ``simcc`` (:mod:`.simcc`): two 1-D classifications over ``k`` bins per input pixel, Gaussian
  label smoothing, MMPose's KL loss; decoded by 1-D argmax. Score: the softmax peak relative to
  the label's.
* ``integral`` (:mod:`.integral`): soft-argmax trained end to end, L1 on the coordinates,
  optionally DSNT's Jensen-Shannon regulariser. Score: the softmax mass around the point.

The common interface (:class:`.common.Head`): ``head(features) -> output`` (a small dataclass of
tensors); ``head.encode(keypoints_hm, visible) -> (targets, weights)`` with keypoints in HEATMAP
pixels of the MSRA convention (``x_hm = x_in / stride``, pixel ``i`` centred on ``i``; targets a
dict of numpy arrays, weights ``[..., K]``); ``head.loss(output, targets, weights)`` -> a scalar;
``head.decode(output) -> (coords [N, K, 2] (x, y) heatmap px, scores [N, K])``;
``head.flip_back(output_of_mirrored_crop, flip_pairs)`` and ``head.fuse_flip(output,
output_mirrored)`` (the flip test). Every module also has these as functions (``encode``,
``loss``, ``decode``, ``flip_back``) and ``ideal_output(targets)``, the output of a perfect
network.

:func:`build_head` makes one by name: ``build_head("simcc", 512, 17, (24, 32), split_ratio=2)``;
:class:`HeadNetwork` puts it on a ResNet backbone: ``HeadNetwork("fusion", 18, 17, (24, 32))``
maps ``[N, 3, 128, 96]`` crops to a fusion output at ``24 x 32``.
"""

from __future__ import annotations

import inspect

from torch import nn

from course_lib.heads.common import Head
from course_lib.heads.fusion import FusionHead
from course_lib.heads.integral import IntegralHead
from course_lib.heads.lightning import LightningHead
from course_lib.heads.simcc import SimCCHead
from course_lib.models import ResNetBackbone

#: name -> head class (all share the constructor ``(in_channels, num_keypoints, heatmap_size,
#: **options)``).
HEADS: dict[str, type[Head]] = {
    "fusion": FusionHead,
    "lightning": LightningHead,
    "simcc": SimCCHead,
    "integral": IntegralHead,
}


def build_head(name: str, in_channels: int, num_keypoints: int, heatmap_size, **options) -> Head:
    """The head ``name`` of :data:`HEADS` for ``in_channels`` backbone channels, ``num_keypoints``
    keypoints and heatmaps of ``heatmap_size`` ``(W, H)``; ``options`` go to its constructor
    (for example ``stride=4``, ``split_ratio=2.0``, ``downsample_factor=2``, ``js_weight=1.0``,
    ``term_weights={"peak": 0.0}``)."""
    if name not in HEADS:
        raise ValueError(f"head: expected one of {', '.join(HEADS)}, got {name!r}")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels: expected a positive int, got {in_channels!r}")
    if not isinstance(num_keypoints, int) or num_keypoints < 1:
        raise ValueError(f"num_keypoints: expected a positive int, got {num_keypoints!r}")
    known = set(inspect.signature(HEADS[name].__init__).parameters) - {"self"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"head {name!r}: unknown options {unknown}; expected some of "
                         f"{sorted(known - {'in_channels', 'num_keypoints', 'heatmap_size'})}")
    return HEADS[name](in_channels, num_keypoints, heatmap_size, **options)


class HeadNetwork(nn.Module):
    """A ResNet backbone (``models.ResNetBackbone``) and one head of :data:`HEADS`: crops
    ``[N, 3, H_in, W_in]`` -> the head's output. Parameters are named ``backbone.*`` (torchvision's
    names: ``models.load_imagenet_weights(net.backbone, ...)``) and ``head.*``."""

    def __init__(self, name: str, depth: int = 18, num_keypoints: int = 17,
                 heatmap_size=(24, 32), *, zero_init_residual: bool = False, **options) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(depth, zero_init_residual=zero_init_residual)
        self.head = build_head(name, self.backbone.out_channels, num_keypoints, heatmap_size,
                               **options)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected a tensor [N, 3, H, W], got shape {tuple(x.shape)}")
        return self.head(self.backbone(x))


__all__ = ["HeadNetwork", "HEADS", "Head", "build_head", "FusionHead", "IntegralHead", "LightningHead",
           "SimCCHead"]
