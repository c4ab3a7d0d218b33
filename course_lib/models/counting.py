"""What a network costs: parameters, multiply-accumulates (MACs) and a shape table per stage.

Taught in ``04_resnet_deconv.ipynb`` (SimpleBaseline) and ``09_hrnet_hrformer.ipynb`` (HRNet,
HRFormer). The MAC count follows the papers' "FLOPs", which are multiply-accumulates of the
layers that carry weights or do matrix products:

* ``nn.Conv2d``: ``output elements x in_channels / groups x kernel area`` (a depth-wise 3x3
  convolution, ``groups == in_channels``, costs 9 MACs per output element);
* ``nn.ConvTranspose2d``: ``input elements x out_channels / groups x kernel area`` (every input
  pixel is scattered through the whole kernel);
* ``nn.Linear``: ``output elements x in_features``;
* a module with a ``matmul_macs(inputs, output) -> int`` method adds what it returns: the
  window attention of HRFormer reports its two matrix products ``Q K^T`` and ``A V``
  (``2 x windows x tokens^2 x channels``).

Not counted (as in the papers): biases, BatchNorm/LayerNorm, activations, softmax, additions,
pooling and upsampling. Padded positions are counted where the network really computes them
(HRFormer pads each branch to whole windows).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """The MACs of one call of ``module`` (the rules of the module docstring)."""
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        return inputs[0].numel() * module.out_channels // module.groups * kh * kw
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * module.in_channels // module.groups * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return int(module.matmul_macs(inputs, output))


def count_flops(model: nn.Module, input_size: tuple[int, int] = (192, 256)) -> int:
    """Multiply-accumulates (MACs) of one ``(W, H)`` input, as papers report "FLOPs".

    At 256x192: SimpleBaseline ResNet-50 5.43 G (MMPose lists 5.46, the HRNet paper 8.9),
    HRNet-W32 7.65 G (the paper: 7.1), HRFormer-S 3.24 G (the paper: 2.8; 2.95 G here without
    the attention products, which common counting tools miss). Conventions differ; the module
    docstring says what is counted here. Counted with forward hooks
    on a zero image, in eval mode, without gradients.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += _layer_macs(module, inputs, output)

    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, counted) or hasattr(m, "matmul_macs")]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            w, h = input_size
            model(torch.zeros(1, 3, h, w))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return int(total)


def _shapes(x: torch.Tensor | list[torch.Tensor]) -> list[tuple[int, ...]]:
    return [tuple(t.shape[1:]) for t in (x if isinstance(x, (list, tuple)) else [x])]


def shape_table(model: nn.Module, input_size: tuple[int, int] = (192, 256)) -> list[dict]:
    """One row per stage: name, output shape ``[C, H, W]``, stride w.r.t. the input, parameters.

    ``model`` is any course network with a ``stages()`` method (``pose_resnet``,
    ``pose_hrnet``, ``pose_hrformer``): the named pieces its forward applies in turn. For the
    multi-resolution networks a stage outputs one map per branch: ``shape`` and ``stride`` are
    the highest-resolution branch's, ``branches`` and ``strides`` list them all. Used by
    ``04_resnet_deconv.ipynb`` and ``09_hrnet_hrformer.ipynb`` to follow a crop from pixels to
    heatmaps.
    """
    w, h = input_size
    stages: list[tuple[str, Callable]] = model.stages()
    rows = [{"stage": "input", "shape": (3, h, w), "stride": 1, "params": 0}]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x: torch.Tensor | list[torch.Tensor] = torch.zeros(1, 3, h, w)
            for name, piece in stages:
                x = piece(x)
                shapes = _shapes(x)
                row = {"stage": name, "shape": shapes[0], "stride": h / shapes[0][1],
                       "params": sum(p.numel() for p in piece.parameters())}
                if isinstance(x, (list, tuple)):
                    row["branches"] = shapes
                    row["strides"] = [h / s[1] for s in shapes]
                rows.append(row)
    finally:
        model.train(was_training)
    return rows
