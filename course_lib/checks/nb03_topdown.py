"""Checks of the exercises of ``03_topdown_data.ipynb``: the image -> crop affine matrix (03.1) and
the box -> centre and scale conversion (03.2)."""

from __future__ import annotations

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, report


def check_crop_matrix(crop_matrix) -> bool:
    """03.1: ``crop_matrix(center, scale, output_size)`` -> the ``[2, 3]`` MSRA affine matrix
    image -> crop without rotation: scale by ``W_out / scale_w`` and send the box centre to
    ``(W_out / 2, H_out / 2)`` (``course_lib.transforms.get_affine_matrix``, rotation 0)."""
    from course_lib import transforms

    problems: list[str] = []
    for center, scale, size in [((120.0, 80.0), (75.0, 100.0), (96, 128)),
                                ((33.5, 210.25), (192.0, 256.0), (192, 256)),
                                ((10.0, 10.0), (48.0, 64.0), (24, 32))]:
        got, err = call(crop_matrix, np.array(center), np.array(scale), size)
        if err:
            problems.append(f"crop_matrix({center}, {scale}, {size}) {err}")
            break
        want = transforms.get_affine_matrix(center, scale, 0.0, size)
        found = compare_arrays(f"crop_matrix({center}, {scale}, {size})", got, want, atol=1e-4)
        if found and np.shape(got) == (2, 3):
            udp = transforms.get_affine_matrix(center, scale, 0.0, size, udp=True)
            if np.allclose(np.asarray(got, dtype=float), udp, atol=1e-4):
                found.append("that is the UDP matrix ((W-1) / scale_w); here the centre goes "
                             "to (W/2, H/2) and the factor is W / scale_w")
        problems += found
    return report("03.1 image -> crop matrix", problems,
                  passed_message="the box centre lands at (W/2, H/2), one scale factor W/scale_w")


def check_box_to_center_scale(box_to_center_scale) -> bool:
    """03.2: ``box_to_center_scale(bbox_xywh, aspect_ratio, padding=1.25)`` -> ``(center,
    scale)`` with scale the padded box (w, h) in pixels at the crop's aspect ratio."""
    from course_lib import transforms

    problems: list[str] = []
    for box, ratio, pad in [([10, 20, 30, 80], 0.75, 1.25), ([0, 5, 90, 40], 0.75, 1.25),
                            ([3.5, 4.0, 50, 50], 1.0, 1.0), ([100, 50, 60, 60], 0.75, 1.5)]:
        got, err = call(box_to_center_scale, list(box), ratio, padding=pad)
        if err:
            problems.append(f"box_to_center_scale({box}, {ratio}, padding={pad}) {err}")
            break
        if not isinstance(got, tuple) or len(got) != 2:
            problems.append("box_to_center_scale: expected a tuple (center, scale)")
            break
        center, scale = transforms.box_to_center_scale(box, ratio, pad)
        found = compare_arrays(f"center of {box}", got[0], center, atol=1e-4)
        found += compare_arrays(f"scale of {box} (aspect {ratio}, padding {pad})", got[1], scale,
                                atol=1e-3)
        if found and np.shape(got[1]) == (2,) and np.allclose(got[1], np.array(box[2:]) * pad):
            found.append("the box keeps its own shape: widen or heighten it to the aspect ratio")
        problems += found
    return report("03.2 box -> centre and scale", problems,
                  passed_message="centre of the box, scale padded at the crop's aspect ratio")

