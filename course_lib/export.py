"""``python -m course_lib.export``: a trained network as an ONNX file, checked with ONNX Runtime.

Taught in ``07_dark_cpp.ipynb`` (last section: the whole pipeline outside PyTorch, ONNX Runtime
for the network and the C++ decoder for the keypoints). Command line::

    python -m course_lib.export --checkpoint runs/cpu/best.pt --out runs/cpu/model.onnx \\
        [--exporter torchscript|dynamo] [--opset N] [--no-check]

Any checkpoint of ``course_lib.train`` (``course_lib.predict.load_model``: every backbone,
``resnet``, ``hrnet_*``, ``hrformer_*``, and every head) becomes one ONNX graph with input
``images`` ``[batch, 3, H_in, W_in]`` (float32, normalised as ``course_lib.data`` does) and a
**dynamic batch size**; the crop size is fixed by the config. Outputs:

* a network that returns a tensor (the deconvolution head): one output, ``heatmaps``
  ``[batch, K, H, W]``;
* a network that returns several tensors (the heads of ``course_lib.heads``): one output per
  tensor, flattened in this documented order (:func:`flatten_output`): a dataclass by its fields
  in declaration order (``SimCCOutput`` -> ``x``, ``y``), a dict in its own key order, a tuple or
  list by position; nested names are joined with ``.`` (``a.b``, ``pair.0``). The names are
  stored in the file's metadata (``course_lib.outputs``) with the config
  (``course_lib.config``).

The export is then checked: ONNX Runtime and PyTorch run the same random crops at two batch
sizes other than the one traced (so the dynamic batch is exercised), and the largest absolute
difference over every output must stay within ``1e-4`` (exit code 1 otherwise).

Exporters (``--exporter``): ``torchscript`` (the default) is ``torch.onnx.export(...,
dynamo=False)``, the tracing exporter: it needs only ``onnx``, and on 2 CPU cores it exports
HRFormer-T in about 17 s where ``dynamo`` takes about 230 s (ResNet-18: 3 s against 15 s), with
the same outputs. ``dynamo`` (``torch.export``, needs ``onnxscript``) is PyTorch's newer path;
use it where the tracing exporter is deprecated away. Packages: ``pip install -e ".[export]"``
(onnx, onnxruntime, onnxscript).

A missing, corrupt or foreign checkpoint, an ``--out`` that is not a ``.onnx`` file name, a bad
option or a missing package: one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

INPUT_NAME = "images"
HEATMAPS_NAME = "heatmaps"
EXPORTERS = ("torchscript", "dynamo")
TOLERANCE = 1e-4  # max |ONNX Runtime - PyTorch| accepted on the outputs
TRACE_BATCH = 2  # the batch the graph is traced with; the check uses other sizes
CHECK_BATCHES = (1, 3)
PACKAGES = {"torchscript": ("onnx",), "dynamo": ("onnx", "onnxscript")}


class ExportMismatch(RuntimeError):
    """ONNX Runtime's outputs differ from PyTorch's by more than the tolerance."""


def missing_packages(exporter: str = "torchscript", *, runtime: bool = True) -> list[str]:
    """The packages an export with ``exporter`` (and, with ``runtime``, its check) lacks."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter: expected one of {', '.join(EXPORTERS)}, got {exporter!r}")
    needed = PACKAGES[exporter] + (("onnxruntime",) if runtime else ())
    return [name for name in needed if importlib.util.find_spec(name) is None]


def flatten_output(output: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``[(name, tensor), ...]`` of a network's output, in the documented order (module
    docstring): a lone tensor is ``heatmaps``; dataclass fields, dict keys and sequence
    positions are walked in their own order, nested names joined with ``.``. Any other leaf (a
    number, ``None``) is a ``ValueError`` naming it."""
    import torch

    if isinstance(output, torch.Tensor):
        return [(prefix or HEATMAPS_NAME, output)]
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        items = [(f.name, getattr(output, f.name)) for f in dataclasses.fields(output)]
    elif isinstance(output, dict):
        items = [(str(key), value) for key, value in output.items()]
    elif isinstance(output, (tuple, list)):
        items = [(str(i), value) for i, value in enumerate(output)]
    else:
        raise ValueError(f"output {prefix or 'of the network'!r}: expected tensors (in a "
                         f"dataclass, dict, tuple or list), got {type(output).__name__}")
    return [pair for key, value in items
            for pair in flatten_output(value, f"{prefix}.{key}" if prefix else key)]


def output_names(output: Any) -> list[str]:
    """The ONNX output names of a network's output (:func:`flatten_output`)."""
    return [name for name, _ in flatten_output(output)]


def _flat_module(model: Any) -> Any:
    """``model`` returning a tuple of tensors in :func:`flatten_output`'s order."""
    import torch

    class FlatOutputs(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(tensor for _, tensor in flatten_output(self.net(images)))

    return FlatOutputs(model).eval()


def example_crops(batch: int, input_size: tuple[int, int], seed: int = 0) -> Any:
    """Random normalised crops ``[batch, 3, H_in, W_in]`` (float32, fixed by ``seed``)."""
    import torch

    width, height = input_size
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, height, width, generator=generator)


def export_onnx(model: Any, path: str | os.PathLike, input_size: tuple[int, int], *,
                exporter: str = "torchscript", opset: int | None = None,
                metadata: dict | None = None) -> list[str]:
    """Write ``model`` (eval mode, CPU) to ``path`` as ONNX with a dynamic batch; returns the
    output names. ``input_size``: ``(W, H)`` of the crops; ``metadata``: extra strings for the
    file (the output names are always stored). Taught in ``07_dark_cpp.ipynb``."""
    import torch

    missing = missing_packages(exporter, runtime=False)
    if missing:
        raise ImportError(f"export: {', '.join(missing)} not installed "
                          f"(pip install -e \".[export]\")")
    model = model.eval().cpu()
    crops = example_crops(TRACE_BATCH, input_size)
    with torch.no_grad():
        names = output_names(model(crops))
    path = Path(path)
    with warnings.catch_warnings():  # tracing notes about shape checks, exporter deprecation
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(_flat_module(model), (crops,), str(path), dynamo=True,
                              input_names=[INPUT_NAME], output_names=names, opset_version=opset,
                              dynamic_shapes={"images": {0: batch}}, verbose=False)
        else:
            axes = {name: {0: "batch"} for name in (INPUT_NAME, *names)}
            torch.onnx.export(_flat_module(model), (crops,), str(path), dynamo=False,
                              input_names=[INPUT_NAME], output_names=names, opset_version=opset,
                              dynamic_axes=axes)
    _store_metadata(path, {"course_lib.outputs": json.dumps(names), **(metadata or {})})
    return names


def _store_metadata(path: Path, values: dict[str, str]) -> None:
    """Add ``values`` to the ONNX file's ``metadata_props`` (rewritten in place)."""
    import onnx

    proto = onnx.load(str(path))
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, str(path))


def onnx_session(path: str | os.PathLike, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session of ``path`` (``threads``: intra-op threads, one inter-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, images: Any) -> list[np.ndarray]:
    """The outputs of an ONNX Runtime session on crops ``[N, 3, H_in, W_in]``, in order."""
    array = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    return session.run(None, {INPUT_NAME: np.ascontiguousarray(array, dtype=np.float32)})


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata strings of an ONNX file (``course_lib.outputs``, ``course_lib.config``)."""
    return dict(onnx_session(path).get_modelmeta().custom_metadata_map)


def check_onnx(model: Any, path: str | os.PathLike, input_size: tuple[int, int], *,
               batches: tuple[int, ...] = CHECK_BATCHES) -> tuple[float, float]:
    """``(max |ONNX Runtime - PyTorch|, max |PyTorch|)`` over every output for random crops
    at each batch size of ``batches``."""
    import torch

    session = onnx_session(path)
    diff = scale = 0.0
    model = model.eval().cpu()
    for i, batch in enumerate(batches):
        crops = example_crops(batch, input_size, seed=1 + i)
        with torch.no_grad():
            expected = [t.float().numpy() for _, t in flatten_output(model(crops))]
        got = run_onnx(session, crops)
        if len(got) != len(expected):
            raise ExportMismatch(f"{path}: {len(got)} outputs, PyTorch gives {len(expected)}")
        for e, g in zip(expected, got):
            if e.shape != g.shape:
                raise ExportMismatch(f"{path}: output of shape {g.shape}, PyTorch's {e.shape}")
            diff = max(diff, float(np.abs(e - g).max()))
            scale = max(scale, float(np.abs(e).max()))
    return diff, scale


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                      exporter: str = "torchscript", opset: int | None = None,
                      check: bool = True) -> dict:
    """Load a checkpoint (``predict.load_model``), export it to ``out``, check it (when
    ``check``); returns ``{"out", "outputs", "input_size", "max_abs_diff", "max_abs_output"}``.
    Raises ``ExportMismatch`` beyond :data:`TOLERANCE`."""
    from course_lib.predict import load_model

    out = check_out_path(out)
    missing = missing_packages(exporter, runtime=check)
    if missing:
        raise ImportError(f"{', '.join(missing)} not installed (pip install -e \".[export]\")")
    model, cfg = load_model(checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = export_onnx(model, out, cfg.input_size, exporter=exporter, opset=opset,
                        metadata={"course_lib.config": json.dumps(cfg.to_dict(), default=str),
                                  "course_lib.checkpoint": str(checkpoint)})
    report = {"out": str(out), "outputs": names, "input_size": list(cfg.input_size),
              "max_abs_diff": None, "max_abs_output": None}
    if check:
        diff, scale = check_onnx(model, out, cfg.input_size)
        report.update(max_abs_diff=diff, max_abs_output=scale)
        if not diff <= TOLERANCE:
            raise ExportMismatch(f"{out}: ONNX Runtime differs from PyTorch by {diff:.3g} "
                                 f"(tolerance {TOLERANCE:g})")
    return report


def check_out_path(out: str | os.PathLike) -> Path:
    """``out`` as a path when it names an ``.onnx`` file (not a folder), else ``ValueError``."""
    path = Path(out)
    if path.suffix.lower() != ".onnx":
        raise ValueError(f"--out: expected a file name ending in .onnx, got {str(out)!r}")
    if path.is_dir():
        raise ValueError(f"--out: {path} is a folder; name the .onnx file to write")
    return path


def main(argv: list[str] | None = None) -> dict:
    """Parse, export, check, print; returns :func:`export_checkpoint`'s report."""
    from course_lib import config
    from course_lib.train.config import positive_int

    parser = argparse.ArgumentParser(
        prog="python -m course_lib.export",
        description="Export a checkpoint's network to ONNX (dynamic batch) and check it "
                    "against PyTorch with ONNX Runtime.")
    parser.add_argument("--checkpoint", help="checkpoint (default: the profile's best.pt)")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--exporter", default="torchscript", choices=EXPORTERS)
    parser.add_argument("--opset", type=positive_int, default=None,
                        help="ONNX opset (default: the exporter's)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the comparison with PyTorch (no onnxruntime needed)")
    args = parser.parse_args(argv)
    checkpoint = args.checkpoint or config.checkpoint_path()
    try:
        report = export_checkpoint(checkpoint, args.out, exporter=args.exporter,
                                   opset=args.opset, check=not args.no_check)
    except ExportMismatch as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    except (OSError, ValueError, ImportError) as exc:  # ImportError: a missing package
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(exc).split())}\n")
    print(f"wrote {report['out']}: input {INPUT_NAME} [batch, 3, {report['input_size'][1]}, "
          f"{report['input_size'][0]}], outputs {', '.join(report['outputs'])}")
    if report["max_abs_diff"] is not None:
        print(f"ONNX Runtime vs PyTorch (batches {CHECK_BATCHES}): max |diff| = "
              f"{report['max_abs_diff']:.3g} (outputs up to {report['max_abs_output']:.3g})")
    return report


if __name__ == "__main__":
    main()
