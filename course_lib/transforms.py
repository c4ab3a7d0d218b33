"""Top-down geometry: box -> centre/scale, image <-> crop <-> heatmap, flips, augmentation.

Taught in ``03_topdown_data.ipynb``. Every forward map has its inverse beside it
(``image_to_crop`` / ``crop_to_image``, ``crop_to_heatmap`` / ``heatmap_to_crop``,
``get_affine_matrix(..., inverse=True)``) and a round-trip test.

Conventions (the MMPose 1.x ones):

- ``center`` is the box centre ``(x, y)`` in image pixels; ``scale`` is the padded box size
  ``(w, h)`` in PIXELS (MMPose's ``bbox_scale``; no division by 200).
- Sizes ``input_size`` / ``heatmap_size`` / ``output_size`` are ``(W, H)``.
- MSRA affine (``udp=False``) = MMPose ``get_warp_matrix`` (HRNet ``get_affine_transform``):
  ``crop = s * R(-rot) (p - center) + (W/2, H/2)`` with ``s = W / scale_w``. The box centre goes
  to ``(W/2, H/2)``, half a pixel off the crop's middle pixel centre ``((W-1)/2, (H-1)/2)``.
- UDP affine (``udp=True``) = MMPose ``get_udp_warp_matrix``:
  ``crop = diag((W-1)/scale_w, (H-1)/scale_h) (R(rot) (p - center) + scale/2)``: the box edges
  land on the first and last pixel centres. Note that MMPose's two matrices turn the image in
  opposite directions for the same ``rotation``; we keep both exactly as MMPose has them
  (random rotations are symmetric, so training does not care; predictions are mapped back with
  the matching inverse).
- Crop -> heatmap: ``x_hm = x_in / stride`` (MSRA) or ``x_hm = x_in * (W_hm-1)/(W_in-1)`` (UDP).
- A horizontal flip of an image of width ``W`` maps ``x -> (W - 1) - x`` and swaps the
  left/right keypoints of each pair in ``course_lib.coco.FLIP_PAIRS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from course_lib.coco import FLIP_PAIRS, LOWER_BODY, UPPER_BODY, flip_index


def _as_size(size, name: str) -> tuple[int, int]:
    try:
        width, height = size
        width_i, height_i = int(width), int(height)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected (W, H), two positive ints, got {size!r}") from None
    if width_i != width or height_i != height or width_i <= 0 or height_i <= 0:
        raise ValueError(f"{name}: expected (W, H), two positive ints, got {size!r}")
    return width_i, height_i


def _as_points(points, name: str = "points") -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != 2:
        raise ValueError(f"{name}: expected shape [..., 2] (x, y), got shape {arr.shape}")
    return arr


def _as_pair(value, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (2,):
        raise ValueError(f"{name}: expected 2 numbers, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite numbers, got {arr.tolist()}")
    return arr


# ---------------------------------------------------------------------------------------------
# box -> centre / scale
# ---------------------------------------------------------------------------------------------


def box_to_center_scale(bbox_xywh, aspect_ratio, padding: float = 1.25):
    """COCO box ``(x, y, w, h)`` -> ``(center [2], scale [2])``, both float32, scale in pixels.

    The box is widened or heightened to the crop's ``aspect_ratio`` (``W_in / H_in``, or an
    ``(W, H)`` input size), then multiplied by ``padding`` (MMPose ``bbox_xywh2cs`` followed by
    ``TopdownAffine``'s aspect-ratio fix). Works on ``[..., 4]`` arrays too.
    Inverse: :func:`center_scale_to_box`.
    """
    box = np.asarray(bbox_xywh, dtype=np.float64)
    if box.ndim < 1 or box.shape[-1] != 4:
        raise ValueError(f"bbox_xywh: expected shape [..., 4] (x, y, w, h), got shape {box.shape}")
    if np.ndim(aspect_ratio) == 1 and len(aspect_ratio) == 2:
        width, height = _as_size(aspect_ratio, "aspect_ratio")
        aspect_ratio = width / height
    aspect_ratio = float(aspect_ratio)
    if not aspect_ratio > 0 or not math.isfinite(aspect_ratio):
        raise ValueError(f"aspect_ratio: expected a positive number (W / H), got {aspect_ratio}")
    if not float(padding) > 0:
        raise ValueError(f"padding: expected a positive number, got {padding!r}")
    center = box[..., :2] + 0.5 * box[..., 2:]
    w, h = box[..., 2], box[..., 3]
    wider = w > h * aspect_ratio
    w_fixed = np.where(wider, w, h * aspect_ratio)
    h_fixed = np.where(wider, w / aspect_ratio, h)
    scale = np.stack([w_fixed, h_fixed], axis=-1) * float(padding)
    return center.astype(np.float32), scale.astype(np.float32)


def center_scale_to_box(center, scale):
    """``(center, scale)`` -> the (padded) box ``(x, y, w, h)`` it covers; inverse of the box
    -> centre/scale step up to the padding and aspect-ratio fix."""
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    return np.concatenate([center - 0.5 * scale, scale], axis=-1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# affine matrices, points and images
# ---------------------------------------------------------------------------------------------


def get_affine_matrix(center, scale, rotation_deg, output_size, *, udp=False, inverse=False):
    """The ``[2, 3]`` float64 matrix image -> crop (``inverse=True``: crop -> image).

    ``udp=False``: MMPose ``get_warp_matrix`` (HRNet); ``udp=True``: MMPose
    ``get_udp_warp_matrix``. Computed in closed form in float64 (MMPose goes through
    ``cv2.getAffineTransform`` on float32 points; the matrices agree to float32 precision).
    """
    center = _as_pair(center, "center")
    scale = _as_pair(scale, "scale")
    if np.any(scale <= 0):
        raise ValueError(f"scale: expected a positive (w, h) in pixels, got {scale.tolist()}")
    out_w, out_h = _as_size(output_size, "output_size")
    theta = math.radians(float(rotation_deg))
    cs, sn = math.cos(theta), math.sin(theta)
    if udp:
        sx, sy = (out_w - 1) / scale[0], (out_h - 1) / scale[1]
        rot = np.array([[cs, -sn], [sn, cs]])  # R(+rot)
        lin = np.diag([sx, sy]) @ rot
        offset = np.array([sx * 0.5 * scale[0], sy * 0.5 * scale[1]])
    else:
        s = out_w / scale[0]
        rot = np.array([[cs, sn], [-sn, cs]])  # R(-rot)
        lin = s * rot
        offset = np.array([out_w * 0.5, out_h * 0.5])
    matrix = np.concatenate([lin, (offset - lin @ center)[:, None]], axis=1)
    return invert_affine(matrix) if inverse else matrix


def invert_affine(matrix) -> np.ndarray:
    """Inverse of a ``[2, 3]`` affine matrix."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3):
        raise ValueError(f"matrix: expected shape (2, 3), got {matrix.shape}")
    lin_inv = np.linalg.inv(matrix[:, :2])
    return np.concatenate([lin_inv, (-lin_inv @ matrix[:, 2])[:, None]], axis=1)


def apply_affine(points, matrix) -> np.ndarray:
    """Apply a ``[2, 3]`` affine matrix to ``[..., 2]`` points (float64 result)."""
    pts = _as_points(points)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3):
        raise ValueError(f"matrix: expected shape (2, 3), got {matrix.shape}")
    return pts @ matrix[:, :2].T + matrix[:, 2]


def warp_image(image, matrix, output_size, *, border_value=0) -> np.ndarray:
    """``cv2.warpAffine`` with bilinear interpolation and a constant border: the crop
    ``[H, W, C]`` (``output_size = (W, H)``) of ``image`` under ``matrix`` (image -> crop)."""
    import cv2

    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image: expected [H, W] or [H, W, C], got shape {image.shape}")
    out_w, out_h = _as_size(output_size, "output_size")
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3):
        raise ValueError(f"matrix: expected shape (2, 3), got {matrix.shape}")
    return cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)


def image_to_crop(points, center, scale, input_size, rotation=0.0, *, udp=False) -> np.ndarray:
    """Image pixels -> crop (network input) pixels. Inverse: :func:`crop_to_image`."""
    return apply_affine(points, get_affine_matrix(center, scale, rotation, input_size, udp=udp))


def crop_to_image(points, center, scale, input_size, rotation=0.0, *, udp=False) -> np.ndarray:
    """Crop (network input) pixels -> image pixels. Inverse of :func:`image_to_crop`."""
    matrix = get_affine_matrix(center, scale, rotation, input_size, udp=udp, inverse=True)
    return apply_affine(points, matrix)


def _crop_heatmap_factors(input_size, heatmap_size, udp):
    in_w, in_h = _as_size(input_size, "input_size")
    hm_w, hm_h = _as_size(heatmap_size, "heatmap_size")
    if udp:
        if in_w < 2 or in_h < 2 or hm_w < 2 or hm_h < 2:
            raise ValueError("UDP needs input_size and heatmap_size of at least 2 x 2 pixels")
        return np.array([(hm_w - 1) / (in_w - 1), (hm_h - 1) / (in_h - 1)])
    return np.array([hm_w / in_w, hm_h / in_h])


def crop_to_heatmap(points, input_size, heatmap_size, *, udp=False) -> np.ndarray:
    """Crop pixels -> heatmap pixels: ``x / stride`` (MSRA) or ``x (W_hm-1)/(W_in-1)`` (UDP).
    Inverse: :func:`heatmap_to_crop`."""
    return _as_points(points) * _crop_heatmap_factors(input_size, heatmap_size, udp)


def heatmap_to_crop(points, input_size, heatmap_size, *, udp=False) -> np.ndarray:
    """Heatmap pixels -> crop pixels. Inverse of :func:`crop_to_heatmap`."""
    return _as_points(points) / _crop_heatmap_factors(input_size, heatmap_size, udp)


# ---------------------------------------------------------------------------------------------
# horizontal flip
# ---------------------------------------------------------------------------------------------


def flip_keypoints(keypoints, visible, image_width, flip_pairs=FLIP_PAIRS):
    """Mirror keypoints in an image of width ``image_width``: ``x -> (W - 1) - x``, and swap the
    two keypoints of every left/right pair (visibility swapped with them).

    ``keypoints`` ``[..., K, 2]`` (or ``[..., K, 3]``: extra columns follow the keypoint),
    ``visible`` ``[..., K]``. Returns new ``(keypoints, visible)``. Its own inverse.
    ``flip_pairs`` must form a permutation (``course_lib.coco.check_flip_pairs``: a keypoint in
    two pairs, or paired with itself, raises ``ValueError``).
    """
    kp = np.array(keypoints, dtype=np.float64)
    vis = np.array(visible)
    if kp.ndim < 2 or kp.shape[-1] < 2:
        raise ValueError(f"keypoints: expected shape [..., K, 2], got shape {kp.shape}")
    if vis.shape != kp.shape[:-1]:
        raise ValueError(f"visible: expected shape {kp.shape[:-1]}, got shape {vis.shape}")
    perm = flip_index(kp.shape[-2], flip_pairs)  # refuses pairs out of range or overlapping
    kp = kp[..., perm, :]
    vis = vis[..., perm]
    kp[..., 0] = (float(image_width) - 1.0) - kp[..., 0]
    return kp, vis


def flip_image(image) -> np.ndarray:
    """Mirror an ``[H, W, ...]`` image left-right (pixel ``x`` goes to ``W - 1 - x``)."""
    return np.ascontiguousarray(np.asarray(image)[:, ::-1])


def flip_matrix(image_width) -> np.ndarray:
    """The ``[2, 3]`` affine map of a horizontal flip, ``x -> (W - 1) - x`` (its own inverse).
    ``compose_affine(crop_matrix, flip_matrix(W))`` crops the flipped image without flipping it."""
    return np.array([[-1.0, 0.0, float(image_width) - 1.0], [0.0, 1.0, 0.0]])


def compose_affine(first_applied_last, first_applied_first) -> np.ndarray:
    """``A o B`` for two ``[2, 3]`` affine matrices: apply ``B`` then ``A``."""
    a = np.vstack([np.asarray(first_applied_last, dtype=np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(first_applied_first, dtype=np.float64), [0.0, 0.0, 1.0]])
    return (a @ b)[:2]


# ---------------------------------------------------------------------------------------------
# random augmentation (explicit numpy Generator, no global RNG)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation of SimpleBaseline/HRNet (flip, scale, rotation, half-body), plus
    MMPose's random shift. Factors are the widths of clipped normal distributions."""

    flip_prob: float = 0.5
    scale_factor: float = 0.3  # scale *= clip(1 + N(0, 1) * f, 1 - f, 1 + f)
    rotation_factor: float = 40.0  # degrees: clip(N(0, 1) * f, -2f, 2f)
    rotation_prob: float = 0.6
    shift_factor: float = 0.1  # centre += clip(N(0, 1), -1, 1) * f * scale
    shift_prob: float = 0.3
    half_body_prob: float = 0.3
    half_body_min_keypoints: int = 8  # needs more than this many labelled keypoints
    half_body_padding: float = 1.5


def sample_scale_rotation_shift(rng: np.random.Generator, config: AugmentConfig = AugmentConfig()):
    """Draw ``(scale_multiplier, rotation_deg, shift [2])``; ``shift`` is a fraction of the box
    scale. Deterministic given ``rng``."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy Generator (np.random.default_rng), got {rng!r}")
    z = rng.standard_normal(4)
    u = rng.random(2)
    f = config.scale_factor
    scale_mult = float(np.clip(1.0 + z[0] * f, 1.0 - f, 1.0 + f))
    rotation = float(np.clip(z[1] * config.rotation_factor, -2 * config.rotation_factor,
                             2 * config.rotation_factor)) if u[0] < config.rotation_prob else 0.0
    shift = np.clip(z[2:], -1.0, 1.0) * config.shift_factor if u[1] < config.shift_prob else (
        np.zeros(2))
    return scale_mult, rotation, shift


def augment_center_scale(center, scale, scale_mult, shift):
    """Apply a sampled scale multiplier and shift: ``center + shift * scale``, ``scale * mult``.
    Inverse: :func:`unaugment_center_scale`."""
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    new_center = center + np.asarray(shift, dtype=np.float64) * scale
    return new_center.astype(np.float32), (scale * scale_mult).astype(np.float32)


def unaugment_center_scale(center, scale, scale_mult, shift):
    """Undo :func:`augment_center_scale`."""
    scale0 = np.asarray(scale, dtype=np.float64) / scale_mult
    center0 = np.asarray(center, dtype=np.float64) - np.asarray(shift, dtype=np.float64) * scale0
    return center0.astype(np.float32), scale0.astype(np.float32)


def half_body(keypoints, visible, rng: np.random.Generator, *, aspect_ratio,
              upper=UPPER_BODY, lower=LOWER_BODY, padding: float = 1.5, min_keypoints: int = 8):
    """Half-body augmentation: keep only the upper or only the lower body and box it.

    Needs more than ``min_keypoints`` labelled keypoints; picks the upper body with probability
    0.5 when it has more than 2 labelled keypoints, else the lower body (when that has more than
    2), as HRNet does. Returns ``(center, scale, kept_visible)`` where ``kept_visible`` zeroes
    every keypoint of the other half, or ``None`` when not applicable. The box is the tight box
    of the kept keypoints, fixed to ``aspect_ratio`` and multiplied by ``padding``.
    """
    kp = _as_points(keypoints, "keypoints")
    vis = np.asarray(visible)
    if kp.ndim != 2 or vis.shape != kp.shape[:1]:
        raise ValueError(f"keypoints/visible: expected [K, 2] and [K], got {kp.shape}, {vis.shape}")
    labelled = vis > 0
    if labelled.sum() <= min_keypoints:
        return None
    up = [k for k in upper if labelled[k]]
    low = [k for k in lower if labelled[k]]
    if rng.random() < 0.5 and len(up) > 2:
        chosen = up
    elif len(low) > 2:
        chosen = low
    elif len(up) > 2:
        chosen = up
    else:
        return None
    pts = kp[chosen]
    x1, y1 = pts.min(axis=0)
    x2, y2 = pts.max(axis=0)
    center, scale = box_to_center_scale([x1, y1, x2 - x1, y2 - y1], aspect_ratio, padding)
    if np.any(scale <= 0):
        return None
    kept = np.zeros_like(vis)
    kept[chosen] = vis[chosen]
    return center, scale, kept
