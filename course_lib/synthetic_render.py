"""Drawing one synthetic person: a sampled pose, the body drawn around it, textured backgrounds.

Taught in ``00_setup.ipynb`` (how one figure is made: sample a pose, then draw it with volume);
the figures it draws are the people shown in ``01_coco_keypoints.ipynb``. ``course_lib.synthetic``
places them in images, annotates them and writes the data set.

A figure is posed by sampling joint angles within anatomical limits and running forward
kinematics over a 2-D skeleton, so its 17 COCO keypoints are known to sub-pixel precision. It is
drawn with body-like volume: tapered limbs with a contour line, a torso polygon, a head ellipse.
Left and right are distinguishable: the person's LEFT arm and leg are striped, and a figure seen
from the front shows eyes, nose and mouth (from the back: hair, no face).

Every function draws its random numbers from the ``numpy`` generator it is given, always in the
same order, so the same generator state gives the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_SHIFT = 4  # cv2 fixed-point bits: vertices are drawn with 1/16 pixel precision
_ONE = 1 << _SHIFT

# ---------------------------------------------------------------------------------------------
# Posing a figure: joint angles within limits, forward kinematics
# ---------------------------------------------------------------------------------------------


def _rot(deg: float) -> np.ndarray:
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s], [s, c]])


def _down(angle_deg: float, outward: float) -> np.ndarray:
    """Unit vector at ``angle_deg`` from straight down, turning towards ``outward`` (+1/-1 in x)."""
    t = math.radians(angle_deg)
    return np.array([outward * math.sin(t), math.cos(t)])


@dataclass
class Pose:
    """A posed figure in image pixels: keypoints and the geometry needed to draw it."""

    keypoints: np.ndarray  # [17, 2] float64
    labelled: np.ndarray  # [17] bool: False for the face of a figure seen from the back
    front: bool  # seen from the front (its left side on the image's right)
    height: float  # pixels
    build: float  # width multiplier
    head_center: np.ndarray
    head_axes: tuple[float, float]
    head_angle: float  # degrees
    neck: np.ndarray
    pelvis: np.ndarray
    torso_angle: float  # degrees
    hands: tuple[np.ndarray, np.ndarray]  # left, right hand centres
    feet: tuple[np.ndarray, np.ndarray]  # left, right foot centres


def _foreshortening(rng: np.random.Generator, chance: float, shortest: float) -> float:
    """A limb length factor: ``shortest..1`` with probability ``chance``, else 1."""
    return rng.uniform(shortest, 1.0) if rng.random() < chance else 1.0


def _upper_arm_angle(rng: np.random.Generator) -> float:
    """Degrees from hanging down: mostly low or raised, sometimes overhead or slightly inward."""
    u = rng.random()
    if u < 0.4:
        return rng.uniform(5, 35)
    if u < 0.8:
        return rng.uniform(35, 120)
    if u < 0.9:
        return rng.uniform(120, 170)
    return rng.uniform(-30, 5)


def _place_trunk(rng: np.random.Generator, kp: np.ndarray, h: float, build: float,
                 left_out: float, r_torso: np.ndarray, r_body: np.ndarray) -> np.ndarray:
    """Shoulders (5, 6) and hips (11, 12) into ``kp`` around a pelvis at the origin; the neck."""
    up = r_torso @ np.array([0.0, -1.0])
    side = r_torso @ np.array([1.0, 0.0])
    neck = up * 0.30 * h * rng.uniform(0.95, 1.05)
    sh_half = 0.11 * h * build
    sh_base = neck - up * 0.025 * h
    kp[5] = sh_base + side * left_out * sh_half  # left shoulder
    kp[6] = sh_base - side * left_out * sh_half  # right shoulder
    hip_half = 0.075 * h * build
    side_b = r_body @ np.array([1.0, 0.0])
    kp[11] = side_b * left_out * hip_half
    kp[12] = -side_b * left_out * hip_half
    return neck


def _place_arm(rng: np.random.Generator, kp: np.ndarray, joints: tuple[int, int, int],
               sgn: float, r_torso: np.ndarray, h: float) -> np.ndarray:
    """Elbow and wrist of the arm ``joints`` (shoulder, elbow, wrist) into ``kp``; the hand."""
    k_sh, k_el, k_wr = joints
    alpha = _upper_arm_angle(rng)
    fore = _foreshortening(rng, 0.35, 0.65)
    d1 = r_torso @ _down(alpha, sgn)
    kp[k_el] = kp[k_sh] + d1 * 0.165 * h * fore
    beta = rng.uniform(0, 145) * (1 if rng.random() < 0.5 else -1)  # elbow flexion, either way
    fore2 = _foreshortening(rng, 0.35, 0.65)
    d2 = r_torso @ _down(alpha + beta, sgn)
    kp[k_wr] = kp[k_el] + d2 * 0.15 * h * fore2
    return kp[k_wr] + d2 * 0.035 * h


def _place_leg(rng: np.random.Generator, kp: np.ndarray, joints: tuple[int, int, int],
               sgn: float, r_body: np.ndarray, h: float, front: bool) -> np.ndarray:
    """Knee and ankle of the leg ``joints`` (hip, knee, ankle) into ``kp``; the foot."""
    k_hip, k_kn, k_an = joints
    gamma = rng.uniform(-8, 15) if rng.random() < 0.7 else rng.uniform(15, 55)
    fore = _foreshortening(rng, 0.3, 0.7)
    d1 = r_body @ _down(gamma, sgn)
    kp[k_kn] = kp[k_hip] + d1 * 0.245 * h * fore
    shin = float(np.clip(gamma + rng.uniform(-40, 40), -30, 60))
    d2 = r_body @ _down(shin, sgn)
    kp[k_an] = kp[k_kn] + d2 * 0.235 * h
    foot_dir = r_body @ np.array([sgn * (0.8 if front else 0.5), 0.35])
    return kp[k_an] + foot_dir * 0.04 * h


def _place_head(rng: np.random.Generator, kp: np.ndarray, neck: np.ndarray, torso_lean: float,
                h: float, left_out: float) -> tuple[float, np.ndarray, tuple[float, float]]:
    """Nose, eyes and ears (0-4) into ``kp``; the head's angle, centre and half-axes."""
    head_angle = torso_lean + float(rng.uniform(-20, 20))
    r_head = _rot(head_angle)
    head_center = neck + (r_head @ np.array([0.0, -1.0])) * 0.1 * h
    ax, ay = 0.06 * h * rng.uniform(0.92, 1.08), 0.074 * h * rng.uniform(0.95, 1.05)
    yaw = float(rng.uniform(-0.35, 0.35))

    def on_head(x: float, y: float) -> np.ndarray:
        return head_center + r_head @ np.array([x * ax, y * ay])

    kp[0] = on_head(yaw * 0.55, 0.22)  # nose
    kp[1] = on_head(left_out * 0.4 + yaw * 0.5, -0.08)  # left eye
    kp[2] = on_head(-left_out * 0.4 + yaw * 0.5, -0.08)  # right eye
    kp[3] = on_head(left_out * 0.97, 0.05)  # left ear
    kp[4] = on_head(-left_out * 0.97, 0.05)  # right ear
    return head_angle, head_center, (float(ax), float(ay))


def sample_pose(rng: np.random.Generator, height: float) -> Pose:
    """A random pose of a figure ``height`` pixels tall, pelvis at the origin.

    Angles (degrees, from the limb hanging straight down, positive = away from the body):
    upper arm -30..170, elbow flexion 0..145 (either way round in the image plane), thigh
    -15..55, knee -40..40 relative to the thigh, torso lean -25..25, head tilt -20..20. Limb
    lengths are shortened by up to 35 % at random (foreshortening: a limb pointing at the camera).
    """
    h = float(height)
    front = bool(rng.random() < 0.8)
    left_out = 1.0 if front else -1.0  # the person's left is on the image's right when facing us
    build = float(rng.uniform(0.9, 1.25))
    body_lean = float(rng.uniform(-12, 12))
    torso_lean = body_lean + float(rng.uniform(-14, 14))
    kp = np.zeros((17, 2))
    r_torso, r_body = _rot(torso_lean), _rot(body_lean)
    neck = _place_trunk(rng, kp, h, build, left_out, r_torso, r_body)
    hands = [_place_arm(rng, kp, joints, sgn, r_torso, h)
             for joints, sgn in (((5, 7, 9), left_out), ((6, 8, 10), -left_out))]  # fmt: skip
    feet = [_place_leg(rng, kp, joints, sgn, r_body, h, front)
            for joints, sgn in (((11, 13, 15), left_out), ((12, 14, 16), -left_out))]  # fmt: skip
    head_angle, head_center, head_axes = _place_head(rng, kp, neck, torso_lean, h, left_out)
    labelled = np.ones(17, bool)
    if not front:
        labelled[:3] = False
    return Pose(
        keypoints=kp, labelled=labelled, front=front, height=h, build=build,
        head_center=head_center, head_axes=head_axes, head_angle=head_angle,
        neck=neck, pelvis=np.zeros(2), torso_angle=torso_lean,
        hands=(hands[0], hands[1]), feet=(feet[0], feet[1]),
    )  # fmt: skip


def translate_pose(pose: Pose, offset: np.ndarray) -> Pose:
    """Move a posed figure by ``offset`` (x, y) pixels (in place; returns it)."""
    pose.keypoints = pose.keypoints + offset
    pose.head_center = pose.head_center + offset
    pose.neck = pose.neck + offset
    pose.pelvis = pose.pelvis + offset
    pose.hands = (pose.hands[0] + offset, pose.hands[1] + offset)
    pose.feet = (pose.feet[0] + offset, pose.feet[1] + offset)
    return pose


# ---------------------------------------------------------------------------------------------
# Colours
# ---------------------------------------------------------------------------------------------

_SKIN = np.array(
    [[255, 219, 172], [241, 194, 125], [224, 172, 105], [198, 134, 66], [141, 85, 36],
     [255, 205, 180], [120, 75, 50], [232, 190, 160]], dtype=np.float64,
)  # fmt: skip
_HAIR = np.array(
    [[20, 15, 10], [60, 40, 20], [110, 70, 30], [200, 170, 100], [90, 90, 90], [150, 40, 20]],
    dtype=np.float64,
)


def hsv_colour(rng: np.random.Generator, v_lo: float = 0.3, v_hi: float = 0.95) -> np.ndarray:
    """A random RGB colour (float, 0..255): any hue, saturation 0.15..0.9, value ``v_lo..v_hi``."""
    import colorsys

    h, s, v = rng.random(), rng.uniform(0.15, 0.9), rng.uniform(v_lo, v_hi)
    return np.array(colorsys.hsv_to_rgb(h, s, v)) * 255.0


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float = 18) -> np.ndarray:
    return np.clip(colour + rng.uniform(-amount, amount, 3), 0, 255)


def _contrast(colour: np.ndarray, *, threshold: float, scale: float, light: tuple[float, float]
              ) -> np.ndarray:
    """A darker shade of ``colour`` (``colour * scale``), or for a colour whose luminance is at
    most ``threshold``, a lighter one (``colour * light[0] + light[1]``)."""
    lum = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return colour * scale if lum > threshold else np.clip(colour * light[0] + light[1], 0, 255)


def _stripe_colour(colour: np.ndarray) -> np.ndarray:
    return _contrast(colour, threshold=100, scale=0.3, light=(0.4, 150))


def _outline_colour(colour: np.ndarray) -> np.ndarray:
    return _contrast(colour, threshold=70, scale=0.45, light=(0.5, 80))


@dataclass(frozen=True)
class _Outfit:
    """The colours of one figure (RGB floats)."""

    skin: np.ndarray
    hair: np.ndarray
    shirt: np.ndarray
    pants: np.ndarray
    forearm: np.ndarray  # a long sleeve or bare skin
    shin: np.ndarray  # long trousers or bare skin


def _sample_outfit(rng: np.random.Generator) -> _Outfit:
    skin = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 12)
    hair = _jitter(rng, _HAIR[rng.integers(len(_HAIR))], 15)
    shirt = hsv_colour(rng)
    pants = hsv_colour(rng, 0.25, 0.85)
    sleeve_long = rng.random() < 0.5
    legs_long = rng.random() < 0.65
    return _Outfit(skin=skin, hair=hair, shirt=shirt, pants=pants,
                   forearm=shirt * 0.85 if sleeve_long else skin,
                   shin=pants * 0.85 if legs_long else skin)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Shapes with volume, stripes on the left limbs
# ---------------------------------------------------------------------------------------------


def _taper(p0: np.ndarray, p1: np.ndarray, w0: float, w1: float) -> np.ndarray:
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-6)
    return np.array([p0 + n * w0 / 2, p1 + n * w1 / 2, p1 - n * w1 / 2, p0 - n * w0 / 2])


def _limb_shapes(p0, p1, w0, w1, colour, striped, stripes=4):
    """A tapered limb with round joints and a contour line; striped limbs get ``stripes`` dark
    bands. The contour (a seam across each joint included) keeps a limb visible in front of a
    torso of the same colour, as folds and shading do on a real sleeve."""
    quad = _taper(p0, p1, w0, w1)
    thickness = max(1, int(round(0.08 * max(w0, w1))))
    shapes = [("poly", quad, colour), ("circle", p0, w0 / 2, colour),
              ("outline", quad, thickness, _outline_colour(colour))]
    if striped:
        dark = _stripe_colour(colour)
        edges = np.linspace(0.12, 0.88, 2 * stripes)
        for t0, t1 in edges.reshape(-1, 2):
            a, b = p0 + (p1 - p0) * t0, p0 + (p1 - p0) * t1
            band = _taper(a, b, w0 + (w1 - w0) * t0, w0 + (w1 - w0) * t1)
            shapes.append(("stripe", band, dark))  # inside the limb: colour only, no mask
    return shapes


def _leg_shapes(pose: Pose, outfit: _Outfit, b: float) -> list[tuple]:
    """Both legs and feet, the left one (keypoints 11, 13, 15) striped."""
    h, kp = pose.height, pose.keypoints
    shapes: list[tuple] = []
    for (hip, knee, ankle), foot, striped in (((11, 13, 15), pose.feet[0], True),
                                             ((12, 14, 16), pose.feet[1], False)):
        shapes += _limb_shapes(kp[hip], kp[knee], 0.1 * h * b, 0.072 * h * b, outfit.pants,
                               striped)  # fmt: skip
        shapes += _limb_shapes(kp[knee], kp[ankle], 0.072 * h * b, 0.05 * h * b, outfit.shin,
                               striped)  # fmt: skip
        shapes.append(("circle", kp[ankle], 0.025 * h * b, outfit.shin))
        ang = math.degrees(math.atan2(*(foot - kp[ankle])[::-1]))
        shapes.append(("ellipse", foot, (0.05 * h, 0.022 * h * b), ang, outfit.shin * 0.6))
    return shapes


def _torso_axes(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along the torso: ``up`` and ``side`` (image-right when upright)."""
    up = _rot(pose.torso_angle) @ np.array([0.0, -1.0])
    return up, np.array([-up[1], up[0]])


def _torso_shapes(pose: Pose, outfit: _Outfit, b: float) -> list[tuple]:
    """Shoulders, waist and hips as a polygon in the shirt's colour, the pelvis in the pants'."""
    h, kp = pose.height, pose.keypoints
    up, side = _torso_axes(pose)
    ls, rs = kp[5], kp[6]
    lh, rh = kp[11], kp[12]
    out_l = np.sign(np.dot(ls - rs, side)) or 1.0
    waist = pose.pelvis + up * 0.11 * h
    wh = 0.09 * h * b
    torso = np.array([
        ls + side * out_l * 0.03 * h, waist + side * out_l * wh, lh + side * out_l * 0.035 * h,
        rh - side * out_l * 0.035 * h, waist - side * out_l * wh, rs - side * out_l * 0.03 * h,
        pose.neck - side * 0.04 * h, pose.neck + side * 0.04 * h,
    ])  # fmt: skip
    pelvis = np.array([
        waist + side * out_l * wh, lh + side * out_l * 0.035 * h, lh - up * 0.045 * h,
        rh - up * 0.045 * h, rh - side * out_l * 0.035 * h, waist - side * out_l * wh,
    ])  # fmt: skip
    return [("poly", torso, outfit.shirt), ("poly", pelvis, outfit.pants)]


def _head_shapes(pose: Pose, outfit: _Outfit, b: float) -> list[tuple]:
    """Neck, ears and head; from the front also hair, eyes, nose and mouth."""
    h, kp = pose.height, pose.keypoints
    skin, hair = outfit.skin, outfit.hair
    up, _ = _torso_axes(pose)
    shapes: list[tuple] = [("poly", _taper(pose.neck + up * 0.01 * h, pose.head_center,
                                           0.05 * h * b, 0.045 * h * b), skin)]  # fmt: skip
    ax, ay = pose.head_axes
    for ear in (kp[3], kp[4]):
        shapes.append(("ellipse", ear, (0.014 * h, 0.024 * h), pose.head_angle, skin * 0.85))
    face = skin if pose.front else hair
    shapes.append(("ellipse", pose.head_center, (ax, ay), pose.head_angle, face))
    if not pose.front:
        return shapes
    r_head = _rot(pose.head_angle)
    cap = pose.head_center + r_head @ np.array([0.0, -0.55 * ay])
    shapes.append(("ellipse", cap, (ax * 0.98, ay * 0.5), pose.head_angle, hair))
    eye_r = max(0.008 * h, 0.6)
    shapes.append(("circle", kp[1], eye_r, np.array([25.0, 25.0, 35.0])))
    shapes.append(("circle", kp[2], eye_r, np.array([25.0, 25.0, 35.0])))
    shapes.append(("circle", kp[0], max(0.009 * h, 0.5), skin * 0.6))
    mouth = kp[0] + r_head @ np.array([0.0, 0.3 * ay])
    shapes.append(("ellipse", mouth, (0.018 * h, 0.006 * h), pose.head_angle,
                   np.array([150.0, 50.0, 50.0])))  # fmt: skip
    return shapes


def _arm_shapes(pose: Pose, outfit: _Outfit, b: float) -> list[tuple]:
    """Both arms and hands, the left one (keypoints 5, 7, 9) striped."""
    h, kp = pose.height, pose.keypoints
    shapes: list[tuple] = []
    for (sh, el, wr), hand, striped in (((5, 7, 9), pose.hands[0], True),
                                        ((6, 8, 10), pose.hands[1], False)):
        shapes += _limb_shapes(kp[sh], kp[el], 0.062 * h * b, 0.05 * h * b, outfit.shirt,
                               striped)  # fmt: skip
        shapes += _limb_shapes(kp[el], kp[wr], 0.05 * h * b, 0.038 * h * b, outfit.forearm,
                               striped)  # fmt: skip
        shapes.append(("circle", kp[wr], 0.019 * h * b, outfit.forearm))
        shapes.append(("circle", hand, 0.03 * h * b, outfit.skin))
    return shapes


def figure_shapes(pose: Pose, rng: np.random.Generator) -> list[tuple]:
    """The drawing of a posed figure, back to front: ``(kind, geometry..., rgb colour)`` tuples.

    Legs, torso, head, then the arms (in front of the torso); only the colours are random.
    """
    b = pose.build * 1.45  # limbs and torso with volume (clothes): COCO-like mask/box ratios
    outfit = _sample_outfit(rng)
    return (_leg_shapes(pose, outfit, b) + _torso_shapes(pose, outfit, b)
            + _head_shapes(pose, outfit, b) + _arm_shapes(pose, outfit, b))


# ---------------------------------------------------------------------------------------------
# Drawing with cv2 fixed point
# ---------------------------------------------------------------------------------------------


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * _ONE).astype(np.int32)


def draw_shapes(canvas: np.ndarray | None, shapes: list[tuple], *,
                labels: np.ndarray | None = None, label: int = 1) -> None:
    """Draw ``shapes`` in place: in colour (anti-aliased) on ``canvas``, and, when given, as the
    value ``label`` (no anti-aliasing) on the integer image ``labels``."""
    import cv2

    aa = cv2.LINE_AA
    for shape in shapes:
        kind, colour = shape[0], shape[-1]
        col = tuple(float(c) for c in colour)
        targets = []
        if canvas is not None:
            targets.append((canvas, col, aa))
        if labels is not None and kind != "stripe":
            targets.append((labels, (label,), cv2.LINE_8))
        if kind in ("poly", "stripe"):
            pts = [_fixed(shape[1])]
            for img, c, lt in targets:
                cv2.fillPoly(img, pts, c, lt, _SHIFT)
        elif kind == "outline":
            pts = [_fixed(shape[1])]
            for img, c, lt in targets:
                cv2.polylines(img, pts, True, c, int(shape[2]), lt, _SHIFT)
        elif kind == "circle":
            c = _fixed(shape[1])
            centre, r = (int(c[0]), int(c[1])), max(int(round(shape[2] * _ONE)), 1)
            for img, cc, lt in targets:
                cv2.circle(img, centre, r, cc, -1, lt, _SHIFT)
        elif kind == "ellipse":
            c = _fixed(shape[1])
            centre = (int(c[0]), int(c[1]))
            axes = (max(int(round(shape[2][0] * _ONE)), 1), max(int(round(shape[2][1] * _ONE)), 1))
            for img, cc, lt in targets:
                cv2.ellipse(img, centre, axes, float(shape[3]), 0, 360, cc, -1, lt, _SHIFT)
        else:  # pragma: no cover - internal shapes only
            raise ValueError(
                f"shape kind: expected poly, stripe, outline, circle or ellipse, got {kind!r}")


# ---------------------------------------------------------------------------------------------
# Backgrounds with distractors
# ---------------------------------------------------------------------------------------------


def _smooth_field(rng: np.random.Generator, w: int, h: int, cell: int, channels: int = 1):
    import cv2

    small = rng.random((h // cell + 2, w // cell + 2, channels)).astype(np.float32)
    big = cv2.resize(small, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_LINEAR)
    big = big.reshape(big.shape[0], big.shape[1], channels)
    return big[cell : cell + h, cell : cell + w]


def _draw_distractor(rng: np.random.Generator, img: np.ndarray, kind: int, col: tuple,
                     p: np.ndarray, s: int) -> None:
    """One distractor shape of ``kind`` (0-5) at ``p``, ``s`` the image's shorter side."""
    import cv2

    if kind == 0:  # rectangle
        q = p + rng.uniform(-0.3, 0.3, 2) * s
        cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in q), col, -1)
    elif kind == 1:  # blob
        axes = (int(rng.uniform(0.02, 0.15) * s), int(rng.uniform(0.02, 0.12) * s))
        cv2.ellipse(img, tuple(int(v) for v in p), axes, float(rng.uniform(0, 180)), 0, 360,
                    col, -1, cv2.LINE_AA)  # fmt: skip
    elif kind == 2:  # lines
        q = p + rng.uniform(-0.6, 0.6, 2) * s
        cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), col,
                 int(rng.integers(1, 5)), cv2.LINE_AA)  # fmt: skip
    elif kind == 3:  # a limb-like capsule (a distractor: a limb without a person)
        q = p + rng.uniform(-0.2, 0.2, 2) * s
        wd = rng.uniform(0.02, 0.06) * s
        # never striped: stripes mark a person's left side
        shapes = _limb_shapes(p, q, wd, wd * 0.8, np.array(col), striped=False)
        shapes.append(("circle", q, wd * 0.4, np.array(col)))
        draw_shapes(img, shapes)
    elif kind == 4:  # polygon
        pts = p + rng.uniform(-0.15, 0.15, (int(rng.integers(3, 7)), 2)) * s
        cv2.fillPoly(img, [pts.astype(np.int32)], col, cv2.LINE_AA)
    else:  # a head-like disc with two dots
        r = rng.uniform(0.015, 0.05) * s
        draw_shapes(img, [("circle", p, r, np.array(col)),
                          ("circle", p + (r * 0.4, -r * 0.1), r * 0.15, np.array([30.0] * 3))])


def render_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A textured RGB background (uint8 [H, W, 3]) with distractor shapes of body-like colours."""
    import cv2

    c0, c1 = hsv_colour(rng, 0.2, 0.95), hsv_colour(rng, 0.2, 0.95)
    t = _smooth_field(rng, width, height, int(rng.integers(48, 160)))
    tex = _smooth_field(rng, width, height, int(rng.integers(3, 10)), 3)
    t = np.ascontiguousarray(t[..., 0])
    img = cv2.merge([t * np.float32(c1[i] - c0[i]) + np.float32(c0[i]) for i in range(3)])
    img += (np.ascontiguousarray(tex) - np.float32(0.5)) * np.float32(rng.uniform(10, 70))
    img = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    w, h = width, height
    s = min(w, h)
    for _ in range(int(rng.integers(4, 14))):
        kind = rng.integers(6)
        colour = _SKIN[rng.integers(len(_SKIN))] if rng.random() < 0.3 else hsv_colour(rng)
        col = tuple(float(c) for c in _jitter(rng, colour, 20))
        p = rng.uniform((0, 0), (w, h))
        _draw_distractor(rng, img, int(kind), col, p, s)
    return img
