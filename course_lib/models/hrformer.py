"""HRFormer: HRNet's parallel branches with transformer blocks (local-window attention).

Taught in ``09_hrnet_hrformer.ipynb``. Yuan et al., "HRFormer: High-Resolution Vision
Transformer for Dense Predict", NeurIPS 2021; written out after the official pose code
(``pose/mmpose/models/backbones/hrt.py`` and ``modules/`` of ``HRNet/HRFormer``, configs
``pose/configs/top_down/hrt/coco/hrt_{small,base}_coco_256x192.py``; the tiny network after
``cls/configs/hrt/hrt_tiny.yaml``) and MMPose's ``hrformer.py``, with the official module names.

The skeleton is HRNet's (:class:`~course_lib.models.hrnet.PoseHRNet`): the same stem,
``layer1`` (two bottlenecks here), transitions and 1x1 ``final_layer``. What changes:

* a branch is two :class:`HRFormerBlock` s: ``x + Attention(LayerNorm(x))``, then
  ``x + FFN(LayerNorm(x))`` on the tokens of the branch;
* the attention is multi-head self-attention inside non-overlapping 7x7 windows
  (:class:`LocalWindowAttention`), with a learned relative position bias per head: a map whose
  size is not a multiple of 7 is padded with zeros, centred, and the padding is cut off after;
* the FFN (:class:`DepthwiseFFN`) is 1x1 conv -> BN -> GELU -> depth-wise 3x3 conv -> BN ->
  GELU -> 1x1 conv -> BN -> GELU: the 3x3 lets information cross window borders;
* the exchange unit goes down with depth-wise separable stride-2 convolutions and up with
  bilinear interpolation.

Sizes (``HRFORMER_SPECS``): tiny W18, modules (1, 3, 2), heads (1, 2, 4, 8); small W32,
(1, 4, 2), heads (1, 2, 4, 8); base W78, (1, 4, 2), heads (2, 4, 8, 16); two blocks per branch,
MLP ratio 4 everywhere. With 17 keypoints: 2,524,759 / 7,746,779 / 43,211,777 parameters, the
counts of the official code (published: 2.5 M, 7.8 M, 43.2 M).

Departure: the official pose code builds the relative position bias table but leaves the line
that adds it to the attention commented out; MMPose's HRFormer adds it, and so does this
module (``relative_position_bias=False`` reproduces the official forward). Convolutions start
from Kaiming initialisation as in :mod:`course_lib.models.hrnet`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.models.hrnet import HRNetSpec, PoseHRNet


@dataclass(frozen=True)
class HRFormerSpec:
    """The numbers that make an HRFormer (``HRNetSpec`` plus the transformer's)."""

    width: int  # channels of the highest-resolution branch; branch b has width * 2**b
    num_modules: tuple[int, int, int]  # modules of stage2..stage4
    heads: int  # attention heads of branch 0; branch b has heads * 2**b
    drop_path_rate: float  # stochastic depth, rising linearly to this over the blocks
    num_blocks: int = 2  # transformer blocks per branch
    window_size: int = 7
    mlp_ratio: int = 4
    layer1_blocks: int = 2


HRFORMER_SPECS = {
    "tiny": HRFormerSpec(18, (1, 3, 2), 1, 0.0),  # no official pose config: classification's
    "small": HRFormerSpec(32, (1, 4, 2), 1, 0.1),
    "base": HRFormerSpec(78, (1, 4, 2), 2, 0.2),
}


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``p``
    (and scale the kept ones by ``1 / (1 - p)``); the identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
        return x / keep * (mask + keep).floor()


def relative_position_index(window: int) -> torch.Tensor:
    """``[w*w, w*w]`` index into the bias table: token ``p`` at ``(yp, xp)`` and ``q`` at
    ``(yq, xq)`` of a window share the entry ``(yp - yq + w - 1) * (2w - 1) + (xp - xq + w - 1)``
    (Swin's table of ``(2w - 1)^2`` offsets)."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + window - 1
    dx = xs[:, None] - xs[None, :] + window - 1
    return dy * (2 * window - 1) + dx


class WindowAttention(nn.Module):
    """Multi-head self-attention over the tokens of each window: ``[B*windows, w*w, C]``.

    ``softmax(Q K^T / sqrt(d) + B) V`` per head (``d = C / heads``), ``B`` the relative position
    bias of the head. Names follow the official code (``q_proj``, ``k_proj``, ``v_proj``,
    ``out_proj``, ``relative_position_bias_table``, buffer ``relative_position_index``).
    """

    def __init__(self, channels: int, heads: int, window: int, *,
                 relative_position_bias: bool = True) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads: {heads} do not divide {channels} channels")
        self.heads, self.window = heads, window
        self.use_bias = relative_position_bias
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.k_proj = nn.Linear(channels, channels)
        self.v_proj = nn.Linear(channels, channels)
        self.q_proj = nn.Linear(channels, channels)
        self.out_proj = nn.Linear(channels, channels)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def position_bias(self) -> torch.Tensor:
        """``[heads, w*w, w*w]``: the table looked up at every pair's offset."""
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        return bias.reshape(n, n, self.heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        d = c // self.heads
        q = self.q_proj(x) * d ** -0.5
        k, v = self.k_proj(x), self.v_proj(x)
        q, k, v = (t.reshape(b, n, self.heads, d).transpose(1, 2) for t in (q, k, v))
        attn = q @ k.transpose(-2, -1)  # [b, heads, n, n]
        if self.use_bias:
            attn = attn + self.position_bias().unsqueeze(0)
        out = attn.softmax(dim=-1) @ v  # [b, heads, n, d]
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))

    def matmul_macs(self, inputs: tuple, output: torch.Tensor) -> int:
        """The two matrix products ``Q K^T`` and ``A V``: ``2 x b x n^2 x C`` MACs (for
        :func:`~course_lib.models.counting.count_flops`; the projections count as Linear)."""
        b, n, c = inputs[0].shape
        return 2 * b * n * n * c


def window_padding(size: int, window: int) -> tuple[int, int]:
    """``(before, after)`` zeros that make ``size`` a multiple of ``window``, centred as the
    official code pads (the odd one after): 48 -> (0, 1) for 49, 6 -> (0, 1), 3 -> (2, 2)."""
    pad = -size % window
    return pad // 2, pad - pad // 2


class LocalWindowAttention(nn.Module):
    """Tokens ``[B, H*W, C]`` of an ``H x W`` map -> attention within each ``w x w`` window.

    Pad the map to whole windows (zeros, centred), cut it into ``(H'/w) x (W'/w)`` windows of
    ``w*w`` tokens, attend (:class:`WindowAttention`, ``self.attn``), put the windows back and
    cut the padding off. The padded zeros take part as keys, as in the official code.
    """

    def __init__(self, channels: int, heads: int, window: int = 7, *,
                 relative_position_bias: bool = True) -> None:
        super().__init__()
        self.window = window
        self.attn = WindowAttention(channels, heads, window,
                                    relative_position_bias=relative_position_bias)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        s = self.window
        (top, bottom), (left, right) = window_padding(h, s), window_padding(w, s)
        x = F.pad(x.reshape(b, h, w, c), (0, 0, left, right, top, bottom))
        hp, wp = h + top + bottom, w + left + right
        windows = x.reshape(b, hp // s, s, wp // s, s, c).permute(0, 1, 3, 2, 4, 5)
        out = self.attn(windows.reshape(-1, s * s, c))
        out = out.reshape(b, hp // s, wp // s, s, s, c).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(b, hp, wp, c)[:, top:top + h, left:left + w]
        return out.reshape(b, n, c)


class DepthwiseFFN(nn.Module):
    """HRFormer's FFN on tokens ``[B, H*W, C]``: 1x1 (x ``mlp_ratio``), depth-wise 3x3, 1x1,
    each followed by BatchNorm and GELU (names ``fc1``, ``norm1``, ``dw3x3``, ``norm2``,
    ``fc2``, ``norm3`` as in the official ``MlpDWBN``)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.norm1 = nn.BatchNorm2d(hidden)
        self.dw3x3 = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden)
        self.norm2 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        self.norm3 = nn.BatchNorm2d(channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        y = x.transpose(1, 2).reshape(b, c, h, w)
        y = self.act(self.norm1(self.fc1(y)))
        y = self.act(self.norm2(self.dw3x3(y)))
        y = self.act(self.norm3(self.fc2(y)))
        return y.flatten(2).transpose(1, 2)


class HRFormerBlock(nn.Module):
    """``[B, C, H, W] -> [B, C, H, W]``: window attention then the depth-wise FFN, each on
    LayerNorm-ed tokens (eps 1e-6) with a residual connection (and stochastic depth)."""

    expansion = 1

    def __init__(self, channels: int, heads: int, *, window: int = 7, mlp_ratio: int = 4,
                 drop_path: float = 0.0, relative_position_bias: bool = True) -> None:
        super().__init__()
        self.attn = LocalWindowAttention(channels, heads, window,
                                         relative_position_bias=relative_position_bias)
        self.norm1 = nn.LayerNorm(channels, eps=1e-6)
        self.norm2 = nn.LayerNorm(channels, eps=1e-6)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.mlp = DepthwiseFFN(channels, channels * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # tokens [B, H*W, C]
        t = t + self.drop_path(self.attn(self.norm1(t), h, w))
        t = t + self.drop_path(self.mlp(self.norm2(t), h, w))
        return t.transpose(1, 2).reshape(b, c, h, w)


class PoseHRFormer(PoseHRNet):
    """HRNet's skeleton with :class:`HRFormerBlock` branches, separable down-fusion and
    bilinear up-fusion: ``[N, 3, 256, 192] -> [N, K, 64, 48]`` (``[N, K, 32, 24]`` at 128x96)."""

    separable_fuse = True
    upsample_mode = "bilinear"

    def __init__(self, spec: HRFormerSpec, num_keypoints: int = 17, *,
                 relative_position_bias: bool = True, zero_init_residual: bool = False) -> None:
        self.hrformer_spec = spec  # plain attributes may be set before Module.__init__
        self.relative_position_bias = relative_position_bias
        depths = [m * spec.num_blocks for m in spec.num_modules]  # blocks per branch and stage
        n = sum(depths)  # the official linspace(0, rate, n), in plain floats
        rates = [spec.drop_path_rate * i / max(n - 1, 1) for i in range(n)]
        self.drop_path_rates = {2: rates[:depths[0]], 3: rates[depths[0]:depths[0] + depths[1]],
                                4: rates[depths[0] + depths[1]:]}
        hrnet = HRNetSpec(spec.width, spec.num_modules, spec.num_blocks, spec.layer1_blocks)
        super().__init__(hrnet, num_keypoints, zero_init_residual=zero_init_residual)

    def _make_branch(self, stage: int, index: int, branch: int, channels: int) -> nn.Module:
        """``num_blocks`` transformer blocks; ``2**branch`` times the heads of branch 0."""
        f = self.hrformer_spec
        rates = self.drop_path_rates[stage][index * f.num_blocks:(index + 1) * f.num_blocks]
        return nn.Sequential(*[
            HRFormerBlock(channels, f.heads * 2 ** branch, window=f.window_size,
                          mlp_ratio=f.mlp_ratio, drop_path=rate,
                          relative_position_bias=self.relative_position_bias)
            for rate in rates])


def pose_hrformer(size: str = "small", num_keypoints: int = 17, *,
                  drop_path_rate: float | None = None, relative_position_bias: bool = True,
                  zero_init_residual: bool = False) -> PoseHRFormer:
    """HRFormer-T/S/B for pose (``size`` tiny | small | base):
    ``[N, 3, 256, 192] -> [N, num_keypoints, 64, 48]``.

    2,524,759 / 7,746,779 / 43,211,777 parameters with 17 keypoints (published: 2.5 M, 7.8 M,
    43.2 M). ``drop_path_rate`` overrides the official stochastic depth (tiny 0, small 0.1,
    base 0.2). ``relative_position_bias=False`` leaves the bias out of the attention, as the
    official pose code does (the table is still a parameter, unused: then DDP needs
    ``find_unused_parameters``).
    """
    if size not in HRFORMER_SPECS:
        raise ValueError(f"size: expected one of {', '.join(HRFORMER_SPECS)}, got {size!r}")
    if not isinstance(num_keypoints, int) or num_keypoints < 1:
        raise ValueError(f"num_keypoints: expected a positive int, got {num_keypoints!r}")
    spec = HRFORMER_SPECS[size]
    if drop_path_rate is not None:
        spec = dataclasses.replace(spec, drop_path_rate=float(drop_path_rate))
    return PoseHRFormer(spec, num_keypoints, relative_position_bias=relative_position_bias,
                        zero_init_residual=zero_init_residual)
