"""Exercise checks of 02_gaussian_heatmaps and 03_topdown_data: pass on the reference solution,
fail on an unimplemented stub, and reject every plausible wrong answer ("mutant") with a message
that names its mistake."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.delenv("COURSE_STRICT", raising=False)


def stub(*args, **kwargs):
    raise NotImplementedError("write your solution")


# -- 02.1 ----------------------------------------------------------------------------------------


def gaussian_target(x, y, *, heatmap_size, sigma):
    w, h = heatmap_size
    mx, my = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    r = int(3 * sigma)
    xs, ys = np.arange(w), np.arange(h)[:, None]
    g = np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / (2 * sigma**2))
    return np.where((np.abs(xs - mx) <= r) & (np.abs(ys - my) <= r), g, 0.0).astype(np.float32)


def gaussian_unrounded(x, y, *, heatmap_size, sigma):
    w, h = heatmap_size
    xs, ys = np.arange(w), np.arange(h)[:, None]
    g = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.where((np.abs(xs - round(x)) <= 3 * sigma) & (np.abs(ys - round(y)) <= 3 * sigma),
                    g, 0.0)


def gaussian_untruncated(x, y, *, heatmap_size, sigma):
    w, h = heatmap_size
    mx, my = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    xs, ys = np.arange(w), np.arange(h)[:, None]
    return np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / (2 * sigma**2))


def test_gaussian_target_check(capsys):
    assert checks.check_gaussian_target(gaussian_target)
    assert not checks.check_gaussian_target(stub)
    assert "not implemented" in capsys.readouterr().out
    assert not checks.check_gaussian_target(gaussian_unrounded)
    assert not checks.check_gaussian_target(gaussian_untruncated)
    assert "truncate" in capsys.readouterr().out


def gaussian(x, y, *, heatmap_size, sigma, centre=lambda v: np.floor(v + 0.5), cut="square",
             denom=None, at_subpixel=False, swap=False, scale=1.0, whole_map=False):
    """The MSRA target with one choice changed: the mutants of 02.1."""
    w, h = heatmap_size
    mx, my = centre(x), centre(y)
    if swap:
        mx, my = my, mx
    px, py = (x, y) if at_subpixel else (mx, my)
    xs, ys = np.arange(w), np.arange(h)[:, None]
    g = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (denom or 2 * sigma**2))
    r = int(3 * sigma)
    dx, dy = np.abs(xs - mx), np.abs(ys - my)
    keep = {"square": (dx <= r) & (dy <= r), "disc": dx**2 + dy**2 <= r**2,
            "strict": (dx < r) & (dy < r), "none": np.ones((h, w), bool)}[cut]
    out = np.where(keep | whole_map, g, 0.0)
    return out / (out.sum() or 1.0) if scale == "sum" else out * scale


GAUSSIAN_MUTANTS = {
    "Python round": (dict(centre=round), "round halves to even"),
    "np.round": (dict(centre=np.round), "round halves to even"),
    "truncated centre": (dict(centre=np.floor), "truncated"),
    "int(x + 0.5)": (dict(centre=lambda v: float(int(v + 0.5))), "truncates towards zero"),
    "sub-pixel centre (UDP)": (dict(at_subpixel=True), "UDP"),
    "unbiased (DARK)": (dict(at_subpixel=True, centre=lambda v: v, whole_map=True), "unbiased"),
    "not truncated": (dict(cut="none"), "not truncated"),
    "disc patch": (dict(cut="disc"), "disc"),
    "drops the 3 sigma ring": (dict(cut="strict"), "|d| <= 3 sigma"),
    "swapped x/y": (dict(swap=True), "x and y are swapped"),
    "normalised density": (dict(scale="density"), "normalised"),
    "sums to 1": (dict(scale="sum"), "sum 1"),
    "exponent without the 2": (dict(denom="sigma2"), "the 2 is missing"),
    "sigma not squared": (dict(denom="2sigma"), "not squared"),
}


@pytest.mark.parametrize("name", GAUSSIAN_MUTANTS)
def test_gaussian_target_rejects_mutant(name, capsys):
    options, message = dict(GAUSSIAN_MUTANTS[name][0]), GAUSSIAN_MUTANTS[name][1]

    def mutant(x, y, *, heatmap_size, sigma):
        opts = dict(options)
        opts["denom"] = {"sigma2": sigma**2, "2sigma": 2 * sigma}.get(opts.get("denom"))
        if opts.get("scale") == "density":
            opts["scale"] = 1 / (2 * np.pi * sigma**2)
        return gaussian(x, y, heatmap_size=heatmap_size, sigma=sigma, **opts)

    assert not checks.check_gaussian_target(mutant)
    out = capsys.readouterr().out
    assert message in out and "np.float64" not in out


def test_gaussian_target_shape_hint(capsys):
    assert not checks.check_gaussian_target(lambda x, y, *, heatmap_size, sigma: gaussian_target(
        x, y, heatmap_size=heatmap_size, sigma=sigma).T)
    assert "[W, H]" in capsys.readouterr().out


def test_checks_raise_under_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(checks.ExerciseError):
        checks.check_gaussian_target(stub)
    assert checks.check_gaussian_target(gaussian_target)


# -- 02.2 ----------------------------------------------------------------------------------------


def argmax_error(x, y, *, stride, sigma):
    from course_lib.heatmaps import encode

    size = (int(x // stride) + 10, int(y // stride) + 10)
    maps, _ = encode(np.array([[x / stride, y / stride]]), np.array([2]), heatmap_size=size,
                     sigma=sigma)
    row, col = np.unravel_index(maps[0].argmax(), maps[0].shape)
    return float(np.hypot(col * stride - x, row * stride - y))


def argmax_error_heatmap_pixels(x, y, *, stride, sigma):
    return argmax_error(x, y, stride=stride, sigma=sigma) / stride


def test_argmax_error_check(capsys):
    assert checks.check_argmax_error(argmax_error)
    assert not checks.check_argmax_error(stub)
    assert not checks.check_argmax_error(argmax_error_heatmap_pixels)
    assert "multiply by the stride" in capsys.readouterr().out
    assert not checks.check_argmax_error(lambda x, y, *, stride, sigma: 0.0)


ARGMAX_MUTANTS = {
    "heatmap pixels": (argmax_error_heatmap_pixels, "multiply by the stride"),
    "area alignment": (lambda x, y, *, stride, sigma: float(np.hypot(
        (np.floor(x / stride + 0.5) + 0.5) * stride - 0.5 - x,
        (np.floor(y / stride + 0.5) + 0.5) * stride - 0.5 - y)), "area alignment"),
    "swapped row/col": (lambda x, y, *, stride, sigma: float(np.hypot(
        np.floor(x / stride + 0.5) * stride - y, np.floor(y / stride + 0.5) * stride - x)),
        "x and y are swapped"),
    "truncated": (lambda x, y, *, stride, sigma: float(np.hypot(
        np.floor(x / stride) * stride - x, np.floor(y / stride) * stride - y)), "truncated"),
    "L1 distance": (lambda x, y, *, stride, sigma: float(
        abs(np.floor(x / stride + 0.5) * stride - x) + abs(np.floor(y / stride + 0.5) * stride - y)
    ), "|dx| + |dy|"),
    "squared distance": (lambda x, y, *, stride, sigma: argmax_error(
        x, y, stride=stride, sigma=sigma) ** 2, "squared error"),
    "x only": (lambda x, y, *, stride, sigma: float(abs(np.floor(x / stride + 0.5) * stride - x)),
               "only the x error"),
}


@pytest.mark.parametrize("name", ARGMAX_MUTANTS)
def test_argmax_error_rejects_mutant(name, capsys):
    mutant, message = ARGMAX_MUTANTS[name]
    assert not checks.check_argmax_error(mutant)
    out = capsys.readouterr().out
    assert message in out and "np.float64" not in out


# -- 03.1 ----------------------------------------------------------------------------------------


def crop_matrix(center, scale, output_size):
    s = output_size[0] / scale[0]
    return np.array([[s, 0, output_size[0] / 2 - s * center[0]],
                     [0, s, output_size[1] / 2 - s * center[1]]])


def crop_matrix_udp(center, scale, output_size):
    sx, sy = (output_size[0] - 1) / scale[0], (output_size[1] - 1) / scale[1]
    return np.array([[sx, 0, (output_size[0] - 1) / 2 - sx * center[0]],
                     [0, sy, (output_size[1] - 1) / 2 - sy * center[1]]])


def test_crop_matrix_check(capsys):
    assert checks.check_crop_matrix(crop_matrix)
    assert not checks.check_crop_matrix(stub)
    assert not checks.check_crop_matrix(crop_matrix_udp)
    assert "UDP" in capsys.readouterr().out


def crop_matrix_variant(center, scale, output_size, *, centre_at=None, ky=None, sign=-1.0,
                        scaled_centre=True, inverted=False, swap=False):
    w, h = output_size
    k = w / scale[0]
    if inverted:
        k = 1 / k
    kx, ky = k, (ky(output_size, scale) if ky else k)
    ox, oy = centre_at(output_size) if centre_at else (w / 2, h / 2)
    cx, cy = (center[1], center[0]) if swap else (center[0], center[1])
    tx = ox + sign * (kx if scaled_centre else 1.0) * cx
    ty = oy + sign * (ky if scaled_centre else 1.0) * cy
    return np.array([[kx, 0, tx], [0, ky, ty]])


CROP_MUTANTS = {
    "UDP matrix": (crop_matrix_udp, "UDP"),
    "(W - 1) / 2 centre": (lambda c, s, o: crop_matrix_variant(
        c, s, o, centre_at=lambda o: ((o[0] - 1) / 2, (o[1] - 1) / 2)), "(W - 1)/2"),
    "second factor H / scale_h": (lambda c, s, o: crop_matrix_variant(
        c, s, o, ky=lambda o, s: o[1] / s[1]), "one factor"),
    "inverse matrix": (lambda c, s, o: np.linalg.inv(np.vstack([crop_matrix(c, s, o),
                                                               [0, 0, 1]]))[:2], "inverse"),
    "translation sign": (lambda c, s, o: crop_matrix_variant(c, s, o, sign=1.0), "wrong sign"),
    "centre not scaled": (lambda c, s, o: crop_matrix_variant(c, s, o, scaled_centre=False),
                          "not scaled"),
    "factor upside down": (lambda c, s, o: crop_matrix_variant(c, s, o, inverted=True),
                           "upside down"),
    "x/y swapped": (lambda c, s, o: crop_matrix_variant(c, s, o, swap=True), "swapped"),
}


@pytest.mark.parametrize("name", CROP_MUTANTS)
def test_crop_matrix_rejects_mutant(name, capsys):
    mutant, message = CROP_MUTANTS[name]
    assert not checks.check_crop_matrix(mutant)
    out = capsys.readouterr().out
    assert message in out and "np.float64" not in out


# -- 03.2 ----------------------------------------------------------------------------------------


def box_to_center_scale(bbox_xywh, aspect_ratio, padding=1.25):
    x, y, w, h = bbox_xywh
    if w > h * aspect_ratio:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return np.array([x + bbox_xywh[2] / 2, y + bbox_xywh[3] / 2]), np.array([w, h]) * padding


def box_no_aspect(bbox_xywh, aspect_ratio, padding=1.25):
    x, y, w, h = bbox_xywh
    return np.array([x + w / 2, y + h / 2]), np.array([w, h]) * padding


def test_box_to_center_scale_check(capsys):
    assert checks.check_box_to_center_scale(box_to_center_scale)
    assert not checks.check_box_to_center_scale(stub)
    assert not checks.check_box_to_center_scale(box_no_aspect)
    assert "aspect ratio" in capsys.readouterr().out
    assert not checks.check_box_to_center_scale(lambda b, a, padding=1.25: (np.zeros(2), 1.0))


def box_variant(bbox_xywh, aspect_ratio, padding=1.25, *, fix="right", pad_w=True, pad_h=True,
                corner=False, swap=False, ratio_is_h_over_w=False):
    x, y, w, h = (float(v) for v in bbox_xywh)
    centre = np.array([x, y]) if corner else np.array([x + w / 2, y + h / 2])
    a = 1 / aspect_ratio if ratio_is_h_over_w else aspect_ratio
    wide = {"right": w > h * a, "widen": False, "heighten": True, "none": None}[fix]
    if wide is not None:
        w, h = (w, w / a) if wide else (h * a, h)
    scale = np.array([w * (padding if pad_w else 1), h * (padding if pad_h else 1)])
    return centre, scale[::-1] if swap else scale


BOX_MUTANTS = {
    "keeps its shape": (dict(fix="none"), "aspect ratio"),
    "no padding": (dict(pad_w=False, pad_h=False), "padding is missing"),
    "corner as centre": (dict(corner=True), "not its corner"),
    "always widened": (dict(fix="widen"), "always widened"),
    "always heightened": (dict(fix="heighten"), "always heightened"),
    "aspect as H / W": (dict(ratio_is_h_over_w=True), "H / W"),
    "scale as (h, w)": (dict(swap=True), "width first"),
    "padding on w only": (dict(pad_h=False), "both the width and the height"),
}


@pytest.mark.parametrize("name", BOX_MUTANTS)
def test_box_to_center_scale_rejects_mutant(name, capsys):
    options, message = BOX_MUTANTS[name]
    assert checks.check_box_to_center_scale(box_variant)
    capsys.readouterr()
    assert not checks.check_box_to_center_scale(
        lambda b, a, padding=1.25: box_variant(b, a, padding, **options))
    out = capsys.readouterr().out
    assert message in out and "np.float64" not in out
