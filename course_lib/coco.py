"""COCO person keypoints: names, skeleton, flip pairs, OKS sigmas, and loading through pycocotools.

Taught in ``01_coco_keypoints.ipynb``.
"""

from __future__ import annotations

import itertools
import math
import operator

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


def check_flip_pairs(pairs, num_keypoints: int = NUM_KEYPOINTS) -> tuple[tuple[int, int], ...]:
    """``pairs`` as a tuple of ``(a, b)`` int pairs after checking that they make a permutation:
    int indices in ``[0, num_keypoints)``, no keypoint in two pairs (otherwise a swap would drop
    one channel and duplicate another). ``(a, a)`` alone is allowed: ``a`` is its own mirror
    (MMPose's ``flip_indices`` map the nose to itself), a no-op. ``ValueError`` names the pair."""
    try:
        items = [tuple(p) for p in pairs]
    except TypeError:
        raise ValueError(f"flip_pairs: expected pairs (a, b) of keypoint indices, got {pairs!r}") from None
    seen: dict[int, tuple[int, int]] = {}
    for pair in items:
        if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                     for v in pair):  # fmt: skip
            raise ValueError(f"flip_pairs: expected pairs (a, b) of int keypoint indices, got {pair!r}")
        a, b = int(pair[0]), int(pair[1])
        if not (0 <= a < num_keypoints and 0 <= b < num_keypoints):
            raise ValueError(f"flip_pairs: pair {(a, b)} out of range for K = {num_keypoints}")
        for v in {a, b}:
            if v in seen:
                raise ValueError(f"flip_pairs: keypoint {v} is in two pairs, {seen[v]} and {(a, b)} "
                                 "(each keypoint swaps with at most one other)")
            seen[v] = (a, b)
    return tuple((int(a), int(b)) for a, b in items)


def flip_index(num_keypoints: int = NUM_KEYPOINTS,
               pairs: tuple[tuple[int, int], ...] = FLIP_PAIRS) -> np.ndarray:
    """Permutation ``p`` such that ``flipped[..., k, :] = original[..., p[k], :]``; ``pairs`` are
    checked by :func:`check_flip_pairs` (a keypoint in two pairs is refused)."""
    perm = np.arange(num_keypoints)
    for a, b in check_flip_pairs(pairs, num_keypoints):
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
_OPTIONAL_FOR_EVALUATION = ("num_keypoints", "iscrowd")  # pycocotools' rules apply when absent
_VISIBILITY = (0, 1, 2)
_SEQUENCES = (list, tuple, np.ndarray)  # JSON gives lists; a dict built in Python may hold others


def is_number(x) -> bool:
    """A finite int or float (numpy's too); bool and strings are not numbers here."""
    return (type(x) in (int, float) or isinstance(x, (np.integer, np.floating))) \
        and math.isfinite(x)


def _number_types(values) -> bool:
    """True when every value (of a list or an iterator) is an int or a float (numpy's too),
    not a bool."""
    return all(t in (int, float) or issubclass(t, (np.integer, np.floating))
               for t in set(map(type, values)))


def _numbers(values: list) -> bool:
    """True when every value is a finite number (:func:`is_number`), checked in bulk: the
    types first, then the sum (inf or NaN anywhere makes it non-finite; an overflow only sends
    a clean file to the detailed pass)."""
    if not _number_types(values):
        return False
    try:
        return math.isfinite(sum(values))
    except (OverflowError, ValueError, TypeError):
        return False


def _describe(kind: str, i: int, entry) -> str:
    ident = entry.get("id", "?") if isinstance(entry, dict) else "?"
    return f"{kind} #{i} (id {ident!r})" if isinstance(ident, str) and ident != "?" \
        else f"{kind} #{i} (id {ident})"


def _keypoint_problems(where: str, kp, num_keypoints, strict: bool) -> list[str]:
    """What is wrong with one annotation's ``keypoints`` (and, strictly, its num_keypoints)."""
    if not isinstance(kp, _SEQUENCES):
        return [f"{where}: keypoints must be a list, got {type(kp).__name__}"]
    if len(kp) != 3 * NUM_KEYPOINTS:
        return [f"{where}: keypoints has {len(kp)} values, expected {3 * NUM_KEYPOINTS} "
                f"(17 x, y, v triples)"]
    bad = [j for j, x in enumerate(kp) if not is_number(x)]
    if bad:
        j = bad[0]
        return [f"{where}: keypoints[{j}] ({KEYPOINT_NAMES[j // 3]} {'xyv'[j % 3]}) is not a "
                f"number: {kp[j]!r}" + (f" ({len(bad)} such values)" if len(bad) > 1 else "")]
    vs = kp[2::3]
    wrong = [j for j, x in enumerate(vs) if x not in _VISIBILITY]
    if wrong:
        j = wrong[0]
        return [f"{where}: visibility of {KEYPOINT_NAMES[j]} is {vs[j]!r}, expected 0, 1 or 2"]
    labelled = sum(1 for x in vs if x > 0)
    if strict and is_number(num_keypoints) and num_keypoints != labelled:
        return [f"{where}: num_keypoints is {num_keypoints} but {labelled} keypoints are "
                f"labelled (v > 0)"]
    return []


def _check_annotation(i: int, ann, image_ids: set, cat_ids: set, strict: bool) -> list[str]:
    where = _describe("annotation", i, ann)
    if not isinstance(ann, dict):
        return [f"{where}: expected an object, got {type(ann).__name__}"]
    problems = []
    required = [k for k in _ANNOTATION_KEYS if strict or k not in _OPTIONAL_FOR_EVALUATION]
    missing = [k for k in required if k not in ann]
    if missing:
        problems.append(f"{where}: missing key(s) {', '.join(missing)}")
    for key in ("id", "image_id", "category_id", "num_keypoints", "area", "iscrowd"):
        if key in ann and not is_number(ann[key]):
            problems.append(f"{where}: {key} must be a number, got {ann[key]!r}")
    if strict and is_number(ann.get("area")) and ann["area"] < 0:
        problems.append(f"{where}: area must be >= 0, got {ann['area']!r}")
    if "keypoints" in ann:
        problems += _keypoint_problems(where, ann["keypoints"], ann.get("num_keypoints"), strict)
    box = ann.get("bbox")
    if "bbox" in ann and not (isinstance(box, _SEQUENCES) and len(box) == 4
                              and all(is_number(x) for x in box)):  # fmt: skip
        problems.append(f"{where}: bbox must be 4 numbers [x, y, w, h], got {box!r}")
    for key, known, noun in (("image_id", image_ids, "images"), ("category_id", cat_ids, "categories")):
        if strict and is_number(ann.get(key)) and ann[key] not in known:
            problems.append(f"{where}: {key} {ann[key]} is not in {noun}")
    return problems


def _entry_problems(kind: str, entries: list, keys: tuple, numbers: tuple,
                    strict: bool) -> tuple[list[str], set]:
    """Problems of the images or categories (keys, numbers, positive sizes, unique ids) and
    the set of their ids."""
    problems, ids = [], set()
    for i, entry in enumerate(entries):
        where = _describe(kind, i, entry)
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected an object, got {type(entry).__name__}")
            continue
        miss = [k for k in keys if k not in entry]
        if miss:
            problems.append(f"{where}: missing key(s) {', '.join(miss)}")
        for key in numbers:
            if key in entry and not is_number(entry[key]):
                problems.append(f"{where}: {key} must be a number, got {entry[key]!r}")
            elif key in entry and key != "id" and entry[key] <= 0:
                problems.append(f"{where}: {key} must be positive, got {entry[key]!r}")
        ident = entry.get("id")
        if is_number(ident):
            if ident in ids and (strict or kind == "category"):
                problems.append(f"{where}: duplicate {kind} id {ident}")
            ids.add(ident)
    return problems, ids


def _columns(entries: list, keys, optional=()) -> list[list] | None:
    """The values of ``keys`` (then ``optional``, 0 where absent) of every entry, one list per
    key; None when an entry lacks one of ``keys``."""
    try:
        columns = [list(map(operator.itemgetter(k), entries)) for k in keys]
    except KeyError:
        return None
    return columns + [[e.get(k, 0) for e in entries] for k in optional]


def _looks_clean(data: dict, strict: bool) -> bool:
    """The whole file checked in bulk (no message): True when the detailed pass would find
    nothing, False when it must run (it may still find nothing)."""
    images, anns, cats = data["images"], data["annotations"], data["categories"]
    if set(map(type, images + anns + cats)) - {dict}:
        return False
    optional = () if strict else _OPTIONAL_FOR_EVALUATION
    keys = [k for k in _ANNOTATION_KEYS if k not in optional]
    img = _columns(images, _IMAGE_KEYS if strict else ("id",))
    cat = _columns(cats, ("id",))
    ann = _columns(anns, keys, optional)
    if img is None or cat is None or ann is None:
        return False
    col = dict(zip([*keys, *optional], ann))
    sizes = img[2] + img[3] if strict else []
    numbers = [col[k] for k in ("id", "image_id", "category_id", "area", "iscrowd", "num_keypoints")]
    if not all(map(_numbers, [*numbers, img[0], cat[0], sizes])) or \
            len(set(cat[0])) < len(cat[0]) or len(set(col["id"])) < len(anns) or min(sizes, default=1) <= 0:
        return False
    kps, boxes = col["keypoints"], col["bbox"]
    if set(map(type, kps + boxes)) - {list} or set(map(len, kps)) - {3 * NUM_KEYPOINTS} or \
            set(map(len, boxes)) - {4} or not _numbers(list(itertools.chain(*boxes))) or \
            not _number_types(itertools.chain.from_iterable(kps)):
        return False
    kp = np.fromiter(itertools.chain.from_iterable(kps), dtype=np.float64,
                     count=len(kps) * 3 * NUM_KEYPOINTS).reshape(-1, NUM_KEYPOINTS, 3)
    v = kp[:, :, 2]
    if not (np.isfinite(kp).all() and ((v == 0) | (v == 1) | (v == 2)).all()):
        return False
    return not strict or (
        len(set(img[0])) == len(images) and set(col["image_id"]) <= set(img[0])
        and set(col["category_id"]) <= set(cat[0]) and min(col["area"], default=0) >= 0
        and bool((np.asarray(col["num_keypoints"], np.float64) == (v > 0).sum(axis=1)).all()))


def validate_coco_keypoints(data, *, source: str = "annotation file", max_problems: int = 10,
                            evaluation: bool = False) -> None:
    """Raise :class:`AnnotationError` listing what is wrong with a COCO keypoint dict.

    Every message starts with ``source`` (the file) and names the entry (``image #i (id ...)``,
    ``annotation #i (id ...)``, ``category #i``) and the field. Checked: the top-level lists;
    every category (a unique numeric id); every image (id, file_name, width, height; sizes
    positive; ids unique); every annotation (the keys of COCO keypoint files, finite numbers
    where numbers belong, 51 keypoint values with visibility 0/1/2, ``num_keypoints`` equal to
    the count of ``v > 0``, a 4-number bbox, ``area >= 0``, unique ids, an ``image_id`` in
    ``images`` and a ``category_id`` in ``categories``).

    ``evaluation=True`` checks what an evaluation reads, with pycocotools' meaning of the rest:
    images need only an ``id``; ``iscrowd``/``num_keypoints`` may be absent, and
    ``num_keypoints`` is not compared with the keypoints (0 marks an ignored ground truth);
    annotations of unknown images or categories are valid (they are not evaluated); duplicate
    image ids and negative areas are pycocotools' to interpret. A clean file is checked in bulk
    (numpy), the detailed pass runs only to say what is wrong.
    """
    if not isinstance(data, dict):
        raise AnnotationError(f"{source}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise AnnotationError(f"{source}: missing top-level key(s) {', '.join(missing)}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data[key], list):
            raise AnnotationError(f"{source}: {key!r} must be a list, got {type(data[key]).__name__}")
    strict = not evaluation
    if _looks_clean(data, strict):
        return
    problems, cat_ids = _entry_problems("category", data["categories"], ("id",), ("id",), strict)
    img_problems, image_ids = _entry_problems(
        "image", data["images"], _IMAGE_KEYS if strict else ("id",),
        ("id", "width", "height") if strict else ("id",), strict)
    problems += img_problems
    seen: set = set()
    for i, ann in enumerate(data["annotations"]):
        problems += _check_annotation(i, ann, image_ids, cat_ids, strict)
        if isinstance(ann, dict) and is_number(ann.get("id")):
            if ann["id"] in seen:
                problems.append(f"{_describe('annotation', i, ann)}: duplicate annotation id "
                                f"{ann['id']}")
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
