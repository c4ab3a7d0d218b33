"""course_lib.transforms: geometry conventions pinned with numbers (03_topdown_data.ipynb)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from course_lib import transforms as T
from course_lib.coco import FLIP_PAIRS, KEYPOINT_NAMES, LOWER_BODY, UPPER_BODY

INPUT = (96, 128)  # (W, H)
HEATMAP = (24, 32)


def test_box_to_center_scale_pads_and_fixes_the_aspect_ratio():
    c, s = T.box_to_center_scale([10, 20, 30, 80], 0.75)  # tall box: widen to 0.75
    np.testing.assert_allclose(c, [25, 60])
    np.testing.assert_allclose(s, [60 * 1.25, 80 * 1.25])
    c, s = T.box_to_center_scale([0, 0, 90, 40], INPUT)  # wide box: heighten; (W, H) accepted
    np.testing.assert_allclose(c, [45, 20])
    np.testing.assert_allclose(s, [112.5, 150.0])
    assert c.dtype == np.float32 and s.dtype == np.float32
    cs = T.box_to_center_scale(np.array([[10, 20, 30, 80], [0, 0, 90, 40]]), 0.75, padding=1.0)
    np.testing.assert_allclose(cs[1], [[60, 80], [90, 120]])
    box = T.center_scale_to_box(*T.box_to_center_scale([10, 20, 45, 60], 0.75, padding=1.0))
    np.testing.assert_allclose(box, [10, 20, 45, 60])
    with pytest.raises(ValueError, match="bbox_xywh"):
        T.box_to_center_scale([1, 2, 3], 0.75)
    with pytest.raises(ValueError, match="aspect_ratio"):
        T.box_to_center_scale([1, 2, 3, 4], -1)


def _mmpose_get_warp_matrix(center, scale, rot, output_size, inv=False):
    # MMPose 1.x get_warp_matrix (through cv2.getAffineTransform on float32 points)
    def rotate(pt, a):
        return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) @ pt

    def third(a, b):
        d = a - b
        return b + np.r_[-d[1], d[0]]

    src_w = scale[0]
    dst_w, dst_h = output_size
    rad = np.deg2rad(rot)
    src_dir = rotate(np.array([0.0, src_w * -0.5]), rad)
    dst_dir = np.array([0.0, dst_w * -0.5])
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = center + src_dir
    src[2] = third(src[0], src[1])
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + dst_dir
    dst[2] = third(dst[0], dst[1])
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def _mmpose_get_udp_warp_matrix(center, scale, rot, output_size):
    size = np.asarray(center) * 2
    r = np.deg2rad(rot)
    sx, sy = (output_size[0] - 1) / scale[0], (output_size[1] - 1) / scale[1]
    return np.array([
        [math.cos(r) * sx, -math.sin(r) * sx,
         sx * (-0.5 * size[0] * math.cos(r) + 0.5 * size[1] * math.sin(r) + 0.5 * scale[0])],
        [math.sin(r) * sy, math.cos(r) * sy,
         sy * (-0.5 * size[0] * math.sin(r) - 0.5 * size[1] * math.cos(r) + 0.5 * scale[1])],
    ])


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
def test_matrices_equal_mmpose(rot):
    center, scale = np.array([120.5, 80.25]), np.array([90.0, 120.0])
    ours = T.get_affine_matrix(center, scale, rot, INPUT)
    np.testing.assert_allclose(ours, _mmpose_get_warp_matrix(center, scale, rot, INPUT),
                               atol=2e-4)
    inv = T.get_affine_matrix(center, scale, rot, INPUT, inverse=True)
    np.testing.assert_allclose(inv, _mmpose_get_warp_matrix(center, scale, rot, INPUT, inv=True),
                               atol=2e-3)
    udp = T.get_affine_matrix(center, scale, rot, INPUT, udp=True)
    np.testing.assert_allclose(udp, _mmpose_get_udp_warp_matrix(center, scale, rot, INPUT),
                               atol=1e-9)


def test_where_the_box_centre_lands():
    center, scale = [100.0, 50.0], [96.0, 128.0]  # scale equals the input: stride 1
    np.testing.assert_allclose(T.image_to_crop(center, center, scale, INPUT), [48.0, 64.0])
    np.testing.assert_allclose(T.image_to_crop(center, center, scale, INPUT, udp=True),
                               [47.5, 63.5])  # UDP: the middle pixel centre (W-1)/2
    # UDP maps the box edges onto the first and last pixel centres
    left = [100.0 - 48.0, 50.0 - 64.0]
    np.testing.assert_allclose(T.image_to_crop(left, center, scale, INPUT, udp=True), [0, 0],
                               atol=1e-12)
    # MSRA rotation is R(-rot): +90 degrees sends a point right of the centre up in the crop
    p = T.image_to_crop([110.0, 50.0], center, scale, INPUT, 90.0)
    np.testing.assert_allclose(p, [48.0, 54.0], atol=1e-9)
    q = T.image_to_crop([110.0, 50.0], center, scale, INPUT, 90.0, udp=True)
    np.testing.assert_allclose(q, [47.5, 63.5 + 10 * 127 / 128], atol=1e-9)


@pytest.mark.parametrize("udp", [False, True])
@pytest.mark.parametrize("rot", [0.0, 17.0, -140.0])
def test_image_to_crop_to_image_round_trip(udp, rot):
    rng = np.random.default_rng(0)
    pts = rng.uniform(-50, 400, size=(5, 17, 2))
    center, scale = np.array([150.3, 90.7], np.float32), np.array([75.0, 100.0], np.float32)
    crop = T.image_to_crop(pts, center, scale, INPUT, rot, udp=udp)
    back = T.crop_to_image(crop, center, scale, INPUT, rot, udp=udp)
    assert np.abs(back - pts).max() < 1e-4
    hm = T.crop_to_heatmap(crop, INPUT, HEATMAP, udp=udp)
    np.testing.assert_allclose(T.heatmap_to_crop(hm, INPUT, HEATMAP, udp=udp), crop, atol=1e-9)
    m = T.get_affine_matrix(center, scale, rot, INPUT, udp=udp)
    m_inv = T.get_affine_matrix(center, scale, rot, INPUT, udp=udp, inverse=True)
    np.testing.assert_allclose(T.compose_affine(m_inv, m), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_crop_to_heatmap_conventions():
    np.testing.assert_allclose(T.crop_to_heatmap([[8.0, 12.0]], INPUT, HEATMAP), [[2.0, 3.0]])
    np.testing.assert_allclose(T.crop_to_heatmap([[95.0, 127.0]], INPUT, HEATMAP, udp=True),
                               [[23.0, 31.0]])
    np.testing.assert_allclose(T.heatmap_to_crop([[1.0, 1.0]], INPUT, HEATMAP, udp=True),
                               [[95 / 23, 127 / 31]])


def test_warp_image_samples_where_the_matrix_says():
    img = np.zeros((200, 300, 3), np.uint8)
    img[120, 140] = 255  # one bright pixel at (x=140, y=120)
    center, scale = [150.0, 110.0], [96.0, 128.0]
    m = T.get_affine_matrix(center, scale, 25.0, INPUT, udp=True)
    crop = T.warp_image(img, m, INPUT)
    assert crop.shape == (128, 96, 3) and crop.dtype == np.uint8
    ys, xs = np.nonzero(crop[..., 0])
    w = crop[ys, xs, 0].astype(float)
    expected = T.image_to_crop([140.0, 120.0], center, scale, INPUT, 25.0, udp=True)
    np.testing.assert_allclose([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()], expected,
                               atol=0.05)


def test_flip_twice_is_the_identity_and_swaps_every_pair_once():
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 200, size=(3, 17, 2))
    vis = rng.integers(0, 3, size=(3, 17))
    f_kp, f_vis = T.flip_keypoints(kp, vis, 200)
    b_kp, b_vis = T.flip_keypoints(f_kp, f_vis, 200)
    np.testing.assert_allclose(b_kp, kp, atol=1e-12)
    np.testing.assert_array_equal(b_vis, vis)
    swapped = 0
    for a, b in FLIP_PAIRS:
        assert KEYPOINT_NAMES[a].replace("left", "right") == KEYPOINT_NAMES[b]
        np.testing.assert_allclose(f_kp[:, a, 0], 199 - kp[:, b, 0])
        np.testing.assert_allclose(f_kp[:, b, 1], kp[:, a, 1])
        np.testing.assert_array_equal(f_vis[:, a], vis[:, b])
        swapped += 1
    assert swapped == 8
    np.testing.assert_allclose(f_kp[:, 0, 0], 199 - kp[:, 0, 0])  # the nose stays the nose
    # the pixel convention: x -> (W - 1) - x agrees with flipping the image array
    img = np.zeros((5, 10), np.uint8)
    img[2, 3] = 1
    flipped = T.flip_image(img)
    (fx,), _ = T.flip_keypoints(np.array([[3.0, 2.0]]), np.array([2]), 10, flip_pairs=())
    assert flipped[2, int(fx[0])] == 1 and fx[0] == 6
    np.testing.assert_allclose(T.apply_affine([3.0, 2.0], T.flip_matrix(10)), [6.0, 2.0])


def test_flip_composed_into_the_crop_matrix_equals_cropping_the_flipped_image():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, size=(100, 140, 3), dtype=np.uint8)
    center, scale = np.array([70.0, 50.0]), np.array([72.0, 96.0])
    m = T.get_affine_matrix(center, scale, 10.0, INPUT)
    a = T.warp_image(T.flip_image(img), m, INPUT)
    b = T.warp_image(img, T.compose_affine(m, T.flip_matrix(140)), INPUT)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_random_augmentation_is_deterministic_given_the_generator():
    cfg = T.AugmentConfig()
    draws = [T.sample_scale_rotation_shift(np.random.default_rng(5), cfg) for _ in range(2)]
    assert draws[0][0] == draws[1][0] and draws[0][1] == draws[1][1]
    rng = np.random.default_rng(0)
    many = [T.sample_scale_rotation_shift(rng, cfg) for _ in range(2000)]
    scales = np.array([m[0] for m in many])
    rots = np.array([m[1] for m in many])
    assert scales.min() >= 0.7 - 1e-12 and scales.max() <= 1.3 + 1e-12
    assert np.abs(rots).max() <= 80.0 and 0.3 < (rots == 0).mean() < 0.5
    c, s = T.augment_center_scale([10.0, 20.0], [40.0, 80.0], 1.2, [0.1, -0.05])
    np.testing.assert_allclose(c, [14.0, 16.0])
    np.testing.assert_allclose(s, [48.0, 96.0])
    c0, s0 = T.unaugment_center_scale(c, s, 1.2, [0.1, -0.05])
    np.testing.assert_allclose(c0, [10, 20], atol=1e-5)
    np.testing.assert_allclose(s0, [40, 80], atol=1e-5)
    with pytest.raises(ValueError, match="rng"):
        T.sample_scale_rotation_shift(0)


def test_half_body_keeps_only_upper_or_lower_body_keypoints():
    rng = np.random.default_rng(0)
    kp = np.stack([np.linspace(40, 60, 17), np.linspace(10, 170, 17)], axis=1)
    vis = np.full(17, 2)
    seen = set()
    for _ in range(40):
        center, scale, kept = T.half_body(kp, vis, rng, aspect_ratio=0.75)
        upper = bool(kept[list(UPPER_BODY)].any())
        lower = bool(kept[list(LOWER_BODY)].any())
        assert upper != lower  # exactly one half survives
        part = list(UPPER_BODY if upper else LOWER_BODY)
        np.testing.assert_array_equal(kept[part], vis[part])
        pts = kp[part]
        np.testing.assert_allclose(center, (pts.min(0) + pts.max(0)) / 2, atol=1e-4)
        h = pts[:, 1].max() - pts[:, 1].min()
        np.testing.assert_allclose(scale, [h * 1.5 * 0.75, h * 1.5], rtol=1e-5)
        seen.add("upper" if upper else "lower")
    assert seen == {"upper", "lower"}
    vis_few = np.zeros(17)
    vis_few[:8] = 2
    assert T.half_body(kp, vis_few, rng, aspect_ratio=0.75) is None  # too few keypoints
    vis_up = np.zeros(17)
    vis_up[:11] = 2  # no lower body: always the upper one
    for _ in range(5):
        _, _, kept = T.half_body(kp, vis_up, rng, aspect_ratio=0.75)
        assert kept[:11].all() and not kept[11:].any()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="output_size"):
        T.get_affine_matrix([0, 0], [10, 10], 0, (96,))
    with pytest.raises(ValueError, match="scale"):
        T.get_affine_matrix([0, 0], [0, 10], 0, INPUT)
    with pytest.raises(ValueError, match="points"):
        T.apply_affine(np.zeros((3, 3)), np.eye(2, 3))
    with pytest.raises(ValueError, match="visible"):
        T.flip_keypoints(np.zeros((17, 2)), np.zeros(16), 100)
