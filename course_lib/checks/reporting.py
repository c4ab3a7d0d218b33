"""The shared reporting of the exercise checks: one verdict per exercise, the learner's function
called safely, arrays compared with a sentence per difference.

Used by every ``course_lib.checks`` module (the checks of notebooks 01-08).
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
    """Problems found comparing ``got`` with ``expected``: type, shape, then values (worst
    entry)."""
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
