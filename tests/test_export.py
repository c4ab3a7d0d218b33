"""ONNX export (``course_lib.export``, ``python -m course_lib.export``).

Every backbone the course trains (ResNet-18 at 128x96, the small HRNet, HRFormer-T) and a head
of ``course_lib.heads`` whose output is a dataclass (SimCC) are exported with a dynamic batch
and run by ONNX Runtime at batch sizes other than the traced one: the largest difference from
PyTorch must stay within 1e-4. The networks get BatchNorm statistics and an output scale of a
trained one (random running means and variances, heatmaps of height about one), so the check
means what it says. The command line answers a bad argument or file with one ``error:`` line.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from course_lib import export  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
INPUT_SIZE = (96, 128)  # (W, H): 128x96 crops, 32x24 heatmaps
needs_onnx = pytest.mark.skipif(
    bool(export.missing_packages("torchscript")),
    reason="onnx/onnxruntime not installed: pip install -e .[export]")


FINAL_LAYERS = {"resnet": "head.final_layer", "hrnet_mini": "final_layer",
                "hrformer_tiny": "final_layer"}


def trained_like(model: torch.nn.Module, layers: dict[str, str], seed: int = 0
                 ) -> torch.nn.Module:
    """``model`` with BatchNorm statistics and affine terms away from their initial values, and
    each last layer of ``layers`` (``{module name: output name}``, a linear map with nothing
    after it) scaled so that its output peaks at 1, as a trained network's heatmaps do."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.2)
        model.eval()
        outputs = dict(export.flatten_output(model(export.example_crops(2, INPUT_SIZE))))
        for name, output in layers.items():
            layer, peak = model.get_submodule(name), outputs[output].abs().max()
            layer.weight /= peak
            layer.bias /= peak
    return model


def test_outputs_flatten_in_the_documented_order():
    @dataclasses.dataclass
    class Pair:
        x: torch.Tensor
        y: torch.Tensor

    t = torch.zeros(1)
    assert export.output_names(t) == ["heatmaps"]
    assert export.output_names(Pair(t, t)) == ["x", "y"]
    assert export.output_names({"b": t, "a": [t, Pair(t, t)]}) == ["b", "a.0", "a.1.x", "a.1.y"]
    with pytest.raises(ValueError, match="'a.1': expected tensors"):
        export.output_names({"a": (t, 3)})


@needs_onnx
@pytest.mark.parametrize("backbone", ["resnet", "hrnet_mini", "hrformer_tiny"])
def test_every_backbone_matches_pytorch_at_any_batch(backbone, tmp_path):
    import onnx

    from course_lib.models import build_pose_model

    torch.manual_seed(0)
    model = trained_like(build_pose_model(backbone, depth=18, head_channels=64),
                         {FINAL_LAYERS[backbone]: "heatmaps"})
    path = tmp_path / f"{backbone}.onnx"
    assert export.export_onnx(model, path, INPUT_SIZE) == ["heatmaps"]
    graph = onnx.load(str(path)).graph
    assert graph.input[0].name == "images"
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named, dynamic batch
    diff, scale = export.check_onnx(model, path, INPUT_SIZE, batches=(1, 5))
    print(f"{backbone}: max |ONNX - PyTorch| = {diff:.3g} (heatmaps up to {scale:.3g})")
    assert 0.5 < scale < 2.0
    assert diff <= export.TOLERANCE
    heatmaps = export.run_onnx(export.onnx_session(path), export.example_crops(4, INPUT_SIZE))
    assert [h.shape for h in heatmaps] == [(4, 17, 32, 24)]


@needs_onnx
def test_a_head_with_a_dataclass_output_exports_one_output_per_field(tmp_path):
    from course_lib.heads import HeadNetwork

    torch.manual_seed(0)
    model = trained_like(HeadNetwork("simcc", 18, 17, (24, 32), stride=4, deconv_channels=32),
                         {"head.mlp_head_x": "x", "head.mlp_head_y": "y"})
    path = tmp_path / "simcc.onnx"
    assert export.export_onnx(model, path, INPUT_SIZE) == ["x", "y"]
    assert json.loads(export.onnx_metadata(path)["course_lib.outputs"]) == ["x", "y"]
    diff, scale = export.check_onnx(model, path, INPUT_SIZE)
    print(f"simcc: max |ONNX - PyTorch| = {diff:.3g} (logits up to {scale:.3g})")
    assert 0.5 < scale < 2.0 and diff <= export.TOLERANCE
    x, y = export.run_onnx(export.onnx_session(path), export.example_crops(3, INPUT_SIZE))
    assert x.shape == (3, 17, 192) and y.shape == (3, 17, 256)  # 2 bins per input pixel


@pytest.mark.skipif(bool(export.missing_packages("dynamo")),
                    reason="onnx/onnxscript/onnxruntime not installed: pip install -e .[export]")
def test_the_dynamo_exporter_gives_the_same_network(tmp_path):
    from course_lib.models import build_pose_model

    torch.manual_seed(0)
    model = trained_like(build_pose_model("resnet", depth=18, head_channels=32),
                         {"head.final_layer": "heatmaps"})
    path = tmp_path / "dynamo.onnx"
    export.export_onnx(model, path, INPUT_SIZE, exporter="dynamo")
    diff, scale = export.check_onnx(model, path, INPUT_SIZE)
    print(f"resnet, dynamo: max |ONNX - PyTorch| = {diff:.3g} (heatmaps up to {scale:.3g})")
    assert diff <= export.TOLERANCE


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A deconvolution checkpoint, a SimCC one, a bare state dict and a corrupt file."""
    from course_lib.train import TrainConfig, build_model

    root = tmp_path_factory.mktemp("export")
    cfg = TrainConfig(depth=18, head_channels=16, input_size=INPUT_SIZE, heatmap_size=(24, 32))
    torch.manual_seed(0)
    model = build_model(cfg)
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "step": 0},
               root / "good.pt")
    torch.save(model.state_dict(), root / "bare.pt")
    (root / "corrupt.pt").write_bytes((root / "good.pt").read_bytes()[:4000])
    try:
        simcc = cfg.replace(head="simcc", loss="simcc")
        torch.save({"model": build_model(simcc).state_dict(), "config": simcc.to_dict()},
                   root / "simcc.pt")
    except ValueError:  # a config without the heads of notebook 10
        pass
    return root


@needs_onnx
def test_the_command_line_exports_and_checks_a_checkpoint(checkpoints, tmp_path, capsys):
    from course_lib.export import main

    out = tmp_path / "sub" / "model.onnx"
    report = main(["--checkpoint", str(checkpoints / "good.pt"), "--out", str(out)])
    assert out.is_file() and report["outputs"] == ["heatmaps"]
    assert report["max_abs_diff"] <= export.TOLERANCE
    assert "max |diff|" in capsys.readouterr().out
    meta = export.onnx_metadata(out)
    assert json.loads(meta["course_lib.config"])["input_size"] == list(INPUT_SIZE)
    if (checkpoints / "simcc.pt").is_file():
        report = main(["--checkpoint", str(checkpoints / "simcc.pt"), "--out", str(out)])
        assert report["outputs"] == ["x", "y"] and report["max_abs_diff"] <= export.TOLERANCE


BAD = {
    "missing checkpoint": (["--checkpoint", "{root}/nothing.pt", "--out", "{tmp}/m.onnx"],
                           "nothing.pt"),
    "corrupt checkpoint": (["--checkpoint", "{root}/corrupt.pt", "--out", "{tmp}/m.onnx"],
                           "corrupt.pt"),
    "bare state dict": (["--checkpoint", "{root}/bare.pt", "--out", "{tmp}/m.onnx"],
                        "bare state dict"),
    "out is a folder": (["--checkpoint", "{root}/good.pt", "--out", "{tmp}/folder.onnx"],
                        "is a folder"),
    "out is not .onnx": (["--checkpoint", "{root}/good.pt", "--out", "{tmp}/m.pt"],
                         "ending in .onnx"),
    "bad opset": (["--checkpoint", "{root}/good.pt", "--out", "{tmp}/m.onnx", "--opset", "0"],
                  "positive int"),
    "bad exporter": (["--checkpoint", "{root}/good.pt", "--out", "{tmp}/m.onnx",
                      "--exporter", "tflite"], "invalid choice"),
    "no out": (["--checkpoint", "{root}/good.pt"], "--out"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_every_bad_argument_or_file_is_one_error_line(case, checkpoints, tmp_path, capsys):
    from course_lib.export import main

    (tmp_path / "folder.onnx").mkdir()
    argv, expected = BAD[case]
    argv = [a.format(root=checkpoints, tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m course_lib.export: error:") or "error:" in err[-1]
    assert expected in err[-1]
    assert not list(tmp_path.glob("m.*"))


def test_a_missing_package_is_one_error_line(checkpoints, tmp_path, capsys, monkeypatch):
    from course_lib.export import main

    monkeypatch.setattr(export, "missing_packages", lambda *a, **k: ["onnxruntime"])
    with pytest.raises(SystemExit) as stop:
        main(["--checkpoint", str(checkpoints / "good.pt"), "--out", str(tmp_path / "m.onnx")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["python -m course_lib.export: error: onnxruntime not installed "
                   "(pip install -e \".[export]\")"]


def test_no_traceback_reaches_the_terminal(checkpoints, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "course_lib.export", "--checkpoint",
                           str(checkpoints / "corrupt.pt"), "--out", str(tmp_path / "m.onnx")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m course_lib.export: error:"), lines
