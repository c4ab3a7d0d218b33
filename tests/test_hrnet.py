"""course_lib.models.hrnet: the official HRNet names, shapes and counts, the small HRNet, training.

The committed lists ``tests/data/hrnet_w{32,48}_state_dict.txt`` hold the state-dict names and
shapes of the official ``PoseHighResolutionNet`` (deep-high-resolution-net.pytorch) built from
its COCO 256x192 configs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _train_helpers import BlobDataset, tiny_config  # noqa: E402

from course_lib import models  # noqa: E402
from course_lib import train as T  # noqa: E402

DATA = Path(__file__).parent / "data"
OFFICIAL_PARAMETERS = {32: 28_536_113, 48: 63_595_745}  # 17 keypoints


def _official_list(width: int) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (DATA / f"hrnet_w{width}_state_dict.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split("\t")
        rows.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


def _meta(width: int, **kwargs) -> torch.nn.Module:
    """The network on the meta device: names, shapes and counts without allocating weights."""
    with torch.device("meta"):
        return models.pose_hrnet(width, **kwargs)


@pytest.mark.parametrize("width", [32, 48])
def test_state_dict_names_order_and_shapes_equal_the_official_network(width):
    expected = _official_list(width)
    assert len(expected) == 1754
    ours = [(n, tuple(t.shape)) for n, t in _meta(width).state_dict().items()]
    assert ours == expected


@pytest.mark.parametrize("width", [32, 48])
def test_parameter_counts_equal_the_official_ones(width):
    assert models.count_parameters(_meta(width)) == OFFICIAL_PARAMETERS[width]
    official = sum(torch.Size(s).numel() for n, s in _official_list(width)
                   if not n.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert official == OFFICIAL_PARAMETERS[width]


def test_an_official_state_dict_loads_strictly():
    names = dict(_official_list(32))
    state = {n: torch.zeros(s, dtype=torch.long if n.endswith("num_batches_tracked") else None)
             for n, s in names.items()}
    model = models.pose_hrnet(32)
    assert not model.load_state_dict(state, strict=True).missing_keys


def test_structure_of_the_official_network():
    m = _meta(32)
    assert [len(getattr(m, f"stage{s}")) for s in (2, 3, 4)] == [1, 4, 3]
    assert len(m.layer1) == 4 and type(m.layer1[0]).__name__ == "Bottleneck"
    assert [len(b) for b in m.stage4[0].branches] == [4, 4, 4, 4]
    assert len(m.stage4[2].fuse_layers) == 1 and len(m.stage4[1].fuse_layers) == 4
    down = m.stage3[0].fuse_layers[2][0]  # branch 0 -> branch 2: two stride-2 3x3 steps
    assert [step[0].stride for step in down] == [(2, 2), (2, 2)]
    assert [type(x).__name__ for x in down[0]] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert [type(x).__name__ for x in down[1]] == ["Conv2d", "BatchNorm2d"]
    assert m.final_layer.kernel_size == (1, 1) and m.final_layer.in_channels == 32


@pytest.mark.parametrize("size,heatmap", [((192, 256), (48, 64)), ((96, 128), (24, 32))])
def test_output_shapes_at_256x192_and_128x96(size, heatmap):
    torch.manual_seed(0)
    (w, h), (wh, hh) = size, heatmap
    with torch.no_grad():
        assert models.pose_hrnet(32).eval()(torch.zeros(1, 3, h, w)).shape == (1, 17, hh, wh)
        assert models.pose_hrnet(48, 5).eval()(torch.zeros(1, 3, h, w)).shape == (1, 5, hh, wh)


def test_input_sizes_that_are_not_multiples_of_32_work():
    with torch.no_grad():
        out = models.pose_hrnet(32, mini=True).eval()(torch.zeros(1, 3, 80, 72))
    assert out.shape == (1, 17, 20, 18)


def test_mini_is_the_same_code_smaller():
    m = models.pose_hrnet(32, mini=True)
    assert models.count_parameters(m) == 5_062_641
    assert [len(getattr(m, f"stage{s}")) for s in (2, 3, 4)] == [1, 1, 1]
    assert len(m.layer1) == 2 and [len(b) for b in m.stage4[0].branches] == [2, 2, 2, 2]
    full = set(models.pose_hrnet(32).state_dict())
    assert set(m.state_dict()) <= full  # every tensor of the mini has its official name
    assert models.build_pose_model("hrnet_mini").spec == m.spec


def test_forward_backward_step_of_the_mini():
    torch.manual_seed(0)
    model = models.pose_hrnet(32, mini=True, zero_init_residual=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, target = torch.randn(2, 3, 64, 48), torch.rand(2, 17, 16, 12)
    before = model.final_layer.weight.detach().clone()
    loss = torch.nn.functional.mse_loss(model(x), target)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    assert not torch.equal(before, model.final_layer.weight)


def test_init_kaiming_head_small_and_zero_init_residual():
    torch.manual_seed(0)
    m = models.pose_hrnet(32, mini=True, zero_init_residual=True)
    assert abs(m.final_layer.weight.std().item() - 0.001) < 0.0003
    assert torch.all(m.final_layer.bias == 0)
    assert torch.all(m.layer1[0].bn3.weight == 0) and torch.all(m.stage2[0].branches[1][0].bn2.weight == 0)
    assert torch.all(models.pose_hrnet(32, mini=True).layer1[0].bn3.weight == 1)


def test_shape_table_lists_every_branch():
    rows = models.shape_table(models.pose_hrnet(32, mini=True), (96, 128))
    assert [r["stage"] for r in rows][:3] == ["input", "stem: 2 x conv 3x3/2 + bn + relu", "layer1"]
    stage3 = rows[4]
    assert stage3["branches"] == [(32, 32, 24), (64, 16, 12), (128, 8, 6)]
    assert stage3["strides"] == [4, 8, 16]
    assert rows[5]["branches"] == [(32, 32, 24)]  # the last module keeps the highest resolution
    assert rows[-1]["shape"] == (17, 32, 24) and rows[-1]["stride"] == 4
    model = models.pose_hrnet(32, mini=True)
    assert sum(r["params"] for r in models.shape_table(model, (48, 64))) == \
        models.count_parameters(model)


def test_count_flops_of_the_official_w32():
    # 7.65 G multiply-accumulates at 256x192 (the HRNet paper's rounding of its count: 7.1)
    assert round(models.count_flops(models.pose_hrnet(32), (192, 256)) / 1e9, 2) == 7.65


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="width"):
        models.pose_hrnet(0)
    with pytest.raises(ValueError, match="num_keypoints"):
        models.pose_hrnet(32, 0)
    with pytest.raises(ValueError, match=r"x: expected a tensor \[N, 3, H, W\]"):
        models.pose_hrnet(32, mini=True)(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match="backbone: expected one of resnet, hrnet_w32"):
        models.build_pose_model("hrnet_w40")


def test_imagenet_weights_load_by_path_as_the_official_code_does(tmp_path):
    torch.manual_seed(0)
    source = models.pose_hrnet(32)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("final_layer")}
    state["classifier.weight"] = torch.zeros(1000, 2048)
    torch.save(state, tmp_path / "hrnet_w32-36af842e.pth")
    model = models.pose_hrnet(32)
    left = models.load_hrnet_imagenet_weights(model, tmp_path / "hrnet_w32-36af842e.pth")
    assert left == ["classifier.weight"]
    assert torch.equal(model.stage4[2].fuse_layers[0][3][0].weight,
                       source.stage4[2].fuse_layers[0][3][0].weight)
    with pytest.raises(FileNotFoundError, match=r"hrnet_w32-36af842e\.pth"):
        models.load_hrnet_imagenet_weights(model, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="official HRNet-W32/W48 only"):
        models.load_hrnet_imagenet_weights(models.pose_hrnet(32, mini=True), tmp_path / "x.pth")


def test_build_model_of_the_training_code_takes_the_backbone_field():
    assert isinstance(T.build_model(tiny_config(backbone="hrnet_mini")), models.PoseHRNet)
    with pytest.raises(FileNotFoundError, match=r"hrnet_w32-36af842e\.pth"):
        T.build_model(tiny_config(backbone="hrnet_w32", pretrained=True))
    with pytest.raises(ValueError, match="backbone: expected one of"):
        T.build_model(tiny_config(backbone="vgg"))


def test_training_an_hrnet_resumes_bit_identically(tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_config(backbone="hrnet_mini", epochs=1, batch_size=4, lr_steps=(1,))  # 4 steps
    data = BlobDataset(16)
    straight, hist = T.train(cfg, tmp_path / "a", train_dataset=data, progress=False)
    assert hist["finished"] and hist["train"][-1]["step"] == 4
    _, h1 = T.train(cfg, tmp_path / "b", train_dataset=data, stop_at_step=2, progress=False)
    assert not h1["finished"]
    resumed, h2 = T.train(cfg, tmp_path / "b", train_dataset=data, resume=True, progress=False)
    assert h2["finished"] and h2["train"][-1]["step"] == 4
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert [r["loss"] for r in h2["train"]] == [r["loss"] for r in hist["train"]]
    assert T.load_checkpoint(tmp_path / "b" / "latest.pt")["config"]["backbone"] == "hrnet_mini"
