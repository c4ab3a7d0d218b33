"""The network a training config describes, and the loss it is trained with.

Taught in ``05_training_mse.ipynb`` (a ResNet and the deconvolution head, MSE on heatmaps);
``09_hrnet_hrformer.ipynb`` swaps the backbone (``backbone``), ``10_beyond_heatmaps.ipynb`` the
head (``head``: one of ``course_lib.heads.HEADS``, each trained with its own loss on targets it
encodes from the batch's keypoints).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import nn

from course_lib.heads import HEADS, HeadNetwork
from course_lib.losses import keypoint_mse_loss, ohkm_mse_loss
from course_lib.models import build_pose_model, load_hrnet_imagenet_weights, load_imagenet_weights
from course_lib.train.config import TrainConfig


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The dtype training's forward pass autocasts to, or None for float32 throughout.

    float16 on CUDA (with gradient scaling); bfloat16 on a CPU when ``cfg.cpu_bf16`` and the CPU
    computes bfloat16 natively (AVX-512 BF16, AMX: about 1.6x faster steps there; elsewhere it
    would be emulated and slower, so float32 stays). The loss is taken in float32.
    """
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cfg.cpu_bf16:
        probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        if probe is not None and probe():
            return torch.bfloat16
    return None


def to_float32(output):
    """A network's output in float32: a tensor, or each tensor field of a head's output
    dataclass (``course_lib.heads``); the loss is then computed in float32."""
    if torch.is_tensor(output):
        return output.float()
    if dataclasses.is_dataclass(output):
        return dataclasses.replace(output, **{
            f.name: getattr(output, f.name).float() for f in dataclasses.fields(output)
            if torch.is_tensor(getattr(output, f.name))})
    return output


def head_options(cfg: TrainConfig) -> dict:
    """Constructor options of the config's head: the heatmap stride and the deconvolution width
    of the config (so a head races the deconvolution head on equal terms), then
    ``cfg.head_options`` on top."""
    stride = cfg.input_size[0] // cfg.heatmap_size[0]
    options: dict = {}
    if cfg.head == "lightning":
        options["downsample_factor"] = int(round(math.log2(stride)))
    else:
        options.update(stride=stride, deconv_channels=cfg.head_channels)
    if cfg.head == "fusion":
        options["sigma"] = cfg.sigma
    return {**options, **(cfg.head_options or {})}


def build_model(cfg: TrainConfig) -> nn.Module:
    """The network a config describes; ImageNet weights are fetched only when ``pretrained``.

    ``backbone`` is one of ``course_lib.models.BACKBONES`` (``resnet`` of ``depth``, the HRNets,
    the HRFormers of ``09_hrnet_hrformer.ipynb``); ``head`` is ``deconv`` or a head of
    ``course_lib.heads`` (on the ResNet backbone). ImageNet weights: torchvision's file or URL
    for ResNet; the official ImageNet file, by path (``pretrained_weights``), for HRNet-W32/W48.
    """
    if cfg.head == "deconv":
        model = build_pose_model(cfg.backbone, depth=cfg.depth, num_keypoints=cfg.num_keypoints,
                                 head_channels=cfg.head_channels,
                                 zero_init_residual=cfg.zero_init_residual)
    else:
        model = HeadNetwork(cfg.head, cfg.depth, cfg.num_keypoints, cfg.heatmap_size,
                            zero_init_residual=cfg.zero_init_residual, **head_options(cfg))
    if cfg.pretrained:
        if cfg.backbone == "resnet":
            load_imagenet_weights(model.backbone, cfg.pretrained_weights, download=True)
        elif cfg.backbone in ("hrnet_w32", "hrnet_w48"):
            load_hrnet_imagenet_weights(model, cfg.pretrained_weights)
        else:
            raise ValueError(f"pretrained: ImageNet weights are available for resnet, hrnet_w32 "
                             f"and hrnet_w48, not {cfg.backbone!r}; set pretrained=false")
    return model


def make_loss(cfg: TrainConfig, model: nn.Module) -> Callable[[object, dict], torch.Tensor]:
    """``loss_fn(output, batch) -> scalar``: MSE (or OHKM) on the batch's heatmaps for the
    deconvolution head; for another head, its own loss on the targets it encodes from the
    batch's keypoints (``keypoints_hm``, heatmap pixels, and ``visible``)."""
    if cfg.head == "deconv":
        mse = ohkm_mse_loss if cfg.loss == "ohkm" else keypoint_mse_loss

        def heatmap_loss(output: torch.Tensor, batch: dict) -> torch.Tensor:
            target = batch["heatmaps"].to(output.device, non_blocking=True)
            weights = batch["weights"].to(output.device, non_blocking=True)
            return mse(output.float(), target, weights)

        return heatmap_loss
    head = model.head
    if cfg.head not in HEADS:
        raise ValueError(f"head: expected deconv or one of {', '.join(HEADS)}, got {cfg.head!r}")

    def head_loss(output: object, batch: dict) -> torch.Tensor:
        targets, weights = head.encode(batch["keypoints_hm"], batch["visible"])
        return head.loss(output, targets, weights)

    return head_loss
