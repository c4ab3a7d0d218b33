"""course_lib.models.hrformer: counts of the official code, windows, attention, output shapes."""

from __future__ import annotations

import pytest
import torch

from course_lib import models
from course_lib.models import hrformer

#: parameters of the official HRFormer pose code (HRNet/HRFormer ``hrt.py`` + a 1x1 head, 17
#: keypoints) for the configs of ``HRFORMER_SPECS``, and the published figures (HRFormer paper)
OFFICIAL_PARAMETERS = {"tiny": 2_524_759, "small": 7_746_779, "base": 43_211_777}
PUBLISHED_PARAMETERS = {"tiny": 2.5e6, "small": 7.8e6, "base": 43.2e6}


def _meta(size: str) -> torch.nn.Module:
    with torch.device("meta"):
        return models.pose_hrformer(size)


@pytest.mark.parametrize("size", ["tiny", "small", "base"])
def test_parameter_counts_equal_the_official_code_and_the_paper_within_2_percent(size):
    n = models.count_parameters(_meta(size))
    assert n == OFFICIAL_PARAMETERS[size]
    assert abs(n / PUBLISHED_PARAMETERS[size] - 1) < 0.02


def test_official_names_of_a_transformer_block_and_the_exchange_unit():
    names = dict((n, tuple(t.shape)) for n, t in _meta("small").state_dict().items())
    block = "stage2.0.branches.0.0."
    assert names[block + "attn.attn.relative_position_bias_table"] == (169, 1)
    assert names[block + "attn.attn.relative_position_index"] == (49, 49)
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert names[block + f"attn.attn.{proj}.weight"] == (32, 32)
    assert names[block + "norm1.weight"] == (32,) and names[block + "norm2.bias"] == (32,)
    assert names[block + "mlp.fc1.weight"] == (128, 32, 1, 1)
    assert names[block + "mlp.dw3x3.weight"] == (128, 1, 3, 3)
    assert names[block + "mlp.norm3.running_var"] == (32,)
    assert names["stage4.1.branches.3.1.attn.attn.relative_position_bias_table"] == (169, 8)
    # branch 0 -> 2: depth-wise 3x3/2 + BN + 1x1 + BN + ReLU, then depth-wise 3x3/2 + BN + 1x1 + BN
    assert names["stage3.0.fuse_layers.2.0.0.0.weight"] == (32, 1, 3, 3)
    assert names["stage3.0.fuse_layers.2.0.0.2.weight"] == (32, 32, 1, 1)
    assert names["stage3.0.fuse_layers.2.0.1.2.weight"] == (128, 32, 1, 1)
    assert names["stage3.0.fuse_layers.0.2.0.weight"] == (32, 128, 1, 1)
    assert names["layer1.1.conv3.weight"] == (256, 64, 1, 1) and "layer1.2.conv1.weight" not in names
    assert names["final_layer.weight"] == (17, 32, 1, 1)


def test_structure_of_the_sizes():
    tiny, base = _meta("tiny"), _meta("base")
    assert [len(getattr(tiny, f"stage{s}")) for s in (2, 3, 4)] == [1, 3, 2]
    assert [len(getattr(base, f"stage{s}")) for s in (2, 3, 4)] == [1, 4, 2]
    heads = [b[0].attn.attn.heads for b in base.stage4[0].branches]
    assert heads == [2, 4, 8, 16]
    assert [b[0].attn.attn.heads for b in tiny.stage4[0].branches] == [1, 2, 4, 8]
    rates = [getattr(blk.drop_path, "p", 0.0) for s in (2, 3, 4)
             for mod in getattr(base, f"stage{s}") for blk in mod.branches[0]]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.2) and len(rates) == 14
    with pytest.raises(ValueError, match="size: expected one of tiny, small, base"):
        models.pose_hrformer("huge")


def test_window_padding_is_centred_as_the_official_code():
    assert hrformer.window_padding(48, 7) == (0, 1)
    assert hrformer.window_padding(49, 7) == (0, 0)
    assert hrformer.window_padding(3, 7) == (2, 2)
    assert hrformer.window_padding(32, 7) == (1, 2)


def test_relative_position_index_pairs_offsets():
    index = hrformer.relative_position_index(3)
    assert index.shape == (9, 9) and int(index.max()) == 24
    assert torch.all(index.diagonal() == 12)  # offset (0, 0) is the middle of the 5x5 table
    assert index[0, 8] == 0 and index[8, 0] == 24  # (-2, -2) and (+2, +2)
    assert torch.all(index + index.T == 24)  # the offset q -> p is minus the offset p -> q


def test_window_attention_equals_full_attention_on_one_window():
    torch.manual_seed(0)
    layer = hrformer.LocalWindowAttention(8, heads=2, window=4, relative_position_bias=False)
    x = torch.randn(1, 16, 8)  # a 4x4 map: exactly one window
    q, k, v = layer.attn.q_proj(x), layer.attn.k_proj(x), layer.attn.v_proj(x)
    heads = [torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / 2.0, -1) @ v[..., s]
             for s in (slice(0, 4), slice(4, 8))]
    expected = layer.attn.out_proj(torch.cat(heads, -1))
    torch.testing.assert_close(layer(x, 4, 4), expected)


def test_windows_do_not_see_each_other_and_padding_is_cut_off():
    torch.manual_seed(0)
    layer = hrformer.LocalWindowAttention(4, heads=1, window=2)
    x = torch.randn(1, 3 * 5, 4)  # 3x5 map -> padded to 4x6: 2x3 windows of 2x2
    out = layer(x, 3, 5)
    assert out.shape == (1, 15, 4)
    y = x.clone().reshape(1, 3, 5, 4)
    # padding (0, 1) rows and (0, 1) columns: windows rows {0,1},{2,3}; columns {0,1},{2,3},{4,5}
    for (r, c), window in [((0, 3), (slice(0, 2), slice(2, 4))), ((2, 4), (2, 4))]:
        y = x.clone().reshape(1, 3, 5, 4)
        y[0, r, c] += 10.0
        changed = (layer(y.reshape(1, 15, 4), 3, 5) - out).abs().sum(-1).reshape(3, 5) > 0
        expect = torch.zeros(3, 5, dtype=torch.bool)
        expect[window] = True
        assert torch.equal(changed, expect), (r, c)


def test_relative_position_bias_changes_the_attention():
    torch.manual_seed(0)
    layer = hrformer.WindowAttention(4, heads=1, window=2)
    x = torch.randn(3, 4, 4)
    with torch.no_grad():
        with_bias = layer(x)
        layer.relative_position_bias_table.zero_()
        layer.use_bias = False
        assert not torch.allclose(with_bias, layer(x))


@pytest.mark.parametrize("size,heatmap", [((192, 256), (48, 64)), ((96, 128), (24, 32))])
def test_output_shapes_at_256x192_and_128x96(size, heatmap):
    torch.manual_seed(0)
    (w, h), (wh, hh) = size, heatmap
    with torch.no_grad():
        out = models.pose_hrformer("tiny").eval()(torch.zeros(1, 3, h, w))
    assert out.shape == (1, 17, hh, wh)


def test_small_and_base_output_shape_at_128x96():
    with torch.no_grad():
        for size in ("small", "base"):
            out = models.pose_hrformer(size, 5).eval()(torch.zeros(1, 3, 128, 96))
            assert out.shape == (1, 5, 32, 24), size


def test_forward_backward_step_of_each_size_at_a_small_input():
    torch.manual_seed(0)
    for size in ("tiny", "small", "base"):
        model = models.pose_hrformer(size)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss = torch.nn.functional.mse_loss(model(torch.randn(2, 3, 64, 48)),
                                            torch.rand(2, 17, 16, 12))
        loss.backward()
        unused = [n for n, p in model.named_parameters() if p.grad is None]
        assert not unused, (size, unused[:3])
        before = model.final_layer.weight.detach().clone()
        opt.step()
        assert not torch.equal(before, model.final_layer.weight), size


def test_count_flops_counts_the_attention_products_and_depthwise_convolutions():
    block = hrformer.HRFormerBlock(8, heads=2, window=2, mlp_ratio=4)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), block)
    # a 3x3 map, padded to 4x4 for the attention: 4 windows of 4 tokens
    conv = 9 * 8 * 3
    projections = 4 * 16 * 8 * 8  # q, k, v, out on the 16 padded tokens
    products = 2 * 4 * 4 * 4 * 8  # Q K^T and A V: 2 x windows x tokens^2 x channels
    ffn = 9 * 32 * 8 + 9 * 32 * 9 + 9 * 8 * 32  # 1x1, depth-wise 3x3 (9 per output), 1x1
    assert models.count_flops(net, (3, 3)) == conv + projections + products + ffn
    # HRFormer-T at 256x192: 1.49 G (the paper lists 1.3 G "FLOPs")
    assert 1.4e9 < models.count_flops(models.pose_hrformer("tiny"), (192, 256)) < 1.6e9


def test_build_pose_model_names_the_hrformers():
    assert isinstance(models.build_pose_model("hrformer_tiny"), models.PoseHRFormer)
    with pytest.raises(ValueError, match="hrformer_tiny, hrformer_small, hrformer_base"):
        models.build_pose_model("hrformer_large")
