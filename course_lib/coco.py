"""COCO person keypoints: names, skeleton, flip pairs, OKS sigmas, and loading through pycocotools.

Taught in ``01_coco_keypoints.ipynb``.
"""

from __future__ import annotations

import numpy as np

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

# The skeleton exactly as COCO's person category stores it: 1-based keypoint indices.
SKELETON_1BASED: tuple[tuple[int, int], ...] = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7),
    (6, 8), (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip
# The same limbs with 0-based indices, for indexing arrays.
SKELETON: tuple[tuple[int, int], ...] = tuple((a - 1, b - 1) for a, b in SKELETON_1BASED)

# Left/right pairs (0-based): a horizontal flip swaps the two keypoints of each pair.
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip


def flip_index(num_keypoints: int = NUM_KEYPOINTS,
               pairs: tuple[tuple[int, int], ...] = FLIP_PAIRS) -> np.ndarray:
    """Permutation ``p`` such that ``flipped[..., k, :] = original[..., p[k], :]``."""
    perm = np.arange(num_keypoints)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


# Per-keypoint OKS sigmas of COCOeval (pycocotools: kpt_oks_sigmas).
OKS_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
     1.07, 1.07, 0.87, 0.87, 0.89, 0.89], dtype=np.float64,
) / 10.0  # fmt: skip

UPPER_BODY = tuple(range(0, 11))  # nose .. right_wrist
LOWER_BODY = tuple(range(11, 17))  # left_hip .. right_ankle

PERSON_CATEGORY: dict = {
    "id": 1,
    "name": "person",
    "supercategory": "person",
    "keypoints": list(KEYPOINT_NAMES),
    "skeleton": [list(limb) for limb in SKELETON_1BASED],
}
