"""course_lib.heatmaps: Gaussian targets pinned with numbers (02_gaussian_heatmaps.ipynb)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from course_lib.heatmaps import encode, quantization_error, target_weights

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_encode import loop_encode, random_batch  # noqa: E402

SIZE = (24, 32)  # (W, H)


def one(x, y, mode="msra", sigma=2.0, v=2, size=SIZE):
    maps, weights = encode(np.array([[x, y]], float), np.array([v]), heatmap_size=size,
                           sigma=sigma, mode=mode)
    return maps[0], float(weights[0])


def test_msra_is_one_at_the_rounded_centre_and_exp_minus_half_over_sigma2_one_pixel_away():
    m, w = one(10.4, 7.6)
    assert w == 1.0
    assert m.shape == (32, 24) and m.dtype == np.float32
    assert m[8, 10] == 1.0  # rounded centre (x=10, y=8)
    assert np.unravel_index(m.argmax(), m.shape) == (8, 10)
    assert m[8, 11] == pytest.approx(math.exp(-1 / 8), abs=1e-7)  # exp(-1 / (2 sigma^2))
    assert m[9, 11] == pytest.approx(math.exp(-2 / 8), abs=1e-7)
    assert m[8, 16] == pytest.approx(math.exp(-36 / 8), abs=1e-7)  # 3 sigma: still inside
    assert m[8, 17] == 0.0 and m[15, 10] == 0.0  # truncated beyond 3 sigma
    assert (m > 0).sum() == 13 * 13


def test_msra_rounds_halves_up_and_sigma_changes_the_neighbour():
    m, _ = one(10.5, 7.5)
    assert m[8, 11] == 1.0
    m, _ = one(10.0, 8.0, sigma=1.0)
    assert m[8, 11] == pytest.approx(math.exp(-0.5), abs=1e-7)
    assert (m > 0).sum() == 7 * 7


def test_unbiased_peaks_at_the_sub_pixel_centre():
    x, y = 10.3, 7.8
    m, w = one(x, y, mode="unbiased")
    assert w == 1.0
    assert np.unravel_index(m.argmax(), m.shape) == (8, 10)
    assert m[8, 10] == pytest.approx(math.exp(-(0.3**2 + 0.2**2) / 8), abs=1e-6)
    assert m[8, 10] < 1.0
    # whole map, not truncated: a pixel 9 px away is still positive
    assert m[8, 19] == pytest.approx(math.exp(-((19 - x) ** 2 + 0.2**2) / 8), rel=1e-5)
    # the weighted centroid of the (untruncated) map recovers the sub-pixel centre
    mm, _ = one(12.3, 15.8, mode="unbiased", sigma=1.5)
    ys, xs = np.mgrid[:32, :24]
    assert (mm * xs).sum() / mm.sum() == pytest.approx(12.3, abs=1e-3)
    assert (mm * ys).sum() / mm.sum() == pytest.approx(15.8, abs=1e-3)


def test_udp_is_sub_pixel_inside_the_truncated_patch():
    m, w = one(10.3, 7.8, mode="udp")
    assert w == 1.0
    assert m[8, 10] == pytest.approx(math.exp(-(0.3**2 + 0.2**2) / 8), abs=1e-6)
    assert m[8, 16] > 0 and m[8, 17] == 0.0  # patch around the rounded centre (10, 8)
    assert (m > 0).sum() == 13 * 13
    m_int, _ = one(10.0, 8.0, mode="udp")
    m_msra, _ = one(10.0, 8.0, mode="msra")
    np.testing.assert_allclose(m_int, m_msra, atol=1e-7)  # same at integer centres


@pytest.mark.parametrize("mode", ["msra", "udp"])
def test_patch_weight_rules_at_and_beyond_the_border(mode):
    width, height = SIZE
    # rounded centre 6 px outside: the patch still touches the first column
    m, w = one(-6.0, 10.0, mode=mode)
    assert w == 1.0 and m[:, 0].max() > 0 and m[:, 1:].max() == 0
    assert m[10, 0] == pytest.approx(math.exp(-36 / 8), abs=1e-7) if mode == "msra" else True
    # 7 px outside: wholly outside -> weight 0 and an empty map
    m, w = one(-7.0, 10.0, mode=mode)
    assert w == 0.0 and m.max() == 0
    m, w = one(-6.6, 10.0, mode=mode)  # rounds to -7
    assert w == 0.0
    m, w = one(width - 1 + 6, 10.0, mode=mode)
    assert w == 1.0 and m[:, -1].max() > 0
    m, w = one(width - 1 + 7, 10.0, mode=mode)
    assert w == 0.0 and m.max() == 0
    m, w = one(10.0, height - 1 + 7, mode=mode)
    assert w == 0.0
    m, w = one(10.0, -6.4, mode=mode)  # rounds to -6: touches row 0
    assert w == 1.0 and m[0].max() > 0
    # on the border itself the peak is in the map
    m, w = one(0.0, 0.0, mode=mode)
    assert w == 1.0 and m[0, 0] == pytest.approx(1.0)


def test_unbiased_weight_rule_uses_three_sigma_around_the_exact_centre():
    width, height = SIZE
    assert one(-6.0, 5.0, mode="unbiased")[1] == 1.0
    m, w = one(-6.01, 5.0, mode="unbiased")
    assert w == 0.0 and m.max() == 0
    assert one(width - 1 + 6.0, 5.0, mode="unbiased")[1] == 1.0
    assert one(width - 1 + 6.01, 5.0, mode="unbiased")[1] == 0.0
    assert one(5.0, height - 1 + 6.01, mode="unbiased")[1] == 0.0


@pytest.mark.parametrize("mode", ["msra", "unbiased", "udp"])
def test_unlabelled_keypoints_get_weight_zero_and_empty_maps(mode):
    kp = np.array([[[5.0, 5.0], [6.0, 7.0], [np.nan, np.nan]]])
    maps, w = encode(kp, np.array([[0, 1, 0]]), heatmap_size=SIZE, mode=mode)
    assert maps.shape == (1, 3, 32, 24) and w.shape == (1, 3) and w.dtype == np.float32
    assert w.tolist() == [[0.0, 1.0, 0.0]]
    assert maps[0, 0].max() == 0 and maps[0, 2].max() == 0 and maps[0, 1].max() > 0.9
    # bool visibility works too; v = 1 (occluded) and v = 2 both count as labelled
    _, w2 = encode(kp[:, :2], np.array([[True, False]]), heatmap_size=SIZE, mode=mode)
    assert w2.tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize("mode", ["msra", "unbiased", "udp"])
def test_vectorised_equals_the_per_keypoint_loop_reference(mode):
    kp, vis = random_batch(np.random.default_rng(1), 6, 17, SIZE)
    fast = encode(kp, vis, heatmap_size=SIZE, sigma=2.0, mode=mode)
    slow = loop_encode(kp, vis, heatmap_size=SIZE, sigma=2.0, mode=mode)
    assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
    assert fast[1].sum() > 50  # most keypoints kept, some dropped
    w = target_weights(kp, vis, heatmap_size=SIZE, sigma=2.0, mode=mode)
    assert np.array_equal(w, fast[1])


@pytest.mark.parametrize("mode", ["msra", "unbiased", "udp"])
@pytest.mark.parametrize("size, sigma", [((13, 13), 2.0), ((5, 4), 2.0), ((40, 7), 1.5),
                                         ((12, 40), 3.3), ((1, 1), 0.7)])
def test_vectorised_equals_the_loop_on_maps_smaller_than_or_equal_to_the_patch(mode, size, sigma):
    # the patch window slides back inside the map at its borders, or covers a whole small map
    kp, vis = random_batch(np.random.default_rng(3), 8, 17, size)
    fast = encode(kp, vis, heatmap_size=size, sigma=sigma, mode=mode)
    slow = loop_encode(kp, vis, heatmap_size=size, sigma=sigma, mode=mode)
    assert fast[1].sum() > 20
    assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])


@pytest.mark.parametrize("mode", ["msra", "unbiased", "udp"])
def test_matches_the_mmpose_formula_exp_of_squared_distance(mode):
    # MMPose evaluates exp(-(dx^2 + dy^2) / (2 sigma^2)) directly; we use the separable form
    x, y = 9.7, 14.2
    m, _ = one(x, y, mode=mode, sigma=2.0)
    cx, cy = (x, y) if mode != "msra" else (10, 14)
    ys, xs = np.mgrid[:32, :24]
    ref = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0)
    if mode != "unbiased":
        ref = ref * ((np.abs(xs - 10) <= 6) & (np.abs(ys - 14) <= 6))
    np.testing.assert_allclose(m, ref, atol=2e-7)


def test_leading_axes_and_max_merging():
    kp = np.array([[[5.0, 5.0]], [[15.0, 20.0]]])  # two people, one keypoint type
    maps, w = encode(kp, np.ones((2, 1)), heatmap_size=SIZE)
    merged = maps.max(axis=0)  # MMPose's multi-person target
    assert merged[0, 5, 5] == 1.0 and merged[0, 20, 15] == 1.0
    deep, _ = encode(kp[None], np.ones((1, 2, 1)), heatmap_size=SIZE)
    assert deep.shape == (1, 2, 1, 32, 24) and np.array_equal(deep[0], maps)


def test_encode_argmax_round_trip_is_exact_at_integer_centres():
    # the encode/decode pair for msra: argmax (course_lib.decode's first step) inverts encode
    rng = np.random.default_rng(3)
    kp = rng.integers(0, [24, 32], size=(4, 17, 2)).astype(float)
    maps, _ = encode(kp, np.full((4, 17), 2), heatmap_size=SIZE)
    flat = maps.reshape(4, 17, -1).argmax(-1)
    back = np.stack([flat % 24, flat // 24], axis=-1)
    assert np.array_equal(back, kp)
    try:
        from course_lib.decode import decode
    except ImportError:
        return
    coords, scores = decode(maps, method="argmax")
    np.testing.assert_array_equal(np.asarray(coords), kp)
    np.testing.assert_allclose(np.asarray(scores), 1.0)


def test_quantization_error():
    assert quantization_error(10.0, 4) == pytest.approx(2.0)  # 2.5 -> rounds to 3 -> 12
    assert quantization_error(9.9, 4) == pytest.approx(-1.9)
    err = quantization_error(np.arange(0, 64, 0.25), 4)
    assert np.abs(err).max() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="stride"):
        quantization_error(1.0, 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"keypoints": np.zeros((17, 3))}, "keypoints: expected shape"),
        ({"keypoints": np.zeros(2)}, "keypoints: expected shape"),
        ({"visible": np.ones(16)}, "visible: expected shape"),
        ({"keypoints": np.zeros((0, 2)), "visible": np.ones(0)}, "empty"),
        ({"keypoints": np.array([["a", "b"]])}, "keypoints: expected a real"),
        ({"visible": np.array(["x"] * 17)}, "visible: expected a bool"),
        ({"sigma": 0}, "sigma"),
        ({"sigma": -1.0}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"heatmap_size": (24,)}, "heatmap_size"),
        ({"heatmap_size": (24.5, 32)}, "heatmap_size"),
        ({"heatmap_size": (0, 32)}, "heatmap_size"),
        ({"mode": "dark"}, "mode"),
        ({"keypoints": np.full((17, 2), np.inf)}, "NaN or inf"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, match):
    args = {"keypoints": np.zeros((17, 2)), "visible": np.ones(17), "heatmap_size": SIZE,
            "sigma": 2.0, "mode": "msra"}
    args.update(kwargs)
    kp, vis = args.pop("keypoints"), args.pop("visible")
    with pytest.raises(ValueError, match=match):
        encode(kp, vis, **args)
