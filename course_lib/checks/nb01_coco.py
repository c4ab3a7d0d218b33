"""Checks of the exercises of ``01_coco_keypoints.ipynb``: decoding COCO's 51 keypoint numbers
(01.1), the keypoint box and count (01.2), mirroring a keypoint list (01.3).

Each check compares the answer with ``course_lib.coco``; when it differs, it also computes what
the usual slips would have returned (columns read in the wrong order, unlabelled ``(0, 0)``
keypoints inside the box, ``W - x`` instead of ``(W - 1) - x``, ...) and names the one that
matches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.reporting import call, compare_arrays, diagnose, fmt, report, same


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


def _decode_slips(flat) -> list[tuple[tuple, str]]:
    """What the usual slips of 01.1 return for ``flat``, with the mistake they make."""
    a = np.asarray(flat, dtype=np.float64)
    t = a.reshape(17, 3)
    by_column = a.reshape(3, 17).T  # x1..x17, y1..y17, v1..v17: not COCO's order
    return [
        ((by_column[:, :2], by_column[:, 2]), "the list was read as 17 x's, then 17 y's, then "
         "17 v's; COCO interleaves them: x1, y1, v1, x2, y2, v2, ... (reshape(17, 3))"),
        ((t[:, 1:], t[:, 0]), "xy read from columns 1-2 and v from column 0: each triple is "
         "(x, y, v), in that order"),
        ((t[:, [1, 0]], t[:, 2]), "x and y are swapped: column 0 is x, column 1 is y"),
    ]


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
        if same(got[0], xy, atol=0) and same(got[1], v, atol=0):
            if not np.issubdtype(np.asarray(got[1]).dtype, np.integer):
                problems.append(f"case {i}: v has dtype {np.asarray(got[1]).dtype}; the flags "
                                "0, 1, 2 are integers (astype(int))")
                break
            continue
        slip = next((m for (sxy, sv), m in _decode_slips(flat)
                     if same(got[0], sxy, atol=0) and same(got[1], sv, atol=1.0)), None)
        if slip is None and np.shape(got[0]) == (2, 17):
            slip = "xy has shape (2, 17): one row per keypoint is expected, [17, 2]"
        problems += [f"case {i}: {slip}"] if slip else []
        problems += compare_arrays(f"case {i} xy", got[0], xy)
        problems += compare_arrays(f"case {i} v", got[1], v)
        break
    return report("01.1 decode the 51 numbers", problems,
                  passed_message="x, y, v triples decoded for 4 annotations")  # fmt: skip


def _box(points: np.ndarray) -> list[float] | None:
    if len(points) == 0:
        return None
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return [x0, y0, x1 - x0, y1 - y0]


def _box_slips(flat) -> list[tuple[tuple, str]]:
    """What the usual slips of 01.2 return for ``flat``, with the mistake they make."""
    t = np.asarray(flat, dtype=np.float64).reshape(17, 3)
    labelled, visible = t[:, 2] > 0, t[:, 2] == 2
    n = int(labelled.sum())
    box = _box(t[labelled, :2])
    corners = None if box is None else [box[0], box[1], box[0] + box[2], box[1] + box[3]]
    plus_one = None if box is None else [box[0], box[1], box[2] + 1, box[3] + 1]
    return [
        ((n, _box(t[:, :2])), "the box spans the (0, 0) of unlabelled keypoints: take min and "
         "max over the labelled keypoints (v > 0) only"),
        ((n, corners), "that is [x0, y0, x1, y1]; COCO's box is [x, y, w, h] with w = x1 - x0"),
        ((n, plus_one), "w = x1 - x0 + 1 counts pixels; keypoints are points: w = x1 - x0"),
        ((int(visible.sum()), box), "num_keypoints counts every labelled keypoint (v > 0), the "
         "occluded ones (v = 1) too"),
        ((17, box), "num_keypoints counts the labelled keypoints (v > 0), not all 17"),
        ((n, _box(t[visible, :2])), "the box must include the occluded keypoints (v = 1) too: "
         "they are labelled"),
    ]


def _box_problems(i: int, got, flat) -> list[str]:
    from course_lib.coco import count_keypoints, keypoint_box

    n, box = count_keypoints(flat), keypoint_box(flat)
    ok_n = isinstance(got[0], (int, np.integer)) and int(got[0]) == n
    ok_box = (got[1] is None) if box is None else (got[1] is not None and same(got[1], box,
                                                                               atol=1e-6))
    if ok_n and ok_box:
        return []
    slip = next((m for (sn, sb), m in _box_slips(flat) if _equal_answer(got, sn, sb)), None)
    problems = [f"case {i}: {slip}"] if slip else []
    if not ok_n:
        problems.append(f"case {i}: num_keypoints {fmt(got[0])}, expected {n} (count v > 0)")
    if box is None and got[1] is not None:
        problems.append(f"case {i}: no keypoint is labelled, expected box None, got {fmt(got[1])}")
    elif box is not None and got[1] is None:
        problems.append(f"case {i}: box is None, expected {fmt(box)}")
    elif box is not None:
        problems += compare_arrays(f"case {i} box [x, y, w, h]", got[1], np.array(box), atol=1e-6)
    return problems


def _equal_answer(got, n, box) -> bool:
    if not isinstance(got[0], (int, np.integer)) or int(got[0]) != n:
        return False
    return got[1] is None if box is None else got[1] is not None and same(got[1], box, atol=1e-6)


def check_keypoint_box(keypoint_box_and_count: Callable) -> bool:
    """01.2: ``keypoint_box_and_count(flat) -> (num_keypoints, [x, y, w, h] or None)``."""
    problems: list[str] = []
    for i, flat in enumerate(_coco_cases()):
        got, err = call(keypoint_box_and_count, list(flat))
        if err:
            problems.append(f"case {i}: {err}")
            break
        if not isinstance(got, tuple) or len(got) != 2:
            problems.append(f"case {i}: expected a tuple (num_keypoints, box), got {fmt(got)}")
            break
        problems += _box_problems(i, got, flat)
        if problems:
            break
    return report("01.2 box and num_keypoints", problems,
                  passed_message="counts and boxes of 4 annotations are right")  # fmt: skip


def _flip_slips(flat, width) -> list[tuple[np.ndarray, str]]:
    """What the usual slips of 01.3 return (as ``[17, 3]`` tables), with their mistake."""
    from course_lib.coco import flip_keypoint_list

    t = np.asarray(flat, dtype=np.float64).reshape(17, 3)
    right = np.asarray(flip_keypoint_list(flat, width), dtype=np.float64).reshape(17, 3)
    lab = t[:, 2] > 0
    no_swap = t.copy()
    no_swap[lab, 0] = (width - 1) - t[lab, 0]
    all_mirrored = right.copy()
    all_mirrored[right[:, 2] == 0, 0] = width - 1
    v_stays = right.copy()
    v_stays[:, 2] = t[:, 2]
    mirror_y = t.copy()
    mirror_y[lab, 1] = (width - 1) - t[lab, 1]
    return [
        (np.where(right[:, 2:] > 0, right + [1, 0, 0], right), "x is off by one: a flip maps x "
         "to (W - 1) - x (pixel centres 0 ... W - 1), not W - x"),
        (np.where(right[:, 2:] > 0, right - [1, 0, 0], right), "x is off by one: a flip maps x "
         "to (W - 1) - x, not W - 2 - x"),
        (no_swap, "x is mirrored but the left and right keypoints are not swapped (FLIP_PAIRS): "
         "the person's left wrist is now on their right"),
        (all_mirrored, "unlabelled keypoints must stay 0, 0, 0; only labelled ones are mirrored"),
        (v_stays, "the coordinates were swapped between left and right, but not the flags v: "
         "each v must move with its keypoint"),
        (mirror_y[_swap_perm()], "y was mirrored instead of x: a horizontal flip "
         "changes x only"),
    ]


def _swap_perm() -> np.ndarray:
    from course_lib.coco import FLIP_PAIRS, flip_index

    return flip_index(17, FLIP_PAIRS)


def check_flip_keypoints(flip_keypoint_list: Callable) -> bool:
    """01.3: ``flip_keypoint_list(flat, image_width)``: mirror x and swap left/right."""
    from course_lib.coco import flip_keypoint_list as reference

    problems: list[str] = []
    for i, flat in enumerate(_coco_cases()[:3]):
        width = 320 + 17 * i
        got, err = call(flip_keypoint_list, list(flat), width)
        if err:
            problems.append(f"case {i}: {err}")
            break
        if np.size(got) != 51 or np.ndim(got) != 1:
            problems.append(f"case {i}: expected the flat list of 51 numbers, got shape "
                            f"{np.shape(got)}")
            break
        want = np.asarray(reference(flat, width), dtype=np.float64).reshape(17, 3)
        table = np.asarray(got, dtype=np.float64).reshape(17, 3)
        if same(table, want, atol=1e-6):
            continue
        slip = diagnose(table, _flip_slips(flat, width), atol=1e-6)
        problems += [f"case {i}: {slip}"] if slip else []
        problems += compare_arrays(f"case {i} [x, y, v] table", table, want, atol=1e-6)
        break
    return report("01.3 mirror a keypoint list", problems,
                  passed_message="mirrored and left/right swapped, unlabelled kept at 0")
