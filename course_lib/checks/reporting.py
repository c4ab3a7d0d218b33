"""The shared reporting of the exercise checks: one verdict per exercise, the learner's function
called safely, arrays compared with a sentence per difference, values written readably, and the
likely mistake named by matching the answer against known wrong variants.

Used by every ``course_lib.checks`` module (the checks of notebooks 01-08).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


def fmt(value: Any, digits: int = 6) -> str:
    """``value`` written for a learner: numbers with ``digits`` significant digits, arrays and
    sequences as ``[1.5, 2]``, never numpy reprs such as ``np.float64(1.5)``."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}g}"
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return fmt(value.item(), digits)
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        inner = ", ".join(fmt(v, digits) for v in items[:8]) + (", ..." if len(items) > 8 else "")
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if value is None:
        return "None"
    return repr(value) if isinstance(value, str) else type(value).__name__


def same(got: Any, expected: Any, *, atol: float = 1e-5) -> bool:
    """True when ``got`` equals ``expected`` (numbers, nested sequences or arrays) within
    ``atol``; False for a different shape or anything that is not numeric."""
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    try:
        a = np.asarray(got, dtype=np.float64)
        b = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=0.0))


def diagnose(got: Any, variants: Iterable[tuple[Any, str]], *, atol: float = 1e-5) -> str | None:
    """The message of the first known wrong variant ``(its answer, what the mistake is)`` that
    ``got`` equals (:func:`same`), else None: how a check names the likely mistake."""
    for answer, message in variants:
        if same(got, answer, atol=atol):
            return message
    return None


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
            f"worst at index {tuple(int(i) for i in worst)}: got {fmt(got[worst])}, "
            f"expected {fmt(expected[worst])}"
        ]
    return []
