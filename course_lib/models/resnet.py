"""ResNet backbone + three deconvolutions: the SimpleBaseline pose network.

Taught in ``04_resnet_deconv.ipynb`` (trained in ``05_training_mse.ipynb``; raced against the
high-resolution networks of :mod:`course_lib.models.hrnet` in ``09_hrnet_hrformer.ipynb``).

The backbone is written out here, but every parameter carries torchvision's name
(``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``layer4.2.downsample.1``), so an ImageNet state
dict saved from ``torchvision.models.resnet50`` loads unchanged with :func:`load_imagenet_weights`.
Like torchvision (the "v1.5" ResNet), a bottleneck block downsamples with the stride of its
3x3 convolution, not of its first 1x1.

The head is SimpleBaseline's (Xiao et al., "Simple Baselines for Human Pose Estimation and
Tracking", ECCV 2018): three ``ConvTranspose2d(4x4, stride 2, padding 1)`` layers of 256
channels, each followed by BatchNorm and ReLU, then a 1x1 convolution to one heatmap per
keypoint. The backbone has output stride 32 and the head upsamples 8x, so heatmaps have
stride 4: ``[N, 3, 256, 192] -> [N, 17, 64, 48]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

#: torchvision's ImageNet weights (``IMAGENET1K_V1``), the ones SimpleBaseline started from.
IMAGENET_URLS = {
    18: "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    34: "https://download.pytorch.org/models/resnet34-b627a593.pth",
    50: "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    101: "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    152: "https://download.pytorch.org/models/resnet152-394f9c45.pth",
}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34). ``expansion`` = 1."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride, as torchvision), 1x1 expand x4, plus shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


#: depth -> (block, blocks per stage), as in torchvision and the ResNet paper.
RESNET_SPECS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def _check_depth(depth: int) -> None:
    if depth not in RESNET_SPECS:
        raise ValueError(
            f"depth: expected one of {sorted(RESNET_SPECS)}, got {depth!r}"
        )


class ResNetBackbone(nn.Module):
    """ResNet without its pooling and classifier: ``[N, 3, H, W] -> [N, C, H/32, W/32]``.

    ``C`` (``out_channels``) is 512 for depths 18/34 and 2048 for 50/101/152. Parameter names
    are torchvision's, so ``torchvision.models.resnetXX().state_dict()`` loads with
    ``strict=False`` (only ``fc.*`` is left over). ``zero_init_residual=True`` sets the scale of
    the last BatchNorm of every block to zero, so each block starts as the identity (Goyal et
    al., 2017): it helps training from scratch.
    """

    def __init__(self, depth: int = 50, *, zero_init_residual: bool = False) -> None:
        super().__init__()
        _check_depth(depth)
        block, layers = RESNET_SPECS[depth]
        self.depth = depth
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.out_channels = 512 * block.expansion
        # torchvision's initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


class DeconvHead(nn.Module):
    """SimpleBaseline's head: ``num_layers`` x (ConvTranspose 4x4 s2 p1 -> BN -> ReLU), 1x1 conv.

    Each transposed convolution doubles the size: ``out = (in - 1) * 2 - 2 * 1 + 4 = 2 * in``.
    Initialised as in SimpleBaseline: deconvolution and final weights ~ N(0, 0.001), BN scale 1
    and shift 0, final bias 0 (the transposed convolutions have no bias: BN follows them).
    """

    def __init__(self, in_channels: int, num_keypoints: int = 17, *, channels: int = 256,
                 num_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers += [
                nn.ConvTranspose2d(in_channels if i == 0 else channels, channels, kernel_size=4,
                                   stride=2, padding=1, output_padding=0, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(channels, num_keypoints, kernel_size=1)
        for m in self.deconv_layers:
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))


class PoseResNet(nn.Module):
    """Backbone (stride 32) + deconvolution head (x8): heatmaps at stride 4 of the input."""

    def __init__(self, depth: int = 50, num_keypoints: int = 17, *, head_channels: int = 256,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(depth, zero_init_residual=zero_init_residual)
        self.head = DeconvHead(self.backbone.out_channels, num_keypoints, channels=head_channels)
        self.depth = depth
        self.num_keypoints = num_keypoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected a tensor [N, 3, H, W], got shape {tuple(x.shape)}")
        return self.head(self.backbone(x))

    def stages(self) -> list[tuple[str, nn.Module]]:
        """The network as named pieces applied one after the other (for ``shape_table``)."""
        b = self.backbone
        pieces: list[tuple[str, nn.Module]] = [
            ("stem: conv1 7x7/2 + bn + relu", nn.Sequential(b.conv1, b.bn1, b.relu)),
            ("maxpool 3x3/2", b.maxpool),
        ]
        pieces += [(f"layer{i}", getattr(b, f"layer{i}")) for i in range(1, 5)]
        deconvs = list(self.head.deconv_layers)
        for i in range(0, len(deconvs), 3):
            pieces.append((f"deconv{i // 3 + 1} 4x4/2 + bn + relu", nn.Sequential(*deconvs[i:i + 3])))
        pieces.append(("final 1x1 conv", self.head.final_layer))
        return pieces


def pose_resnet(depth: int = 50, num_keypoints: int = 17, *, head_channels: int = 256,
                zero_init_residual: bool = False) -> PoseResNet:
    """The SimpleBaseline network: ``[N, 3, 256, 192] -> [N, num_keypoints, 64, 48]``.

    ``depth`` is one of 18, 34, 50, 101, 152. The backbone's parameters are named
    ``backbone.<torchvision name>``; load ImageNet weights with :func:`load_imagenet_weights`.
    ``head_channels`` is the width of the three deconvolutions: 256 in the paper; the ``cpu``
    profile uses 128, because at 128x96 input the 256-wide head costs about a third of a
    ResNet-18 training step on a laptop CPU.
    """
    _check_depth(depth)
    if not isinstance(num_keypoints, int) or num_keypoints < 1:
        raise ValueError(f"num_keypoints: expected a positive int, got {num_keypoints!r}")
    if not isinstance(head_channels, int) or head_channels < 1:
        raise ValueError(f"head_channels: expected a positive int, got {head_channels!r}")
    return PoseResNet(depth, num_keypoints, head_channels=head_channels,
                      zero_init_residual=zero_init_residual)


def load_imagenet_weights(model: nn.Module, path_or_url: str | os.PathLike | None = None, *,
                          download: bool = False) -> list[str]:
    """Load a torchvision ResNet ImageNet state dict into ``model``'s backbone.

    ``model`` is a :class:`PoseResNet` or a :class:`ResNetBackbone`. ``path_or_url`` is a local
    ``.pth`` file, or an ``http(s)://`` URL (default: torchvision's URL for the model's depth),
    fetched by ``torch.hub.load_state_dict_from_url`` only when ``download=True``. Returns the
    names in the file that the backbone does not use (``fc.weight``, ``fc.bias``). Raises
    ``FileNotFoundError`` with the URL and where to place the file when it is not available.
    """
    backbone = model.backbone if isinstance(model, PoseResNet) else model
    if not isinstance(backbone, ResNetBackbone):
        raise ValueError(f"model: expected a PoseResNet or ResNetBackbone, got {type(model).__name__}")
    url = IMAGENET_URLS[backbone.depth]
    source = str(path_or_url) if path_or_url is not None else url
    if source.startswith(("http://", "https://")):
        hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
        cached = hub_dir / source.rsplit("/", 1)[-1]
        if cached.is_file():
            state = torch.load(cached, map_location="cpu", weights_only=True)
        elif not download:
            raise FileNotFoundError(
                f"ImageNet weights not found locally. Download {source} (browser or "
                f"`curl -LO {source}`) and pass its path, or place it at {cached}, "
                f"or call load_imagenet_weights(model, download=True) when online."
            )
        else:
            try:
                state = torch.hub.load_state_dict_from_url(source, map_location="cpu",
                                                           progress=True)
            except Exception as exc:  # offline: URLError, socket errors, HTTP errors
                raise FileNotFoundError(
                    f"could not download {source} ({type(exc).__name__}: {exc}). Download it "
                    f"elsewhere and pass its path, or place it at {cached}."
                ) from exc
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"path_or_url: no file at {path}. The ImageNet weights for ResNet-"
                f"{backbone.depth} are at {url}: download them and pass the file's path."
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    result = backbone.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise ValueError(
            f"path_or_url: the weights lack {len(result.missing_keys)} backbone parameters "
            f"(first: {result.missing_keys[0]}); expected a torchvision ResNet-{backbone.depth}"
        )
    return list(result.unexpected_keys)
