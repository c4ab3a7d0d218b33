"""Checks of the exercises of ``03_topdown_data.ipynb``: the image -> crop affine matrix (03.1) and
the box -> centre and scale conversion (03.2).

Each check compares the answer with ``course_lib.transforms``; when it differs, it computes what
the usual slips would have returned (the UDP matrix, the ``(W - 1) / 2`` centre, a second factor
for y, the inverse matrix, swapped x/y, a box that keeps its own shape ...) and names the one
that matches.
"""

from __future__ import annotations

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, diagnose, fmt, report, same

_CROP_CASES = [((120.0, 80.0), (75.0, 100.0), (96, 128)),
               ((33.5, 210.25), (192.0, 256.0), (192, 256)),
               ((10.0, 10.0), (48.0, 64.0), (24, 32)),
               ((150.0, 90.0), (60.0, 100.0), (96, 128))]  # scale not at the crop's 3:4


def _crop_slips(center, scale, size) -> list[tuple[np.ndarray, str]]:
    """What the usual slips of 03.1 return for one case, with the mistake they make."""
    from course_lib import transforms

    (cx, cy), (sw, sh), (w, h) = center, scale, size
    k = w / sw

    def m(kx, ky, tx, ty):
        return np.array([[kx, 0.0, tx], [0.0, ky, ty]])

    right = m(k, k, w / 2 - k * cx, h / 2 - k * cy)
    return [
        (transforms.get_affine_matrix(center, scale, 0.0, size, udp=True), "that is the UDP "
         "matrix ((W - 1) / scale_w, box edges on the first and last pixel centres); MSRA uses "
         "the factor W / scale_w and sends the centre to (W/2, H/2)"),
        (m(k, k, (w - 1) / 2 - k * cx, (h - 1) / 2 - k * cy), "the centre was sent to "
         "((W - 1)/2, (H - 1)/2), the middle pixel centre; MSRA sends it to (W/2, H/2)"),
        (m(k, h / sh, w / 2 - k * cx, h / 2 - h / sh * cy), "y was scaled by H / scale_h; MSRA "
         "uses one factor, W / scale_w, for both axes (the box is already at the crop's aspect)"),
        (transforms.invert_affine(right), "that is the inverse matrix, crop -> image; the "
         "exercise asks for image -> crop"),
        (m(k, k, w / 2 + k * cx, h / 2 + k * cy), "the translation has the wrong sign: the "
         "centre must land at W/2, so t = W/2 - k * cx"),
        (m(k, k, w / 2 - cx, h / 2 - cy), "the centre was not scaled: t = W/2 - k * cx with "
         "k = W / scale_w"),
        (m(1 / k, 1 / k, w / 2 - cx / k, h / 2 - cy / k), "the factor is upside down: "
         "k = W_out / scale_w (crop pixels per image pixel)"),
        (m(k, k, w / 2 - k * cy, h / 2 - k * cx), "x and y are swapped in the translation: row 0 "
         "uses cx, row 1 uses cy"),
    ]


def check_crop_matrix(crop_matrix) -> bool:
    """03.1: ``crop_matrix(center, scale, output_size)`` -> the ``[2, 3]`` MSRA affine matrix
    image -> crop without rotation: scale by ``W_out / scale_w`` and send the box centre to
    ``(W_out / 2, H_out / 2)`` (``course_lib.transforms.get_affine_matrix``, rotation 0)."""
    from course_lib import transforms

    problems: list[str] = []
    for center, scale, size in _CROP_CASES:
        name = f"crop_matrix({fmt(center)}, {fmt(scale)}, {size})"
        got, err = call(crop_matrix, np.array(center), np.array(scale), size)
        if err:
            problems.append(f"{name} {err}")
            break
        want = transforms.get_affine_matrix(center, scale, 0.0, size)
        found = compare_arrays(name, got, want, atol=1e-4)
        if found:
            slip = diagnose(got, _crop_slips(center, scale, size), atol=1e-4)
            problems += found + ([slip] if slip else [])
            break
    return report("03.1 image -> crop matrix", problems,
                  passed_message="the box centre lands at (W/2, H/2), one scale factor W/scale_w")


_BOX_CASES = [([10, 20, 30, 80], 0.75, 1.25), ([0, 5, 90, 40], 0.75, 1.25),
              ([3.5, 4.0, 50, 50], 1.0, 1.0), ([100, 50, 60, 60], 0.75, 1.5)]


def _box_slips(box, ratio, pad) -> list[tuple[tuple, str]]:
    """What the usual slips of 03.2 return for one case, with the mistake they make."""
    x, y, w, h = (float(v) for v in box)
    c = np.array([x + w / 2, y + h / 2])

    def fixed(wide: bool, a: float) -> np.ndarray:
        return np.array([w, w / a]) if wide else np.array([h * a, h])

    right = fixed(w > h * ratio, ratio)
    return [
        ((c, np.array([w, h]) * pad), "the box keeps its own shape: widen or heighten it to the "
         "aspect ratio W / H first"),
        ((c, right), "the padding is missing: multiply the fixed (w, h) by padding"),
        ((np.array([x, y]), right * pad), "the centre is the box's middle (x + w/2, y + h/2), "
         "not its corner (x, y)"),
        ((c, fixed(False, ratio) * pad), "the box was always widened (w = h * aspect); a box "
         "wider than the aspect ratio must be heightened instead (h = w / aspect)"),
        ((c, fixed(True, ratio) * pad), "the box was always heightened (h = w / aspect); a box "
         "taller than the aspect ratio must be widened instead (w = h * aspect)"),
        ((c, fixed(w > h / ratio, 1 / ratio) * pad), "aspect_ratio was used as H / W; it is "
         "W / H (0.75 for a 96 x 128 crop)"),
        ((c, (right * pad)[::-1]), "scale is (w, h): width first"),
        ((c, right * [pad, 1.0]), "the padding multiplies both the width and the height"),
    ]


def check_box_to_center_scale(box_to_center_scale) -> bool:
    """03.2: ``box_to_center_scale(bbox_xywh, aspect_ratio, padding=1.25)`` -> ``(center,
    scale)`` with scale the padded box (w, h) in pixels at the crop's aspect ratio."""
    from course_lib import transforms

    problems: list[str] = []
    for box, ratio, pad in _BOX_CASES:
        name = f"box_to_center_scale({fmt(box)}, {fmt(ratio)}, padding={fmt(pad)})"
        got, err = call(box_to_center_scale, list(box), ratio, padding=pad)
        if err:
            problems.append(f"{name} {err}")
            break
        if not isinstance(got, tuple) or len(got) != 2:
            problems.append(f"{name}: expected a tuple (center, scale), got {fmt(got)}")
            break
        center, scale = transforms.box_to_center_scale(box, ratio, pad)
        found = compare_arrays(f"center of {fmt(box)}", got[0], center, atol=1e-4)
        found += compare_arrays(f"scale of {fmt(box)} (aspect {fmt(ratio)}, padding {fmt(pad)})",
                                got[1], scale, atol=1e-3)
        if found:
            slip = next((m for (sc, ss), m in _box_slips(box, ratio, pad)
                         if _pair_equal(got, sc, ss)), None)
            problems += found + ([slip] if slip else [])
            break
    return report("03.2 box -> centre and scale", problems,
                  passed_message="centre of the box, scale padded at the crop's aspect ratio")


def _pair_equal(got, center, scale) -> bool:
    return same(got[0], center, atol=1e-3) and same(got[1], scale, atol=1e-3)
