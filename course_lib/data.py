"""The top-down dataset: one person box -> crop tensor, heatmap targets, weights and metadata.

Taught in ``03_topdown_data.ipynb``. One sample per person instance of a COCO keypoint file
(ground-truth boxes), or per detection of a COCO results file (``boxes_file``, validation only).

Training augmentation (``train=True``), in HRNet/SimpleBaseline order: half-body, horizontal
flip with the left/right pairs, random scale / rotation / shift; the flip is composed into the
crop's affine matrix, so the full image is never copied. Validation: none.

``meta`` carries what maps predictions back to the image: ``center``, ``scale`` and ``rotation``
describe the crop in the image (mirrored first when ``flipped``), so for an unaugmented sample
``course_lib.transforms.crop_to_image(heatmap_to_crop(p, ...), center, scale, input_size)``
returns image pixels. ``keypoints`` are the annotation's, unflipped, in image pixels.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from course_lib import heatmaps as hm
from course_lib import transforms as T
from course_lib.coco import (
    FLIP_PAIRS,
    NUM_KEYPOINTS,
    PERSON_CATEGORY,
    AnnotationError,
    check_flip_pairs,
    is_number,
    validate_coco_keypoints,
)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def load_image(path) -> np.ndarray:
    """Read an image as ``[H, W, 3]`` uint8 RGB with OpenCV (which decodes to BGR)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"image: cannot read {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def normalize_image(crop: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` RGB -> float32 tensor ``[3, H, W]`` with ImageNet mean/std.
    Inverse: :func:`denormalize_image`."""
    x = (crop.astype(np.float32) * (1.0 / 255.0) - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def denormalize_image(tensor) -> np.ndarray:
    """Float tensor/array ``[3, H, W]`` -> uint8 ``[H, W, 3]`` RGB (for showing a crop)."""
    if hasattr(tensor, "detach"):
        tensor = tensor.detach().cpu().numpy()
    x = np.asarray(tensor, dtype=np.float32).transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


class TopDownDataset(torch.utils.data.Dataset):
    """Person crops with Gaussian heatmap targets from a COCO keypoint annotation file.

    Args:
        ann_file: COCO ``person_keypoints_*.json``, checked by
            ``course_lib.coco.validate_coco_keypoints``: a malformed file raises
            ``AnnotationError`` naming the file, the entry and the field.
        image_dir: folder of the images (``file_name`` of each image is relative to it).
        input_size: ``(W, H)`` of the crop; heatmap_size: ``(W, H)`` of the targets.
        sigma: Gaussian sigma in heatmap pixels (``heatmaps.check_sigma``); encoding:
            ``msra`` | ``unbiased`` | ``udp`` (``udp`` also switches the crop geometry to UDP).
        train: augment (flip, half-body, scale/rotation/shift); else no augmentation.
        boxes_file: COCO detection results (``image_id``, ``category_id``, ``bbox``, ``score``)
            to crop instead of the ground-truth boxes (validation; a malformed entry raises
            ``ValueError`` naming the file and the entry); ``det_score_threshold`` drops
            weaker boxes.
        padding: box padding (1.25); augment: a :class:`course_lib.transforms.AugmentConfig`;
            flip_pairs: left/right pairs, a permutation (``coco.check_flip_pairs``).
        seed: seed of the augmentation generator in the main process (workers re-seed, see
            :func:`make_loader`).
    """

    def __init__(self, ann_file, image_dir, *, input_size, heatmap_size, sigma=2.0, train=False,
                 encoding="msra", boxes_file=None, det_score_threshold=0.0, padding=1.25,
                 augment: T.AugmentConfig | None = None, flip_pairs=FLIP_PAIRS, seed=0):
        if encoding not in hm.MODES:
            raise ValueError(f"encoding: expected one of {', '.join(hm.MODES)}, got {encoding!r}")
        self.input_size = T._as_size(input_size, "input_size")
        self.heatmap_size = T._as_size(heatmap_size, "heatmap_size")
        self.sigma = hm.check_sigma(sigma, self.heatmap_size)  # the targets' bounds, checked now
        self.train = bool(train)
        self.encoding = encoding
        self.udp = encoding == "udp"
        self.padding = float(padding)
        self.augment = augment or T.AugmentConfig()
        self.flip_pairs = check_flip_pairs(flip_pairs, NUM_KEYPOINTS)  # a permutation
        self.aspect_ratio = self.input_size[0] / self.input_size[1]
        self.ann_file = Path(ann_file)
        self.image_dir = Path(image_dir)
        self.rng = np.random.default_rng(seed)
        if not self.ann_file.is_file():
            raise FileNotFoundError(
                f"ann_file: {self.ann_file} does not exist (generate the data first: `make data`)"
            )
        coco = _read_json(self.ann_file, AnnotationError)
        validate_coco_keypoints(coco, source=str(self.ann_file))  # names file, entry, field
        self.images = {int(im["id"]): im for im in coco["images"]}
        if boxes_file is None:
            self.samples = self._gt_samples(coco)
        else:
            self.samples = self._det_samples(boxes_file, float(det_score_threshold))

    # -- building the list of samples -------------------------------------------------------

    def _gt_samples(self, coco) -> list[dict]:
        samples = []
        for ann in coco.get("annotations", []):
            if ann.get("category_id", 1) != PERSON_CATEGORY["id"] or ann.get("iscrowd", 0):
                continue
            image = self.images.get(int(ann["image_id"]))
            if image is None:
                continue
            kps = np.asarray(ann.get("keypoints", []), dtype=np.float32).reshape(-1, 3)
            if kps.shape[0] != NUM_KEYPOINTS or not np.any(kps[:, 2] > 0):
                continue
            box = _clip_box(ann["bbox"], image["width"], image["height"])
            if box is None:
                continue
            samples.append({
                "image_id": int(ann["image_id"]), "ann_id": int(ann["id"]), "bbox": box,
                "keypoints": kps, "area": float(ann.get("area", box[2] * box[3])),
                "box_score": 1.0,
            })
        return samples

    def _det_samples(self, boxes_file, threshold) -> list[dict]:
        dets = _check_detections(_read_json(boxes_file, ValueError), str(boxes_file))
        samples = []
        for det in dets:
            if det.get("category_id", 1) != PERSON_CATEGORY["id"]:
                continue
            score = float(det.get("score", 1.0))
            image = self.images.get(int(det["image_id"]))
            if score < threshold or image is None:
                continue
            box = _clip_box(det["bbox"], image["width"], image["height"])
            if box is None:
                continue
            samples.append({
                "image_id": int(det["image_id"]), "ann_id": -1, "bbox": box,
                "keypoints": np.zeros((NUM_KEYPOINTS, 3), np.float32),
                "area": float(box[2] * box[3]), "box_score": score,
            })
        return samples

    @classmethod
    def from_profile(cls, split: str, profile=None, **kwargs) -> TopDownDataset:
        """The dataset of ``split`` (``train``/``val``) with the sizes of a course profile."""
        from course_lib import config

        prof = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
        args = {
            "input_size": prof.input_size, "heatmap_size": prof.heatmap_size,
            "sigma": prof.sigma, "train": split == "train",
        }
        args.update(kwargs)
        return cls(config.annotation_file(split, profile=prof), config.image_dir(split, profile=prof),
                   **args)

    # -- one sample -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.samples)

    def image_path(self, index: int) -> Path:
        """Path of the image holding sample ``index``."""
        return self.image_dir / self.images[self.samples[index]["image_id"]]["file_name"]

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        s = self.samples[index]
        image = load_image(self.image_path(index))
        img_w = image.shape[1]
        kps = s["keypoints"][:, :2].astype(np.float64)
        vis = s["keypoints"][:, 2].copy()
        center, scale = T.box_to_center_scale(s["bbox"], self.aspect_ratio, self.padding)
        rotation, flipped = 0.0, False
        if self.train:
            center, scale, rotation, flipped, kps, vis = self._augment(center, scale, kps, vis,
                                                                       img_w)
        matrix = T.get_affine_matrix(center, scale, rotation, self.input_size, udp=self.udp)
        warp = T.compose_affine(matrix, T.flip_matrix(img_w)) if flipped else matrix
        crop = T.warp_image(image, warp, self.input_size)
        kp_hm = T.crop_to_heatmap(T.apply_affine(kps, matrix), self.input_size, self.heatmap_size,
                                  udp=self.udp)
        heatmaps, weights = hm.encode(kp_hm, vis, heatmap_size=self.heatmap_size,
                                      sigma=self.sigma, mode=self.encoding)
        meta = {
            "image_id": s["image_id"], "ann_id": s["ann_id"],
            "center": np.asarray(center, np.float32), "scale": np.asarray(scale, np.float32),
            "rotation": float(rotation), "flipped": bool(flipped),
            "box_score": float(s["box_score"]), "keypoints": s["keypoints"].copy(),
            "area": float(s["area"]), "bbox": np.asarray(s["bbox"], np.float32),
        }
        return {"image": normalize_image(crop), "heatmaps": torch.from_numpy(heatmaps),
                "weights": torch.from_numpy(weights), "meta": meta,
                # the keypoints the targets were made from (heatmap px) for heads that encode
                # their own targets (course_lib.heads, 10_beyond_heatmaps.ipynb)
                "keypoints_hm": torch.from_numpy(kp_hm.astype(np.float32)),
                "visible": torch.from_numpy(np.asarray(vis, dtype=np.float32))}

    def _augment(self, center, scale, kps, vis, img_w):
        aug, rng = self.augment, self.rng
        if rng.random() < aug.half_body_prob:
            half = T.half_body(kps, vis, rng, aspect_ratio=self.aspect_ratio,
                               padding=aug.half_body_padding,
                               min_keypoints=aug.half_body_min_keypoints)
            if half is not None:
                center, scale, vis = half
        flipped = bool(rng.random() < aug.flip_prob)
        if flipped:
            kps, vis = T.flip_keypoints(kps, vis, img_w, self.flip_pairs)
            center = np.array([img_w - 1 - center[0], center[1]], np.float32)
        scale_mult, rotation, shift = T.sample_scale_rotation_shift(rng, aug)
        center, scale = T.augment_center_scale(center, scale, scale_mult, shift)
        return center, scale, rotation, flipped, kps, vis


def _read_json(path, error: type) -> object:
    """The JSON content of ``path``; ``error`` naming the file when it is not valid JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc})") from exc


def _check_detections(dets, source: str) -> list:
    """A COCO detection results list (``image_id``, ``bbox``; ``category_id``, ``score``
    optional), or ``ValueError`` naming the file, the entry and the field."""
    if not isinstance(dets, list):
        raise ValueError(f"{source}: expected a JSON list of COCO results, got "
                         f"{type(dets).__name__}")
    for i, det in enumerate(dets):
        if not isinstance(det, dict):
            raise ValueError(f"{source}: [{i}]: expected an object, got {type(det).__name__}")
        for key in ("image_id", "bbox"):
            if key not in det:
                raise ValueError(f"{source}: [{i}]: missing {key!r}")
        box = det["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(map(is_number, box))):
            raise ValueError(f"{source}: [{i}]['bbox']: expected 4 finite numbers [x, y, w, h], "
                             f"got {box!r}")
        for key in ("image_id", "category_id", "score"):
            if key in det and not is_number(det[key]):
                raise ValueError(f"{source}: [{i}][{key!r}]: expected a number, got {det[key]!r}")
    return dets


def _clip_box(bbox, width, height):
    """COCO ``[x, y, w, h]`` with its corners clipped to ``[0, W-1] x [0, H-1]`` (MMPose 1.x);
    None when nothing is left."""
    x, y, w, h = (float(v) for v in bbox)
    x1, x2 = np.clip([x, x + w], 0.0, width - 1.0)
    y1, y2 = np.clip([y, y + h], 0.0, height - 1.0)
    if w <= 0 or h <= 0 or x2 <= x1 or y2 <= y1:
        return None
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float32)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` of :func:`make_loader`: numpy's and Python's global generators and a
    fresh augmentation generator per worker, derived from torch's per-worker seed (itself drawn
    from the loader's generator). Torch already runs each worker on one thread.

    It must not touch OpenCV's thread pool: a forked worker that reconfigures the pool it
    inherited can deadlock (that is why :func:`make_loader` turns OpenCV threading off first)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng([seed, worker_id])


LOADER_TIMEOUT_S = 300.0  # seconds a batch from a worker may take


def make_loader(dataset, *, batch_size, shuffle=False, num_workers=0, seed=0, drop_last=False,
                sampler=None, reseed=True):
    """A torch DataLoader with reproducible order and augmentation for a given ``seed``: the one
    loader of the course (notebook 03, training in 05, prediction in 08).

    The shuffle order comes from a ``torch.Generator`` seeded with ``seed`` (or from
    ``sampler``, which then replaces ``shuffle``); each worker re-seeds the dataset's
    augmentation generator in :func:`seed_worker`. With ``num_workers=0`` and ``reseed`` the
    dataset's generator is re-seeded from ``seed`` here, so the same seed gives the same
    batches; training passes ``reseed=False``, because its augmentation stream runs on across
    epochs and is saved in checkpoints.
    """
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if int(num_workers) < 0:
        raise ValueError(f"num_workers: expected >= 0, got {num_workers!r}")
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    if num_workers:
        # As MMEngine does: no OpenCV thread pool when data loading runs in worker processes.
        # Forked workers inherit the pool without its threads, and a worker that uses or
        # reconfigures it can hang (seen in Jupyter kernels). Each worker is one thread anyway.
        import cv2

        cv2.setNumThreads(0)
    if num_workers == 0 and reseed and hasattr(dataset, "rng"):
        dataset.rng = np.random.default_rng([int(seed), 2**16])
    return torch.utils.data.DataLoader(
        dataset, batch_size=int(batch_size), shuffle=bool(shuffle) and sampler is None,
        sampler=sampler, num_workers=int(num_workers), generator=generator,
        worker_init_fn=seed_worker, drop_last=bool(drop_last), persistent_workers=False,
        pin_memory=bool(torch.cuda.is_available()),
        prefetch_factor=4 if num_workers else None,
        # a worker that stalls (e.g. killed by the OS) becomes an error instead of a silent hang
        timeout=LOADER_TIMEOUT_S if num_workers else 0,
    )
