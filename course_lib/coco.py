"""COCO person keypoints: names, skeleton, flip pairs, OKS sigmas, and loading through pycocotools.

Taught in ``01_coco_keypoints.ipynb``.
"""

from __future__ import annotations

import math

import numpy as np

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

# The skeleton exactly as COCO's person category stores it: 1-based keypoint indices.
SKELETON_1BASED: tuple[tuple[int, int], ...] = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7),
    (6, 8), (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip
# The same limbs with 0-based indices, for indexing arrays.
SKELETON: tuple[tuple[int, int], ...] = tuple((a - 1, b - 1) for a, b in SKELETON_1BASED)

# Left/right pairs (0-based): a horizontal flip swaps the two keypoints of each pair.
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip


def flip_index(num_keypoints: int = NUM_KEYPOINTS,
               pairs: tuple[tuple[int, int], ...] = FLIP_PAIRS) -> np.ndarray:
    """Permutation ``p`` such that ``flipped[..., k, :] = original[..., p[k], :]``."""
    perm = np.arange(num_keypoints)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


# Per-keypoint OKS sigmas of COCOeval (pycocotools: kpt_oks_sigmas).
OKS_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
     1.07, 1.07, 0.87, 0.87, 0.89, 0.89], dtype=np.float64,
) / 10.0  # fmt: skip

UPPER_BODY = tuple(range(0, 11))  # nose .. right_wrist
LOWER_BODY = tuple(range(11, 17))  # left_hip .. right_ankle

PERSON_CATEGORY: dict = {
    "id": 1,
    "name": "person",
    "supercategory": "person",
    "keypoints": list(KEYPOINT_NAMES),
    "skeleton": [list(limb) for limb in SKELETON_1BASED],
}


# ---------------------------------------------------------------------------------------------
# One annotation: the flat list of 51 numbers and what can be computed from it
# ---------------------------------------------------------------------------------------------


def decode_keypoints(flat) -> tuple[np.ndarray, np.ndarray]:
    """COCO's flat ``[x1, y1, v1, x2, y2, v2, ...]`` (51 numbers) -> ``(xy [17, 2], v [17])``.

    ``xy`` is float64 in pixels, ``v`` int64 (0 not labelled, 1 labelled but hidden, 2 visible).
    """
    arr = np.asarray(flat, dtype=np.float64)
    if arr.shape != (3 * NUM_KEYPOINTS,):
        raise ValueError(
            f"keypoints: expected {3 * NUM_KEYPOINTS} numbers (17 x, y, v triples), "
            f"got shape {arr.shape}"
        )
    triples = arr.reshape(NUM_KEYPOINTS, 3)
    return triples[:, :2].copy(), triples[:, 2].astype(np.int64)


def encode_keypoints(xy, v) -> list[float]:
    """The inverse of :func:`decode_keypoints`: ``(xy [17, 2], v [17])`` -> 51 numbers.

    Unlabelled keypoints (``v = 0``) are written as ``0, 0, 0`` as COCO stores them.
    """
    xy = np.asarray(xy, dtype=np.float64)
    v = np.asarray(v)
    if xy.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f"xy: expected shape (17, 2), got {xy.shape}")
    if v.shape != (NUM_KEYPOINTS,):
        raise ValueError(f"v: expected shape (17,), got {v.shape}")
    out: list[float] = []
    for (x, y), vis in zip(xy, v.tolist()):
        vis = int(vis)
        out += [float(x), float(y), vis] if vis > 0 else [0, 0, 0]
    return out


def count_keypoints(flat) -> int:
    """``num_keypoints`` of an annotation: how many keypoints are labelled (``v > 0``)."""
    return int((decode_keypoints(flat)[1] > 0).sum())


def keypoint_box(flat) -> list[float] | None:
    """The tight ``[x, y, w, h]`` box around the LABELLED keypoints (``None`` if there are none).

    Unlike ``bbox`` (the extent of the person's mask), this box only spans the joints; note that
    pycocotools' ``loadRes`` spans all 17 keypoints of a result, ``(0, 0)`` entries included.
    """
    xy, v = decode_keypoints(flat)
    pts = xy[v > 0]
    if len(pts) == 0:
        return None
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def flip_keypoint_list(flat, image_width: int, pairs: tuple[tuple[int, int], ...] = FLIP_PAIRS
                       ) -> list[float]:  # fmt: skip
    """The annotation of the horizontally mirrored image: ``x -> (W - 1) - x`` for labelled
    keypoints, and left/right swapped (a mirrored left wrist is the person's right wrist)."""
    if image_width < 1:
        raise ValueError(f"image_width: expected a positive width, got {image_width!r}")
    xy, v = decode_keypoints(flat)
    xy[:, 0] = (image_width - 1) - xy[:, 0]
    perm = flip_index(NUM_KEYPOINTS, pairs)
    return encode_keypoints(xy[perm], v[perm])


def area_category(area: float) -> str:
    """COCO's size classes by ``area``: ``small`` (< 32²), ``medium`` (32²..96²), ``large``."""
    if area < 32**2:
        return "small"
    return "medium" if area < 96**2 else "large"


# ---------------------------------------------------------------------------------------------
# Annotation files: validation with readable errors, loading through pycocotools, filtering
# ---------------------------------------------------------------------------------------------


class AnnotationError(ValueError):
    """A malformed COCO keypoint annotation file; the message names the entry and the problem."""


_IMAGE_KEYS = ("id", "file_name", "width", "height")
_ANNOTATION_KEYS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox",
                    "area", "iscrowd")  # fmt: skip


def _is_number(x) -> bool:
    return type(x) in (int, float) and math.isfinite(x)  # bool is not a number here


def _describe(i: int, ann) -> str:
    ann_id = ann.get("id", "?") if isinstance(ann, dict) else "?"
    return f"annotation #{i} (id {ann_id})"


def _check_annotation(i: int, ann, image_ids: set) -> list[str]:
    where = _describe(i, ann)
    if not isinstance(ann, dict):
        return [f"{where}: expected an object, got {type(ann).__name__}"]
    problems = []
    missing = [k for k in _ANNOTATION_KEYS if k not in ann]
    if missing:
        problems.append(f"{where}: missing key(s) {', '.join(missing)}")
    for key in ("id", "image_id", "category_id", "num_keypoints", "area", "iscrowd"):
        if key in ann and not _is_number(ann[key]):
            problems.append(f"{where}: {key} must be a number, got {ann[key]!r}")
    kp = ann.get("keypoints")
    if "keypoints" in ann:
        if not isinstance(kp, list):
            problems.append(f"{where}: keypoints must be a list, got {type(kp).__name__}")
        elif len(kp) != 3 * NUM_KEYPOINTS:
            problems.append(
                f"{where}: keypoints has {len(kp)} values, expected {3 * NUM_KEYPOINTS} "
                f"(17 x, y, v triples)"
            )
        else:
            fast = all(type(x) is int or type(x) is float for x in kp) and math.isfinite(sum(kp))
            bad = [] if fast else [j for j, x in enumerate(kp) if not _is_number(x)]
            if bad:
                j = bad[0]
                problems.append(
                    f"{where}: keypoints[{j}] ({KEYPOINT_NAMES[j // 3]} {'xyv'[j % 3]}) is not a "
                    f"number: {kp[j]!r}" + (f" ({len(bad)} such values)" if len(bad) > 1 else "")
                )
            else:
                vs = kp[2::3]
                wrong = [j for j, x in enumerate(vs) if x not in (0, 1, 2)]
                if wrong:
                    j = wrong[0]
                    problems.append(
                        f"{where}: visibility of {KEYPOINT_NAMES[j]} is {vs[j]!r}, expected 0, 1 or 2"
                    )
    box = ann.get("bbox")
    if "bbox" in ann and not (isinstance(box, list) and len(box) == 4
                              and all(_is_number(x) for x in box)):  # fmt: skip
        problems.append(f"{where}: bbox must be 4 numbers [x, y, w, h], got {box!r}")
    if "image_id" in ann and _is_number(ann["image_id"]) and ann["image_id"] not in image_ids:
        problems.append(f"{where}: image_id {ann['image_id']} is not in images")
    return problems


def validate_coco_keypoints(data, *, source: str = "annotation file", max_problems: int = 10) -> None:
    """Raise :class:`AnnotationError` listing what is wrong with a COCO keypoint dict.

    Checks the top-level keys, every image (id, file_name, width, height) and every annotation:
    the keys COCO keypoint files have, numbers where numbers belong, 51 keypoint values with
    visibility 0/1/2, a 4-number bbox, an ``image_id`` present in ``images``, unique ids.
    """
    if not isinstance(data, dict):
        raise AnnotationError(f"{source}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise AnnotationError(f"{source}: missing top-level key(s) {', '.join(missing)}")
    problems: list[str] = []
    image_ids: set = set()
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict):
            problems.append(f"image #{i}: expected an object, got {type(im).__name__}")
            continue
        miss = [k for k in _IMAGE_KEYS if k not in im]
        if miss:
            problems.append(f"image #{i} (id {im.get('id', '?')}): missing key(s) {', '.join(miss)}")
        for key in ("id", "width", "height"):
            if key in im and not _is_number(im[key]):
                problems.append(f"image #{i}: {key} must be a number, got {im[key]!r}")
        if "id" in im:
            image_ids.add(im["id"])
    seen: set = set()
    for i, ann in enumerate(data["annotations"]):
        problems += _check_annotation(i, ann, image_ids)
        if isinstance(ann, dict) and "id" in ann:
            if ann["id"] in seen:
                problems.append(f"{_describe(i, ann)}: duplicate annotation id {ann['id']}")
            seen.add(ann["id"])
        if len(problems) > max_problems:
            break
    if problems:
        more = f" (showing the first {max_problems})" if len(problems) > max_problems else ""
        raise AnnotationError(
            f"{source}: {len(problems)} problem(s){more}:\n  " + "\n  ".join(problems[:max_problems])
        )


def load_coco(path=None, *, split: str = "val", validate: bool = True):
    """Load a COCO keypoint file into a pycocotools ``COCO`` object (quietly), validated first.

    ``path`` defaults to ``config.annotation_file(split)`` (the active profile and data source).
    """
    import contextlib
    import io
    import json
    from pathlib import Path

    from pycocotools.coco import COCO

    from course_lib import config

    path = Path(path) if path is not None else config.annotation_file(split)
    if not path.is_file():
        raise FileNotFoundError(
            f"path: no annotation file at {path} (run `make data` or the data cell of 00_setup)"
        )
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{path}: not valid JSON ({exc})") from exc
    if validate:
        validate_coco_keypoints(data, source=str(path))
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def list_instances(coco, *, include_crowd: bool = False, min_keypoints: int = 1,
                   min_box_size: float = 1.0, min_area: float = 0.0,
                   image_ids=None) -> list[dict]:  # fmt: skip
    """The person annotations a top-down pose model trains on, sorted by (image id, id).

    The usual filters: crowd regions dropped (``include_crowd=False``), fewer than
    ``min_keypoints`` labelled keypoints dropped (COCO has many people with none), boxes whose
    width or height is below ``min_box_size`` pixels or whose ``area`` is below ``min_area``
    dropped. ``coco`` is a pycocotools ``COCO``, a COCO dict, or a path.
    """
    if isinstance(coco, dict):
        anns = coco["annotations"]
    elif hasattr(coco, "dataset"):
        anns = coco.dataset["annotations"]
    else:
        anns = load_coco(coco).dataset["annotations"]
    wanted = None if image_ids is None else {int(i) for i in image_ids}
    out = []
    for ann in anns:
        if wanted is not None and ann["image_id"] not in wanted:
            continue
        if ann.get("iscrowd", 0) and not include_crowd:
            continue
        if ann.get("num_keypoints", count_keypoints(ann["keypoints"])) < min_keypoints:
            continue
        _, _, bw, bh = ann["bbox"]
        if bw < min_box_size or bh < min_box_size or ann.get("area", bw * bh) < min_area:
            continue
        out.append(ann)
    return sorted(out, key=lambda a: (a["image_id"], a["id"]))


def instance_statistics(anns: list[dict]) -> dict[str, np.ndarray]:
    """Arrays for the statistics plots of 01: per instance ``visibility [N, 17]`` (v flags),
    ``num_keypoints [N]``, ``area [N]``, ``box_area [N]`` and ``iscrowd [N]``."""
    n = len(anns)
    vis = np.zeros((n, NUM_KEYPOINTS), np.int64)
    for i, a in enumerate(anns):
        vis[i] = np.asarray(a["keypoints"], np.float64)[2::3]
    return {
        "visibility": vis,
        "num_keypoints": (vis > 0).sum(axis=1),
        "area": np.array([a["area"] for a in anns], np.float64),
        "box_area": np.array([a["bbox"][2] * a["bbox"][3] for a in anns], np.float64),
        "iscrowd": np.array([int(a.get("iscrowd", 0)) for a in anns], np.int64),
    }
