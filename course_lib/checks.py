"""Checks for the classroom exercises: say what is right, what is wrong and by how much.

Every exercise in notebooks 01-08 is followed by a cell that calls one ``check_*`` function of
this module with the learner's answer (usually a function). A check compares the answer with
``course_lib``'s reference on a few fixed cases and prints one line per finding. Under
``COURSE_STRICT=1`` a failing check raises :class:`ExerciseError` (CI runs the instructor
notebooks that way); otherwise it only prints, so a student notebook still runs top to bottom.

A check never passes vacuously: an unsolved stub (``raise NotImplementedError``) is reported
as "not implemented yet" and counts as a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.config import strict


class ExerciseError(AssertionError):
    """Raised by a failing check under ``COURSE_STRICT=1``."""


def report(exercise: str, problems: list[str], *, passed_message: str = "") -> bool:
    """Print the verdict of one exercise; raise under ``COURSE_STRICT=1`` when it failed.

    ``exercise`` names it (``"02.1 Gaussian target"``); ``problems`` holds one sentence per thing
    that is wrong (empty: passed). Returns True when the exercise passed.
    """
    if not problems:
        print(f"[PASS] {exercise}" + (f": {passed_message}" if passed_message else ""))
        return True
    print(f"[FAIL] {exercise}")
    for problem in problems:
        print(f"   - {problem}")
    if strict():
        raise ExerciseError(f"{exercise}: " + "; ".join(problems))
    return False


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """Call the learner's ``fn``; return ``(result, None)`` or ``(None, what went wrong)``."""
    if not callable(fn):
        return None, f"expected a function, got {type(fn).__name__}"
    try:
        return fn(*args, **kwargs), None
    except NotImplementedError:
        return None, "not implemented yet (the cell still raises NotImplementedError)"
    except Exception as exc:  # the learner's code may raise anything; report it, do not crash
        return None, f"raised {type(exc).__name__}: {exc}"


def compare_arrays(name: str, got: Any, expected: np.ndarray, *, atol: float = 1e-5) -> list[str]:
    """Problems found comparing ``got`` with ``expected``: type, shape, then values (worst entry)."""
    if hasattr(got, "detach"):  # a torch tensor
        got = got.detach().cpu().numpy()
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return [f"{name}: expected an array, got {type(got).__name__}"]
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return [f"{name}: shape {got.shape}, expected {expected.shape}"]
    if not np.all(np.isfinite(got)):
        return [f"{name}: contains NaN or inf at {int((~np.isfinite(got)).sum())} entries"]
    err = np.abs(got - expected)
    if err.size and err.max() > atol:
        worst = np.unravel_index(int(err.argmax()), err.shape)
        return [
            f"{name}: {int((err > atol).sum())} of {err.size} values differ by more than {atol:g}; "
            f"worst at index {tuple(int(i) for i in worst)}: got {got[worst]:.6g}, "
            f"expected {expected[worst]:.6g}"
        ]
    return []


# ---------------------------------------------------------------------------------------------
# 01_coco_keypoints.ipynb
# ---------------------------------------------------------------------------------------------


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
                  passed_message="mirrored and left/right swapped, unlabelled kept at 0")  # fmt: skip

# ---------------------------------------------------------------------------------------------
# 02_gaussian_heatmaps.ipynb
# ---------------------------------------------------------------------------------------------

def _check_gaussian_cases():
    return [((10.4, 7.6), (24, 32), 2.0), ((0.3, 30.8), (24, 32), 1.0), ((20.0, 3.49), (24, 16), 3.0),
            ((-4.0, 8.0), (16, 16), 2.0)]


def check_gaussian_target(gaussian_target) -> bool:
    """02.1: ``gaussian_target(x, y, *, heatmap_size, sigma)`` -> the ``[H, W]`` MSRA target of
    one keypoint (Gaussian on the rounded centre, value 1 there, truncated at 3 sigma)."""
    from course_lib.heatmaps import encode

    problems: list[str] = []
    for (x, y), size, sigma in _check_gaussian_cases():
        got, err = call(gaussian_target, x, y, heatmap_size=size, sigma=sigma)
        if err:
            problems.append(f"gaussian_target({x}, {y}, heatmap_size={size}, sigma={sigma}) {err}")
            break
        expected = encode(np.array([[x, y]]), np.array([2]), heatmap_size=size, sigma=sigma)[0][0]
        found = compare_arrays(f"gaussian_target({x}, {y}, heatmap_size={size}, sigma={sigma})",
                               got, expected, atol=1e-5)
        if found and np.shape(got) == expected.shape:
            g = np.asarray(got, dtype=np.float64)
            peak = np.unravel_index(int(g.argmax()), g.shape)
            want = np.unravel_index(int(expected.argmax()), expected.shape)
            if peak != want:
                found.append(f"its peak is at (row, col) {peak}, expected {want} "
                             "(the ROUNDED keypoint)")
            elif np.count_nonzero(g) != np.count_nonzero(expected):
                found.append(f"{np.count_nonzero(g)} non-zero pixels, expected "
                             f"{np.count_nonzero(expected)} (truncate at 3 sigma)")
        problems += found
    return report("02.1 MSRA Gaussian target", problems,
                  passed_message="value 1 at the rounded centre, exp(-d^2 / 2 sigma^2) around it")


def check_argmax_error(argmax_error) -> bool:
    """02.2: ``argmax_error(x, y, *, stride, sigma)`` -> the distance in INPUT pixels between a
    keypoint at input ``(x, y)`` and the argmax of its MSRA target on a heatmap of ``stride``,
    read back as ``argmax * stride``."""
    from course_lib.heatmaps import quantization_error

    problems: list[str] = []
    for x, y, stride, sigma in [(30.3, 33.6, 4, 2.0), (13.1, 7.9, 8, 1.0), (50.2, 61.7, 2, 2.0),
                                (21.0, 18.0, 4, 3.0)]:
        got, err = call(argmax_error, x, y, stride=stride, sigma=sigma)
        if err:
            problems.append(f"argmax_error({x}, {y}, stride={stride}, sigma={sigma}) {err}")
            break
        want = float(np.hypot(quantization_error(x, stride), quantization_error(y, stride)))
        try:
            value = float(got)
        except (TypeError, ValueError):
            problems.append(f"argmax_error: expected a number, got {type(got).__name__}")
            break
        if not abs(value - want) <= 1e-4:
            hint = " (in heatmap pixels? multiply by the stride)" if abs(
                value * stride - want) < 1e-4 else ""
            problems.append(f"argmax_error({x}, {y}, stride={stride}, sigma={sigma}) = "
                            f"{value:.4f}, expected {want:.4f}{hint}")
    return report("02.2 argmax quantization error", problems,
                  passed_message="the error is at most stride/2 per axis, whatever sigma")

# ---------------------------------------------------------------------------------------------
# 03_topdown_data.ipynb
# ---------------------------------------------------------------------------------------------

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

# ---------------------------------------------------------------------------------------------
# 04_resnet_deconv.ipynb
# ---------------------------------------------------------------------------------------------


def check_deconv_output_size(deconv_output_size: Callable) -> bool:
    """04.1: ``deconv_output_size(size, kernel, stride, padding, output_padding=0)`` -> the
    output length of ``nn.ConvTranspose2d`` along one axis (compared with torch itself)."""
    import torch

    problems: list[str] = []
    cases = [(8, 4, 2, 1, 0), (6, 4, 2, 1, 0), (7, 3, 2, 1, 1), (5, 3, 1, 1, 0), (4, 2, 2, 0, 0),
             (3, 5, 3, 2, 2)]
    for size, k, st, pad, opad in cases:
        got, err = call(deconv_output_size, size, k, st, pad, opad)
        if err:
            problems.append(f"deconv_output_size({size}, {k}, {st}, {pad}, {opad}) {err}")
            break
        layer = torch.nn.ConvTranspose2d(1, 1, k, stride=st, padding=pad, output_padding=opad)
        want = int(layer(torch.zeros(1, 1, size, size)).shape[-1])
        if got != want:
            hint = ""
            if got == (size + 2 * pad - k) // st + 1:
                hint = " (that is the output of an ordinary convolution; a transposed one inverts it)"
            problems.append(f"deconv_output_size({size}, {k}, {st}, {pad}, {opad}) = {got!r}, "
                            f"expected {want}{hint}")
    return report("04.1 transposed convolution output size", problems,
                  passed_message="(in - 1) * stride - 2 * padding + kernel + output_padding")


def check_head_parameters(head_parameters: Callable) -> bool:
    """04.2: ``head_parameters(in_channels, num_keypoints)`` -> the number of trainable
    parameters of SimpleBaseline's head (``course_lib.models.DeconvHead``)."""
    from course_lib.models import DeconvHead, count_parameters

    problems: list[str] = []
    for cin, k in [(2048, 17), (512, 17), (64, 5)]:
        got, err = call(head_parameters, cin, k)
        if err:
            problems.append(f"head_parameters({cin}, {k}) {err}")
            break
        want = count_parameters(DeconvHead(cin, k))
        if got != want:
            hint = ""
            if isinstance(got, (int, np.integer)):
                diff = int(got) - want
                if diff == 3 * 256:
                    hint = " (the transposed convolutions have no bias: BatchNorm follows them)"
                elif diff == -3 * 512:
                    hint = " (each BatchNorm has a scale and a shift per channel)"
                elif diff == -k:
                    hint = " (the final 1x1 convolution has a bias)"
            problems.append(f"head_parameters({cin}, {k}) = {got!r}, expected {want}{hint}")
    return report("04.2 parameters of the deconvolution head", problems,
                  passed_message="3 x (4x4 transposed conv + BN) + a 1x1 conv with bias")


def check_make_head(make_head: Callable) -> bool:
    """04.3: ``make_head(in_channels, num_keypoints)`` -> an ``nn.Module`` mapping
    ``[N, C, h, w]`` to ``[N, K, 8h, 8w]`` with SimpleBaseline's layers."""
    import torch

    problems: list[str] = []
    head, err = call(make_head, 64, 5)
    if err:
        return report("04.3 the deconvolution head", [f"make_head(64, 5) {err}"])
    if not isinstance(head, torch.nn.Module):
        return report("04.3 the deconvolution head",
                      [f"make_head: expected an nn.Module, got {type(head).__name__}"])
    try:
        out = head.eval()(torch.zeros(2, 64, 3, 4))
    except Exception as exc:  # the learner's module may fail in any way
        return report("04.3 the deconvolution head",
                      [f"the head failed on a [2, 64, 3, 4] input: {type(exc).__name__}: {exc}"])
    if tuple(out.shape) != (2, 5, 24, 32):
        problems.append(f"output shape {tuple(out.shape)} for input [2, 64, 3, 4], "
                        "expected (2, 5, 24, 32): three x2 upsamplings, then K maps")
    kinds = [type(m).__name__ for m in head.modules()]
    if kinds.count("ConvTranspose2d") != 3:
        problems.append(f"{kinds.count('ConvTranspose2d')} ConvTranspose2d layers, expected 3")
    if kinds.count("BatchNorm2d") != 3:
        problems.append(f"{kinds.count('BatchNorm2d')} BatchNorm2d layers, expected 3")
    for m in head.modules():
        if isinstance(m, torch.nn.ConvTranspose2d) and (m.kernel_size, m.stride, m.padding) != (
                (4, 4), (2, 2), (1, 1)):
            problems.append(f"a transposed convolution has kernel {m.kernel_size}, stride "
                            f"{m.stride}, padding {m.padding}; expected 4, 2, 1")
            break
    return report("04.3 the deconvolution head", problems,
                  passed_message="[N, C, h, w] -> [N, K, 8h, 8w]")


# ---------------------------------------------------------------------------------------------
# 05_training_mse.ipynb
# ---------------------------------------------------------------------------------------------


def check_masked_mse(masked_mse: Callable) -> bool:
    """05.1: ``masked_mse(pred, target, weights)`` (torch tensors ``[N, K, H, W]``, ``[N, K]``)
    -> the scalar mean over all N*K*H*W elements of ``weights * (pred - target) ** 2``."""
    import torch

    from course_lib.losses import keypoint_mse_loss

    problems: list[str] = []
    g = torch.Generator().manual_seed(5)
    for n, k, h, w in [(2, 3, 4, 5), (1, 17, 8, 6), (4, 2, 3, 3)]:
        pred = torch.rand(n, k, h, w, generator=g)
        target = torch.rand(n, k, h, w, generator=g)
        weights = (torch.rand(n, k, generator=g) > 0.4).float()
        weights[0, 0] = 0.0
        got, err = call(masked_mse, pred, target, weights)
        if err:
            problems.append(f"masked_mse on [{n}, {k}, {h}, {w}] {err}")
            break
        want = keypoint_mse_loss(pred, target, weights)
        found = compare_arrays(f"masked_mse on [{n}, {k}, {h}, {w}]", got, want.numpy(), atol=1e-6)
        if found:
            value = float(np.asarray(got.detach() if hasattr(got, "detach") else got))
            if abs(value - 0.5 * float(want)) < 1e-6:
                found.append("that is HRNet's 0.5 * MSE; here the factor 0.5 is left out")
            elif abs(value - float(((pred - target) ** 2).mean())) < 1e-6:
                found.append("the weights are ignored: multiply each keypoint's squared errors "
                             "by its weight")
        problems += found
    return report("05.1 MSE with target weights", problems,
                  passed_message="masked keypoints contribute nothing, the mean runs over all")


def check_warmup_lr(warmup_lr: Callable) -> bool:
    """05.2: ``warmup_lr(step, base_lr, warmup_steps)`` -> the learning rate of step ``step``
    (0-based): ``base_lr * (step + 1) / warmup_steps`` during the warm-up, ``base_lr`` after."""
    from course_lib.train import learning_rate

    problems: list[str] = []
    for base, warm in [(1e-3, 4), (2e-3, 50), (0.1, 1)]:
        for step in sorted({0, 1, warm - 1, warm, warm + 7, 3 * warm}):
            got, err = call(warmup_lr, step, base, warm)
            if err:
                problems.append(f"warmup_lr({step}, {base}, {warm}) {err}")
                break
            want = learning_rate(step, base_lr=base, warmup_steps=warm)
            if not isinstance(got, (int, float, np.floating)) or abs(float(got) - want) > 1e-12:
                hint = ""
                if isinstance(got, (int, float)) and abs(float(got) - base * step / warm) < 1e-12:
                    hint = " (step 0 would have a zero learning rate: count steps from 1)"
                problems.append(f"warmup_lr({step}, {base}, {warm}) = {got!r}, "
                                f"expected {want:.6g}{hint}")
        if problems:
            break
    return report("05.2 warm-up learning rate", problems,
                  passed_message="linear from base_lr / warmup_steps up to base_lr")


# ---------------------------------------------------------------------------------------------
# 06_decoding_dark.ipynb
# ---------------------------------------------------------------------------------------------


def _log_gaussian_patch(dx: float, dy: float, sxx: float, syy: float, sxy: float) -> np.ndarray:
    """5x5 log of a 2-D Gaussian centred at ``(dx, dy)`` from the patch centre (exactly quadratic)."""
    cov = np.array([[sxx, sxy], [sxy, syy]])
    inv = np.linalg.inv(cov)
    ys, xs = np.mgrid[-2:3, -2:3].astype(np.float64)
    d = np.stack([xs - dx, ys - dy], -1)
    return -0.5 * np.einsum("...i,ij,...j->...", d, inv, d)


def check_dark_step(dark_step) -> bool:
    """Exercise 06.1: ``dark_step(log_patch [5, 5]) -> (dx, dy)``, the DARK Taylor step with
    the course's rule (0 unless the Hessian is negative definite, each component clipped to
    [-1, 1])."""
    from course_lib.decode import taylor_step

    cases = {
        "round peak at (+0.3, -0.2)": _log_gaussian_patch(0.3, -0.2, 4.0, 4.0, 0.0),
        "elongated, tilted peak at (-0.4, 0.45)": _log_gaussian_patch(-0.4, 0.45, 6.0, 3.0, 1.5),
        "peak exactly on the pixel": _log_gaussian_patch(0.0, 0.0, 4.0, 4.0, 0.0),
        "far peak (the step must be clipped)": _log_gaussian_patch(1.8, -0.3, 4.0, 4.0, 0.0),
        "saddle (no maximum: no step)": np.add.outer(0.1 * np.arange(5) ** 2,
                                                     -0.1 * np.arange(5) ** 2 + 0.05 * np.arange(5)),
        "flat patch (no step)": np.full((5, 5), -3.0),
    }
    problems = []
    for name, patch in cases.items():
        got, err = call(dark_step, patch.copy())
        if err:
            problems.append(f"{name}: {err}")
            break
        problems += compare_arrays(f"{name}: (dx, dy)", got, taylor_step(patch), atol=1e-6)
    return report("06.1 DARK Taylor step", problems,
                  passed_message="exact on quadratic log-peaks, safe on saddles and flat maps")


def check_quarter_decode(quarter_decode) -> bool:
    """Exercise 06.2: ``quarter_decode(heatmap [H, W]) -> (x, y)``: argmax plus the quarter
    offset toward the higher neighbour, interior only."""
    from course_lib.decode import decode

    ys, xs = np.mgrid[0:12, 0:10].astype(np.float64)

    def gauss(cx, cy):
        return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0).astype(np.float32)

    tie = gauss(5.0, 6.0)
    tie[6, 4] = tie[6, 6]  # equal left and right neighbours: no shift in x
    cases = {
        "peak at (4.3, 6.8)": gauss(4.3, 6.8),
        "peak at (6.7, 3.2)": gauss(6.7, 3.2),
        "peak on the left border (x = 0)": gauss(-0.3, 5.6),
        "peak on the bottom border": gauss(3.6, 11.2),
        "equal neighbours": tie,
    }
    problems = []
    for name, hm in cases.items():
        got, err = call(quarter_decode, hm.copy())
        if err:
            problems.append(f"{name}: {err}")
            break
        expected, _ = decode(hm[None, None], method="quarter")
        problems += compare_arrays(f"{name}: (x, y)", got, expected[0, 0], atol=1e-6)
    return report("06.2 quarter offset", problems,
                  passed_message="quarter offsets, borders and ties as the reference")


def check_flip_back(flip_back) -> bool:
    """Exercise 06.3: ``flip_back(heatmaps_flipped [K, H, W], flip_pairs) -> [K, H, W]``:
    mirror, swap the pairs, shift one pixel right (MSRA)."""
    from course_lib.decode import flip_back as reference

    rng = np.random.default_rng(6)
    pairs = ((1, 2), (3, 4))
    maps = rng.random((5, 6, 7)).astype(np.float32)
    got, err = call(flip_back, maps.copy(), pairs)
    if err:
        return report("06.3 flip back", [err])
    expected = reference(maps[None], pairs, shift=True)[0]
    problems = compare_arrays("flipped-back heatmaps", got, expected, atol=1e-6)
    if problems:
        g = np.asarray(got.detach().cpu().numpy() if hasattr(got, "detach") else got)
        if g.shape == expected.shape:
            hints = {
                "the left/right channels are not swapped":
                    reference(maps[None], ((0, 0),), shift=True)[0],
                "the one-pixel shift to the right is missing":
                    reference(maps[None], pairs, shift=False)[0],
            }
            problems += [f"hint: {h}" for h, wrong in hints.items() if np.allclose(g, wrong)]
    return report("06.3 flip back", problems, passed_message="mirror, swap pairs, shift right")

# ---------------------------------------------------------------------------------------------
# 07_dark_cpp.ipynb
# ---------------------------------------------------------------------------------------------


def check_opencv_gaussian_kernel(opencv_gaussian_kernel: Callable) -> bool:
    """Exercise 07.1: ``opencv_gaussian_kernel(ksize) -> [ksize]`` float weights of
    ``cv2.getGaussianKernel(ksize, 0)`` for ``ksize >= 11`` (sigma from the kernel size)."""
    from course_lib.decode import gaussian_kernel_1d

    problems = []
    for ksize in (11, 13, 17, 25, 41):
        got, err = call(opencv_gaussian_kernel, ksize)
        if err:
            problems.append(f"ksize={ksize}: {err}")
            break
        found = compare_arrays(f"ksize={ksize}", got, gaussian_kernel_1d(ksize), atol=1e-7)
        if found and np.shape(got) == (ksize,):
            g = np.asarray(got, dtype=np.float64)
            if abs(g.sum() - 1.0) > 1e-6:
                found.append(f"ksize={ksize}: the weights sum to {g.sum():.6g}, expected 1")
            elif abs(g[ksize // 2 + 1] / g[ksize // 2] - np.exp(-0.5 / 2.0**2)) < 1e-3 and ksize != 11:
                found.append(f"ksize={ksize}: sigma looks fixed at 2; OpenCV derives it from ksize")
        problems += found
    return report("07.1 OpenCV's Gaussian kernel", problems,
                  passed_message="the weights cv2.GaussianBlur uses, to 1e-7")


def _argmax_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(71)
    plateau = np.zeros((1, 2, 6, 7), np.float32)
    plateau[0, 0, 2:4, 3:6] = 0.8  # a flat top: the first pixel in row-major order wins
    plateau[0, 1, 5, 6] = plateau[0, 1, 0, 6] = plateau[0, 1, 3, 0] = 0.5  # three equal maxima
    return {
        "random maps [3, 4, 9, 11]": rng.random((3, 4, 9, 11), dtype=np.float32),
        "plateaus and ties": plateau,
        "all negative": -rng.random((2, 2, 5, 6), dtype=np.float32),
    }


def check_first_argmax(first_argmax: Callable) -> bool:
    """Exercise 07.2: ``first_argmax(heatmaps [N, K, H, W]) -> (index [N, K], score [N, K])``
    in two passes (the max, then the first pixel equal to it), as numpy's argmax."""
    problems = []
    for name, maps in _argmax_cases().items():
        got, err = call(first_argmax, maps.copy())
        if err:
            problems.append(f"{name}: {err}")
            break
        if not (isinstance(got, tuple) and len(got) == 2):
            problems.append(f"{name}: expected a tuple (index, score), got {type(got).__name__}")
            break
        flat = maps.reshape(maps.shape[0], maps.shape[1], -1)
        problems += compare_arrays(f"{name}: index", got[0], flat.argmax(-1), atol=0)
        problems += compare_arrays(f"{name}: score", got[1], flat.max(-1), atol=0)
    return report("07.2 first maximum in two passes", problems,
                  passed_message="the first maximum in row-major order, ties included")


def _taylor_derivative_cases() -> tuple[list[str], np.ndarray]:
    """Named rows (dx, dy, dxx, dxy, dyy) covering maxima, saddles, flat maps and clipping."""
    named = {
        "round peak": (0.04, -0.03, -0.125, 0.0, -0.125),
        "tilted, elongated peak": (0.02, 0.05, -0.2, 0.06, -0.09),
        "peak on the pixel": (0.0, 0.0, -0.125, 0.0, -0.125),
        "far peak (step clipped to 1)": (0.5, -0.1, -0.125, 0.0, -0.125),
        "saddle (no step)": (0.05, 0.05, -0.1, 0.0, 0.1),
        "valley, dxx > 0 (no step)": (0.05, 0.05, 0.1, 0.0, 0.1),
        "flat (no step)": (0.0, 0.0, 0.0, 0.0, 0.0),
        "dxx < 0 but det < 0 (no step)": (0.01, 0.02, -0.1, 0.2, -0.1),
    }
    rng = np.random.default_rng(72)
    rand = rng.normal(0, 0.1, (64, 5))
    names = list(named) + [f"random case {i}" for i in range(len(rand))]
    return names, np.concatenate([np.array(list(named.values())), rand])


def _patches_from_derivatives(d: np.ndarray) -> np.ndarray:
    """5x5 log patches whose central differences are exactly the rows of ``d``."""
    patch = np.zeros((len(d), 5, 5))
    dx, dy, dxx, dxy, dyy = d.T
    patch[:, 2, 3], patch[:, 2, 1] = dx, -dx
    patch[:, 3, 2], patch[:, 1, 2] = dy, -dy
    patch[:, 2, 4] = patch[:, 2, 0] = 2 * dxx
    patch[:, 4, 2] = patch[:, 0, 2] = 2 * dyy
    patch[:, 3, 3] = patch[:, 1, 1] = dxy
    patch[:, 1, 3] = patch[:, 3, 1] = -dxy
    return patch


def check_taylor_step_cpp(source: str) -> bool:
    """Exercise 07.3: the Hessian solve of DARK in C++. ``source`` is a cppimport C++ file with
    ``PYBIND11_MODULE(taylor_step, m)`` defining ``taylor_step(d [M, 5]) -> [M, 2]`` for rows
    ``(dx, dy, dxx, dxy, dyy)``. Compiled here (gcc's errors are reported), then compared with
    ``course_lib.decode``: on derivative cases, and as the last step of DARK on heatmaps."""
    from course_lib import native
    from course_lib.decode import blur_heatmaps, decode, taylor_step

    title = "07.3 DARK's Hessian solve in C++"
    if not isinstance(source, str):
        return report(title, [f"expected the C++ source as a str, got {type(source).__name__}"])
    try:
        module = native.build_snippet(source, "taylor_step")
    except native.NativeBuildError as exc:
        return report(title, [f"the C++ source does not compile:\n      {str(exc).replace(chr(10), chr(10) + '      ')}"])
    except (native.NativeUnavailableError, ValueError) as exc:
        return report(title, [f"cannot build the C++ source here: {exc}"])
    names, d = _taylor_derivative_cases()
    got, err = call(module.taylor_step, d.copy())
    if err:
        return report(title, [f"taylor_step: {err}"])
    expected = np.asarray(taylor_step(_patches_from_derivatives(d)))
    problems = []
    got = np.asarray(got, dtype=np.float64)
    if got.shape != expected.shape:
        return report(title, [f"taylor_step: shape {got.shape}, expected {expected.shape}"])
    bad = np.flatnonzero(np.abs(got - expected).max(axis=1) > 1e-9)
    for i in bad[:4]:
        problems.append(f"{names[i]}: (dx, dy, dxx, dxy, dyy) = {tuple(np.round(d[i], 4))}: "
                        f"step {tuple(np.round(got[i], 4))}, expected {tuple(np.round(expected[i], 4))}")
    if len(bad) > 4:
        problems.append(f"... and {len(bad) - 4} more of {len(d)} cases")
    if not problems:  # end to end: argmax + your step on real heatmaps = course_lib.decode's DARK
        ys, xs = np.mgrid[0:64, 0:48]
        rng = np.random.default_rng(73)
        cx, cy = rng.uniform(3, 44, (17, 1, 1)), rng.uniform(3, 60, (17, 1, 1))
        maps = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0).astype(np.float32)[None]
        logs = np.log(np.maximum(blur_heatmaps(maps, 11), 1e-10))[0].astype(np.float64)
        base, _ = decode(maps, method="argmax")
        x, y = base[0, :, 0].astype(int), base[0, :, 1].astype(int)
        k = np.arange(17)
        deriv = np.stack([
            0.5 * (logs[k, y, x + 1] - logs[k, y, x - 1]),
            0.5 * (logs[k, y + 1, x] - logs[k, y - 1, x]),
            0.25 * (logs[k, y, x + 2] - 2 * logs[k, y, x] + logs[k, y, x - 2]),
            0.25 * (logs[k, y + 1, x + 1] - logs[k, y - 1, x + 1] - logs[k, y + 1, x - 1]
                    + logs[k, y - 1, x - 1]),
            0.25 * (logs[k, y + 2, x] - 2 * logs[k, y, x] + logs[k, y - 2, x]),
        ], -1)
        steps, err = call(module.taylor_step, deriv)
        if err:
            return report(title, [f"taylor_step on heatmap derivatives: {err}"])
        dark, _ = decode(maps, method="dark")
        problems += compare_arrays("argmax + your step vs course_lib.decode DARK (heatmap px)",
                                   base[0] + np.asarray(steps), dark[0], atol=1e-4)
    return report(title, problems, passed_message=f"{len(d)} derivative cases exact, and DARK on "
                  "17 heatmaps equals course_lib.decode to 1e-4 px")


# ---------------------------------------------------------------------------------------------
# 08_oks_evaluation.ipynb
# ---------------------------------------------------------------------------------------------


def _oks_cases() -> list[tuple]:
    """(pred, gt, visible, area) cases for 08.1: exact, shifted, partly unlabelled, tiny area."""
    rng = np.random.default_rng(8)
    gt = rng.uniform(20, 120, (17, 2))
    all_visible = np.full(17, 2)
    some = np.where(rng.random(17) < 0.4, 0, rng.choice([1, 2], 17))
    some[0] = 2
    return [
        (gt.copy(), gt, all_visible, 5000.0),
        (gt + rng.normal(0, 3, gt.shape), gt, all_visible, 5000.0),
        (gt + rng.normal(0, 3, gt.shape), gt, some, 5000.0),
        (gt + rng.normal(0, 3, gt.shape), gt, some, 400.0),
    ]


def check_oks(oks: Callable) -> bool:
    """08.1: ``oks(pred [17, 2], gt [17, 2], visible [17], area) -> float`` (COCO's OKS)."""
    from course_lib.evaluate import oks as reference

    problems: list[str] = []
    for i, (pred, gt, visible, area) in enumerate(_oks_cases()):
        got, err = call(oks, pred.copy(), gt.copy(), visible.copy(), area)
        if err:
            problems.append(f"case {i}: {err}")
            break
        expected = reference(pred, gt, visible, area)
        try:
            value = float(got)
        except (TypeError, ValueError):
            problems.append(f"case {i}: expected a number, got {type(got).__name__}")
            break
        if not abs(value - expected) <= 1e-6:
            hint = ""
            if i == 2:
                hint = " (only keypoints with v > 0 count: average over those)"
            elif i == 3:
                hint = " (the scale is the area itself: s² = area)"
            problems.append(f"case {i}: got {value:.6f}, expected {expected:.6f}{hint}")
    return report("08.1 OKS of one pair", problems,
                  passed_message="sigmas, area and unlabelled keypoints handled as COCO does")


def _matching_cases() -> list[tuple[np.ndarray, float]]:
    """(oks_matrix [D, G] with detections sorted by score, threshold) for 08.2 (no ties)."""
    return [
        (np.array([[0.9, 0.1], [0.2, 0.8]]), 0.5),  # each detection its own person
        (np.array([[0.7, 0.6], [0.9, 0.3]]), 0.5),  # the first detection takes the contested one
        (np.array([[0.7, 0.6], [0.9, 0.3]]), 0.75),  # at 0.75 only the second one matches
        (np.array([[0.4, 0.3], [0.55, 0.2], [0.95, 0.85]]), 0.5),  # below threshold: unmatched
        (np.zeros((0, 2)), 0.5),  # no detections
    ]


def check_match_image(match_image: Callable) -> bool:
    """08.2: ``match_image(oks_matrix [D, G], threshold) -> [D]`` matched column or -1."""
    from course_lib.evaluate import match_image as reference

    problems: list[str] = []
    for i, (matrix, thr) in enumerate(_matching_cases()):
        got, err = call(match_image, matrix.copy(), thr)
        if err:
            problems.append(f"case {i}: {err}")
            break
        expected = reference(matrix, thr)[0]
        try:
            got_arr = np.asarray(got, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError):
            problems.append(f"case {i}: expected a list of ints, got {type(got).__name__}")
            break
        if got_arr.shape != expected.shape or not np.array_equal(got_arr, expected):
            problems.append(f"case {i} (threshold {thr}): got {got_arr.tolist()}, expected "
                            f"{expected.tolist()} for OKS {matrix.tolist()}")
    return report("08.2 greedy matching of one image", problems,
                  passed_message="best free person first, each person matched at most once")


def check_average_precision(average_precision: Callable) -> bool:
    """08.3: ``average_precision(precision, recall) -> float`` (COCO's 101-point AP)."""
    from course_lib.evaluate import average_precision as reference
    from course_lib.evaluate import precision_recall

    cases = [precision_recall(flags, n) for flags, n in (
        ([True, False, True], 2),
        ([True, True, True, True], 4),
        ([False, True, False, True, True], 5),
        ([True, False, False, True, False, True, True], 6),
    )]  # fmt: skip
    problems: list[str] = []
    for i, (precision, recall) in enumerate(cases):
        got, err = call(average_precision, list(precision), list(recall))
        if err:
            problems.append(f"case {i}: {err}")
            break
        expected = reference(precision, recall)
        try:
            value = float(got)
        except (TypeError, ValueError):
            problems.append(f"case {i}: expected a number, got {type(got).__name__}")
            break
        if not abs(value - expected) <= 1e-9:
            raw = float(np.mean(np.interp(np.linspace(0, 1, 101), recall, precision)))
            hint = ""
            if abs(value - float(np.trapezoid(precision, recall))) < 1e-9 or abs(value - raw) < 1e-9:
                hint = " (sample the precision envelope at the 101 recall points, no integration)"
            problems.append(f"case {i}: got {value:.6f}, expected {expected:.6f}{hint}")
    return report("08.3 AP from precision and recall", problems,
                  passed_message="envelope + 101 recall points, as COCO computes it")
