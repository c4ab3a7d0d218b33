"""Run a trained checkpoint on your own images: keypoints JSON and drawn skeletons.

Taught in ``08_oks_evaluation.ipynb`` (last section). Command line::

    python -m course_lib.infer IMAGE_OR_FOLDER --checkpoint runs/cpu/best.pt \\
        [--box x,y,w,h] [--decoder dark] [--flip] --out DIR

One person per image (a top-down model needs a box): ``--box`` in image pixels, else the whole
image. Writes ``DIR/keypoints.json`` (one entry per image: ``file``, ``drawing``, ``bbox``,
``keypoints`` as 51 numbers ``x, y, confidence``, ``score``) and ``DIR/<file name>_pose.png``
with the skeleton drawn (keypoints whose confidence is at most 0.2 as hollow rings):
``a.jpg_pose.png`` and ``a.png_pose.png``, so two images never share a drawing. The prediction
itself is ``course_lib.predict.predict_image``. A missing or unreadable image, checkpoint or
argument is one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from course_lib import config
from course_lib.predict import DECODERS

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
    raise FileNotFoundError(f"images: no such image file or folder: {path}")


def drawing_name(path: str | os.PathLike) -> str:
    """``a.jpg`` -> ``a.jpg_pose.png``: the whole file name, so ``a.jpg`` and ``a.png`` (one
    folder holds each name once) get two drawings."""
    return f"{Path(path).name}_pose.png"


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
    from course_lib.predict import load_model, predict_image

    files = list_images(images)
    model, cfg = load_model(checkpoint if checkpoint is not None else config.checkpoint_path())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in files:
        image = load_image(path)
        pred = predict_image(model, cfg, image, box, decoder=decoder, flip=flip)
        drawn = draw_prediction(image, pred)
        target = out / drawing_name(path)
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
    """Parse, predict, write; returns the entries of ``keypoints.json``."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.infer",
        description="Predict the keypoints of one person per image with a trained checkpoint.",
    )
    parser.add_argument("images", help="an image file or a folder of images")
    parser.add_argument("--checkpoint", help="checkpoint (default: the profile's best.pt)")
    parser.add_argument("--box", help="person box x,y,w,h in pixels (default: the whole image)")
    parser.add_argument("--decoder", default="dark",
                        choices=DECODERS)
    parser.add_argument("--flip", action="store_true", help="flip test")
    parser.add_argument("--out", default="predictions", help="output folder")
    args = parser.parse_args(argv)
    try:  # a bad file or box is one "error:" line and exit code 2, as a bad argument is
        box = parse_box(args.box) if args.box else None
        entries = run(args.images, checkpoint=args.checkpoint, box=box, out=args.out,
                      decoder=args.decoder, flip=args.flip)
    except (OSError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(exc).split())}\n")
    print(f"{len(entries)} image(s): keypoints in {Path(args.out) / 'keypoints.json'}")
    return entries


if __name__ == "__main__":
    main()
