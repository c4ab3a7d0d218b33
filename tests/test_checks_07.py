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
