"""Validate a trained checkpoint: crops -> heatmaps -> keypoints -> COCO results -> the ten stats.

Taught in ``08_oks_evaluation.ipynb``. Command line::

    python -m course_lib.validate --checkpoint runs/cpu/best.pt \\
        --ann data/synthetic/annotations/person_keypoints_val.json --images data/synthetic/val \\
        [--boxes person_detections.json] [--decoder dark|quarter|argmax|soft_argmax] [--flip] \\
        --out results.json

Every argument has a default from the active profile (``course_lib.config``): the profile's
best checkpoint, its val annotation file and image folder, DARK decoding, no flip test, and
``<checkpoint folder>/results_val_<decoder>[_flip].json``.

The pipeline, in functions a notebook can call one at a time:

* :func:`predict_heatmaps`: the network on every crop of a ``TopDownDataset`` (ground-truth
  boxes, or person detections with ``--boxes``); with ``flip=True`` the flip test (the mirrored
  crop's heatmaps brought back with ``decode.flip_back`` and averaged);
* :func:`heatmaps_to_results`: decode (any method of ``course_lib.decode``), heatmap -> crop ->
  image pixels, COCO result dicts; the instance score is the box score times the mean confidence
  of the keypoints above 0.2 (SimpleBaseline's rescoring);
* :func:`oks_nms`: with detection boxes, duplicate poses of one person are removed (OKS > 0.9,
  as SimpleBaseline does);
* ``course_lib.evaluate.evaluate_keypoints`` for the stats.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config
from course_lib.coco import FLIP_PAIRS, NUM_KEYPOINTS, OKS_SIGMAS

DECODERS = ("argmax", "quarter", "dark", "soft_argmax")
NMS_OKS_THRESHOLD = 0.9


def predict_heatmaps(model: Any, dataset: Any, *, flip: bool = False, batch_size: int = 32,
                     device: str = "cpu", limit: int | None = None,
                     progress: bool = True) -> tuple[np.ndarray, dict]:
    """The model's heatmaps for every crop of ``dataset`` (no augmentation: ``train=False``).

    Returns ``(heatmaps [N, K, H, W] float32, meta)`` with ``meta`` the dataset's metadata
    stacked per key (``image_id``, ``center``, ``scale``, ``box_score``, ``keypoints``, ...).
    ``flip=True``: the flip test, ``0.5 * (h(crop) + flip_back(h(mirrored crop)))`` with the
    one-pixel shift of the MSRA convention (none under UDP). ``limit``: only the first crops
    (a quick look; the people left out then count as missed).
    """
    import torch
    from tqdm.auto import tqdm

    from course_lib.data import make_loader
    from course_lib.decode import flip_back

    if len(dataset) == 0:
        raise ValueError("dataset: no crops to predict (no labelled people or boxes)")
    udp = getattr(dataset, "encoding", "msra") == "udp"
    if limit is not None and limit < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(int(limit)))
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False)
    model = model.to(device).eval()
    maps, metas = [], []
    with torch.no_grad():
        for batch in tqdm(loader, desc="heatmaps", disable=not progress, leave=False):
            images = batch["image"].to(device)
            heatmaps = model(images).float()
            if flip:
                mirrored = model(torch.flip(images, dims=[3])).float()
                heatmaps = 0.5 * (heatmaps + flip_back(mirrored, FLIP_PAIRS, shift=not udp))
            maps.append(heatmaps.cpu().numpy())
            metas.append(batch["meta"])
    meta = {key: np.concatenate([np.asarray(m[key]) for m in metas]) for key in metas[0]}
    return np.concatenate(maps).astype(np.float32), meta


def heatmaps_to_results(heatmaps: np.ndarray, meta: dict, *, input_size: tuple[int, int],
                        decoder: str = "dark", udp: bool = False) -> list[dict]:
    """COCO keypoint results from heatmaps and the crops' ``meta`` (see :func:`predict_heatmaps`):
    :func:`course_lib.train.results_from_heatmaps` with the decoder checked by name.

    Keypoints are written as ``x, y, confidence`` in image pixels (pycocotools reads only x, y).
    """
    from course_lib.train import results_from_heatmaps

    if decoder not in DECODERS:
        raise ValueError(f"decoder: expected one of {', '.join(DECODERS)}, got {decoder!r}")
    return results_from_heatmaps(heatmaps, meta, input_size=input_size, method=decoder, udp=udp)


def oks_nms(results: list[dict], threshold: float = NMS_OKS_THRESHOLD) -> list[dict]:
    """Greedy non-maximum suppression per image: keep the best-scoring pose, drop every other
    pose whose OKS with it exceeds ``threshold`` (the area is the kept pose's keypoint box)."""
    by_image: dict = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)
    variances = (OKS_SIGMAS * 2) ** 2
    kept = []
    for rs in by_image.values():
        rs = sorted(rs, key=lambda r: -r["score"])
        kps = np.asarray([r["keypoints"] for r in rs], dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
        alive = np.ones(len(rs), dtype=bool)
        for i in range(len(rs)):
            if not alive[i]:
                continue
            kept.append(rs[i])
            xy = kps[i, :, :2]
            w, h = xy.max(axis=0) - xy.min(axis=0)
            d2 = ((kps[:, :, :2] - xy) ** 2).sum(axis=2)
            sim = np.exp(-d2 / variances / (w * h + np.spacing(1)) / 2).mean(axis=1)
            alive &= ~(sim > threshold)
    return kept


def run(checkpoint: str | os.PathLike | None = None, ann: str | os.PathLike | None = None,
        images: str | os.PathLike | None = None, *, boxes: str | os.PathLike | None = None,
        decoder: str = "dark", flip: bool = False, out: str | os.PathLike | None = None,
        batch_size: int = 32, progress: bool = True) -> tuple[dict, list[dict], Path]:
    """The whole validation; returns ``(stats, results, results_path)``."""
    from course_lib.data import TopDownDataset
    from course_lib.evaluate import evaluate_keypoints
    from course_lib.train import load_model

    if decoder not in DECODERS:
        raise ValueError(f"decoder: expected one of {', '.join(DECODERS)}, got {decoder!r}")
    checkpoint = Path(checkpoint) if checkpoint else config.checkpoint_path()
    ann = Path(ann) if ann else config.annotation_file("val")
    images = Path(images) if images else config.image_dir("val")
    if not images.is_dir():
        raise FileNotFoundError(f"images: no folder {images} (generate the data first: make data)")
    model, cfg = load_model(checkpoint)
    encoding = cfg.get("encoding", "msra")
    dataset = TopDownDataset(ann, images, input_size=tuple(cfg["input_size"]),
                             heatmap_size=tuple(cfg["heatmap_size"]), sigma=cfg.get("sigma", 2.0),
                             train=False, encoding=encoding, boxes_file=boxes)
    heatmaps, meta = predict_heatmaps(model, dataset, flip=flip, batch_size=batch_size,
                                      progress=progress)
    results = heatmaps_to_results(heatmaps, meta, input_size=tuple(cfg["input_size"]),
                                  decoder=decoder, udp=encoding == "udp")
    if boxes is not None:
        results = oks_nms(results)
    if out is None:
        out = checkpoint.parent / f"results_val_{decoder}{'_flip' if flip else ''}.json"
    out = Path(out)
    config.write_atomic(out, json.dumps(results))
    stats = evaluate_keypoints(ann, results)
    return stats, results, out


def main(argv: list[str] | None = None) -> dict:
    from course_lib.evaluate import format_stats

    parser = argparse.ArgumentParser(
        prog="python -m course_lib.validate",
        description="Evaluate a checkpoint with COCO keypoint AP (OKS); writes a results JSON.",
    )
    parser.add_argument("--checkpoint", help="checkpoint (default: the profile's best.pt)")
    parser.add_argument("--ann", help="COCO keypoint annotation file (default: the profile's val)")
    parser.add_argument("--images", help="image folder (default: the profile's val images)")
    parser.add_argument("--boxes", help="COCO person detections to crop instead of GT boxes")
    parser.add_argument("--decoder", default="dark", choices=DECODERS)
    parser.add_argument("--flip", action="store_true", help="flip test (average with mirror)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", help="results JSON (default: beside the checkpoint)")
    args = parser.parse_args(argv)
    stats, results, out = run(args.checkpoint, args.ann, args.images, boxes=args.boxes,
                              decoder=args.decoder, flip=args.flip, out=args.out,
                              batch_size=args.batch_size)
    print(f"{len(results)} results written to {out}")
    print(format_stats(stats))
    return stats


if __name__ == "__main__":
    main()
