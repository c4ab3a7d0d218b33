"""Run a trained checkpoint on your own images: keypoints JSON and drawn skeletons.

Taught in ``08_oks_evaluation.ipynb`` (last section). Command line::

    python -m course_lib.infer IMAGE_OR_FOLDER --checkpoint runs/cpu/best.pt \\
        [--box x,y,w,h] [--decoder dark] [--flip] --out DIR

One person per image (a top-down model needs a box): ``--box`` in image pixels, else the whole
image. Writes ``DIR/keypoints.json`` (one entry per image: ``file``, ``drawing``, ``bbox``,
``keypoints`` as 51 numbers ``x, y, confidence``, ``score``) and ``DIR/<name>_pose.png`` with the
skeleton drawn (keypoints whose confidence is at most 0.2 as hollow rings).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def parse_box(text: str) -> list[float]:
    """``"x,y,w,h"`` -> ``[x, y, w, h]`` (positive width and height)."""
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"box: expected 'x,y,w,h' with w, h > 0, got {text!r}")
    return box


def list_images(path: str | os.PathLike) -> list[Path]:
    """An image file, or the image files of a folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"images: no {'/'.join(IMAGE_SUFFIXES)} files in {path}")
        return files
    raise ValueError(f"images: {path} is neither an image file nor a folder")


def predict_image(model: Any, cfg: dict, image: np.ndarray, box: list[float] | None = None, *,
                  decoder: str = "dark", flip: bool = False) -> dict:
    """Keypoints of the person in ``box`` (default: the whole image) of an RGB ``image``.

    Returns ``{"bbox", "keypoints" [17, 2] image px, "scores" [17], "score"}``.
    """
    import torch

    from course_lib import transforms as T
    from course_lib.data import normalize_image
    from course_lib.decode import flip_back
    from course_lib.validate import heatmaps_to_results

    height, width = image.shape[:2]
    box = list(box) if box is not None else [0.0, 0.0, float(width - 1), float(height - 1)]
    input_size = tuple(cfg["input_size"])
    udp = cfg.get("encoding", "msra") == "udp"
    center, scale = T.box_to_center_scale(box, input_size[0] / input_size[1])
    crop = T.warp_image(image, T.get_affine_matrix(center, scale, 0.0, input_size, udp=udp),
                        input_size)
    x = normalize_image(crop)[None]
    with torch.no_grad():
        heatmaps = model(x).float()
        if flip:
            mirrored = model(torch.flip(x, dims=[3])).float()
            heatmaps = 0.5 * (heatmaps + flip_back(mirrored, shift=not udp))
    meta = {"center": center[None], "scale": scale[None], "image_id": np.array([0]),
            "box_score": np.array([1.0])}
    result = heatmaps_to_results(heatmaps.numpy(), meta, input_size=input_size, decoder=decoder,
                                 udp=udp)[0]
    kps = np.asarray(result["keypoints"]).reshape(-1, 3)
    return {"bbox": box, "keypoints": kps[:, :2], "scores": kps[:, 2], "score": result["score"]}


def draw_prediction(image: np.ndarray, prediction: dict, *, min_score: float = 0.2) -> np.ndarray:
    """A copy of ``image`` with the predicted skeleton (confident keypoints solid, the others
    hollow) and the box."""
    import cv2

    from course_lib.viz import render_skeleton

    visible = np.where(np.asarray(prediction["scores"]) > min_score, 2, 1)
    out = render_skeleton(image, prediction["keypoints"], visible)
    x, y, w, h = (int(round(v)) for v in prediction["bbox"])
    cv2.rectangle(out, (x, y), (x + w, y + h), (255, 255, 255), 1)
    return out


def run(images: str | os.PathLike, *, checkpoint: str | os.PathLike | None = None,
        box: list[float] | None = None, out: str | os.PathLike = "predictions",
        decoder: str = "dark", flip: bool = False) -> list[dict]:
    """Predict every image, write ``keypoints.json`` and the drawings to ``out``."""
    import cv2

    from course_lib.data import load_image
    from course_lib.train import load_model

    files = list_images(images)
    model, cfg = load_model(checkpoint if checkpoint is not None else config.checkpoint_path())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in files:
        image = load_image(path)
        pred = predict_image(model, cfg, image, box, decoder=decoder, flip=flip)
        drawn = draw_prediction(image, pred)
        target = out / f"{path.stem}_pose.png"
        ok, data = cv2.imencode(".png", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"could not encode the drawing of {path}")
        config.write_atomic(target, data.tobytes())
        kps = np.concatenate([pred["keypoints"], pred["scores"][:, None]], axis=1)
        entries.append({
            "file": str(path), "drawing": str(target), "bbox": [float(v) for v in pred["bbox"]],
            "keypoints": [round(float(v), 3) for v in kps.ravel()], "score": pred["score"],
        })
    config.write_atomic(out / "keypoints.json", json.dumps(entries))
    return entries


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.infer",
        description="Predict the keypoints of one person per image with a trained checkpoint.",
    )
    parser.add_argument("images", help="an image file or a folder of images")
    parser.add_argument("--checkpoint", help="checkpoint (default: the profile's best.pt)")
    parser.add_argument("--box", help="person box x,y,w,h in pixels (default: the whole image)")
    parser.add_argument("--decoder", default="dark",
                        choices=("argmax", "quarter", "dark", "soft_argmax"))
    parser.add_argument("--flip", action="store_true", help="flip test")
    parser.add_argument("--out", default="predictions", help="output folder")
    args = parser.parse_args(argv)
    box = parse_box(args.box) if args.box else None
    entries = run(args.images, checkpoint=args.checkpoint, box=box, out=args.out,
                  decoder=args.decoder, flip=args.flip)
    print(f"{len(entries)} image(s): keypoints in {Path(args.out) / 'keypoints.json'}")
    return entries


if __name__ == "__main__":
    main()
