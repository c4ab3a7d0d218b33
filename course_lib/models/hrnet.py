"""HRNet: keep a high-resolution branch from start to end, exchange between resolutions.

Taught in ``09_hrnet_hrformer.ipynb``. Sun et al., "Deep High-Resolution Representation
Learning for Human Pose Estimation", CVPR 2019; written out after the official pose network
(``lib/models/pose_hrnet.py`` of ``leoxiaobin/deep-high-resolution-net.pytorch`` with its
``experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml`` and ``w48`` configs), with its module
names, so an official COCO checkpoint loads with ``load_state_dict(strict=True)``:

* stem ``conv1``/``bn1``, ``conv2``/``bn2``: two 3x3 stride-2 convolutions to 64 channels (1/4);
* ``layer1``: four ResNet bottlenecks (64 -> 256 channels), still at 1/4;
* ``transition1``..``transition3``: a 3x3 convolution adapts a branch whose width changes, and a
  new branch at half the resolution and twice the width starts with a 3x3 stride-2 convolution
  of the lowest branch so far;
* ``stage2``..``stage4``: 1, 4 and 3 high-resolution modules with 2, 3 and 4 branches of widths
  ``W, 2W, 4W, 8W`` at strides 4, 8, 16, 32. A module runs 4 basic blocks in each branch, then
  its ``fuse_layers`` give every output branch the sum of all branches: a lower resolution comes
  up by a 1x1 convolution + BN and nearest upsampling, a higher one goes down by 3x3 stride-2
  convolutions (+ BN, ReLU between them), then ReLU. The last module of ``stage4`` keeps only
  the highest-resolution output;
* ``final_layer``: a 1x1 convolution to one heatmap per keypoint at stride 4:
  ``[N, 3, 256, 192] -> [N, 17, 64, 48]``.

W32 has 28,536,113 parameters and W48 63,595,745 (17 keypoints), the official counts. Two
departures, neither visible in the state dict: when the input size is not a multiple of 32, an
upsampled map is resized to its target branch (the official ``nn.Upsample(scale_factor=2**k)``
stops there with a size mismatch; HRFormer's code resizes the same way); and the convolutions start from torchvision's
Kaiming initialisation as the course's ResNet does (the official code draws them from
N(0, 0.001) and then loads ImageNet weights), so a race from scratch compares architectures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models.resnet import BasicBlock, Bottleneck

#: the official ImageNet files the COCO configs start from (``MODEL.PRETRAINED``), by width
IMAGENET_FILES = {32: "hrnet_w32-36af842e.pth", 48: "hrnet_w48-8ef0771d.pth"}
#: the top-level modules the official pose code takes from an ImageNet file (``PRETRAINED_LAYERS``)
PRETRAINED_LAYERS = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2",
                     "transition2", "stage3", "transition3", "stage4")


@dataclass(frozen=True)
class HRNetSpec:
    """The numbers that make an HRNet: width, modules per stage, blocks per branch."""

    width: int = 32  # channels of the highest-resolution branch (W)
    num_modules: tuple[int, int, int] = (1, 4, 3)  # high-resolution modules of stage2..stage4
    num_blocks: int = 4  # basic blocks per branch in every module
    layer1_blocks: int = 4  # bottlenecks of layer1


def hrnet_spec(width: int = 32, *, mini: bool = False) -> HRNetSpec:
    """The official HRNet-W``width``, or the course's small one (``mini``): one module per
    stage, two blocks per branch and in ``layer1`` (width 32: 5.1 M parameters, 0.51 G MACs
    at 128x96)."""
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width: expected a positive int (32 or 48 are official), got {width!r}")
    if mini:
        return HRNetSpec(width, (1, 1, 1), 2, 2)
    return HRNetSpec(width)


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, *, groups: int = 1,
            relu: bool = True) -> nn.Sequential:
    """``Conv(kernel, stride, padding kernel // 2, no bias) -> BN [-> ReLU]``: indices 0, 1, 2."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def make_blocks(block: type[nn.Module], inplanes: int, planes: int, blocks: int) -> nn.Sequential:
    """``blocks`` residual blocks; the first gets a 1x1 projection (``downsample``) when the
    channels change (layer1: 64 -> 256)."""
    downsample = None
    if inplanes != planes * block.expansion:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * block.expansion, 1, bias=False),
                                   nn.BatchNorm2d(planes * block.expansion))
    layers = [block(inplanes, planes, 1, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def make_transition(previous: list[int], current: list[int]) -> nn.ModuleList:
    """From the branches of one stage to the next: keep, adapt, or start a branch."""
    layers: list[nn.Module] = []
    for i, channels in enumerate(current):
        if i < len(previous):
            same = channels == previous[i]
            layers.append(nn.Identity() if same else conv_bn(previous[i], channels))
        else:  # official layout: a Sequential of stride-2 steps from the lowest branch
            steps = [conv_bn(previous[-1], previous[-1] if k < i - len(previous) else channels,
                             stride=2) for k in range(i + 1 - len(previous))]
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


def apply_transition(transition: nn.ModuleList, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Existing branches go through their own layer; a new branch starts from the lowest one."""
    return [layer(xs[i] if i < len(xs) else xs[-1]) for i, layer in enumerate(transition)]


def fuse_down(cin: int, cout: int, steps: int, *, separable: bool = False) -> nn.Sequential:
    """``steps`` halvings from a high-resolution branch (``cin``) to a lower one (``cout``).

    HRNet: 3x3 stride-2 conv + BN, with ReLU between steps; the channels change at the last.
    HRFormer (``separable``): each step is a depth-wise 3x3 stride-2 conv + BN, then a 1x1 conv +
    BN (the same layout, cheaper)."""
    layers = []
    for k in range(steps):
        last = k == steps - 1
        out = cout if last else cin
        if separable:
            step = nn.Sequential(*conv_bn(cin, cin, 3, 2, groups=cin, relu=False),
                                 *conv_bn(cin, out, 1, relu=not last))
        else:
            step = conv_bn(cin, out, 3, 2, relu=not last)
        layers.append(step)
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches, then the exchange unit (``fuse_layers``) between resolutions.

    ``fuse_layers[i][j]`` brings branch ``j`` to branch ``i``: identity when ``i == j``, 1x1
    conv + BN then upsampling when ``j > i`` (lower resolution), :func:`fuse_down` when
    ``j < i``. Output ``i`` is ``ReLU(sum_j fuse_layers[i][j](x_j))``; with
    ``multi_scale_output=False`` only output 0 is made (the last module of the network).
    """

    def __init__(self, branches: list[nn.Module], channels: list[int], *,
                 multi_scale_output: bool = True, separable_fuse: bool = False,
                 upsample_mode: str = "nearest") -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.upsample_mode = upsample_mode
        fuse_layers = []
        for i in range(len(channels) if multi_scale_output else 1):
            row: list[nn.Module] = []
            for j, cj in enumerate(channels):
                if j > i:
                    row.append(conv_bn(cj, channels[i], 1, relu=False))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    row.append(fuse_down(cj, channels[i], i - j, separable=separable_fuse))
            fuse_layers.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse_layers)
        self.relu = nn.ReLU(inplace=True)

    def _upsample(self, x: torch.Tensor, factor: int, size: torch.Size) -> torch.Tensor:
        """``x`` scaled up ``factor`` times, then resized to ``size`` if it is not there yet
        (an input size that is not a multiple of 32 rounds the low resolutions up)."""
        corners = None if self.upsample_mode == "nearest" else False
        x = F.interpolate(x, scale_factor=factor, mode=self.upsample_mode, align_corners=corners)
        if x.shape[-2:] != size:
            x = F.interpolate(x, size=size, mode=self.upsample_mode, align_corners=corners)
        return x

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        outs = []
        for i, row in enumerate(self.fuse_layers):
            y = None
            for j, (layer, x) in enumerate(zip(row, xs)):
                term = layer(x)
                if j > i:
                    term = self._upsample(term, 2 ** (j - i), xs[i].shape[-2:])
                y = term if y is None else y + term
            outs.append(self.relu(y))
        return outs


class _Step(nn.Module):
    """A transition followed by a stage, as one piece of ``stages()``."""

    def __init__(self, transition: nn.ModuleList, stage: nn.Sequential) -> None:
        super().__init__()
        self.transition, self.stage = transition, stage

    def forward(self, xs: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
        return self.stage(apply_transition(self.transition, xs if isinstance(xs, list) else [xs]))


class _Head(nn.Module):
    """The final 1x1 convolution on the highest-resolution branch."""

    def __init__(self, final_layer: nn.Conv2d) -> None:
        super().__init__()
        self.final_layer = final_layer

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.final_layer(xs[0])


class PoseHRNet(nn.Module):
    """The HRNet pose network of an :class:`HRNetSpec`, with the official module names.

    Subclasses change what a branch is made of (:meth:`_make_branch`), how branches exchange
    (:attr:`separable_fuse`, :attr:`upsample_mode`) and the depth of ``layer1``; the stem, the
    transitions, the stages and the 1x1 ``final_layer`` stay those of HRNet.
    """

    separable_fuse = False
    upsample_mode = "nearest"

    def __init__(self, spec: HRNetSpec = HRNetSpec(), num_keypoints: int = 17, *,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.num_keypoints = num_keypoints
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_blocks(Bottleneck, 64, 64, spec.layer1_blocks)
        previous = [64 * Bottleneck.expansion]
        for s, num_modules in zip((2, 3, 4), spec.num_modules):
            channels = [spec.width * 2 ** b for b in range(s)]
            setattr(self, f"transition{s - 1}", make_transition(previous, channels))
            modules = [self._make_module(s, m, channels, last=s == 4 and m == num_modules - 1)
                       for m in range(num_modules)]
            setattr(self, f"stage{s}", nn.Sequential(*modules))
            previous = channels
        self.final_layer = nn.Conv2d(spec.width, num_keypoints, kernel_size=1)
        self._init_weights(zero_init_residual)

    def _make_module(self, stage: int, index: int, channels: list[int], *,
                     last: bool) -> HighResolutionModule:
        branches = [self._make_branch(stage, index, b, c) for b, c in enumerate(channels)]
        return HighResolutionModule(branches, channels, multi_scale_output=not last,
                                    separable_fuse=self.separable_fuse,
                                    upsample_mode=self.upsample_mode)

    def _make_branch(self, stage: int, index: int, branch: int, channels: int) -> nn.Module:
        """HRNet: ``num_blocks`` basic blocks (3x3, 3x3, shortcut) at constant width."""
        return make_blocks(BasicBlock, channels, channels, self.spec.num_blocks)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """Kaiming convolutions (torchvision's), BN 1/0, ``final_layer`` ~ N(0, 0.001), bias 0
        (the official head); ``zero_init_residual`` zeroes the last BN of every residual block."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Two 3x3 stride-2 convolutions: ``[N, 3, H, W] -> [N, 64, H/4, W/4]``."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected a tensor [N, 3, H, W], got shape {tuple(x.shape)}")
        x = self.layer1(self.stem(x))
        xs = self.stage2(apply_transition(self.transition1, [x]))
        xs = self.stage3(apply_transition(self.transition2, xs))
        xs = self.stage4(apply_transition(self.transition3, xs))
        return self.final_layer(xs[0])

    def stages(self) -> list[tuple[str, nn.Module]]:
        """The network as named pieces applied one after the other (for ``shape_table``)."""
        stem = nn.Sequential(self.conv1, self.bn1, self.relu, self.conv2, self.bn2, self.relu)
        return [("stem: 2 x conv 3x3/2 + bn + relu", stem), ("layer1", self.layer1),
                ("transition1 + stage2", _Step(self.transition1, self.stage2)),
                ("transition2 + stage3", _Step(self.transition2, self.stage3)),
                ("transition3 + stage4", _Step(self.transition3, self.stage4)),
                ("final 1x1 conv", _Head(self.final_layer))]


def pose_hrnet(width: int = 32, num_keypoints: int = 17, *, mini: bool = False,
               zero_init_residual: bool = False) -> PoseHRNet:
    """HRNet-W``width`` for pose: ``[N, 3, 256, 192] -> [N, num_keypoints, 64, 48]``.

    ``width`` 32 and 48 are the official networks (28,536,113 and 63,595,745 parameters with 17
    keypoints); their COCO checkpoints (``pose_hrnet_w32_256x192.pth``, ...) load with
    ``model.load_state_dict(state, strict=True)``.
    ``mini=True`` is the course's small HRNet of the same code: one module per stage, two blocks
    per branch and in ``layer1`` (W32 mini: 5,062,641 parameters, about the cost of the ``cpu``
    profile's ResNet-18 per training step at 128x96). ImageNet weights:
    :func:`load_hrnet_imagenet_weights`.
    """
    if not isinstance(num_keypoints, int) or num_keypoints < 1:
        raise ValueError(f"num_keypoints: expected a positive int, got {num_keypoints!r}")
    return PoseHRNet(hrnet_spec(width, mini=mini), num_keypoints,
                     zero_init_residual=zero_init_residual)


def load_hrnet_imagenet_weights(model: PoseHRNet, path: str | os.PathLike | None) -> list[str]:
    """Load the official ImageNet HRNet file (``hrnet_w32-36af842e.pth``, ``hrnet_w48-...``)
    into ``model`` as the official pose code does: only the :data:`PRETRAINED_LAYERS` (every
    module but ``final_layer``). Returns the names of the file that were left out (the
    classifier, and the lower outputs of the last module). Raises ``FileNotFoundError`` naming
    the expected file when ``path`` is missing, ``ValueError`` when a layer does not fit.
    """
    if type(model) is not PoseHRNet or model.spec != hrnet_spec(model.spec.width):
        raise ValueError(f"model: ImageNet HRNet weights fit the official HRNet-W32/W48 only, "
                         f"got {type(model).__name__} {getattr(model, 'spec', '')}")
    width = model.spec.width
    expected = IMAGENET_FILES.get(width, f"an HRNet-W{width} ImageNet file")
    if path is None or not Path(path).expanduser().is_file():
        raise FileNotFoundError(
            f"pretrained_weights: no file at {path}. HRNet-W{width} starts from the official "
            f"ImageNet weights {expected} (the model zoo of deep-high-resolution-net.pytorch, "
            f"models/pytorch/imagenet/): download it and pass its path.")
    state = torch.load(Path(path).expanduser(), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    wanted = {k: v for k, v in state.items()
              if k.split(".")[0] in PRETRAINED_LAYERS and k in own}
    bad = [k for k, v in wanted.items() if v.shape != own[k].shape]
    if bad:
        raise ValueError(f"pretrained_weights: {len(bad)} tensors do not fit HRNet-W{width} "
                         f"(first: {bad[0]} {tuple(wanted[bad[0]].shape)} vs "
                         f"{tuple(own[bad[0]].shape)})")
    missing = [k for k in own if k.split(".")[0] in PRETRAINED_LAYERS and k not in wanted
               and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"pretrained_weights: the file lacks {len(missing)} backbone tensors "
                         f"(first: {missing[0]}); expected an ImageNet HRNet-W{width}")
    model.load_state_dict(wanted, strict=False)
    return sorted(set(state) - set(wanted))
