"""course_lib.evaluate against pycocotools: one rule per micro case, then randomised comparisons.

Every comparison is exact (``==``): the evaluator must reproduce pycocotools' arithmetic, not
approximate it. Ground truths are built here (no data files needed).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from course_lib.coco import OKS_SIGMAS
from course_lib.evaluate import (
    STAT_NAMES,
    average_precision,
    evaluate_keypoints,
    match_image,
    oks,
    precision_recall,
)

# a standing person, 17 keypoints, about 60 x 150 px
POSE = np.array([
    [30, 10], [27, 7], [33, 7], [23, 9], [37, 9], [18, 30], [42, 30], [12, 55], [48, 55],
    [8, 80], [52, 80], [22, 85], [38, 85], [20, 115], [40, 115], [19, 145], [41, 145],
], dtype=np.float64)  # fmt: skip


def _pycoco(gt: dict, results: list) -> tuple[dict, object]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        else:  # loadRes cannot take an empty list: build the empty result set by hand
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "annotations": [],
                               "categories": gt["categories"]}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {n: float(v) for n, v in zip(STAT_NAMES, ev.stats)}, ev


def same_as_pycocotools(gt: dict, results: list) -> dict:
    """Evaluate both ways, assert equality (==) of all ten stats, return ours."""
    gt_before, res_before = copy.deepcopy(gt), copy.deepcopy(results)
    ours = evaluate_keypoints(gt, results)
    assert gt == gt_before and results == res_before, "evaluate_keypoints modified its input"
    ref, _ = _pycoco(gt, results)
    assert ours == ref, {k: (ours[k], ref[k]) for k in STAT_NAMES if ours[k] != ref[k]}
    return ours


def person(ann_id, image_id, xy=POSE, *, v=2, area=None, bbox=None, iscrowd=0,
           num_keypoints=None, shift=(0.0, 0.0), scale=1.0, category_id=1):
    xy = np.asarray(xy, dtype=np.float64) * scale + np.asarray(shift)
    vis = np.broadcast_to(np.asarray(v), (17,)).astype(int)
    kp = np.concatenate([np.where(vis[:, None] > 0, xy, 0), vis[:, None]], axis=1)
    x0, y0 = xy.min(0)
    x1, y1 = xy.max(0)
    bbox = bbox if bbox is not None else [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
    return {
        "id": ann_id, "image_id": image_id, "category_id": category_id,
        "keypoints": kp.ravel().tolist(),
        "num_keypoints": int((vis > 0).sum()) if num_keypoints is None else num_keypoints,
        "bbox": bbox, "area": float(area if area is not None else bbox[2] * bbox[3] * 0.5),
        "iscrowd": iscrowd,
    }  # fmt: skip


def det(image_id, xy=POSE, score=0.9, *, shift=(0.0, 0.0), scale=1.0, noise=0.0, seed=0,
        category_id=1, **extra):
    xy = np.asarray(xy, dtype=np.float64) * scale + np.asarray(shift)
    if noise:
        xy = xy + np.random.default_rng(seed).normal(0, noise, xy.shape)
    kp = np.concatenate([xy, np.ones((17, 1))], axis=1)
    return {"image_id": image_id, "category_id": category_id, "keypoints": kp.ravel().tolist(),
            "score": score, **extra}


def coco(anns, num_images=1, categories=(1,)):
    return {
        "images": [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"}
                   for i in range(1, num_images + 1)],
        "annotations": anns,
        "categories": [{"id": c, "name": f"c{c}", "keypoints": [], "skeleton": []}
                       for c in categories],
    }  # fmt: skip


# ------------------------------------------------------------------------------------------
# micro cases: one rule each
# ------------------------------------------------------------------------------------------


def test_perfect_detection_scores_one():
    gt = coco([person(1, 1, area=5000.0)])
    s = same_as_pycocotools(gt, [det(1)])
    assert s["AP"] == pytest.approx(1.0) and s["APm"] == pytest.approx(1.0)
    assert s["AR"] == 1.0  # recall is exact; precision is tp / (tp + fp + eps)
    assert s["APl"] == -1.0 and s["ARl"] == -1.0  # no large ground truth: -1, not 0


def test_oks_of_one_pair_equals_computeoks():
    g = person(1, 1, area=3000.0, v=[2, 1, 0] * 5 + [2, 2])
    d = det(1, noise=4.0, seed=3)
    _, ev = _pycoco(coco([g]), [d])
    gk = np.asarray(g["keypoints"]).reshape(17, 3)
    dk = np.asarray(d["keypoints"]).reshape(17, 3)
    value = oks(dk[:, :2], gk[:, :2], gk[:, 2], g["area"])
    assert value == ev.ious[1, 1][0, 0]
    assert 0.3 < value < 0.99


def test_oks_formula_pinned():
    gt_xy = np.zeros((17, 2))
    pred = gt_xy.copy()
    pred[0] = [3.0, 4.0]  # 5 px off on the nose only
    visible = np.zeros(17)
    visible[0] = 2
    area = 400.0
    k = 2 * OKS_SIGMAS[0]
    expected = np.exp(-25.0 / (k**2) / (area + np.spacing(1)) / 2)
    assert oks(pred, gt_xy, visible, area) == pytest.approx(expected, rel=1e-15)
    assert oks(gt_xy, gt_xy, visible, area) == pytest.approx(1.0)


def test_enlarged_box_rule_for_ground_truth_without_labelled_keypoints():
    # num_keypoints > 0 (so not ignored) but every v = 0: OKS measures the distance to the box
    # enlarged to [x - w, x + 2w] x [y - h, y + 2h]
    g = person(1, 1, v=0, num_keypoints=5, area=4000.0, bbox=[100.0, 100.0, 50.0, 100.0])
    inside = det(1, shift=(60.0, 0.0), score=0.9)  # x in [68, 112]: inside [50, 200]
    far = det(1, shift=(300.0, 300.0), score=0.8)
    s = same_as_pycocotools(coco([g]), [inside, far])
    assert s["AP"] == pytest.approx(1.0)
    box = [100.0, 100.0, 50.0, 100.0]
    assert oks(POSE + [60.0, 0.0], np.zeros((17, 2)), np.zeros(17), 4000.0, bbox=box) == 1.0
    assert oks(POSE + [300.0, 300.0], np.zeros((17, 2)), np.zeros(17), 4000.0, bbox=box) < 1e-3


def test_num_keypoints_zero_ground_truth_is_ignored():
    gts = [person(1, 1, area=5000.0), person(2, 1, shift=(200, 0), area=5000.0, num_keypoints=0)]
    dets = [det(1, score=0.5), det(1, shift=(200, 0), score=0.9)]
    s = same_as_pycocotools(coco(gts), dets)
    assert s["AP"] == pytest.approx(1.0)  # that detection is neither a TP nor an FP


def test_crowd_region_absorbs_many_detections():
    crowd = person(2, 1, shift=(200, 0), area=5000.0, iscrowd=1, v=0, num_keypoints=0,
                   bbox=[200.0, 0.0, 100.0, 160.0])
    gts = [person(1, 1, area=5000.0), crowd]
    dets = [det(1, score=0.5)] + [det(1, shift=(210 + 5 * i, 5), score=0.9) for i in range(3)]
    s = same_as_pycocotools(coco(gts), dets)
    assert s["AP"] == pytest.approx(1.0)


def test_ignored_non_crowd_ground_truth_absorbs_only_one_detection():
    gts = [person(1, 1, area=5000.0), person(2, 1, shift=(200, 0), area=5000.0, num_keypoints=0)]
    dets = [det(1, score=0.5), det(1, shift=(200, 0), score=0.9),
            det(1, shift=(201, 1), score=0.8)]
    s = same_as_pycocotools(coco(gts), dets)
    assert s["AP"] < 0.99  # the second detection of the ignored person is a false positive


def test_regular_ground_truth_preferred_over_better_ignored_one():
    # the detection sits exactly on an ignored person and close to a regular one: it must take
    # the regular one (a true positive), not the better-matching ignored one
    gts = [person(1, 1, area=8000.0), person(2, 1, shift=(3, 0), area=8000.0, num_keypoints=0)]
    s = same_as_pycocotools(coco(gts), [det(1, shift=(3, 0), score=0.9)])
    assert s["AP50"] == pytest.approx(1.0)


def test_oks_tie_goes_to_the_later_ground_truth():
    v_all = 2
    v_head = [2] * 5 + [0] * 12
    b = person(1, 1, v=v_all, area=8000.0)
    a = person(2, 1, v=v_head, area=8000.0)
    d1 = det(1, score=0.9)  # OKS 1 with both: a tie
    d2 = det(1, score=0.8)
    d2["keypoints"] = (np.asarray(d2["keypoints"]).reshape(17, 3)
                       + np.r_[[[0, 0, 0]] * 5, [[200, 200, 0]] * 12]).ravel().tolist()
    later_is_a = same_as_pycocotools(coco([b, a]), [d1, d2])  # d1 -> a, d2 cannot take b
    later_is_b = same_as_pycocotools(coco([a, b]), [d1, d2])  # d1 -> b, d2 -> a
    assert later_is_b["AP"] == pytest.approx(1.0)
    assert later_is_a["AP"] < 0.99


def test_equal_scores_keep_input_order_within_an_image():
    gts = [person(1, 1, area=8000.0)]
    rough = det(1, score=0.7, noise=4.0, seed=1)  # 0.5 < OKS < 0.95
    exact = det(1, score=0.7)  # OKS 1
    first_exact = same_as_pycocotools(coco(gts), [exact, rough])
    first_rough = same_as_pycocotools(coco(gts), [rough, exact])
    assert first_exact["AP"] == pytest.approx(1.0)
    assert first_rough["AP"] < 0.99


def test_equal_scores_across_images_follow_image_id_order():
    gts = [person(1, 1, area=8000.0), person(2, 2, area=8000.0)]
    fp = det(1, shift=(300, 300), score=0.5)
    tp1, tp2 = det(1, score=0.9), det(2, score=0.5)
    a = same_as_pycocotools(coco(gts, 2), [fp, tp1, tp2])
    b = same_as_pycocotools(coco(gts, 2), [tp2, tp1, fp])
    assert a == b  # order of the results list across images does not matter: image 1 first
    # sorted: tp1 (0.9), then the 0.5 tie in image order: fp (image 1) before tp2 (image 2)
    assert a["AP"] == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101, rel=1e-12)


def test_only_first_twenty_detections_per_image_count():
    gts = [person(1, 1, area=8000.0)]
    fps = [det(1, shift=(300, 300 + i), score=0.9 - i * 0.01) for i in range(20)]
    s = same_as_pycocotools(coco(gts), [*fps, det(1, score=0.1)])  # the good one is 21st
    assert s["AR"] == 0.0
    s = same_as_pycocotools(coco(gts), [*fps[:19], det(1, score=0.1)])  # now 20th
    assert s["AR"] == pytest.approx(1.0)


def test_medium_range_includes_its_lower_bound():
    s = same_as_pycocotools(coco([person(1, 1, area=32.0**2)]), [det(1)])
    assert s["APm"] == pytest.approx(1.0) and s["APl"] == -1.0


def test_area_96_squared_is_both_medium_and_large():
    s = same_as_pycocotools(coco([person(1, 1, area=96.0**2)]), [det(1)])
    assert s["APm"] == pytest.approx(1.0) and s["APl"] == pytest.approx(1.0)


def test_small_ground_truth_has_no_medium_or_large_stats():
    s = same_as_pycocotools(coco([person(1, 1, area=1023.0, scale=0.2)]), [det(1, scale=0.2)])
    assert s["AP"] == pytest.approx(1.0) and s["APm"] == -1.0 and s["ARl"] == -1.0


def test_unmatched_detection_outside_area_range_is_ignored():
    gts = [person(1, 1, area=20000.0, scale=1.5)]
    tiny_fp = det(1, shift=(400, 300), scale=0.3, score=0.95)  # keypoint box 15 x 41 px
    s = same_as_pycocotools(coco(gts), [tiny_fp, det(1, scale=1.5, score=0.5)])
    assert s["APl"] == pytest.approx(1.0)  # the small false positive is ignored in "large"
    assert s["AP"] < 0.99  # but does in "all"


def test_detection_area_comes_from_bbox_when_first_result_has_one():
    gts = [person(1, 1, area=20000.0, scale=1.5)]
    tiny_fp = det(1, shift=(400, 300), scale=0.3, score=0.95, bbox=[400, 300, 200, 200])
    good = det(1, scale=1.5, score=0.5, bbox=[0, 0, 10, 10])
    s = same_as_pycocotools(coco(gts), [tiny_fp, good])
    assert s["APl"] < 0.99  # its bbox area (40000) puts the false positive in the large range


def test_detections_in_image_without_ground_truth_are_false_positives():
    gts = [person(1, 1, area=8000.0)]
    s = same_as_pycocotools(coco(gts, 3), [det(1, score=0.5), det(2, score=0.9)])
    assert s["AP"] == pytest.approx(0.5)  # FP (0.9) then TP (0.5): precision 0.5 everywhere


def test_images_without_anything_change_nothing():
    gts = [person(1, 1, area=8000.0)]
    dets = [det(1, score=0.5, noise=2.0), det(1, shift=(200, 0), score=0.8)]
    assert same_as_pycocotools(coco(gts, 1), dets) == same_as_pycocotools(coco(gts, 5), dets)


def test_results_of_unknown_category_are_dropped():
    gts = [person(1, 1, area=8000.0)]
    s = same_as_pycocotools(coco(gts), [det(1, score=0.5), det(1, shift=(200, 0), category_id=7)])
    assert s["AP"] == pytest.approx(1.0)


def test_precision_interpolation_and_101_recall_points():
    gts = [person(1, 1, area=8000.0), person(2, 1, shift=(200, 0), area=8000.0)]
    dets = [det(1, score=0.9), det(1, shift=(400, 300), score=0.8),
            det(1, shift=(200, 0), score=0.7)]  # TP, FP, TP at every threshold
    s = same_as_pycocotools(coco(gts), dets)
    assert s["AP"] == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101, rel=1e-12)
    assert s["AR"] == pytest.approx(1.0)


def test_only_crowd_ground_truth_gives_minus_one():
    crowd = person(1, 1, area=8000.0, iscrowd=1)
    s = same_as_pycocotools(coco([crowd]), [det(1)])
    assert all(s[n] == -1.0 for n in STAT_NAMES)


def test_ignore_field_of_ground_truth_is_not_used():
    # pycocotools overwrites a ground truth's "ignore" with iscrowd: the person still counts
    g = person(1, 1, area=8000.0)
    g["ignore"] = 1
    s = same_as_pycocotools(coco([g]), [det(1, shift=(300, 300))])
    assert s["AR"] == 0.0


def test_predicted_visibility_does_not_matter():
    d = det(1)
    kp = np.asarray(d["keypoints"]).reshape(17, 3)
    kp[:, 2] = 0
    d["keypoints"] = kp.ravel().tolist()
    s = same_as_pycocotools(coco([person(1, 1, area=8000.0)]), [d])
    assert s["AP"] == pytest.approx(1.0)


def test_categories_are_averaged():
    gts = [person(1, 1, area=8000.0), person(2, 1, shift=(200, 0), area=8000.0, category_id=2)]
    dets = [det(1, score=0.9), det(1, shift=(400, 300), score=0.8, category_id=2)]
    s = same_as_pycocotools(coco(gts, categories=(1, 2)), dets)
    assert s["AP"] == pytest.approx(0.5)


def test_empty_results_mean_no_detections():
    gt = coco([person(1, 1, area=8000.0)])
    s = same_as_pycocotools(gt, [])
    assert s["AP"] == 0.0 and s["AR"] == 0.0 and s["APl"] == -1.0


def test_annotation_id_zero_is_matched_correctly():
    gt = coco([person(0, 1, area=8000.0)])
    ours = evaluate_keypoints(gt, [det(1)])
    ref, _ = _pycoco(gt, [det(1)])
    assert ours["AP"] == pytest.approx(1.0)
    assert ref["AP"] == 0.0  # pycocotools reads the match with id 0 as "unmatched"


def test_inputs_as_files_and_coco_object(tmp_path):
    from pycocotools.coco import COCO

    gt = coco([person(1, 1, area=8000.0), person(2, 1, shift=(200, 0), area=8000.0)])
    dets = [det(1, score=0.9, noise=2.0), det(1, shift=(200, 0), score=0.3, noise=3.0, seed=2)]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(dets))
    expected = same_as_pycocotools(gt, dets)
    assert evaluate_keypoints(tmp_path / "gt.json", str(tmp_path / "res.json")) == expected
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(tmp_path / "gt.json"))
    assert evaluate_keypoints(coco_gt, dets) == expected


def test_return_arrays_equal_pycocotools_eval():
    gt, results = random_coco(5)
    out = evaluate_keypoints(gt, results, return_arrays=True)
    _, ev = _pycoco(gt, results)
    assert np.array_equal(out["precision"], ev.eval["precision"])
    assert np.array_equal(out["recall"], ev.eval["recall"])
    assert out["dt_match"].shape == (10, len(out["dt_index"]))


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda g, r: r.append(det(99)), "image_id"),
        (lambda g, r: r[0].__setitem__("keypoints", r[0]["keypoints"][:48]), "51 numbers"),
        (lambda g, r: r[0].pop("score"), "missing 'score'"),
        (lambda g, r: r[0].__setitem__("score", float("nan")), "score"),
        (lambda g, r: r[0]["keypoints"].__setitem__(3, float("inf")), "NaN or inf"),
        (lambda g, r: g["annotations"].append(person(1, 1, shift=(50, 0))),
         r"annotation #1 \(id 1\): duplicate annotation id 1"),
        (lambda g, r: g["annotations"][0]["keypoints"].pop(),
         r"annotation #0 \(id 1\): keypoints has 50 values, expected 51"),
        (lambda g, r: (r[0].__setitem__("bbox", [0, 0, 5, 5]), r[1].pop("bbox", None)), "bbox"),
        (lambda g, r: g.pop("categories"), "categories"),
        (lambda g, r: g["annotations"][0].pop("id"), r"annotation #0 \(id \?\): missing key\(s\) id"),
        (lambda g, r: g["annotations"][0].update(area=float("nan")),
         r"annotation #0 \(id 1\): area must be a number, got nan"),
        (lambda g, r: g["annotations"][0].update(bbox=[0, 0, "w", 5]), r"annotation #0 \(id 1\): bbox"),
        (lambda g, r: g["annotations"][0].update(iscrowd="no"), r"annotation #0 \(id 1\): iscrowd"),
        (lambda g, r: g["images"][0].update(id=[1]), r"image #0"),
        (lambda g, r: r[0].__setitem__("category_id", "1"),
         r"results\[0\]\['category_id'\]: expected an int id, got '1' \(str\)"),
        (lambda g, r: r[1].__setitem__("category_id", True), r"results\[1\]\['category_id'\]"),
        (lambda g, r: r[1].__setitem__("category_id", 1.5), r"results\[1\]\['category_id'\]"),
        (lambda g, r: r[1].__setitem__("image_id", "1"), r"results\[1\]\['image_id'\]: expected an int"),
        (lambda g, r: r[0].__setitem__("image_id", None), r"results\[0\]\['image_id'\]"),
        (lambda g, r: r[0].__setitem__("score", "0.9"), r"results\[0\]\['score'\]"),
        (lambda g, r: r[0].__setitem__("score", True), r"results\[0\]\['score'\]"),
        (lambda g, r: (r[0].__setitem__("bbox", [0, 0, "5", 5]), r[1].__setitem__("bbox", [0, 0, 5, 5])),
         r"results\[0\]\['bbox'\]: expected 4 finite numbers"),
        (lambda g, r: (r[0].__setitem__("bbox", [0, 0, 5, 5]), r[1].__setitem__("bbox", [0, 0, float("nan"), 5])),
         r"results\[1\]\['bbox'\]: expected 4 finite numbers"),
    ],
)
def test_bad_input_gets_clear_error(mutate, message):
    gt = coco([person(1, 1, area=8000.0)])
    results = [det(1), det(1, shift=(5, 0))]
    mutate(gt, results)
    with pytest.raises(ValueError, match=message):
        evaluate_keypoints(gt, results)


def test_bad_types_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="gt"):
        evaluate_keypoints(42, [])
    with pytest.raises(ValueError, match="results"):
        evaluate_keypoints(coco([]), {"image_id": 1})
    with pytest.raises(ValueError, match="no such file"):
        evaluate_keypoints(tmp_path / "missing.json", [])


# ------------------------------------------------------------------------------------------
# teaching functions
# ------------------------------------------------------------------------------------------


def test_match_image_equals_evaluateimg():
    for seed in range(6):
        gt, results = random_coco(100 + seed, num_images=4)
        _, ev = _pycoco(gt, results)
        for e in ev.evalImgs:
            if e is None or e["aRng"] != [0, 1e10] or not len(e["gtIds"]) or not len(e["dtIds"]):
                continue
            ious = ev.ious[e["image_id"], 1]  # [D, G] in the image's original gt order
            gts = [a for a in gt["annotations"] if a["image_id"] == e["image_id"]]
            ignore = np.array([bool(a["iscrowd"]) or a["num_keypoints"] == 0 for a in gts])
            crowd = np.array([bool(a["iscrowd"]) for a in gts])
            ids = np.array([a["id"] for a in gts])
            for t, thr in enumerate(ev.params.iouThrs):
                m, ignored = match_image(ious, thr, gt_ignore=ignore, gt_crowd=crowd)
                got = np.where(m >= 0, ids[np.maximum(m, 0)], 0)
                assert np.array_equal(got, e["dtMatches"][t])
                assert np.array_equal(ignored, e["dtIgnore"][t] & (e["dtMatches"][t] > 0))


def test_average_precision_pinned_and_equal_to_accumulate():
    precision, recall = precision_recall([True, False, True], 2)
    assert np.allclose(recall, [0.5, 0.5, 1.0]) and np.allclose(precision, [1, 0.5, 2 / 3])
    assert average_precision(precision, recall) == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert average_precision([1.0], [0.5]) == pytest.approx(51 / 101)
    assert average_precision([], []) == 0.0


# ------------------------------------------------------------------------------------------
# randomised comparisons
# ------------------------------------------------------------------------------------------


def random_coco(seed, num_images=25, max_people=5, max_dets=26, with_bbox=False):
    """A random ground truth and results exercising every rule (crowds, unlabelled people,
    boundary areas, score ties, > 20 detections, images without people)."""
    rng = np.random.default_rng(seed)
    images = [{"id": int(i), "width": 400, "height": 300, "file_name": f"{i}.jpg"}
              for i in rng.permutation(num_images) + 1]
    anns, results = [], []
    for img in images:
        people = []
        for _ in range(int(rng.integers(0, max_people + 1))):
            cx, cy = rng.uniform(20, 380), rng.uniform(20, 280)
            w = rng.choice([rng.uniform(5, 40), rng.uniform(40, 150)])
            h = rng.uniform(10, 200)
            xy = np.stack([cx + rng.uniform(-w / 2, w / 2, 17),
                           cy + rng.uniform(-h / 2, h / 2, 17)], 1)
            v = rng.choice([0, 1, 2], size=17, p=[0.3, 0.2, 0.5])
            if rng.random() < 0.1:
                v[:] = 0
            kp = np.concatenate([np.where(v[:, None] > 0, np.round(xy, 1), 0), v[:, None]], 1)
            nk = 0 if rng.random() < 0.05 else int((v > 0).sum())
            anns.append({
                "id": len(anns) + 1, "image_id": img["id"], "category_id": 1,
                "keypoints": kp.ravel().tolist(), "num_keypoints": nk,
                "bbox": [cx - w / 2, cy - h / 2, w, h],
                "area": float(rng.choice([w * h * 0.5, 1024.0, 9216.0, rng.uniform(500, 2e4)])),
                "iscrowd": int(rng.random() < 0.08),
            })  # fmt: skip
            people.append(xy)
        for _ in range(int(rng.integers(0, max_dets + 1))):
            if people and rng.random() < 0.7:
                xy = people[rng.integers(len(people))] + rng.normal(0, rng.choice([1, 3, 8]),
                                                                    (17, 2))
            else:
                xy = np.stack([rng.uniform(0, 400, 17), rng.uniform(0, 300, 17)], 1)
            r = {"image_id": img["id"], "category_id": 1,
                 "keypoints": np.concatenate([xy, np.ones((17, 1))], 1).ravel().tolist(),
                 "score": float(rng.choice([0.5, 0.9, round(rng.random(), 2)]))}
            if with_bbox:
                r["bbox"] = [float(xy[:, 0].min()), float(xy[:, 1].min()),
                             float(rng.uniform(5, 150)), float(rng.uniform(5, 150))]
            results.append(r)
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}]}
    return gt, results


@pytest.mark.parametrize("seed", range(40))
def test_random_equal_to_pycocotools(seed):
    gt, results = random_coco(seed)
    stats = same_as_pycocotools(gt, results)
    assert 0.0 <= stats["AP"] <= 1.0


@pytest.mark.parametrize("seed", range(8))
def test_random_with_bbox_results_equal_to_pycocotools(seed):
    same_as_pycocotools(*random_coco(1000 + seed, with_bbox=True))


@pytest.mark.parametrize("seed", range(4))
def test_random_many_people_equal_to_pycocotools(seed):
    same_as_pycocotools(*random_coco(2000 + seed, num_images=8, max_people=20, max_dets=40))


# ------------------------------------------------------------------------------------------
# more input shapes, and the far-pair shortcut
# ------------------------------------------------------------------------------------------


def test_integer_keypoints_and_unsorted_image_ids():
    gt, results = random_coco(77, num_images=10)
    gt["images"] = gt["images"][::-1]
    for a in gt["annotations"]:
        a["keypoints"] = [int(round(v)) for v in a["keypoints"]]
    for r in results:
        r["keypoints"] = [int(round(v)) for v in r["keypoints"]]
    same_as_pycocotools(gt, results)


def test_segmentation_of_results_never_reaches_the_rle_decoder(monkeypatch):
    """Keypoint results need no mask: a result's segmentation is dropped before pycocotools'
    C decoder could read a malformed counts string past its end (both evaluators)."""
    import pycocotools.mask
    from pycocotools import _mask

    from course_lib.evaluate import pycocotools_stats

    def refuse(*args, **kwargs):
        raise AssertionError("the RLE decoder was called")

    for module in (pycocotools.mask, _mask):
        for name in ("area", "decode", "frPyObjects", "toBbox", "merge", "iou"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse)
    malformed = {"size": [480, 640], "counts": "o" * 64}  # every byte says "more follows"
    gts = [person(1, 1, area=20000.0, scale=1.5)]
    fp = det(1, shift=(400, 300), scale=0.3, score=0.95, segmentation=malformed)
    good = det(1, scale=1.5, score=0.5, segmentation=[[0, 0, 10, 0, 10, 10]])
    plain = [{k: v for k, v in r.items() if k != "segmentation"} for r in (fp, good)]
    before = copy.deepcopy([fp, good])
    ours = evaluate_keypoints(coco(gts), [fp, good])
    assert ours == evaluate_keypoints(coco(gts), plain)
    assert pycocotools_stats(coco(gts), [fp, good]) == ours
    assert [fp, good] == before  # the input keeps its segmentation
    monkeypatch.undo()
    assert ours == _pycoco(coco(gts), plain)[0]


def test_integral_float_ids_are_ids_as_in_pycocotools():
    gt = coco([person(1, 1, area=8000.0), person(2, 2, area=6000.0)], num_images=2)
    results = [det(1.0, category_id=1.0), det(2, shift=(3, 0), category_id=np.int64(1))]
    s = same_as_pycocotools(gt, results)
    assert s["AP"] > 0.5


def test_malformed_annotation_file_names_the_file_the_annotation_and_the_field(tmp_path):
    gt = coco([person(1, 1, area=8000.0), person(7, 1, shift=(50, 0))])
    gt["annotations"][1]["keypoints"][4] = "twelve"
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    with pytest.raises(ValueError) as info:
        evaluate_keypoints(path, [det(1)])
    text = str(info.value)
    assert str(path) in text and "annotation #1 (id 7)" in text and "keypoints[4]" in text
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON") as info:
        evaluate_keypoints(path, [det(1)])
    assert str(path) in str(info.value)
    res = tmp_path / "res.json"
    res.write_text("[{")
    with pytest.raises(ValueError, match="not valid JSON") as info:
        evaluate_keypoints(coco([]), res)
    assert str(res) in str(info.value)
    res.write_text(json.dumps([det(1), det(1, category_id="1")]))
    with pytest.raises(ValueError, match=r"results\[1\]\['category_id'\]") as info:
        evaluate_keypoints(coco([person(1, 1)]), res)
    assert str(info.value).startswith(f"{res}: ")


def test_far_pair_shortcut_never_skips_a_pair_at_or_above_half():
    from course_lib import evaluate_arrays as ev

    gt, results = random_coco(5, num_images=40, max_people=8)
    out = evaluate_keypoints(gt, results, return_arrays=True)
    assert out["dt_index"].size
    skipped = checked = 0
    for r in results:
        for a in gt["annotations"]:
            if a["image_id"] != r["image_id"]:
                continue
            g = ev._gt_arrays({**gt, "annotations": [a]}, {a["image_id"]: 0}, {1: 0})
            d = ev._dt_arrays([r], {r["image_id"]: 0}, {1: 0})
            zero = np.zeros(1, dtype=np.int64)
            far = ev._surely_below_half(d["lo"], d["hi"], g, zero, zero,
                                        (2 * OKS_SIGMAS) ** 2)[0]
            gk = np.asarray(a["keypoints"], float).reshape(17, 3)
            value = oks(np.asarray(r["keypoints"]).reshape(17, 3)[:, :2], gk[:, :2], gk[:, 2],
                        a["area"], bbox=a["bbox"])
            checked += 1
            if far:
                skipped += 1
                assert value < 0.5
    assert skipped > 0.3 * checked  # the shortcut does skip most far-apart pairs


def test_no_ground_truth_at_all_gives_minus_one():
    s = same_as_pycocotools(coco([], num_images=2), [det(1), det(2, score=0.3)])
    assert all(s[n] == -1.0 for n in STAT_NAMES)
    out = evaluate_keypoints(coco([], num_images=2), [det(1)], return_arrays=True)
    assert (out["dt_match"] == -1).all()
