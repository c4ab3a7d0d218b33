"""OKS evaluation speed: course_lib.evaluate.evaluate_keypoints vs pycocotools, same run.

A seeded synthetic ground truth (5000 images, 0-8 people each, some crowd regions and people
without labelled keypoints, areas across the medium/large ranges) and about 20 results per image
(noisy copies of the people plus person-shaped false positives, scores with ties). Both sides start from the
same in-memory dicts (JSON parsing excluded on both sides):

* pycocotools: ``COCOeval.evaluate()`` + ``accumulate()`` (the ratio's baseline), and also
  with ``COCO.loadRes`` (its conversion of the result list) included; ``summarize()`` is left
  out (it only prints);
* course_lib: ``evaluate_keypoints(gt_dict, results)`` end to end (validation, conversion,
  evaluation, accumulation and summary).

Prints the times, the ratio (target >= 10x) and whether the ten stats are identical.
Usage: ``python benchmarks/bench_eval.py [--images 5000] [--per-image 20] [--seed 0]``
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.coco import PERSON_CATEGORY  # noqa: E402
from course_lib.evaluate import STAT_NAMES, evaluate_keypoints  # noqa: E402


def make_dataset(num_images: int, per_image: int, seed: int) -> tuple[dict, list]:
    """A seeded COCO keypoint ground truth and a results list for it."""
    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    for img_id in range(1, num_images + 1):
        images.append({"id": img_id, "width": 640, "height": 480, "file_name": f"{img_id}.jpg"})
        people = []
        for _ in range(int(rng.integers(0, 9))):
            w, h = rng.uniform(15, 200), rng.uniform(30, 300)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            xy = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17)], axis=1)
            v = rng.choice([0, 1, 2], size=17, p=[0.25, 0.15, 0.6])
            crowd = int(rng.random() < 0.03)
            if crowd or rng.random() < 0.05:
                v[:] = 0
            kp = np.concatenate([np.where(v[:, None] > 0, np.round(xy, 2), 0), v[:, None]], 1)
            anns.append({
                "id": len(anns) + 1, "image_id": img_id, "category_id": 1,
                "keypoints": kp.ravel().tolist(), "num_keypoints": int((v > 0).sum()),
                "bbox": [x, y, w, h], "area": float(w * h * rng.uniform(0.3, 0.7)),
                "iscrowd": crowd,
            })  # fmt: skip
            people.append((xy, w, h))
        for _ in range(int(rng.integers(per_image // 2, per_image * 3 // 2 + 1))):
            if people and rng.random() < 0.6:
                xy, w, h = people[int(rng.integers(len(people)))]
                xy = xy + rng.normal(0, 0.05 * np.sqrt(w * h) * rng.uniform(0.1, 2), (17, 2))
            else:  # a false positive: a person-sized pose where nobody is
                w, h = rng.uniform(15, 200), rng.uniform(30, 300)
                x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
                xy = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17)], axis=1)
            kp = np.concatenate([xy, rng.uniform(0, 1, (17, 1))], axis=1)
            score = round(float(rng.uniform(0, 1)), 2)  # two decimals: many ties
            results.append({"image_id": img_id, "category_id": 1,
                            "keypoints": kp.ravel().tolist(), "score": score})
    gt = {"images": images, "annotations": anns, "categories": [dict(PERSON_CATEGORY)]}
    return gt, results


def run_pycocotools(gt: dict, results: list) -> tuple[float, float, list[float]]:
    """``(seconds of loadRes, seconds of evaluate + accumulate, stats)``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        start = time.perf_counter()
        coco_dt = coco_gt.loadRes(results)
        t_load = time.perf_counter() - start
        start = time.perf_counter()
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        t_eval = time.perf_counter() - start
        ev.summarize()
    return t_load, t_eval, [float(s) for s in ev.stats]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--per-image", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    gt, results = make_dataset(args.images, args.per_image, args.seed)
    print(f"{len(gt['images'])} images, {len(gt['annotations'])} ground truths, "
          f"{len(results)} results ({len(results) / len(gt['images']):.1f} per image)")
    gt_copy, results_copy = copy.deepcopy(gt), copy.deepcopy(results)

    start = time.perf_counter()
    ours = evaluate_keypoints(gt, results)
    t_ours = time.perf_counter() - start
    t_load, t_ref, ref_stats = run_pycocotools(gt_copy, results_copy)
    stats = [ours[name] for name in STAT_NAMES]

    print(f"pycocotools evaluate+accumulate         : {t_ref:8.3f} s  (+ loadRes {t_load:.3f} s)")
    print(f"course_lib evaluate_keypoints, all in   : {t_ours:8.3f} s")
    print(f"ratio                                   : {t_ref / t_ours:8.1f}x  (target >= 10x)")
    print(f"ratio with loadRes counted              : {(t_ref + t_load) / t_ours:8.1f}x")
    same = stats == ref_stats
    print(f"ten stats identical (==)                : {same}")
    for name, a, b in zip(STAT_NAMES, stats, ref_stats):
        print(f"  {name:<5} {a:.6f}  {b:.6f}" + ("" if a == b else "   <-- differs"))
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
