"""The pose networks of the course: image crop in, one heatmap per keypoint out, at stride 4.

* :mod:`course_lib.models.resnet` -- SimpleBaseline, a ResNet backbone with torchvision's names +
  three deconvolutions (``pose_resnet``). Taught in ``04_resnet_deconv.ipynb``, trained in
  ``05_training_mse.ipynb``.
* :mod:`course_lib.models.hrnet` -- HRNet-W32/W48, faithful to the official pose network, and a
  small HRNet of the same code (``pose_hrnet``). Taught in ``09_hrnet_hrformer.ipynb``.
* :mod:`course_lib.models.hrformer` -- HRFormer-T/S/B: HRNet's branches with local-window
  attention (``pose_hrformer``). Taught in ``09_hrnet_hrformer.ipynb``.
* :mod:`course_lib.models.counting` -- parameters, multiply-accumulates (the papers' "FLOPs")
  and a shape table per stage for all of them (``04`` and ``09``).

:func:`build_pose_model` is the one entry the training code uses: a backbone name
(``TrainConfig.backbone``, recorded in every checkpoint) to a network.
"""

from __future__ import annotations

from torch import nn

from course_lib.models.counting import count_flops, count_parameters, shape_table
from course_lib.models.hrformer import (
    HRFORMER_SPECS,
    HRFormerBlock,
    HRFormerSpec,
    LocalWindowAttention,
    PoseHRFormer,
    WindowAttention,
    pose_hrformer,
)
from course_lib.models.hrnet import (
    HighResolutionModule,
    HRNetSpec,
    PoseHRNet,
    hrnet_spec,
    load_hrnet_imagenet_weights,
    pose_hrnet,
)
from course_lib.models.resnet import (
    IMAGENET_URLS,
    RESNET_SPECS,
    BasicBlock,
    Bottleneck,
    DeconvHead,
    PoseResNet,
    ResNetBackbone,
    load_imagenet_weights,
    pose_resnet,
)

__all__ = [
    "BACKBONES", "build_pose_model",
    "pose_resnet", "PoseResNet", "ResNetBackbone", "DeconvHead", "BasicBlock", "Bottleneck",
    "RESNET_SPECS", "IMAGENET_URLS", "load_imagenet_weights",
    "pose_hrnet", "PoseHRNet", "HRNetSpec", "hrnet_spec", "HighResolutionModule",
    "load_hrnet_imagenet_weights",
    "pose_hrformer", "PoseHRFormer", "HRFormerSpec", "HRFORMER_SPECS", "HRFormerBlock",
    "LocalWindowAttention", "WindowAttention",
    "count_parameters", "count_flops", "shape_table",
]

#: the backbones :func:`build_pose_model` knows (``TrainConfig.backbone``)
BACKBONES = ("resnet", "hrnet_w32", "hrnet_w48", "hrnet_mini", "hrformer_tiny", "hrformer_small",
             "hrformer_base")


def build_pose_model(backbone: str, *, depth: int = 50, num_keypoints: int = 17,
                     head_channels: int = 256, zero_init_residual: bool = False) -> nn.Module:
    """The network named ``backbone`` (one of :data:`BACKBONES`), randomly initialised.

    ``resnet``: SimpleBaseline with a ResNet-``depth`` and a ``head_channels``-wide head.
    ``hrnet_w32`` / ``hrnet_w48``: the official HRNets; ``hrnet_mini``: the course's small HRNet
    (W32, one module per stage, two blocks). ``hrformer_tiny|small|base``: HRFormer-T/S/B.
    ``depth`` and ``head_channels`` belong to the ResNet and are ignored by the others (they
    have no deconvolution head: their last 1x1 convolution reads the stride-4 branch).
    ``zero_init_residual`` starts every residual block (and HRFormer's bottlenecks) as the
    identity.
    """
    if backbone == "resnet":
        return pose_resnet(depth, num_keypoints, head_channels=head_channels,
                           zero_init_residual=zero_init_residual)
    if backbone in ("hrnet_w32", "hrnet_w48", "hrnet_mini"):
        width = 48 if backbone == "hrnet_w48" else 32
        return pose_hrnet(width, num_keypoints, mini=backbone == "hrnet_mini",
                          zero_init_residual=zero_init_residual)
    if backbone.startswith("hrformer_") and backbone.removeprefix("hrformer_") in HRFORMER_SPECS:
        return pose_hrformer(backbone.removeprefix("hrformer_"), num_keypoints,
                             zero_init_residual=zero_init_residual)
    raise ValueError(f"backbone: expected one of {', '.join(BACKBONES)}, got {backbone!r}")
