"""Checks of the exercises of ``01_coco_keypoints.ipynb``: decoding COCO's 51 keypoint numbers
(01.1), the keypoint box and count (01.2), mirroring a keypoint list (01.3)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, report


def _coco_cases() -> list[list[float]]:
    """Fixed 51-number keypoint lists: all visible, some occluded/unlabelled, one empty."""
    rng = np.random.default_rng(2017)
    cases = []
    for labelled_fraction in (1.0, 0.7, 0.4):
        xy = rng.uniform(5, 300, (17, 2)).round(2)
        v = np.where(rng.random(17) < labelled_fraction, rng.choice([1, 2], 17, p=[0.3, 0.7]), 0)
        flat: list[float] = []
        for (x, y), vis in zip(xy, v):
            flat += [float(x), float(y), int(vis)] if vis else [0, 0, 0]
        cases.append(flat)
    cases.append([0] * 51)
    return cases


def check_decode_keypoints(decode_keypoints: Callable) -> bool:
    """01.1: ``decode_keypoints(flat) -> (xy [17, 2], v [17])`` from COCO's 51 numbers."""
    from course_lib.coco import decode_keypoints as reference

    problems: list[str] = []
    for i, flat in enumerate(_coco_cases()):
        got, err = call(decode_keypoints, list(flat))
        if err:
            problems.append(f"case {i}: {err}")
            break
        if not isinstance(got, tuple) or len(got) != 2:
            problems.append(f"case {i}: expected a tuple (xy, v), got {type(got).__name__}")
            break
        xy, v = reference(flat)
        problems += compare_arrays(f"case {i} xy", got[0], xy)
        problems += compare_arrays(f"case {i} v", got[1], v)
        if problems:
            break
    return report("01.1 decode the 51 numbers", problems,
                  passed_message="x, y, v triples decoded for 4 annotations")  # fmt: skip


def check_keypoint_box(keypoint_box_and_count: Callable) -> bool:
    """01.2: ``keypoint_box_and_count(flat) -> (num_keypoints, [x, y, w, h] or None)``."""
    from course_lib.coco import count_keypoints, keypoint_box

    problems: list[str] = []
    for i, flat in enumerate(_coco_cases()):
        got, err = call(keypoint_box_and_count, list(flat))
        if err:
            problems.append(f"case {i}: {err}")
            break
        if not isinstance(got, tuple) or len(got) != 2:
            problems.append(f"case {i}: expected a tuple (num_keypoints, box), got {got!r}")
            break
        n, box = count_keypoints(flat), keypoint_box(flat)
        if int(got[0]) != n:
            problems.append(f"case {i}: num_keypoints {got[0]}, expected {n} (count v > 0)")
        if box is None:
            if got[1] is not None:
                problems.append(f"case {i}: no keypoint is labelled, expected box None, "
                                f"got {got[1]!r}")  # fmt: skip
        elif got[1] is None:
            problems.append(f"case {i}: box is None, expected {box}")
        else:
            problems += compare_arrays(f"case {i} box [x, y, w, h]", got[1], np.array(box),
                                       atol=1e-6)  # fmt: skip
        if problems:
            break
    return report("01.2 box and num_keypoints", problems,
                  passed_message="counts and boxes of 4 annotations are right")  # fmt: skip


def check_flip_keypoints(flip_keypoint_list: Callable) -> bool:
    """01.3: ``flip_keypoint_list(flat, image_width)``: mirror x and swap left/right."""
    from course_lib.coco import KEYPOINT_NAMES, decode_keypoints
    from course_lib.coco import flip_keypoint_list as reference

    problems: list[str] = []
    for i, flat in enumerate(_coco_cases()[:3]):
        width = 320 + 17 * i
        got, err = call(flip_keypoint_list, list(flat), width)
        if err:
            problems.append(f"case {i}: {err}")
            break
        try:
            gxy, gv = decode_keypoints(got)
        except ValueError as exc:
            problems.append(f"case {i}: {exc}")
            break
        xy, v = decode_keypoints(reference(flat, width))
        if np.array_equal(gv, v) and not np.allclose(gxy, xy, atol=1e-6):
            dx = gxy[:, 0] - xy[:, 0]
            if np.allclose(dx[v > 0], 1.0):
                problems.append(f"case {i}: x is off by one: a flip maps x to (W - 1) - x")
        if not np.array_equal(gv, v):
            swapped = np.array_equal(gv, decode_keypoints(flat)[1])
            hint = " (left and right keypoints must be swapped)" if swapped else ""
            k = int(np.flatnonzero(gv != v)[0])
            problems.append(f"case {i}: v of {KEYPOINT_NAMES[k]} is {gv[k]}, expected {v[k]}{hint}")
        problems += compare_arrays(f"case {i} xy", gxy, xy, atol=1e-6)
        if problems:
            break
    return report("01.3 mirror a keypoint list", problems,
                  passed_message="mirrored and left/right swapped, unlabelled kept at 0")
