"""course_lib.coco: keypoint lists, validation errors that name the culprit, loading, filters;
and the 01 exercise checks (pass on the reference, fail on a stub and on plausible mistakes)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from course_lib import checks, coco


def _ann(i=1, image_id=1, v=2, **kw):
    kp = []
    for k in range(17):
        kp += [10.0 + k, 20.0 + 2 * k, v]
    ann = {"id": i, "image_id": image_id, "category_id": 1, "keypoints": kp,
           "num_keypoints": 17 if v else 0, "bbox": [5.0, 5.0, 40.0, 60.0], "area": 900.0,
           "iscrowd": 0, "segmentation": [[5, 5, 45, 5, 45, 65, 5, 65]]}  # fmt: skip
    ann.update(kw)
    return ann


def _data():
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 80},
                       {"id": 2, "file_name": "b.jpg", "width": 64, "height": 80}],
            "annotations": [_ann(1), _ann(2, 2)], "categories": [coco.PERSON_CATEGORY]}  # fmt: skip


def test_constants_are_coco():
    assert coco.NUM_KEYPOINTS == 17 and len(coco.SKELETON) == 19
    assert coco.flip_index()[[1, 2, 9, 16]].tolist() == [2, 1, 10, 15]
    assert coco.OKS_SIGMAS[0] == pytest.approx(0.026) and coco.OKS_SIGMAS[11] == pytest.approx(0.107)


def test_decode_encode_round_trip_and_pinned_layout():
    flat = _ann(v=2)["keypoints"]
    flat[3 * 4 : 3 * 4 + 3] = [0, 0, 0]  # right ear unlabelled
    flat[3 * 9 + 2] = 1  # left wrist occluded
    xy, v = coco.decode_keypoints(flat)
    assert xy.shape == (17, 2) and v.dtype == np.int64
    assert xy[9].tolist() == [19.0, 38.0] and v[9] == 1 and v[4] == 0
    assert coco.encode_keypoints(xy, v) == flat
    assert coco.count_keypoints(flat) == 16
    assert coco.keypoint_box(flat) == [10.0, 20.0, 16.0, 32.0]  # ignores the (0, 0) of v=0
    assert coco.keypoint_box([0] * 51) is None
    with pytest.raises(ValueError, match="keypoints: expected 51"):
        coco.decode_keypoints(flat[:-1])


def test_flip_keypoint_list_mirrors_and_swaps():
    flat = _ann()["keypoints"]
    flat[3 * 4 : 3 * 4 + 3] = [0, 0, 0]  # right ear unlabelled -> left ear unlabelled
    out = coco.flip_keypoint_list(flat, 100)
    xy, v = coco.decode_keypoints(out)
    assert xy[0].tolist() == [99 - 10.0, 20.0]  # nose stays, x -> (W - 1) - x
    assert xy[1].tolist() == [99 - 12.0, 24.0]  # new left eye = old right eye (k=2)
    assert v[3] == 0 and xy[3].tolist() == [0, 0] and v[4] == 2
    assert coco.flip_keypoint_list(out, 100) == flat  # an involution
    with pytest.raises(ValueError, match="image_width"):
        coco.flip_keypoint_list(flat, 0)


def test_area_category_limits():
    assert [coco.area_category(a) for a in (1023.9, 1024, 9215, 9216)] == [
        "small", "medium", "medium", "large"]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["annotations"][1].pop("keypoints"), r"annotation #1 \(id 2\): missing key\(s\) keypoints"),
    (lambda d: d["annotations"][0]["keypoints"].pop(), r"annotation #0 \(id 1\): keypoints has 50 values, expected 51"),
    (lambda d: d["annotations"][1].update(image_id=7), r"annotation #1 \(id 2\): image_id 7 is not in images"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(27, "12"), r"annotation #0 \(id 1\): keypoints\[27\] \(left_wrist x\) is not a number: '12'"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(0, float("nan")), r"keypoints\[0\] \(nose x\) is not a number: nan"),
    (lambda d: d["annotations"][0].update(area="big"), r"annotation #0 \(id 1\): area must be a number"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(2, 3), r"visibility of nose is 3, expected 0, 1 or 2"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"bbox must be 4 numbers"),
    (lambda d: d["annotations"][1].update(id=1), r"annotation #1 \(id 1\): duplicate annotation id 1"),
    (lambda d: d["images"][0].pop("width"), r"image #0 \(id 1\): missing key\(s\) width"),
    (lambda d: d.pop("annotations"), r"missing top-level key\(s\) annotations"),
])  # fmt: skip
def test_malformed_files_name_the_annotation_and_the_problem(tmp_path, mutate, message):
    data = _data()
    coco.validate_coco_keypoints(copy.deepcopy(data))  # the clean file passes
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(coco.AnnotationError, match=message):
        coco.load_coco(path)


def test_load_errors_for_missing_and_invalid_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no annotation file"):
        coco.load_coco(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(coco.AnnotationError, match="not valid JSON"):
        coco.load_coco(tmp_path / "x.json")


def test_load_and_list_instances_filters(tmp_path):
    data = _data()
    data["annotations"] += [
        _ann(3, 1, iscrowd=1, keypoints=[0] * 51, num_keypoints=0),
        _ann(4, 2, v=0),  # no labelled keypoints
        _ann(5, 1, bbox=[3.0, 3.0, 0.5, 30.0]),  # degenerate box
        _ann(6, 1, area=50.0),
    ]
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(data))
    c = coco.load_coco(path)
    assert sorted(c.getAnnIds()) == [1, 2, 3, 4, 5, 6]
    ids = lambda anns: [a["id"] for a in anns]  # noqa: E731
    assert ids(coco.list_instances(c)) == [1, 6, 2]  # sorted by image, then id
    assert ids(coco.list_instances(c, include_crowd=True)) == [1, 6, 2]  # crowds have none
    assert ids(coco.list_instances(c, include_crowd=True, min_keypoints=0)) == [1, 3, 6, 2, 4]
    assert ids(coco.list_instances(c, min_box_size=0.1)) == [1, 5, 6, 2]
    assert ids(coco.list_instances(c, min_area=100)) == [1, 2]
    assert ids(coco.list_instances(data, image_ids=[2])) == [2]
    assert ids(coco.list_instances(path)) == [1, 6, 2]
    stats = coco.instance_statistics(coco.list_instances(c, min_keypoints=0, include_crowd=True))
    assert stats["visibility"].shape == (5, 17)
    assert stats["num_keypoints"].tolist() == [17, 0, 17, 17, 0]
    assert stats["iscrowd"].tolist() == [0, 1, 0, 0, 0]


# --- exercise checks of 01 -------------------------------------------------------------------


def _stub(*args, **kwargs):
    raise NotImplementedError("exercise")


def _strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")


def test_check_decode_keypoints(monkeypatch, capsys):
    _strict(monkeypatch)
    assert checks.check_decode_keypoints(coco.decode_keypoints)
    with pytest.raises(checks.ExerciseError, match="not implemented"):
        checks.check_decode_keypoints(_stub)

    def wrong(flat):  # reads (x, y) from the wrong columns
        a = np.asarray(flat, float).reshape(17, 3)
        return a[:, 1:], a[:, 0]

    with pytest.raises(checks.ExerciseError, match="xy"):
        checks.check_decode_keypoints(wrong)


def test_check_keypoint_box(monkeypatch):
    _strict(monkeypatch)

    def reference(flat):
        return coco.count_keypoints(flat), coco.keypoint_box(flat)

    assert checks.check_keypoint_box(reference)
    with pytest.raises(checks.ExerciseError, match="not implemented"):
        checks.check_keypoint_box(_stub)

    def wrong(flat):  # spans the (0, 0) of unlabelled keypoints too, as loadRes does
        a = np.asarray(flat, float).reshape(17, 3)
        x0, y0 = a[:, :2].min(0)
        x1, y1 = a[:, :2].max(0)
        return int((a[:, 2] > 0).sum()), [x0, y0, x1 - x0, y1 - y0]

    with pytest.raises(checks.ExerciseError, match="box"):
        checks.check_keypoint_box(wrong)


def test_check_flip_keypoints(monkeypatch):
    _strict(monkeypatch)
    assert checks.check_flip_keypoints(coco.flip_keypoint_list)
    with pytest.raises(checks.ExerciseError, match="not implemented"):
        checks.check_flip_keypoints(_stub)

    def no_swap(flat, width):
        xy, v = coco.decode_keypoints(flat)
        xy[:, 0] = width - 1 - xy[:, 0]
        return coco.encode_keypoints(xy, v)

    with pytest.raises(checks.ExerciseError, match="swapped"):
        checks.check_flip_keypoints(no_swap)

    def off_by_one(flat, width):
        return coco.flip_keypoint_list(flat, width + 1)

    with pytest.raises(checks.ExerciseError, match="off by one"):
        checks.check_flip_keypoints(off_by_one)


# --- what the validator also reports (strict: the files a dataset trains on) -----------------


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["images"][1].update(id=1), r"image #1 \(id 1\): duplicate image id 1"),
    (lambda d: d["images"][0].update(width=0), r"image #0 \(id 1\): width must be positive, got 0"),
    (lambda d: d["images"][1].update(height=-80), r"image #1 \(id 2\): height must be positive, got -80"),
    (lambda d: d["images"][0].update(width=float("nan")), r"image #0 \(id 1\): width must be a number"),
    (lambda d: d["images"][0].update(id="1"), r"image #0 \(id '1'\): id must be a number"),
    (lambda d: d["annotations"][0].update(num_keypoints=12),
     r"annotation #0 \(id 1\): num_keypoints is 12 but 17 keypoints are labelled \(v > 0\)"),
    (lambda d: d["annotations"][1]["keypoints"].__setitem__(2, 0),
     r"annotation #1 \(id 2\): num_keypoints is 17 but 16 keypoints are labelled"),
    (lambda d: d["annotations"][1].update(category_id=3),
     r"annotation #1 \(id 2\): category_id 3 is not in categories"),
    (lambda d: d["annotations"][0].update(area=float("nan")), r"annotation #0 \(id 1\): area must be a number, got nan"),
    (lambda d: d["annotations"][0].update(area=-5.0), r"annotation #0 \(id 1\): area must be >= 0, got -5.0"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, float("inf"), 3]), r"annotation #0 \(id 1\): bbox must be 4 numbers"),
    (lambda d: d["annotations"][0].update(iscrowd=True), r"annotation #0 \(id 1\): iscrowd must be a number, got True"),
    (lambda d: d["annotations"][0].update(image_id="1"), r"annotation #0 \(id 1\): image_id must be a number"),
    (lambda d: d["categories"].append({"name": "dog"}), r"category #1 \(id \?\): missing key\(s\) id"),
    (lambda d: d["categories"].append(dict(coco.PERSON_CATEGORY)), r"category #1 \(id 1\): duplicate category id 1"),
    (lambda d: d.update(images={"id": 1}), r"'images' must be a list, got dict"),
])  # fmt: skip
def test_validator_reports_ids_sizes_counts_and_categories(tmp_path, mutate, message):
    data = _data()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(coco.AnnotationError, match=message) as info:
        coco.load_coco(path)
    assert str(info.value).startswith(f"{path}: ")  # the file is named first


def test_validator_reports_every_problem_with_its_annotation(tmp_path):
    data = _data()
    data["annotations"][0].update(area=float("nan"), num_keypoints=3)
    data["annotations"][1].update(category_id=9)
    with pytest.raises(coco.AnnotationError) as info:
        coco.validate_coco_keypoints(data, source="x.json")
    text = str(info.value)
    assert text.startswith("x.json: 3 problem(s)")
    assert "annotation #0 (id 1): area" in text and "annotation #0 (id 1): num_keypoints" in text
    assert "annotation #1 (id 2): category_id 9" in text


def test_numpy_numbers_are_numbers():
    data = _data()
    data["images"][0]["id"] = np.int64(1)
    data["annotations"][0]["area"] = np.float32(900.0)
    data["annotations"][0]["keypoints"][0] = np.float64(10.0)
    coco.validate_coco_keypoints(data)


def test_evaluation_mode_follows_pycocotools_rules():
    """For the evaluator: what pycocotools reads as meaningful is not an error there."""
    data = _data()
    data["annotations"][0]["num_keypoints"] = 0  # pycocotools: an ignored ground truth
    del data["annotations"][1]["iscrowd"]  # counts as 0
    del data["annotations"][1]["num_keypoints"]  # counted from the keypoints
    data["annotations"].append(_ann(3, image_id=7))  # an image that is not evaluated
    data["annotations"].append(_ann(4, category_id=5))  # a category that is not evaluated
    data["images"].append({"id": 3})  # only the id is read
    coco.validate_coco_keypoints(data, evaluation=True)
    with pytest.raises(coco.AnnotationError):
        coco.validate_coco_keypoints(data)
    data["annotations"][0]["area"] = float("nan")  # a NaN area changes OKS: refused in both
    with pytest.raises(coco.AnnotationError, match=r"annotation #0 \(id 1\): area"):
        coco.validate_coco_keypoints(data, evaluation=True)


def test_real_size_file_validates_fast():
    import time

    one = _ann()
    data = {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 80}
                       for i in range(1, 5001)],
            "annotations": [dict(one, id=i, image_id=1 + i % 5000, keypoints=list(one["keypoints"]))
                            for i in range(1, 20001)],
            "categories": [coco.PERSON_CATEGORY]}  # fmt: skip
    start = time.perf_counter()
    coco.validate_coco_keypoints(data)
    coco.validate_coco_keypoints(data, evaluation=True)
    assert time.perf_counter() - start < 1.0  # a vectorised pass (the slow one only on error)
