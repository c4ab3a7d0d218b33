"""course_lib.data: the top-down dataset and loader on a tiny COCO fixture drawn with OpenCV."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from course_lib import transforms as T
from course_lib.coco import FLIP_PAIRS, PERSON_CATEGORY
from course_lib.data import TopDownDataset, denormalize_image, make_loader

INPUT = (48, 64)  # (W, H), small to keep the tests fast
HEATMAP = (12, 16)


def _person(rng, x0, y0, h):
    """17 keypoints of a rough standing figure of height h, top-left (x0, y0)."""
    u = np.array([
        [0.5, 0.08], [0.55, 0.05], [0.45, 0.05], [0.6, 0.07], [0.4, 0.07],
        [0.7, 0.22], [0.3, 0.22], [0.8, 0.38], [0.2, 0.38], [0.85, 0.52], [0.15, 0.52],
        [0.62, 0.55], [0.38, 0.55], [0.64, 0.75], [0.36, 0.75], [0.65, 0.95], [0.35, 0.95],
    ])
    return np.stack([x0 + u[:, 0] * h * 0.5, y0 + u[:, 1] * h], axis=1) + rng.normal(0, 0.3, (17, 2))


@pytest.fixture(scope="module")
def coco_fixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(3):
        img = np.full((120, 160, 3), 40, np.uint8)
        for j in range(2):
            kp = _person(rng, 15 + 70 * j, 8 + 4 * i, 100.0)
            vis = np.full(17, 2)
            if j == 1:
                vis[[3, 4]] = 0  # two unlabelled keypoints
            for k, (x, y) in enumerate(kp):
                color = (0, 0, 255) if k in (5, 7, 9, 11, 13, 15) else (255, 0, 0)  # BGR: left red
                cv2.circle(img, (int(round(x)), int(round(y))), 2, color, -1)
            x1, y1 = kp.min(0) - 4
            x2, y2 = kp.max(0) + 4
            kps = np.concatenate([kp, vis[:, None]], axis=1)
            kps[vis == 0] = 0
            anns.append({
                "id": 100 * i + j + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                "area": float((x2 - x1) * (y2 - y1) * 0.5),
                "keypoints": kps.ravel().round(2).tolist(), "num_keypoints": int((vis > 0).sum()),
                "segmentation": [],
            })
        anns.append({"id": 100 * i + 9, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                     "bbox": [1, 1, 10, 10], "area": 50.0, "keypoints": [0] * 51,
                     "num_keypoints": 0, "segmentation": []})  # no keypoints: skipped
        name = f"{i + 1:06d}.jpg"
        cv2.imwrite(str(root / "images" / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": i + 1, "file_name": name, "width": 160, "height": 120})
    ann_file = root / "person_keypoints_val.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns,
                                    "categories": [PERSON_CATEGORY]}))
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 5, 60, 105], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [80, 5, 60, 105], "score": 0.2},
            {"image_id": 2, "category_id": 2, "bbox": [80, 5, 60, 105], "score": 0.9}]
    det_file = root / "dets.json"
    det_file.write_text(json.dumps(dets))
    return ann_file, root / "images", det_file


def make(coco_fixture, **kwargs):
    ann_file, image_dir, _ = coco_fixture
    args = {"input_size": INPUT, "heatmap_size": HEATMAP, "sigma": 1.0}
    args.update(kwargs)
    return TopDownDataset(ann_file, image_dir, **args)


def test_validation_sample_shapes_types_and_meta(coco_fixture):
    ds = make(coco_fixture)
    assert len(ds) == 6  # the annotation without keypoints is skipped
    s = ds[1]
    assert s["image"].shape == (3, 64, 48) and s["image"].dtype == torch.float32
    assert s["heatmaps"].shape == (17, 16, 12) and s["heatmaps"].dtype == torch.float32
    assert s["weights"].shape == (17,) and s["weights"].dtype == torch.float32
    meta = s["meta"]
    assert meta["image_id"] == 1 and meta["ann_id"] == 2 and meta["box_score"] == 1.0
    assert meta["rotation"] == 0.0 and meta["flipped"] is False
    assert meta["keypoints"].shape == (17, 3) and meta["keypoints"].dtype == np.float32
    assert meta["center"].dtype == np.float32 and meta["scale"].shape == (2,)
    np.testing.assert_array_equal(s["weights"][[3, 4]].numpy(), [0, 0])
    assert s["weights"].sum() == 15
    # ImageNet normalisation: the dark background (40) maps to about (40/255 - mean) / std
    assert abs(float(s["image"][0].median()) - (40 / 255 - 0.485) / 0.229) < 0.05


@pytest.mark.parametrize("encoding", ["msra", "udp"])
def test_heatmap_peaks_map_back_to_the_image_keypoints(coco_fixture, encoding):
    ds = make(coco_fixture, encoding=encoding)
    udp = encoding == "udp"
    s = ds[0]
    maps = s["heatmaps"].numpy()
    flat = maps.reshape(17, -1).argmax(-1)
    peaks = np.stack([flat % HEATMAP[0], flat // HEATMAP[0]], axis=1).astype(float)
    m = s["meta"]
    img_pts = T.crop_to_image(T.heatmap_to_crop(peaks, INPUT, HEATMAP, udp=udp), m["center"],
                              m["scale"], INPUT, m["rotation"], udp=udp)
    stride_img = m["scale"][0] / HEATMAP[0]  # one heatmap pixel in image pixels
    err = np.linalg.norm(img_pts - m["keypoints"][:, :2], axis=1)
    assert err.max() <= 0.75 * stride_img


def test_crop_shows_the_drawn_keypoints_where_the_targets_are(coco_fixture):
    ds = make(coco_fixture)
    s = ds[0]
    crop = denormalize_image(s["image"])
    m = s["meta"]
    kp_crop = T.image_to_crop(m["keypoints"][:, :2], m["center"], m["scale"], INPUT)
    for k in (5, 6):  # left shoulder drawn red (RGB after decoding), right shoulder blue
        x, y = np.round(kp_crop[k]).astype(int)
        patch = crop[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).astype(int).max(0)
        if k == 5:
            assert patch[0] > 120 and patch[2] < 100
        else:
            assert patch[2] > 120 and patch[0] < 100


def test_training_flip_keeps_left_and_right_labels_consistent(coco_fixture):
    ds = make(coco_fixture, train=True,
              augment=T.AugmentConfig(flip_prob=1.0, rotation_prob=0.0, scale_factor=0.0,
                                      shift_prob=0.0, half_body_prob=0.0))
    plain = make(coco_fixture)
    s, p = ds[0], plain[0]
    assert s["meta"]["flipped"] is True
    # the crop is the mirror image of the unflipped crop, up to the half-pixel MSRA offset
    a = denormalize_image(s["image"]).astype(int)
    b = denormalize_image(p["image"]).astype(int)[:, ::-1]
    assert np.abs(a[:, 1:] - b[:, :-1]).mean() < np.abs(a - b[:, ::-1]).mean()
    # in the mirror image the person's left shoulder is the drawn (blue) right shoulder; without
    # the pair swap the left-shoulder target would sit on the red dot
    crop = denormalize_image(s["image"])
    flat = s["heatmaps"][5].numpy().argmax()
    x = (flat % HEATMAP[0]) * INPUT[0] / HEATMAP[0]
    y = (flat // HEATMAP[0]) * INPUT[1] / HEATMAP[1]
    patch = crop[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4].reshape(-1, 3).astype(int)
    assert (patch[:, 2] - patch[:, 0]).max() > 80  # blue
    for a_, b_ in FLIP_PAIRS:
        assert float(s["weights"][a_]) == float(p["weights"][b_])


def test_detection_boxes_option(coco_fixture):
    _, _, det_file = coco_fixture
    ds = make(coco_fixture, boxes_file=det_file, det_score_threshold=0.1)
    assert len(ds) == 2  # the non-person detection is dropped
    s = ds[1]
    assert s["meta"]["ann_id"] == -1 and s["meta"]["box_score"] == pytest.approx(0.2)
    assert float(s["weights"].sum()) == 0.0 and float(s["heatmaps"].abs().sum()) == 0.0
    assert len(make(coco_fixture, boxes_file=det_file, det_score_threshold=0.5)) == 1


def test_loader_batches_and_is_reproducible(coco_fixture):
    def batches(seed, workers):
        ds = make(coco_fixture, train=True)
        loader = make_loader(ds, batch_size=4, shuffle=True, num_workers=workers, seed=seed)
        return [(b["meta"]["ann_id"].tolist(), b["image"].clone()) for b in loader]

    a, b, c = batches(0, 0), batches(0, 0), batches(1, 0)
    assert len(a) == 2 and a[0][1].shape == (4, 3, 64, 48)
    assert all(x[0] == y[0] and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert any(x[0] != y[0] or not torch.equal(x[1], y[1]) for x, y in zip(a, c))
    cv2.setNumThreads(2)
    cv2.warpAffine(np.zeros((300, 300, 3), np.uint8), np.eye(2, 3), (300, 300))  # pool in use
    w1, w2 = batches(3, 2), batches(3, 2)
    assert all(x[0] == y[0] and torch.equal(x[1], y[1]) for x, y in zip(w1, w2))
    # forked workers must not inherit OpenCV's thread pool (a worker using it can hang)
    assert cv2.getNumThreads() == 1


def test_errors(coco_fixture, tmp_path):
    with pytest.raises(FileNotFoundError, match="ann_file"):
        TopDownDataset(tmp_path / "missing.json", tmp_path, input_size=INPUT, heatmap_size=HEATMAP)
    with pytest.raises(ValueError, match="encoding"):
        make(coco_fixture, encoding="dark")
    with pytest.raises(ValueError, match="input_size"):
        make(coco_fixture, input_size=(48,))
    with pytest.raises(IndexError):
        make(coco_fixture)[99]


def _write(tmp_path, coco_fixture, mutate, name="bad.json"):
    ann_file = coco_fixture[0]
    data = json.loads(ann_file.read_text())
    mutate(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["annotations"][0].pop("bbox"), r"annotation #0 \(id 1\): missing key\(s\) bbox"),
    (lambda d: d["annotations"][1].update(image_id="2"), r"annotation #1 \(id 2\): image_id must be a number"),
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(5, None), r"annotation #0 \(id 1\): keypoints\[5\]"),
    (lambda d: d["annotations"][0].update(area=float("nan")), r"annotation #0 \(id 1\): area"),
    (lambda d: d["images"][0].pop("width"), r"image #0 \(id 1\): missing key\(s\) width"),
    (lambda d: d["images"][0].update(height=0), r"image #0 \(id 1\): height must be positive"),
    (lambda d: d.pop("images"), r"missing top-level key\(s\) images"),
])  # fmt: skip
def test_malformed_annotation_file_is_named_with_the_annotation_and_field(
        coco_fixture, tmp_path, mutate, message):
    from course_lib.coco import AnnotationError

    path = _write(tmp_path, coco_fixture, mutate)
    with pytest.raises(AnnotationError, match=message) as info:
        TopDownDataset(path, coco_fixture[1], input_size=INPUT, heatmap_size=HEATMAP)
    assert str(info.value).startswith(f"{path}: ")


def test_unreadable_annotation_and_boxes_files_are_named(coco_fixture, tmp_path):
    from course_lib.coco import AnnotationError

    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(AnnotationError, match="not valid JSON") as info:
        TopDownDataset(bad, coco_fixture[1], input_size=INPUT, heatmap_size=HEATMAP)
    assert str(bad) in str(info.value)
    with pytest.raises(ValueError, match="not valid JSON") as info:
        make(coco_fixture, boxes_file=bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("dets, message", [
    ({"image_id": 1}, "expected a JSON list"),
    ([{"image_id": 1, "category_id": 1, "score": 0.9}], r"\[0\]: missing 'bbox'"),
    ([{"category_id": 1, "bbox": [1, 2, 3, 4]}], r"\[0\]: missing 'image_id'"),
    ([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}, 5], r"\[1\]: expected an object"),
    ([{"image_id": 1, "category_id": 1, "bbox": [1, 2, float("nan"), 4]}], r"\[0\]\['bbox'\]: expected 4 finite numbers"),
    ([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}], r"\[0\]\['bbox'\]: expected 4 finite numbers"),
    ([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": "high"}], r"\[0\]\['score'\]"),
    ([{"image_id": "1", "category_id": 1, "bbox": [1, 2, 3, 4]}], r"\[0\]\['image_id'\]"),
])  # fmt: skip
def test_malformed_boxes_file_names_the_entry(coco_fixture, tmp_path, dets, message):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(dets))
    with pytest.raises(ValueError, match=message) as info:
        make(coco_fixture, boxes_file=path)
    assert str(path) in str(info.value)


def test_bad_flip_pairs_and_sigma_are_refused_at_construction(coco_fixture):
    with pytest.raises(ValueError, match="flip_pairs"):
        make(coco_fixture, flip_pairs=((1, 2), (2, 3)))
    with pytest.raises(ValueError, match="flip_pairs"):
        make(coco_fixture, flip_pairs=((5, 6), (7, 17)))
    with pytest.raises(ValueError, match="sigma"):
        make(coco_fixture, sigma=1e-300)
    with pytest.raises(ValueError, match="sigma"):
        make(coco_fixture, sigma=1e6)
