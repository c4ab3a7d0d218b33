"""A trained network on crops: checkpoint -> model -> heatmaps -> image keypoints -> COCO results -> AP.

Taught in ``08_oks_evaluation.ipynb`` (used by ``05_training_mse.ipynb`` to validate while it
trains and by ``06_decoding_dark.ipynb`` to decode a trained model). The one implementation of
that path; training's validation, ``python -m course_lib.validate`` and
``python -m course_lib.infer`` are thin users of it. One path, one function per arrow:

* :func:`load_model`: a checkpoint of ``course_lib.train`` and the network its config describes;
* :func:`run_network`: the network on a batch of crops; with ``flip=True`` the flip test
  (``course_lib.decode.fuse_flip``: the mirrored crop's heatmaps flipped back, with the one-pixel
  shift of the MSRA convention and none under UDP, averaged with the plain ones);
* :func:`predict_heatmaps`: :func:`run_network` over every crop of a ``TopDownDataset``;
  :func:`predict_keypoints` the same for any head (``course_lib.heads``, notebook 10), decoded
  batch by batch (:func:`decode_output`: heatmaps by ``course_lib.decode``, a head's output by
  the head's own decoder);
* :func:`heatmaps_to_results` / :func:`keypoints_to_results`: decode (heatmaps only) and map
  heatmap pixels to image pixels (``decode.points_to_image``, in the crop's geometry: MSRA or
  UDP), then SimpleBaseline's rescoring: the instance score is the box
  score times the mean confidence of the keypoints above 0.2. A map whose maximum is not
  positive holds no keypoint: it keeps the marker ``(-1, -1)`` and its (non-positive) score;
* :func:`oks_nms`: with detector boxes, duplicate poses of one person removed (OKS > 0.9);
* :func:`validate` / :func:`evaluate_checkpoint`: the ten COCO stats with
  ``course_lib.evaluate.evaluate_keypoints`` over every image of the annotation file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib import config
from course_lib.coco import FLIP_PAIRS, NUM_KEYPOINTS, OKS_SIGMAS
from course_lib.decode import METHODS, NO_KEYPOINT, decode, fuse_flip, points_to_image
from course_lib.evaluate import evaluate_keypoints
from course_lib.train import TrainConfig, build_model, load_checkpoint, make_dataset

DECODERS = METHODS  # argmax | quarter | dark | soft_argmax
KEYPOINT_SCORE_THRESHOLD = 0.2  # keypoints above it count in the instance score
NMS_OKS_THRESHOLD = 0.9


UNTRAINED_BANNER = (
    "=" * 78 + "\n"
    "smoke: untrained model, placeholder numbers. This checkpoint comes from the smoke profile\n"
    "(a few training steps, for CI): its heatmaps, keypoints and AP below show that the code\n"
    "runs, not what a trained network does. Run the cpu profile (make lab) for real numbers.\n"
    + "=" * 78 + "\n"
)


def untrained_banner(cfg: TrainConfig) -> str:
    """The banner notebooks 05-08 print above a smoke checkpoint's results ("" otherwise)."""
    return UNTRAINED_BANNER if cfg.profile == "smoke" else ""


def load_model(path: str | os.PathLike | None = None) -> tuple[torch.nn.Module, TrainConfig]:
    """``(model in eval mode, config)`` from a checkpoint (default: the profile's ``best.pt``).

    Raises ``FileNotFoundError`` (no file), ``course_lib.train.CheckpointError`` (corrupt, or
    refused by ``weights_only`` loading) and ``ValueError`` naming the file and what it holds
    instead of a checkpoint of ``course_lib.train`` (a bare state dict, no ``config``, a config
    whose network the weights do not fit)."""
    path = Path(path) if path is not None else config.checkpoint_path()
    ckpt = load_checkpoint(path)
    expected = f"checkpoint {path}: expected a course_lib.train checkpoint (a dict with " \
               f"'model' and 'config'), got"
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{expected} {_describe_checkpoint(ckpt)}")
    try:
        cfg = TrainConfig.from_dict(ckpt["config"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {path}: its config is not a TrainConfig ({exc})") from None
    model = build_model(cfg.replace(pretrained=False))  # no ImageNet fetch: weights come next
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = " ".join(str(exc).split())[:240]
        raise ValueError(f"checkpoint {path}: its weights do not fit the network its config "
                         f"describes (depth {cfg.depth}, head {cfg.head!r} of "
                         f"{cfg.head_channels} channels, {cfg.num_keypoints} keypoints): "
                         f"{first}") from None
    return model.eval(), cfg


def _describe_checkpoint(ckpt: Any) -> str:
    """What a file that is not a course checkpoint holds, in a few words."""
    if not isinstance(ckpt, dict):
        return f"a {type(ckpt).__name__}"
    keys = sorted(map(str, ckpt))
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return (f"a bare state dict ({len(keys)} tensors, e.g. {keys[0]!r}): save "
                f"{{'model': model.state_dict(), 'config': cfg.to_dict()}} instead")
    if "model" in ckpt:
        return (f"a checkpoint without 'config' (keys: {', '.join(keys[:6])}): the network it "
                f"was trained as is unknown; add 'config': TrainConfig(...).to_dict()")
    return f"a dict with keys {keys[:6]}"


@torch.no_grad()
def run_network(model: torch.nn.Module, images: torch.Tensor, *, flip: bool = False,
                udp: bool = False) -> Any:
    """The network on crops ``[N, 3, H_in, W_in]``: heatmaps ``[N, K, H, W]`` (float32) of the
    deconvolution head, or the output of a ``course_lib.heads`` head. ``flip``: the flip test,
    through ``decode.fuse_flip`` for heatmaps (shift of one pixel under MSRA, none under ``udp``)
    or the head's own ``fuse_flip`` (``10_beyond_heatmaps.ipynb``)."""
    output = model(images)
    if isinstance(output, torch.Tensor):
        output = output.float()
    if flip:
        mirrored = model(torch.flip(images, dims=[3]))
        if isinstance(output, torch.Tensor):
            return fuse_flip(output, mirrored.float(), FLIP_PAIRS, shift=not udp)
        return model.head.fuse_flip(output, mirrored, FLIP_PAIRS)
    return output


def decode_output(output: Any, model: torch.nn.Module, decoder: str = "dark"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(coords [N, K, 2] heatmap px, scores [N, K])`` of a :func:`run_network` output: heatmaps
    decoded with ``decoder`` (``course_lib.decode``), a head's output by the head's decoder."""
    if isinstance(output, torch.Tensor):
        coords, scores = decode(output.cpu().numpy(), method=decoder)
    else:
        coords, scores = model.head.decode(output)
        coords, scores = coords.detach().cpu().numpy(), scores.detach().cpu().numpy()
    return np.asarray(coords, np.float64), np.asarray(scores, np.float64)


def _batches(model: torch.nn.Module, dataset: Any, *, flip: bool, batch_size: int,
             device: Any, limit: int | None, progress: bool, desc: str):
    """``(network output, meta)`` per batch of ``dataset`` (model in eval mode meanwhile)."""
    from tqdm.auto import tqdm

    from course_lib.data import make_loader

    if len(dataset) == 0:
        raise ValueError("dataset: no crops to predict (no labelled people or boxes)")
    udp = getattr(dataset, "encoding", "msra") == "udp"
    if limit is not None and limit < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(int(limit)))
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False)
    was_training = model.training
    model.to(device).eval()
    try:
        for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
            images = batch["image"].to(device).contiguous(memory_format=torch.channels_last)
            yield run_network(model, images, flip=flip, udp=udp), batch["meta"]
    finally:
        model.train(was_training)


def _stack(metas: list[dict]) -> dict:
    return {key: np.concatenate([np.asarray(m[key]) for m in metas]) for key in metas[0]}


def predict_heatmaps(model: torch.nn.Module, dataset: Any, *, flip: bool = False,
                     batch_size: int = 32, device: str | torch.device = "cpu",
                     limit: int | None = None, progress: bool = True) -> tuple[np.ndarray, dict]:
    """The model's heatmaps for every crop of ``dataset`` (a ``TopDownDataset``, ``train=False``;
    a network with the deconvolution head).

    Returns ``(heatmaps [N, K, H, W] float32, meta)`` with ``meta`` the dataset's metadata stacked
    per key (``image_id``, ``center``, ``scale``, ``rotation``, ``box_score``, ``keypoints``, ...).
    The crop geometry (UDP or not) is the dataset's. ``limit``: only the first crops (a quick
    look; the people left out count as missed). The model's train/eval mode is restored.
    """
    maps, metas = [], []
    for output, meta in _batches(model, dataset, flip=flip, batch_size=batch_size,
                                 device=device, limit=limit, progress=progress, desc="heatmaps"):
        if not isinstance(output, torch.Tensor):
            raise ValueError("model: its head does not predict heatmaps; use predict_keypoints")
        maps.append(output.cpu().numpy())
        metas.append(meta)
    return np.concatenate(maps).astype(np.float32), _stack(metas)


def predict_keypoints(model: torch.nn.Module, dataset: Any, *, flip: bool = False,
                      decoder: str = "dark", batch_size: int = 32,
                      device: str | torch.device = "cpu", limit: int | None = None,
                      progress: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(coords [N, K, 2] heatmap px, scores [N, K], meta)`` for every crop of ``dataset``, for
    any head (:func:`decode_output`, batch by batch: a head's output need not be kept)."""
    coords, scores, metas = [], [], []
    for output, meta in _batches(model, dataset, flip=flip, batch_size=batch_size,
                                 device=device, limit=limit, progress=progress, desc="keypoints"):
        c, s = decode_output(output, model, decoder)
        coords.append(c)
        scores.append(s)
        metas.append(meta)
    return np.concatenate(coords), np.concatenate(scores), _stack(metas)


def heatmaps_to_results(heatmaps: np.ndarray, meta: dict, *, input_size: tuple[int, int],
                        decoder: str = "dark", udp: bool = False) -> list[dict]:
    """COCO keypoint results from heatmaps and their crops' ``meta`` (:func:`predict_heatmaps`):
    ``decode.decode`` with ``decoder``, then :func:`keypoints_to_results`. A map whose maximum
    is not positive keeps the marker ``(-1, -1)``."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder: expected one of {', '.join(DECODERS)}, got {decoder!r}")
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    coords, scores = decode(heatmaps, method=decoder)
    return keypoints_to_results(coords, scores, meta, input_size=input_size,
                                heatmap_size=(heatmaps.shape[3], heatmaps.shape[2]), udp=udp)


def keypoints_to_results(coords: np.ndarray, scores: np.ndarray, meta: dict, *,
                         input_size: tuple[int, int], heatmap_size: tuple[int, int],
                         udp: bool = False) -> list[dict]:
    """COCO keypoint results from points in heatmap pixels (any head) and their crops' ``meta``.

    ``decode.points_to_image`` maps them to image pixels (``udp``: the crops were cut with the
    UDP geometry); keypoints are written as ``x, y, confidence`` (pycocotools reads only x and
    y); points whose score is not positive keep the marker ``(-1, -1)``; the instance score is
    SimpleBaseline's rescoring (module docstring).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    rotation = meta["rotation"] if "rotation" in meta else np.zeros(n)
    points = points_to_image(coords, meta["center"], meta["scale"], input_size, heatmap_size,
                             rotation, udp=udp)
    points[scores <= 0] = NO_KEYPOINT
    box_scores = np.asarray(meta["box_score"], dtype=np.float64) if "box_score" in meta \
        else np.ones(n)
    results = []
    for i in range(n):
        confident = scores[i][scores[i] > KEYPOINT_SCORE_THRESHOLD]
        kps = np.concatenate([points[i], scores[i][:, None]], axis=1)
        results.append({
            "image_id": int(meta["image_id"][i]), "category_id": 1,
            "keypoints": [round(float(v), 3) for v in kps.ravel()],
            "score": float(box_scores[i]) * (float(confident.mean()) if confident.size else 0.0),
        })
    return results


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


def validate(model: torch.nn.Module, dataset: Any, cfg: TrainConfig, *,
             device: str | torch.device = "cpu", flip: bool = False, decoder: str | None = None,
             batch_size: int | None = None, progress: bool = False) -> dict:
    """The ten COCO stats of ``model`` on ``dataset`` against the dataset's annotation file (every
    image counts), decoding with ``decoder`` (default: the config's ``decode_method``)."""
    results = predict_results(model, dataset, cfg, flip=flip, decoder=decoder, device=device,
                              batch_size=batch_size or 2 * cfg.batch_size, progress=progress)
    return evaluate_keypoints(dataset.ann_file, results)


def predict_results(model: torch.nn.Module, dataset: Any, cfg: TrainConfig, *,
                    flip: bool = False, decoder: str | None = None, batch_size: int = 32,
                    device: str | torch.device = "cpu", progress: bool = False) -> list[dict]:
    """COCO results of ``model`` (any head) on every crop of ``dataset``: :func:`predict_keypoints`
    then :func:`keypoints_to_results` (``decoder``, default the config's, decodes heatmaps)."""
    decoder = decoder or cfg.decode_method
    if decoder not in DECODERS:
        raise ValueError(f"decoder: expected one of {', '.join(DECODERS)}, got {decoder!r}")
    coords, scores, meta = predict_keypoints(model, dataset, flip=flip, decoder=decoder,
                                             batch_size=batch_size, device=device,
                                             progress=progress)
    return keypoints_to_results(coords, scores, meta, input_size=cfg.input_size,
                                heatmap_size=cfg.heatmap_size, udp=cfg.encoding == "udp")


def make_validator(dataset: Any, cfg: TrainConfig) -> Callable[[torch.nn.Module, Any], dict]:
    """``validate_fn(model, device)`` for ``course_lib.train.train``: :func:`validate` on
    ``dataset`` with the config's decoder."""
    def validate_fn(model: torch.nn.Module, device: Any) -> dict:
        return validate(model, dataset, cfg, device=device)

    return validate_fn


def evaluate_checkpoint(checkpoint: str | os.PathLike | None = None, *, ann: Any = None,
                        images: Any = None, boxes: Any = None, decoder: str = "dark",
                        flip: bool = False, out: Any = None, batch_size: int = 32,
                        progress: bool = True) -> tuple[dict, list[dict], Path]:
    """The whole path for a checkpoint: crops of ``ann``/``images`` (default: the config's val
    split; detector ``boxes`` instead of ground-truth boxes, then OKS-NMS), heatmaps, results
    written atomically to ``out`` (default beside the checkpoint), stats. Returns
    ``(stats, results, results_path)``. Bad input raises ``FileNotFoundError``, ``ValueError``
    or ``course_lib.train.CheckpointError`` naming the file (see :func:`load_model`)."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder: expected one of {', '.join(DECODERS)}, got {decoder!r}")
    checkpoint = Path(checkpoint) if checkpoint else config.checkpoint_path()
    model, cfg = load_model(checkpoint)
    try:
        dataset = make_dataset(cfg, "val", ann_file=ann, image_dir=images, boxes_file=boxes)
    except json.JSONDecodeError as exc:  # name the file (json's message names only the line)
        ann = ann or config.annotation_file("val", cfg.data_source, cfg.profile)
        named = f"{ann}" + (f" or {boxes}" if boxes is not None else "")
        raise ValueError(f"{named}: not valid JSON ({exc})") from None
    results = predict_results(model, dataset, cfg, flip=flip, decoder=decoder,
                              batch_size=batch_size, progress=progress)
    if boxes is not None:
        results = oks_nms(results)
    out = Path(out) if out else checkpoint.parent / f"results_val_{decoder}{'_flip' * flip}.json"
    config.write_atomic(out, json.dumps(results))
    return evaluate_keypoints(dataset.ann_file, results), results, out


def predict_image(model: torch.nn.Module, cfg: TrainConfig, image: np.ndarray,
                  box: list[float] | None = None, *, decoder: str = "dark",
                  flip: bool = False) -> dict:
    """Keypoints of the person in ``box`` (default: the whole image) of an RGB ``image``.

    The crop is cut as the dataset cuts it (``transforms``), then :func:`run_network` and
    :func:`keypoints_to_results`. Returns ``{"bbox", "keypoints" [K, 2] image px, "scores" [K],
    "score"}``.
    """
    from course_lib import transforms as T
    from course_lib.data import normalize_image

    height, width = image.shape[:2]
    box = list(box) if box is not None else [0.0, 0.0, float(width - 1), float(height - 1)]
    udp = cfg.encoding == "udp"
    center, scale = T.box_to_center_scale(box, cfg.input_size[0] / cfg.input_size[1])
    matrix = T.get_affine_matrix(center, scale, 0.0, cfg.input_size, udp=udp)
    crop = T.warp_image(image, matrix, cfg.input_size)
    was_training = model.training
    output = run_network(model.eval(), normalize_image(crop)[None], flip=flip, udp=udp)
    model.train(was_training)
    coords, scores = decode_output(output, model, decoder)
    meta = {"center": center[None], "scale": scale[None], "image_id": np.array([0]),
            "box_score": np.array([1.0])}
    result = keypoints_to_results(coords, scores, meta, input_size=cfg.input_size,
                                  heatmap_size=cfg.heatmap_size, udp=udp)[0]
    kps = np.asarray(result["keypoints"]).reshape(-1, 3)
    return {"bbox": box, "keypoints": kps[:, :2], "scores": kps[:, 2], "score": result["score"]}
