"""The C++ decoder (cpp/dark_decoder.cpp via course_lib.native) equals the numpy one.

argmax and quarter must be bit-identical to ``course_lib.decode`` (numpy backend), DARK within
1e-5 heatmap pixel; degenerate input never crashes and never modifies the input; concurrent
first imports of a clean build all succeed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from course_lib import dark, native
from course_lib import decode as py_decode

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not native.available(), reason="no C++ compiler / module here")


def gaussian_maps(rng, n, k, h, w, *, sigma=(2.0, 2.0), angle=0.0, noise=0.0, border=False):
    """Gaussian peaks (amplitude 0.2-1) at random sub-pixel centres; float32 [n, k, h, w]."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    if border:  # centres on, next to and just outside the edges
        cx = rng.choice([-1.3, 0.0, 0.4, 1.0, 1.6, 2.0, 2.5, w - 3.2, w - 2.0, w - 1.4, w - 1.0, w + 0.5], (n, k, 1, 1))
        cy = rng.choice([-1.0, 0.0, 0.7, 1.0, 2.0, 2.2, h - 3.0, h - 2.0, h - 1.2, h - 1.0, h + 0.0], (n, k, 1, 1))
    else:
        cx = rng.uniform(0, w - 1, (n, k, 1, 1))
        cy = rng.uniform(0, h - 1, (n, k, 1, 1))
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * (xs - cx) + s * (ys - cy), -s * (xs - cx) + c * (ys - cy)
    amp = rng.uniform(0.2, 1.0, (n, k, 1, 1))
    maps = amp * np.exp(-(u**2) / (2 * sigma[0] ** 2) - v**2 / (2 * sigma[1] ** 2))
    if noise:
        maps = maps + rng.normal(0.0, noise, maps.shape)
    return maps.astype(np.float32)


CASES = {
    "realistic": dict(n=8, k=17, h=64, w=48),
    "border": dict(n=8, k=17, h=64, w=48, border=True),
    "anisotropic": dict(n=8, k=17, h=64, w=48, sigma=(1.2, 3.5), angle=0.6),
    "noisy": dict(n=8, k=17, h=32, w=24, noise=0.05),
    "very_noisy": dict(n=8, k=17, h=32, w=24, noise=0.3),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", ["argmax", "quarter", "dark"])
def test_cpp_equals_numpy_decoder(case, method):
    rng = np.random.default_rng(sorted(CASES).index(case))
    maps = gaussian_maps(rng, **CASES[case])
    before = maps.copy()
    coords, scores = native.decode(maps, method, 11, num_threads=1)
    ref_coords, ref_scores = py_decode.decode(maps, method=method, backend="numpy")
    assert coords.dtype == np.float32 and coords.shape == (maps.shape[0], maps.shape[1], 2)
    assert scores.dtype == np.float32 and scores.shape == maps.shape[:2]
    np.testing.assert_array_equal(scores, ref_scores)
    if method == "dark":
        np.testing.assert_allclose(coords, ref_coords, atol=1e-5, rtol=0)
    else:
        np.testing.assert_array_equal(coords, ref_coords)
    np.testing.assert_array_equal(maps, before)  # the input is never modified


def test_quarter_border_rule_is_hrnets():
    """Both axes shift only when 1 < x < W-1 and 1 < y < H-1 (HRNet's get_final_preds), as the
    numpy decoder: the pinned border cases of tests/test_decode.py, bit for bit."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_decode import quarter_border_maps

    maps, expected = quarter_border_maps()
    coords, _ = native.decode(maps, "quarter", num_threads=1)
    np.testing.assert_array_equal(coords[0], expected)


def test_dark_window_equals_full_map_blur():
    """Blurring only a window around the peak = MMPose's full-map cv2 blur (scale cancels)."""
    rng = np.random.default_rng(3)
    maps = gaussian_maps(rng, 4, 17, 64, 48, noise=0.01)
    full = dark.dark_loop(maps)  # cv2.GaussianBlur of the whole zero-padded map, float32
    coords, _ = native.decode(maps, "dark", 11, num_threads=1)
    np.testing.assert_allclose(coords, full, atol=1e-4, rtol=0)
    moved = np.abs(coords - np.round(coords)).max()
    assert moved > 0.1  # DARK really refined (not just the argmax)


def test_dark_is_scale_invariant_until_the_floor():
    rng = np.random.default_rng(4)
    maps = gaussian_maps(rng, 2, 17, 64, 48)
    a, _ = native.decode(maps, "dark", 11, num_threads=1)
    b, _ = native.decode(maps * np.float32(1000.0), "dark", 11, num_threads=1)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_known_subpixel_peak():
    """A Gaussian of sigma 2 centred at (20.3, 30.6): DARK recovers it to ~0.01 px."""
    ys, xs = np.mgrid[0:64, 0:48]
    hm = np.exp(-((xs - 20.3) ** 2 + (ys - 30.6) ** 2) / 8.0).astype(np.float32)[None, None]
    (x, y), = native.decode(hm, "dark", 11, num_threads=1)[0][0]
    assert abs(x - 20.3) < 0.02 and abs(y - 30.6) < 0.02
    (qx, qy), = native.decode(hm, "quarter", num_threads=1)[0][0]
    assert (qx, qy) == (20.25, 30.75)
    (ax, ay), = native.decode(hm, "argmax", num_threads=1)[0][0]
    assert (ax, ay) == (20.0, 31.0)


def test_first_maximum_and_non_positive_marker():
    hm = np.zeros((1, 4, 6, 7), np.float32)
    hm[0, 0, 1, 0] = hm[0, 0, 4, 5] = 1.0  # a tie: the first in row-major order wins
    hm[0, 1] = -0.5  # all negative: no keypoint
    hm[0, 2] = 0.25  # constant positive: the first pixel
    # hm[0, 3] all zeros: no keypoint, score 0
    for method in ("argmax", "quarter", "dark"):
        coords, scores = native.decode(hm, method, num_threads=1)
        assert coords[0, 0].tolist() == [0.0, 1.0] and scores[0, 0] == 1.0
        assert coords[0, 1].tolist() == [-1.0, -1.0] and scores[0, 1] == np.float32(-0.5)
        assert coords[0, 2].tolist() == [0.0, 0.0] and scores[0, 2] == np.float32(0.25)
        assert coords[0, 3].tolist() == [-1.0, -1.0] and scores[0, 3] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises_value_error(bad):
    maps = gaussian_maps(np.random.default_rng(0), 2, 3, 16, 12)
    maps[1, 2, 5, 7] = bad
    before = maps.copy()
    with pytest.raises(ValueError, match="heatmaps"):
        native.decode(maps, "dark", num_threads=1)
    np.testing.assert_array_equal(maps, before)


def test_extension_itself_rejects_non_finite_and_bad_shapes():
    ext = native.load_extension()
    maps = np.zeros((1, 1, 40, 40), np.float32)
    maps[0, 0, 39, 39] = np.nan  # in the scalar tail of the SIMD loop
    with pytest.raises(ValueError, match="NaN or inf"):
        ext.decode(maps, "argmax", 11, 1)
    with pytest.raises(ValueError, match="4-D"):
        ext.decode(np.zeros((3, 4), np.float32), "argmax", 11, 1)
    with pytest.raises(ValueError, match="method"):
        ext.decode(np.zeros((1, 1, 5, 5), np.float32), "soft", 11, 1)
    with pytest.raises(ValueError, match="blur_kernel"):
        ext.decode(np.zeros((1, 1, 5, 5), np.float32), "dark", 4, 1)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 2, 1, 1), (2, 2, 3, 7), (2, 2, 7, 3), (1, 1, 5, 5), (1, 1, 2, 9)])
@pytest.mark.parametrize("method", ["argmax", "quarter", "dark"])
def test_small_maps_follow_the_interior_rules(shape, method):
    maps = np.random.default_rng(5).random(shape, dtype=np.float32)
    coords, scores = native.decode(maps, method, num_threads=1)
    ref_coords, ref_scores = py_decode.decode(maps, method=method)
    np.testing.assert_array_equal(scores, ref_scores)
    np.testing.assert_allclose(coords, ref_coords, atol=1e-5, rtol=0)
    if method == "dark" and (shape[2] < 5 or shape[3] < 5):  # never refined: the argmax
        np.testing.assert_array_equal(coords, native.decode(maps, "argmax")[0])


def test_empty_batch_and_no_keypoints():
    for shape in [(0, 17, 64, 48), (3, 0, 64, 48)]:
        coords, scores = native.decode(np.zeros(shape, np.float32), "dark")
        assert coords.shape == shape[:2] + (2,) and scores.shape == shape[:2]
        assert coords.dtype == np.float32 and scores.dtype == np.float32


def test_bad_arguments_raise_clear_errors():
    maps = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"heatmaps: expected a 4-D array"):
        native.decode(np.zeros((3, 4), np.float32), "dark")
    with pytest.raises(ValueError, match="heatmaps: expected H >= 1"):
        native.decode(np.zeros((1, 1, 0, 4), np.float32), "dark")
    with pytest.raises(ValueError, match="heatmaps: expected a real-valued array"):
        native.decode(np.zeros((1, 1, 4, 4), np.complex64), "dark")
    with pytest.raises(ValueError, match="method"):
        native.decode(maps, "soft_argmax")
    for kernel in (0, 4, -3, 2.0, True):
        with pytest.raises(ValueError, match="blur_kernel"):
            native.decode(maps, "dark", kernel)
    with pytest.raises(ValueError, match="num_threads"):
        native.decode(maps, "dark", 11, num_threads=-1)


def test_float64_non_contiguous_and_read_only_input():
    rng = np.random.default_rng(6)
    maps = gaussian_maps(rng, 4, 5, 64, 48, noise=0.02)
    expected = native.decode(maps, "dark", num_threads=1)
    as64 = maps.astype(np.float64)
    before64 = as64.copy()
    for variant in (
        as64,  # float64: converted
        np.asfortranarray(maps),  # Fortran order
        np.ascontiguousarray(maps.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2),  # swapped strides
        np.repeat(maps, 2, axis=3)[..., ::2],  # a strided view
    ):
        got = native.decode(variant, "dark", num_threads=1)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(as64, before64)
    frozen = maps.copy()
    frozen.flags.writeable = False
    np.testing.assert_array_equal(native.decode(frozen, "dark", num_threads=1)[0], expected[0])


def test_torch_tensor_input():
    torch = pytest.importorskip("torch")
    maps = gaussian_maps(np.random.default_rng(7), 2, 17, 32, 24)
    got = native.decode(torch.from_numpy(maps), "dark", num_threads=1)
    np.testing.assert_array_equal(got[0], native.decode(maps, "dark", num_threads=1)[0])


def test_threads_give_identical_results(monkeypatch):
    maps = gaussian_maps(np.random.default_rng(8), 16, 17, 32, 24, noise=0.05)
    one = native.decode(maps, "dark", num_threads=1)
    two = native.decode(maps, "dark", num_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    monkeypatch.setenv("COURSE_NATIVE_THREADS", "1")
    assert native.default_threads() == 1
    np.testing.assert_array_equal(native.decode(maps, "dark")[0], one[0])
    monkeypatch.setenv("COURSE_NATIVE_THREADS", "x")
    with pytest.raises(ValueError, match="COURSE_NATIVE_THREADS"):
        native.default_threads()


def test_gaussian_kernel_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    ext = native.load_extension()
    for k in range(1, 32, 2):
        ours = np.asarray(ext.gaussian_kernel(k), np.float32)
        np.testing.assert_allclose(ours, cv2.getGaussianKernel(k, 0).ravel(), rtol=0, atol=2e-7)
        np.testing.assert_allclose(native.gaussian_kernel(k), ours, rtol=0, atol=1e-7)


def test_decode_cpp_backend_uses_the_extension():
    maps = gaussian_maps(np.random.default_rng(9), 2, 17, 64, 48)
    got = py_decode.decode(maps, method="dark", backend="cpp")
    np.testing.assert_array_equal(got[0], native.decode(maps, "dark")[0])


def test_build_errors_keep_the_compiler_error_lines():
    log = textwrap.dedent("""\
        building 'x' extension
        /tmp/a/.rendered.x.cpp: In function 'int f()':
        /tmp/a/.rendered.x.cpp:12:5: error: 'y' was not declared in this scope
        error: command '/usr/bin/g++' failed with exit code 1
        """)
    lines = native.build_errors(log)
    assert lines == ["/tmp/a/x.cpp:12:5: error: 'y' was not declared in this scope"]
    assert native.build_errors("nothing here\nat all") == ["nothing here", "at all"]


SNIPPET = """// cppimport
#include <pybind11/pybind11.h>
int twice(int x) { return 2 * x; }
PYBIND11_MODULE(snippet, m) { m.def("twice", &twice); }
/*
<%
setup_pybind11(cfg)
cfg['extra_compile_args'] += ['-O0', '-g0']
%>
*/
"""


def test_snippet_builds_and_a_compile_error_is_readable():
    # the default folder (private, per user: native.snippet_folder()) caches builds: later runs
    # compile nothing
    module = native.build_snippet(SNIPPET, "snippet")
    assert module.twice(21) == 42
    assert native.build_snippet(SNIPPET, "snippet") is module
    broken = SNIPPET.replace("return 2 * x; }", '\n#error "Exercise 07.3: write your code here"\n}')
    for _ in range(2):  # the second answer comes from the remembered failure
        with pytest.raises(native.NativeBuildError) as info:
            native.build_snippet(broken, "snippet")
        message = str(info.value)
        assert "error" in message and "Exercise 07.3: write your code here" in message
        assert ".rendered." not in message and "Command" not in message
    with pytest.raises(ValueError, match="PYBIND11_MODULE"):
        native.build_snippet(SNIPPET, "other_name")


def test_disabled_extension_falls_back(tmp_path):
    code = textwrap.dedent("""
        import warnings, numpy as np
        from course_lib import native, decode
        assert native.available() is False and native.available() is False
        try:
            native.load_extension()
        except native.NativeUnavailableError as exc:
            print("raised:", exc)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            c, s = decode.decode(np.ones((1, 1, 8, 8), np.float32), backend="cpp")
        assert c.tolist() == [[[0.0, 0.0]]], c
        print("warned:", len(caught))
        """)
    env = dict(os.environ, COURSE_NATIVE="off", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("C++ decoder unavailable") == 1  # one clear message
    assert "raised: the C++ decoder is disabled" in out.stdout


@pytest.mark.slow
def test_four_processes_import_a_clean_build_at_once(tmp_path):
    """cppimport's file lock: one process compiles, the others wait, all four load the module."""
    shutil.copy(native.source_path(), tmp_path / "dark_decoder.cpp")
    code = textwrap.dedent(f"""
        import numpy as np
        from course_lib import native
        m = native.build_with_cppimport({str(tmp_path / "dark_decoder.cpp")!r})
        c, s = m.decode(np.ones((1, 1, 8, 8), np.float32), "dark", 11, 1, None)
        assert c.tolist() == [[[0.0, 0.0]]]
        print("ok", m.__file__)
        """)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert out.startswith("ok " + str(tmp_path))
    assert len(list(tmp_path.glob("dark_decoder*.so"))) == 1


def test_read_only_copy_imports_the_prebuilt_module(tmp_path):
    """An installed or read-only copy never compiles: it imports course_lib.dark_decoder (the
    module ``pip install .`` builds; here the cppimport build stands in for it)."""
    ext = native.load_extension()
    copy = tmp_path / "site"
    shutil.copytree(ROOT / "course_lib", copy / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ext.__file__, copy / "course_lib" / Path(ext.__file__).name)
    (copy / "cpp").mkdir()
    shutil.copy(native.source_path(), copy / "cpp" / "dark_decoder.cpp")
    (copy / "cpp").chmod(0o555)  # read-only source folder: cppimport could not even lock it
    # (root may write anyway; with no compiler either way must end at the prebuilt module)
    code = textwrap.dedent("""
        import numpy as np
        from course_lib import native
        m = native.load_extension()
        print(m.__name__)
        c, s = native.decode(np.ones((1, 1, 8, 8), np.float32), "dark")
        assert c.tolist() == [[[0.0, 0.0]]]
        """)
    try:
        env = dict(os.environ, PYTHONPATH=str(copy), CXX="/nonexistent/c++")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, cwd=str(tmp_path), timeout=120)
    finally:
        (copy / "cpp").chmod(0o755)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "course_lib.dark_decoder"
    assert not list((copy / "cpp").glob("*.so"))  # nothing was compiled


def test_the_step_rule_comes_from_course_lib_dark(monkeypatch):
    """course_lib.native passes dark.MAX_STEP and dark.LOG_FLOOR to the C++ decoder: one rule."""
    rng = np.random.default_rng(11)
    maps = rng.normal(0, 1, (8, 17, 32, 24)).astype(np.float32)  # noise: big, clipped steps
    start, _ = py_decode.decode(maps, method="argmax")
    ref, _ = py_decode.decode(maps, method="dark")
    assert np.abs(ref - start).max() == pytest.approx(dark.MAX_STEP)  # some steps are clipped
    monkeypatch.setattr(dark, "MAX_STEP", 0.25)
    small, _ = native.decode(maps, "dark", num_threads=1)
    np.testing.assert_allclose(small, py_decode.decode(maps, method="dark")[0], atol=1e-5)
    assert np.abs(small - start).max() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="max_step"):
        native.load_extension().decode(maps, "dark", 11, 1, None, 1e-10, 0.0)


# --- exercise snippets build in a private folder ---------------------------------------------


def test_snippets_build_in_a_private_per_user_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = native.snippet_folder()
    assert root == tmp_path / "cache" / "heatmaps-to-keypoints" / "cpp"
    assert not str(root).startswith(str(Path("/tmp/course_cpp")))
    monkeypatch.delenv("XDG_CACHE_HOME")
    default = native.snippet_folder()
    assert default != Path(tempfile.gettempdir()) / "course_cpp"
    assert str(default).endswith(os.path.join("heatmaps-to-keypoints", "cpp")) or \
        default.name == f"course_cpp-{os.getuid()}"


def _refused(folder, match):
    with pytest.raises(native.UnsafeBuildFolderError, match=match) as info:
        native.build_snippet(SNIPPET, "snippet", folder=folder)
    assert str(folder) in str(info.value)
    assert isinstance(info.value, native.NativeUnavailableError)  # exercise checks report it


def test_snippet_folder_writable_by_others_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    _refused(shared, "writable by")
    shared.chmod(0o775)
    _refused(shared, "writable by")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    planted = tmp_path / "cache" / "heatmaps-to-keypoints" / "cpp"
    planted.mkdir(parents=True)
    planted.chmod(0o777)  # the default folder, prepared by someone else: refused as well
    with pytest.raises(native.UnsafeBuildFolderError, match=str(planted)):
        native.build_snippet(SNIPPET, "snippet")
    assert list(planted.iterdir()) == []  # nothing was written into it


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
def test_snippet_folder_owned_by_another_user_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 4242, 4242)
    _refused(theirs, "owned by uid 4242")
    # a private root, but the module's own subfolder planted by another user
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    unique = native.snippet_module_name(SNIPPET, "snippet")
    (mine / unique).mkdir(mode=0o755)
    os.chown(mine / unique, 4242, 4242)
    with pytest.raises(native.UnsafeBuildFolderError, match="owned by uid 4242") as info:
        native.build_snippet(SNIPPET, "snippet", folder=mine)
    assert str(mine / unique) in str(info.value)


def test_snippet_folder_symlink_to_a_foreign_folder_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    target.chmod(0o777)
    link = tmp_path / "link"
    link.symlink_to(target)
    _refused(link, "writable by")
