"""The checks of 07_dark_cpp.ipynb pass on the reference solutions and fail on stubs and on
plausible wrong answers (printing what is wrong)."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks, native

TAYLOR_STEP_CPP = r"""// cppimport
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <algorithm>
namespace py = pybind11;

// rows (dx, dy, dxx, dxy, dyy) -> rows (step_x, step_y) = -H^{-1} g, clipped to [-1, 1],
// (0, 0) where the Hessian is not negative definite.
py::array_t<double> taylor_step(py::array_t<double, py::array::c_style | py::array::forcecast> d) {
    const py::ssize_t rows = d.shape(0);
    py::array_t<double> out({rows, static_cast<py::ssize_t>(2)});
    const double* in = d.data();
    double* o = out.mutable_data();
    for (py::ssize_t i = 0; i < rows; ++i) {
        const double dx = in[5 * i], dy = in[5 * i + 1];
        const double dxx = in[5 * i + 2], dxy = in[5 * i + 3], dyy = in[5 * i + 4];
        double sx = 0.0, sy = 0.0;
        // ### BEGIN SOLUTION
        const double det = dxx * dyy - dxy * dxy;
        if (dxx < 0.0 && det > 0.0) {
            sx = std::clamp(-(dyy * dx - dxy * dy) / det, -1.0, 1.0);
            sy = std::clamp(-(dxx * dy - dxy * dx) / det, -1.0, 1.0);
        }
        // ### END SOLUTION
        o[2 * i] = sx;
        o[2 * i + 1] = sy;
    }
    return out;
}

PYBIND11_MODULE(taylor_step, m) { m.def("taylor_step", &taylor_step); }
/*
<%
setup_pybind11(cfg)
cfg['extra_compile_args'] += ['-std=c++17', '-O0', '-g0']
%>
*/
"""


def _solution(src: str, body: str) -> str:
    start = src.index("        // ### BEGIN SOLUTION")
    end = src.index("// ### END SOLUTION") + len("// ### END SOLUTION")
    return src[:start] + body + src[end:]


@pytest.fixture(autouse=True)
def _not_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "0")


def opencv_gaussian_kernel(ksize):
    sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    x = np.arange(ksize) - (ksize - 1) / 2
    w = np.exp(-x * x / (2 * sigma * sigma))
    return w / w.sum()


def test_gaussian_kernel_check(capsys):
    assert checks.check_opencv_gaussian_kernel(opencv_gaussian_kernel)

    def stub(ksize):
        raise NotImplementedError

    def fixed_sigma(ksize):
        x = np.arange(ksize) - (ksize - 1) / 2
        w = np.exp(-x * x / 8.0)
        return w / w.sum()

    def unnormalised(ksize):
        return opencv_gaussian_kernel(ksize) * 2

    assert not checks.check_opencv_gaussian_kernel(stub)
    assert "not implemented" in capsys.readouterr().out
    assert not checks.check_opencv_gaussian_kernel(fixed_sigma)
    assert "sigma looks fixed" in capsys.readouterr().out
    assert not checks.check_opencv_gaussian_kernel(unnormalised)
    assert "sum to 2" in capsys.readouterr().out


def test_gaussian_kernel_check_raises_when_strict(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT", "1")
    with pytest.raises(checks.ExerciseError):
        checks.check_opencv_gaussian_kernel(lambda k: np.ones(k) / k)


def first_argmax(heatmaps):
    flat = heatmaps.reshape(heatmaps.shape[0], heatmaps.shape[1], -1)
    score = flat.max(axis=-1)
    return (flat == score[..., None]).argmax(axis=-1), score


def test_first_argmax_check(capsys):
    assert checks.check_first_argmax(first_argmax)

    def last_max(heatmaps):
        flat = heatmaps.reshape(heatmaps.shape[0], heatmaps.shape[1], -1)
        rev = flat[..., ::-1].argmax(-1)
        return flat.shape[-1] - 1 - rev, flat.max(-1)

    def stub(heatmaps):
        raise NotImplementedError

    assert not checks.check_first_argmax(last_max)
    assert "plateaus and ties: index" in capsys.readouterr().out
    assert not checks.check_first_argmax(stub)
    assert "not implemented" in capsys.readouterr().out
    assert not checks.check_first_argmax(lambda h: first_argmax(h)[0])
    assert "expected a tuple" in capsys.readouterr().out


@pytest.mark.skipif(not native.available(), reason="no C++ compiler here")
def test_taylor_step_cpp_check(capsys):
    assert checks.check_taylor_step_cpp(TAYLOR_STEP_CPP)
    assert "[PASS]" in capsys.readouterr().out
    stub = _solution(TAYLOR_STEP_CPP, '        #error "Exercise 07.3: write your code in taylor_step here"')
    assert not checks.check_taylor_step_cpp(stub)
    out = capsys.readouterr().out
    assert "does not compile" in out and "Exercise 07.3: write your code in taylor_step here" in out
    unclipped = _solution(TAYLOR_STEP_CPP, """
        const double det = dxx * dyy - dxy * dxy;
        if (dxx < 0.0 && det > 0.0) {
            sx = -(dyy * dx - dxy * dy) / det;
            sy = -(dxx * dy - dxy * dx) / det;
        }""")
    assert not checks.check_taylor_step_cpp(unclipped)
    assert "far peak (step clipped to 1)" in capsys.readouterr().out
    assert not checks.check_taylor_step_cpp(42)


# --- mutants: every plausible wrong answer fails, with a message naming its mistake ----------


def kernel_variant(*, sigma=None, centre=None, two=2.0, square=True, normalise=True):
    def kernel(ksize):
        s = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8 if sigma is None else sigma(ksize)
        x = np.arange(ksize) - ((ksize - 1) / 2 if centre is None else centre(ksize))
        w = np.exp(-x * x / (two * (s * s if square else s)))
        return w / w.sum() if normalise else w
    return kernel


KERNEL_MUTANTS = {
    "fixed sigma": (kernel_variant(sigma=lambda k: 2.0), "sigma looks fixed"),
    "not normalised": (kernel_variant(normalise=False), "not normalised"),
    "ksize instead of ksize - 1": (kernel_variant(sigma=lambda k: 0.3 * (k * 0.5 - 1) + 0.8),
                                   "instead of ksize - 1"),
    "off-centre taps": (kernel_variant(centre=lambda k: k // 2 + 0.5), "not centred"),
    "no 2 in the exponent": (kernel_variant(two=1.0), "the 2 is missing"),
    "sigma not squared": (kernel_variant(square=False), "not squared"),
}


@pytest.mark.parametrize("name", KERNEL_MUTANTS)
def test_gaussian_kernel_check_rejects_mutant(name, capsys):
    assert checks.check_opencv_gaussian_kernel(kernel_variant())
    capsys.readouterr()
    mutant, message = KERNEL_MUTANTS[name]
    assert not checks.check_opencv_gaussian_kernel(mutant)
    out = capsys.readouterr().out
    assert message in out and "np.float" not in out, out


def _flat(h):
    return h.reshape(h.shape[0], h.shape[1], -1)


def argmax_from_zero(heatmaps):  # best = 0, index = 0, then "if v > best"
    flat = _flat(heatmaps)
    score = np.maximum(flat.max(-1), 0.0)
    index = np.where(flat.max(-1) > 0, (flat == flat.max(-1)[..., None]).argmax(-1), 0)
    return index, score


def argmax_column_major(heatmaps):
    index, score = first_argmax(heatmaps)
    y, x = np.divmod(index, heatmaps.shape[3])
    return x * heatmaps.shape[2] + y, score


def argmax_batch_index(heatmaps):
    index, score = first_argmax(heatmaps)
    n, k, h, w = heatmaps.shape
    return index + (np.arange(n * k) * h * w).reshape(n, k), score


def argmax_last(heatmaps):
    flat = _flat(heatmaps)
    return flat.shape[-1] - 1 - flat[..., ::-1].argmax(-1), flat.max(-1)


ARGMAX_MUTANTS = {
    "last maximum": (argmax_last, "LAST one"),
    "maximum started at 0": (argmax_from_zero, "started at 0"),
    "x * H + y": (argmax_column_major, "not x * H + y"),
    "index into the batch": (argmax_batch_index, "start of each map"),
    "(score, index)": (lambda h: first_argmax(h)[::-1], "swapped"),
    "index only": (lambda h: first_argmax(h)[0], "expected a tuple"),
}


@pytest.mark.parametrize("name", ARGMAX_MUTANTS)
def test_first_argmax_check_rejects_mutant(name, capsys):
    mutant, message = ARGMAX_MUTANTS[name]
    assert not checks.check_first_argmax(mutant)
    out = capsys.readouterr().out
    assert message in out and "np.float" not in out and "np.int" not in out, out


def _step_rows(d, *, sign=-1.0, clip=True, rule="course", transpose=False, swap=False):
    dx, dy, dxx, dxy, dyy = np.asarray(d, dtype=np.float64).T
    det = dxx * dyy - dxy * dxy
    ok = {"course": (dxx < 0) & (det > 0), "any": det != 0, "det": det > 0}[rule]
    safe = np.where(det != 0, det, 1.0)
    a, b = (dxx, dyy) if transpose else (dyy, dxx)
    sx, sy = sign * (a * dx - dxy * dy) / safe, sign * (b * dy - dxy * dx) / safe
    out = np.where(ok[:, None], np.stack([sy, sx] if swap else [sx, sy], -1), 0.0)
    return np.clip(out, -1, 1) if clip else out


STEP_MUTANTS = {  # the rows a compiled taylor_step would return (checked without compiling)
    "no clip": (dict(clip=False), "not clipped"),
    "no negative-definite test": (dict(rule="any"), "not negative definite"),
    "det > 0 only": (dict(rule="det"), "dxx < 0 too"),
    "wrong sign": (dict(sign=1.0), "wrong sign"),
    "inverse transposed": (dict(transpose=True), "dxx and dyy are swapped"),
    "sx and sy swapped": (dict(swap=True), "sx and sy are swapped"),
}


@pytest.mark.parametrize("name", STEP_MUTANTS)
def test_taylor_step_cases_reject_mutant(name):
    from course_lib.checks import nb07_cpp

    names, d = nb07_cpp._taylor_derivative_cases()
    assert nb07_cpp._derivative_case_problems(_step_rows, names, d) == []
    options, message = STEP_MUTANTS[name]
    problems = nb07_cpp._derivative_case_problems(lambda rows: _step_rows(rows, **options),
                                                  names, d)
    text = "\n".join(problems)
    assert problems and message in text, text
    assert "np.float" not in text, text
