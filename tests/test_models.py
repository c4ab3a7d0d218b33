"""course_lib.models (the ResNet side): torchvision's names, shapes, SimpleBaseline's head, init,
the package's public names and the builder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from course_lib import models

DATA = Path(__file__).parent / "data"

# torchvision's parameter counts (``sum(p.numel() for p in resnetXX().parameters())``) minus
# the classifier ``fc`` (in_features * 1000 + 1000), which the pose backbone does not have.
TORCHVISION_PARAMS_WITHOUT_FC = {
    18: 11_689_512 - 513_000,
    34: 21_797_672 - 513_000,
    50: 25_557_032 - 2_049_000,
    101: 44_549_160 - 2_049_000,
    152: 60_192_808 - 2_049_000,
}


def _torchvision_list() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (DATA / "torchvision_resnet50_params.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split("\t")
        rows.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


def test_resnet50_state_dict_matches_torchvision_names_and_shapes_in_order():
    expected = [(n, s) for n, s in _torchvision_list() if not n.startswith("fc.")]
    assert len(expected) == 318  # 53 convs + 53 x 2 BN parameters + 53 x 3 BN buffers
    ours = [(n, tuple(t.shape)) for n, t in models.ResNetBackbone(50).state_dict().items()]
    assert ours == expected


def test_pose_resnet_prefixes_backbone_names():
    names = set(models.pose_resnet(18).state_dict())
    assert "backbone.layer4.1.bn2.running_var" in names
    assert "head.deconv_layers.0.weight" in names and "head.final_layer.bias" in names


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_backbone_parameter_counts_equal_torchvision(depth):
    assert models.count_parameters(models.ResNetBackbone(depth)) == TORCHVISION_PARAMS_WITHOUT_FC[depth]


def test_stride_sits_on_the_3x3_conv_as_torchvision_v1_5():
    b = models.ResNetBackbone(50)
    assert b.layer2[0].conv1.stride == (1, 1)
    assert b.layer2[0].conv2.stride == (2, 2)
    assert b.layer2[0].downsample[0].stride == (2, 2)
    assert models.ResNetBackbone(18).layer3[0].conv1.stride == (2, 2)


def test_resnet50_pose_output_shape_and_parameters():
    model = models.pose_resnet()  # ResNet-50, 17 keypoints
    out = model.eval()(torch.zeros(1, 3, 256, 192))
    assert tuple(out.shape) == (1, 17, 64, 48)
    # SimpleBaseline ResNet-50 256x192 has 34.0 M parameters (MMPose model zoo)
    assert models.count_parameters(model) == 33_999_697


@pytest.mark.parametrize("depth,channels", [(18, 512), (34, 512), (50, 2048)])
def test_shapes_and_stride_for_other_depths_and_keypoints(depth, channels):
    model = models.pose_resnet(depth, num_keypoints=5).eval()
    assert model.backbone.out_channels == channels
    assert tuple(model(torch.zeros(2, 3, 128, 96)).shape) == (2, 5, 32, 24)


def test_deconv_output_size_doubles():
    deconv = torch.nn.ConvTranspose2d(4, 4, kernel_size=4, stride=2, padding=1, output_padding=0)
    assert tuple(deconv(torch.zeros(1, 4, 7, 5)).shape) == (1, 4, 14, 10)


def test_head_structure_and_simplebaseline_init():
    torch.manual_seed(0)
    head = models.pose_resnet(50).head
    kinds = [type(m).__name__ for m in head.deconv_layers]
    assert kinds == ["ConvTranspose2d", "BatchNorm2d", "ReLU"] * 3
    d0 = head.deconv_layers[0]
    assert (d0.in_channels, d0.out_channels, d0.kernel_size, d0.stride, d0.padding) == (
        2048, 256, (4, 4), (2, 2), (1, 1))
    assert d0.output_padding == (0, 0) and d0.bias is None
    assert abs(d0.weight.std().item() - 0.001) < 0.0001
    assert abs(head.final_layer.weight.std().item() - 0.001) < 0.0002
    assert head.final_layer.kernel_size == (1, 1)
    assert torch.all(head.final_layer.bias == 0)
    bn = head.deconv_layers[1]
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_zero_init_residual_zeroes_last_bn_of_each_block():
    m = models.pose_resnet(50, zero_init_residual=True)
    assert torch.all(m.backbone.layer3[2].bn3.weight == 0)
    assert torch.all(m.backbone.layer3[2].bn2.weight == 1)
    m18 = models.pose_resnet(18, zero_init_residual=True)
    assert torch.all(m18.backbone.layer1[0].bn2.weight == 0)
    assert torch.all(models.pose_resnet(18).backbone.layer1[0].bn2.weight == 1)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="depth"):
        models.pose_resnet(depth=42)
    with pytest.raises(ValueError, match="num_keypoints"):
        models.pose_resnet(18, num_keypoints=0)
    with pytest.raises(ValueError, match=r"x: expected a tensor \[N, 3, H, W\]"):
        models.pose_resnet(18)(torch.zeros(3, 64, 64))


def test_count_flops_pins_the_convention():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1))
    assert models.count_flops(conv, (4, 4)) == 4 * 4 * 8 * 3 * 9
    deconv = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 8, 4, stride=2, padding=1))
    assert models.count_flops(deconv, (2, 2)) == 2 * 2 * 3 * 8 * 16
    # ResNet-50 at 224x224: 4.09 G multiply-accumulates with the classifier (2048 x 1000)
    assert models.count_flops(models.ResNetBackbone(50), (224, 224)) + 2048 * 1000 == 4_089_184_256


def test_shape_table_follows_the_strides():
    rows = models.shape_table(models.pose_resnet(18), (192, 256))
    assert rows[0]["shape"] == (3, 256, 192)
    assert [r["stride"] for r in rows[1:]] == [2, 4, 4, 8, 16, 32, 16, 8, 4, 4]
    assert rows[-1]["shape"] == (17, 64, 48)


def test_load_imagenet_weights_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    source = models.ResNetBackbone(18)
    state = dict(source.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save(state, tmp_path / "resnet18.pth")
    model = models.pose_resnet(18)
    left = models.load_imagenet_weights(model, tmp_path / "resnet18.pth")
    assert sorted(left) == ["fc.bias", "fc.weight"]
    for name, tensor in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], tensor), name


def test_load_imagenet_weights_offline_names_the_url_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"resnet50-0676ba61\.pth.*pass its path"):
        models.load_imagenet_weights(models.pose_resnet(50))
    with pytest.raises(FileNotFoundError, match=r"no file at .*download\.pytorch\.org"):
        models.load_imagenet_weights(models.pose_resnet(18), tmp_path / "missing.pth")


def test_load_imagenet_weights_rejects_a_wrong_architecture(tmp_path):
    torch.save(models.ResNetBackbone(18).state_dict(), tmp_path / "r18.pth")
    with pytest.raises((ValueError, RuntimeError)):
        models.load_imagenet_weights(models.pose_resnet(50), tmp_path / "r18.pth")


def _torchvision_or_skip():
    try:
        import torchvision
    except Exception as exc:  # a CPU torch wheel without a matching torchvision raises RuntimeError
        pytest.skip(f"torchvision does not import here ({type(exc).__name__}: {exc}); "
                    "the committed parameter list is compared instead")
    return torchvision


def test_same_weights_give_the_same_features_as_torchvision():
    torchvision = _torchvision_or_skip()
    torch.manual_seed(0)
    tv = torchvision.models.resnet50(weights=None).eval()
    ours = models.ResNetBackbone(50).eval()
    left = ours.load_state_dict(tv.state_dict(), strict=False)
    assert left.missing_keys == [] and sorted(left.unexpected_keys) == ["fc.bias", "fc.weight"]
    x = torch.randn(2, 3, 128, 96)
    tv_features = torch.nn.Sequential(*list(tv.children())[:-2])
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv_features(x), rtol=0, atol=0)


def test_head_channels_sets_the_deconvolution_width_and_keeps_the_output_shape():
    from course_lib.models import pose_resnet

    model = pose_resnet(18, head_channels=128)
    widths = {m.out_channels for m in model.head.modules() if isinstance(m, torch.nn.ConvTranspose2d)}
    assert widths == {128}
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 128, 96)).shape == (1, 17, 32, 24)
    with pytest.raises(ValueError, match="head_channels"):
        pose_resnet(18, head_channels=0)


def test_the_package_keeps_its_public_names():
    names = ("pose_resnet", "load_imagenet_weights", "count_parameters", "count_flops",
             "shape_table", "DeconvHead", "ResNetBackbone", "PoseResNet", "BasicBlock",
             "Bottleneck", "RESNET_SPECS", "IMAGENET_URLS", "pose_hrnet", "pose_hrformer",
             "build_pose_model", "load_hrnet_imagenet_weights")
    assert [n for n in names if not hasattr(models, n)] == []
    assert set(names) <= set(models.__all__)
    assert models.BACKBONES == ("resnet", "hrnet_w32", "hrnet_w48", "hrnet_mini",
                                "hrformer_tiny", "hrformer_small", "hrformer_base")


def test_build_pose_model_of_resnet_equals_pose_resnet():
    torch.manual_seed(0)
    a = models.build_pose_model("resnet", depth=18, num_keypoints=5, head_channels=64,
                                zero_init_residual=True)
    torch.manual_seed(0)
    b = models.pose_resnet(18, 5, head_channels=64, zero_init_residual=True)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ValueError, match=r"backbone: expected one of resnet, .*got 'vgg'"):
        models.build_pose_model("vgg")
