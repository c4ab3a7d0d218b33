"""Exercise checks of 02_gaussian_heatmaps and 03_topdown_data: pass on the reference solution,
fail on an unimplemented stub and on a plausible wrong answer."""

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
