"""Tests of course_lib.decode (notebook 06): accuracy figures, backends, DARK rules, flip test."""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

import course_lib
from course_lib import dark
from course_lib import decode as D
from course_lib.coco import FLIP_PAIRS, flip_index


def gaussian_maps(centres: np.ndarray, size=(48, 64), sigma=2.0) -> np.ndarray:
    """Unbiased (untruncated) Gaussians peaking at 1 at ``centres [..., 2]`` (x, y) -> [..., H, W]."""
    w, h = size
    cx, cy = centres[..., 0, None, None], centres[..., 1, None, None]
    xs, ys = np.arange(w), np.arange(h)[:, None]
    return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def random_centres(rng, n, size=(48, 64), margin=8):
    w, h = size
    return np.stack([rng.uniform(margin, w - 1 - margin, n), rng.uniform(margin, h - 1 - margin, n)], -1)


def mean_error(coords, centres):
    return float(np.hypot(*(coords.reshape(-1, 2) - centres.reshape(-1, 2)).T).mean())


@pytest.fixture(scope="module")
def clean():
    rng = np.random.default_rng(0)
    centres = random_centres(rng, 2000)
    return gaussian_maps(centres)[:, None], centres


# --- accuracy figures (clean unbiased sigma=2 targets; additive N(0, 0.05) noise) -------------


def test_accuracy_clean(clean):
    maps, centres = clean
    err = {m: mean_error(D.decode(maps, method=m)[0], centres) for m in ("argmax", "quarter", "dark")}
    # uniform sub-pixel offsets: E|d| over a unit square = 0.3826, half of it with the quarter
    assert 0.36 < err["argmax"] < 0.40, err
    assert 0.175 < err["quarter"] < 0.205, err
    assert err["dark"] < 1e-3, err


def test_accuracy_noise(clean):
    maps, centres = clean
    rng = np.random.default_rng(1)
    noisy = maps + rng.normal(0, 0.05, maps.shape).astype(np.float32)
    err = {m: mean_error(D.decode(noisy, method=m)[0], centres) for m in D.METHODS}
    assert 0.04 < err["dark"] < 0.06, err
    assert err["dark"] < err["soft_argmax"] < err["argmax"], err
    assert err["dark"] < err["quarter"] < err["argmax"], err


def test_soft_argmax_conventions(clean):
    maps, centres = clean
    coords, scores = D.decode(maps[:200], method="soft_argmax")
    assert mean_error(coords, centres[:200]) < 0.08
    assert np.all((scores > 0.9) & (scores <= 1.0 + 1e-6))  # a sharp peak: nearly all the mass
    flat = np.zeros((1, 1, 9, 7), np.float32)
    c, s = D.decode(flat, method="soft_argmax")
    np.testing.assert_allclose(c[0, 0], [3.0, 4.0], atol=1e-6)  # a flat map: its centre
    np.testing.assert_allclose(s[0, 0], 25 / 63, atol=1e-6)  # mass of the 5x5 square


# --- backends ---------------------------------------------------------------------------------


def mixed_maps(seed=0, n=6, k=17, size=(48, 64)):
    """Noisy peaks anywhere (also on borders), a flat map, a negative map, a tie."""
    rng = np.random.default_rng(seed)
    w, h = size
    centres = np.stack([rng.uniform(-1, w, (n, k)), rng.uniform(-1, h, (n, k))], -1)
    maps = gaussian_maps(centres, size) * rng.uniform(0.3, 1.0, (n, k, 1, 1)).astype(np.float32)
    maps += rng.normal(0, 0.03, maps.shape).astype(np.float32)
    maps[0, 0] = 0.0
    maps[0, 1] = -np.abs(maps[0, 1]) - 0.1
    maps[0, 2] = 0.0
    maps[0, 2, 10, 20] = maps[0, 2, 30, 5] = 0.8
    return maps


@pytest.mark.parametrize("method", D.METHODS)
def test_numpy_equals_torch(method):
    torch = pytest.importorskip("torch")
    maps = mixed_maps()
    c_np, s_np = D.decode(maps, method=method)
    c_t, s_t = D.decode(torch.from_numpy(maps), method=method, backend="torch")
    assert isinstance(c_t, torch.Tensor) and c_t.dtype == torch.float32
    assert c_np.dtype == np.float32 and c_np.shape == (6, 17, 2) and s_np.shape == (6, 17)
    np.testing.assert_allclose(c_t.numpy(), c_np, atol=1e-5)
    np.testing.assert_allclose(s_t.numpy(), s_np, atol=1e-6)
    # a numpy input to the torch backend gives tensors too; a tensor to numpy gives arrays
    c2, _ = D.decode(maps, method=method, backend="torch")
    assert isinstance(c2, torch.Tensor)
    c3, _ = D.decode(torch.from_numpy(maps), method=method)
    np.testing.assert_array_equal(c3, c_np)


def test_cpp_backend_falls_back_with_one_warning(monkeypatch):
    fake = types.ModuleType("course_lib.native")
    fake.unavailable_reason = lambda: "no C++ compiler (simulated)"
    monkeypatch.setitem(sys.modules, "course_lib.native", fake)
    monkeypatch.setattr(course_lib, "native", fake, raising=False)
    D._warn_native_missing.cache_clear()
    maps = mixed_maps(n=2)
    with pytest.warns(RuntimeWarning, match="falling back to the numpy backend"):
        c, s = D.decode(maps, backend="cpp")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D.decode(maps, backend="cpp")  # the second call stays silent
    np.testing.assert_array_equal(c, D.decode(maps)[0])
    D._warn_native_missing.cache_clear()


@pytest.mark.parametrize("method", ["argmax", "quarter", "dark"])
def test_cpp_backend_matches_numpy_when_built(method):
    try:
        from course_lib import native
        ok = native.available()
    except Exception:
        ok = False
    if not ok:
        pytest.skip("the C++ decoder is not built here")
    maps = mixed_maps(seed=3)
    c_cpp, s_cpp = D.decode(maps, method=method, backend="cpp")
    c_np, s_np = D.decode(maps, method=method)
    np.testing.assert_allclose(c_cpp, c_np, atol=1e-4)
    np.testing.assert_allclose(s_cpp, s_np, atol=1e-6)


def test_float64_and_float16_are_accepted():
    maps = mixed_maps(n=2)
    c32, _ = D.decode(maps)
    c64, _ = D.decode(maps.astype(np.float64))
    np.testing.assert_array_equal(c32, c64)
    c16, _ = D.decode(maps.astype(np.float16), method="argmax")
    assert c16.shape == c32.shape


# --- the rules shared with the C++ decoder ------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("method", ["argmax", "quarter", "dark"])
def test_argmax_marker_and_first_maximum(method, backend):
    pytest.importorskip("torch")
    maps = mixed_maps(n=1)
    c, s = D.decode(maps, method=method, backend=backend)
    c, s = np.asarray(c), np.asarray(s)
    np.testing.assert_array_equal(c[0, 0], [-1, -1])  # all zeros: max 0 is not positive
    assert s[0, 0] == 0.0
    np.testing.assert_array_equal(c[0, 1], [-1, -1])  # negative map: marker, its max as score
    assert s[0, 1] == pytest.approx(float(maps[0, 1].max()))
    if method == "argmax":
        np.testing.assert_array_equal(c[0, 2], [20, 10])  # tie: first in row-major order
        assert s[0, 2] == pytest.approx(0.8)


def quarter_border_maps():
    """Peaks on, next to and one pixel inside the borders of an 8 x 9 map (H = 8, W = 9), each
    with higher right/left and lower/upper neighbours, and the quarter-offset result HRNet's
    ``get_final_preds`` gives: both axes shift only when ``1 < x < W-1 and 1 < y < H-1``."""
    cases = [  # (x, y), (dx, dy) toward the higher neighbours, expected (x, y)
        ((4, 4), (1, -1), (4.25, 3.75)),  # interior
        ((0, 4), (1, 1), (0, 4)),  # x = 0: neither axis (y too, although y is interior)
        ((1, 4), (1, 1), (1, 4)),  # x = 1: both neighbours exist, HRNet still skips (1 < px)
        ((2, 4), (-1, 1), (1.75, 4.25)),  # x = 2: the first refined column
        ((7, 4), (1, 1), (7.25, 4.25)),  # x = W-2: refined (px < W-1)
        ((8, 4), (-1, 1), (8, 4)),  # x = W-1
        ((4, 1), (1, 1), (4, 1)),  # y = 1: neither axis
        ((4, 6), (-1, -1), (3.75, 5.75)),  # y = H-2: refined
        ((1, 7), (1, -1), (1, 7)),  # corner region
        ((3, 3), (0, 0), (3, 3)),  # equal neighbours: no shift
    ]
    maps = np.zeros((1, len(cases), 8, 9), np.float32)
    for j, ((x, y), (dx, dy), _) in enumerate(cases):
        maps[0, j, y, x] = 1.0
        for nx in (x - 1, x + 1):
            if 0 <= nx < 9:
                maps[0, j, y, nx] = 0.6 if (nx - x) == dx else 0.3
        for ny in (y - 1, y + 1):
            if 0 <= ny < 8:
                maps[0, j, ny, x] = 0.6 if (ny - y) == dy else 0.3
    return maps, np.array([c[2] for c in cases], np.float32)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_quarter_rules(backend):
    maps, expected = quarter_border_maps()
    if backend == "torch":
        torch = pytest.importorskip("torch")
        maps = torch.from_numpy(maps)
    c, _ = D.decode(maps, method="quarter", backend=backend)
    np.testing.assert_array_equal(np.asarray(c)[0], expected)


def test_quarter_rule_is_hrnets():
    """Line by line the reference (HRNet's lib/core/inference.py, get_final_preds, post-process)."""
    rng = np.random.default_rng(12)
    maps = rng.random((3, 17, 7, 6)).astype(np.float32)
    maps[:, :, 1:3, 1:3] += 2.0  # peaks near the top-left border
    h, w = maps.shape[2:]
    c, _ = D.decode(maps, method="quarter")
    for n in range(3):
        for k in range(17):
            hm = maps[n, k]
            py, px = np.unravel_index(int(np.argmax(hm)), hm.shape)
            ref = np.array([px, py], np.float64)
            if 1 < px < w - 1 and 1 < py < h - 1:
                ref += np.sign([hm[py][px + 1] - hm[py][px - 1],
                                hm[py + 1][px] - hm[py - 1][px]]) * 0.25
            np.testing.assert_array_equal(c[n, k], ref)


def test_dark_interior_rule():
    rng = np.random.default_rng(2)
    w, h = 20, 16
    for x0, refined in [(1.2, False), (2.2, True), (w - 3 + 0.2, True), (w - 2 + 0.2, False)]:
        maps = gaussian_maps(np.array([[[x0, 8.3]]]), (w, h))
        maps += rng.normal(0, 1e-4, maps.shape).astype(np.float32)
        c, _ = D.decode(maps, method="dark")
        a, _ = D.decode(maps, method="argmax")
        assert (not np.array_equal(c, a)) == refined, (x0, c, a)
        ref = dark.dark_loop(maps)
        np.testing.assert_allclose(c, ref, atol=1e-4)


def test_dark_invariant_to_positive_scaling():
    maps = mixed_maps(seed=4)
    c, s = D.decode(maps, method="dark")
    for factor in (0.02, 0.5, 9.0):
        c2, s2 = D.decode(maps * np.float32(factor), method="dark")
        np.testing.assert_allclose(c2, c, atol=2e-5)
        np.testing.assert_allclose(s2, s * factor, rtol=1e-6)


def test_window_blur_equals_full_map_blur():
    maps = mixed_maps(seed=5, n=8)
    c_window, _ = D.decode(maps, method="dark")
    c_full = dark.dark_loop(maps)  # cv2.GaussianBlur of the whole zero-padded map, MMPose style
    np.testing.assert_allclose(c_window, c_full, atol=1e-4)
    for ks in (1, 3, 9, 13):
        np.testing.assert_allclose(D.decode(maps, blur_kernel=ks)[0],
                                   dark.dark_loop(maps, blur_kernel=ks), atol=1e-4)


def test_gaussian_kernel_is_opencvs():
    cv2 = pytest.importorskip("cv2")
    for ks in (1, 3, 5, 7, 9, 11, 13, 17):
        np.testing.assert_allclose(dark.gaussian_kernel_1d(ks), cv2.getGaussianKernel(ks, 0).ravel(),
                                   atol=1e-7)


def test_blur_heatmaps_is_mmpose_gaussian_blur():
    maps = mixed_maps(seed=6, n=1, k=3)[:, 1:]  # skip the all-zero map (0/0 in MMPose too)
    out = dark.blur_heatmaps(maps, 11)
    g = dark.gaussian_kernel_1d(11)
    for j in range(maps.shape[1]):
        ref = np.zeros(maps.shape[2:])
        hm = np.pad(maps[0, j].astype(np.float64), 5)
        for dy in range(11):
            for dx in range(11):
                ref += g[dy] * g[dx] * hm[dy : dy + maps.shape[2], dx : dx + maps.shape[3]]
        ref *= maps[0, j].max() / ref.max()
        np.testing.assert_allclose(out[0, j], ref, atol=1e-6)


def test_ill_conditioned_steps_stay_within_one_pixel():
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 1, (4, 17, 32, 24)).astype(np.float32)
    a, _ = D.decode(noise, method="argmax")
    c, _ = D.decode(noise, method="dark")
    assert np.abs(c - a).max() <= 1.0 + 1e-6
    assert np.abs(c - a).max() > 0.0  # some noise maps are refined
    unclamped = dark.dark_loop(noise, safe=False)  # MMPose's rule: any invertible Hessian
    assert np.abs(unclamped - a).max() > 5.0  # why the course clamps


def test_taylor_step_is_exact_on_quadratics():
    ys, xs = np.mgrid[-2:3, -2:3].astype(np.float64)
    cov = np.array([[5.0, 1.2], [1.2, 3.0]])
    inv = np.linalg.inv(cov)
    d = np.stack([xs - 0.37, ys + 0.21], -1)
    patch = -0.5 * np.einsum("...i,ij,...j->...", d, inv, d)
    np.testing.assert_allclose(D.taylor_step(patch), [0.37, -0.21], atol=1e-12)
    np.testing.assert_array_equal(D.taylor_step(-patch), [0.0, 0.0])  # a minimum: no step
    d = np.stack([xs - 3.0, ys + 2.5], -1)
    far = -0.5 * np.einsum("...i,ij,...j->...", d, inv, d)
    np.testing.assert_array_equal(D.taylor_step(far), [1.0, -1.0])  # each component clipped


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_non_finite_input_is_refused(bad, backend):
    pytest.importorskip("torch")
    maps = mixed_maps(n=1)
    maps[0, 3, 5, 5] = bad
    with pytest.raises(ValueError, match="heatmaps: contains 1 non-finite"):
        D.decode(maps, backend=backend)
    with pytest.raises(ValueError, match="heatmaps"):
        D.flip_back(maps)


@pytest.mark.parametrize(
    "maps, match",
    [
        (np.zeros((3, 4), np.float32), r"heatmaps: expected a 4-D array \[N, K, H, W\], got shape \(3, 4\)"),
        (np.zeros((1, 2, 3, 4, 5), np.float32), "heatmaps: expected a 4-D array"),
        (np.zeros((1, 2, 0, 4), np.float32), "heatmaps: expected maps of at least 1x1"),
        (np.zeros((1, 2, 3, 4), np.int64), "heatmaps: expected a float32 or float64 array, got dtype int64"),
        (np.zeros((1, 2, 3, 4), bool), "heatmaps: expected a float32 or float64"),
        ([[[[0.0]]]], "heatmaps: expected a numpy array or a torch tensor, got list"),
    ],
)
def test_bad_shapes_and_dtypes(maps, match):
    with pytest.raises(ValueError, match=match):
        D.decode(maps)


def test_bad_arguments():
    maps = mixed_maps(n=1)
    with pytest.raises(ValueError, match="method: expected one of argmax, quarter, dark"):
        D.decode(maps, method="max")
    with pytest.raises(ValueError, match="backend: expected one of numpy, torch, cpp"):
        D.decode(maps, backend="jax")
    with pytest.raises(ValueError, match="blur_kernel: expected an odd positive int"):
        D.decode(maps, blur_kernel=4)
    with pytest.raises(ValueError, match="temperature"):
        D.decode(maps, method="soft_argmax", temperature=0)
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="heatmaps: expected a floating-point tensor"):
        D.decode(torch.zeros((1, 1, 4, 4), dtype=torch.int32), backend="torch")


def test_empty_batch():
    c, s = D.decode(np.zeros((0, 17, 8, 6), np.float32))
    assert c.shape == (0, 17, 2) and s.shape == (0, 17)


# --- several peaks per map -------------------------------------------------------------------


def test_decode_multi():
    centres = np.array([[[10.3, 12.6], [30.7, 40.2], [20.0, 50.0]]])
    amps = np.array([0.9, 0.7, 0.05])
    maps = (gaussian_maps(centres) * amps[None, :, None, None]).max(axis=1)[:, None]  # [1,1,H,W]
    maps[0, 0, 55:57, 5:8] = 0.5  # a 2x3 plateau: one point, its first pixel (x=5, y=55)
    coords, scores, counts = D.decode_multi(maps, threshold=0.1, max_peaks=5)
    assert coords.shape == (1, 1, 5, 2) and scores.shape == (1, 1, 5) and counts[0, 0] == 3
    np.testing.assert_allclose(scores[0, 0, :3], [0.9, 0.7, 0.5], atol=0.04)  # pixel values
    np.testing.assert_allclose(coords[0, 0, 0], centres[0, 0], atol=2e-3)  # refined by DARK
    np.testing.assert_allclose(coords[0, 0, 1], centres[0, 1], atol=2e-3)
    assert 5 < coords[0, 0, 2, 0] <= 6 and 55 < coords[0, 0, 2, 1] <= 56  # toward its middle
    np.testing.assert_array_equal(coords[0, 0, 3:], -1)
    np.testing.assert_array_equal(scores[0, 0, 3:], 0)
    c_arg, _, _ = D.decode_multi(maps, threshold=0.1, max_peaks=5, method="argmax")
    np.testing.assert_array_equal(c_arg[0, 0, 2], [5, 55])
    _, _, n2 = D.decode_multi(maps, threshold=0.1, max_peaks=2)
    assert n2[0, 0] == 2
    _, _, n0 = D.decode_multi(maps, threshold=0.95, max_peaks=2)
    assert n0[0, 0] == 0
    # one peak per map: the same point as decode()
    single = mixed_maps(seed=8, n=2)[:, 3:]
    c1, s1, _ = D.decode_multi(single, threshold=1e-6, max_peaks=1)
    c0, s0 = D.decode(single)
    ok = s0 > 1e-6
    np.testing.assert_allclose(c1[..., 0, :][ok], c0[ok], atol=1e-5)
    with pytest.raises(ValueError, match="threshold"):
        D.decode_multi(maps, threshold=0, max_peaks=2)
    with pytest.raises(ValueError, match="max_peaks"):
        D.decode_multi(maps, threshold=0.1, max_peaks=0)


# --- flip test -------------------------------------------------------------------------------


def test_flip_back_conventions():
    rng = np.random.default_rng(9)
    maps = rng.random((2, 17, 5, 6)).astype(np.float32)
    perm = flip_index(17, FLIP_PAIRS)
    flipped = maps[:, perm, :, ::-1]
    np.testing.assert_array_equal(D.flip_back(flipped, shift=False), maps)
    shifted = D.flip_back(flipped, shift=True)
    np.testing.assert_array_equal(shifted[..., 1:], maps[..., :-1])  # one pixel to the right
    np.testing.assert_array_equal(shifted[..., 0], maps[..., 0])  # column 0 kept (HRNet)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(D.flip_back(torch.from_numpy(flipped)).numpy(), shifted)
    np.testing.assert_array_equal(D.flip_back(flipped[0]), shifted[0])  # [K, H, W] too
    with pytest.raises(ValueError, match="flip_pairs"):
        D.flip_back(maps[:, :5])


def flip_test_bias(*, udp: bool, shift: bool, n: int = 60, w_in: int = 192, h_in: int = 256,
                   stride: int = 4, seed: int = 10):
    """An ideal network (an unbiased Gaussian exactly on the encoded keypoint) on an image and on
    its mirror; returns the mean (x, y) error of the flip-test average, in heatmap px."""
    rng = np.random.default_rng(seed)
    w, h = w_in // stride, h_in // stride
    kp = np.stack([rng.uniform(40, w_in - 41, (n, 17)), rng.uniform(40, h_in - 41, (n, 17))], -1)
    mirrored = kp[:, flip_index()].copy()
    mirrored[..., 0] = (w_in - 1) - mirrored[..., 0]  # image flip: x -> (W - 1) - x

    def to_hm(p):
        if udp:
            return p * [(w - 1) / (w_in - 1), (h - 1) / (h_in - 1)]
        return p / stride

    fused = D.fuse_flip(gaussian_maps(to_hm(kp), (w, h)), gaussian_maps(to_hm(mirrored), (w, h)),
                        shift=shift)
    coords, _ = D.decode(fused, method="dark")
    return (coords - to_hm(kp)).reshape(-1, 2).mean(axis=0)


@pytest.mark.parametrize("udp, shift, expected", [(False, False, -0.375), (False, True, 0.125),
                                                  (True, False, 0.0)])
def test_flip_test_bias(udp, shift, expected):
    bias_x, bias_y = flip_test_bias(udp=udp, shift=shift)
    assert bias_x == pytest.approx(expected, abs=0.01)
    assert bias_y == pytest.approx(0.0, abs=0.01)


def test_decode_to_image_round_trip():
    transforms = pytest.importorskip("course_lib.transforms")
    if not all(hasattr(transforms, f) for f in ("image_to_crop", "crop_to_heatmap",
                                                 "heatmap_to_crop", "crop_to_image")):
        pytest.skip("course_lib.transforms is not complete yet")
    rng = np.random.default_rng(11)
    input_size, heatmap_size = (96, 128), (24, 32)
    center, scale = np.array([150.0, 120.0]), np.array([120.0, 160.0])
    for udp, rotation in ((False, 0.0), (True, 0.0), (False, 20.0)):
        kp = center + rng.uniform(-20, 20, (17, 2))  # away from the map borders
        crop = transforms.image_to_crop(kp, center, scale, input_size, rotation, udp=udp)
        hm_pts = transforms.crop_to_heatmap(crop, input_size, heatmap_size, udp=udp)
        maps = gaussian_maps(np.asarray(hm_pts)[None], heatmap_size)
        out, scores = D.decode_to_image(maps, center[None], scale[None], input_size, rotation,
                                        udp=udp)
        assert out.shape == (1, 17, 2) and scores.shape == (1, 17)
        np.testing.assert_allclose(out[0], kp, atol=0.02)


# --- the decoder widget (course_lib.widgets.decoding, 06) -------------------------------------


def test_render_decoder_demo():
    from course_lib.widgets import decoding

    clean = decoding.render_decoder_demo(7.3, 8.6, 0.0)
    assert clean["heatmap"].shape == (16, 16) and clean["true"] == (7.3, 8.6)
    assert set(clean["estimates"]) == set(D.METHODS)
    assert clean["estimates"]["argmax"] == (7.0, 9.0)
    assert clean["estimates"]["quarter"] == (7.25, 8.75)
    assert clean["errors"]["dark"] < 1e-3 < clean["errors"]["quarter"] < clean["errors"]["argmax"]
    noisy = decoding.render_decoder_demo(7.3, 8.6, 0.1, seed=1)
    assert not np.array_equal(noisy["heatmap"], clean["heatmap"])
    again = decoding.render_decoder_demo(7.3, 8.6, 0.1, seed=1)
    np.testing.assert_array_equal(again["heatmap"], noisy["heatmap"])  # seeded


def test_decoder_widget_redraws_on_its_first_slider():
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from course_lib.widgets import decoding

    fig = decoding.draw_decoder_demo(decoding.render_decoder_demo(5.2, 6.1, 0.05))
    assert len(fig.axes) == 3
    import ipywidgets as widgets

    w = decoding.decoder_widget()
    sliders = [c for box in w.children[0].children for c in box.children]
    assert isinstance(sliders[0], widgets.FloatSlider) and "x" in sliders[0].description
    out = w.children[1]
    assert isinstance(out, widgets.Output)
    calls = []
    sliders[0].observe(lambda change: calls.append(change["new"]), names="value")
    sliders[0].value = sliders[0].value + sliders[0].step
    assert calls  # the redraw observer ran beside ours without raising
