"""Faults and bad input of the numeric steps: no crash, no unbounded memory, no silent NaN.

Every case that could crash or exhaust memory runs in a SUBPROCESS with an address-space limit,
so that an abort (``std::terminate`` inside an OpenMP region, libgomp giving up on a thread
count) is a failed test, not a dead test run, and an unbounded allocation fails fast instead of
exhausting the machine. The rules these tests pin are listed in ``docs/RELIABILITY.md``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from course_lib import coco, heatmaps
from course_lib import decode as D
from course_lib import transforms as T

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 6 * 1024**3  # address space of a subprocess: an unbounded allocation fails at once


def run_python(code: str, *, limit: int | None = LIMIT, env: dict | None = None,
               timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (memory-limited); return the finished process."""
    prelude = "import resource\n"
    if limit:
        prelude += f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=str(ROOT))


def assert_ok(proc: subprocess.CompletedProcess, *expected: str) -> None:
    """The subprocess exited normally (no signal, no abort) and printed each ``expected``."""
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    for text in expected:
        assert text in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def _native_available() -> bool:
    try:
        from course_lib import native
    except Exception:
        return False
    return not native.unavailable_reason()


needs_native = pytest.mark.skipif(not _native_available(), reason="no C++ compiler / module here")


# --- the C++ decoder: sizes, threads, exceptions ---------------------------------------------


@needs_native
def test_cpp_huge_blur_kernel_is_refused_not_aborted():
    proc = run_python("""
        import numpy as np
        from course_lib import native
        maps = np.random.default_rng(0).random((2, 3, 16, 12)).astype(np.float32)
        for k in (35, 2**30 + 1, 2**31 - 1):
            try:
                native.decode(maps, "dark", k, num_threads=2)
            except ValueError as exc:
                print("python:", exc)
        ext = native.load_extension()
        for k in (35, 2**30 + 1):  # the extension itself refuses too (no kernel passed)
            try:
                ext.decode(maps, "dark", k, 2, None, 1e-10, 1.0)
            except ValueError as exc:
                print("c++:", exc)
        print("largest:", native.decode(maps, "dark", 33, num_threads=2)[0].shape)
        print("argmax ignores it:", native.decode(maps, "argmax", 2**30 + 1)[0].shape)
        """)
    assert_ok(proc, "python: blur_kernel: expected at most 33", "c++: blur_kernel: expected at most 33",
              "largest: (2, 3, 2)", "argmax ignores it: (2, 3, 2)")
    assert proc.stdout.count("python:") == 3 and proc.stdout.count("c++:") == 2


@needs_native
def test_cpp_out_of_memory_inside_the_parallel_region_is_a_memory_error():
    """A thin map allows a long kernel; its window buffer (allocated per thread, inside the
    OpenMP region) does not fit under the limit: MemoryError after the region, no abort."""
    proc = run_python("""
        import resource
        import numpy as np
        from course_lib import dark, native
        ext = native.load_extension()
        h, w = 1 << 20, 5
        maps = np.zeros((1, 1, h, w), np.float32)
        maps[0, 0, h // 2, 2] = 1.0
        k = 2 * h + 1
        kernel = dark.gaussian_kernel_1d(k)
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
        room = vm + (56 << 20)  # the 16 MiB kernel fits, the 80 MiB window buffer does not
        resource.setrlimit(resource.RLIMIT_AS, (room, room))
        try:
            ext.decode(maps, "dark", k, 1, kernel, 1e-10, 1.0)
            print("decoded")
        except MemoryError as exc:
            print("MemoryError:", exc)
        """, limit=None)
    assert_ok(proc, "MemoryError: std::bad_alloc")


@needs_native
def test_cpp_thread_counts_are_clamped_to_the_cores():
    proc = run_python("""
        import numpy as np
        from course_lib import native
        maps = np.random.default_rng(1).random((8, 17, 16, 12)).astype(np.float32)
        ref = native.decode(maps, "dark", num_threads=1)[0]
        got = native.decode(maps, "dark", num_threads=10**6)[0]
        assert np.array_equal(got, ref)
        assert np.array_equal(native.decode(maps, "dark")[0], ref)  # COURSE_NATIVE_THREADS
        ext = native.load_extension()
        assert np.array_equal(ext.decode(maps, "dark", 11, 100000, None, 1e-10, 1.0)[0], ref)
        assert np.array_equal(ext.decode(maps, "dark", 11, 0, None, 1e-10, 1.0)[0], ref)
        print("threads:", native.default_threads(), "<=", native.max_threads())
        """, env={"COURSE_NATIVE_THREADS": "100000", "OMP_NUM_THREADS": "100000"})
    assert_ok(proc, "threads:")
    used, cores = proc.stdout.split("threads:")[1].split("<=")
    assert int(used) == int(cores) <= (os.cpu_count() or 1)


# --- numpy / torch decoders: bounded sizes, finite results -----------------------------------


def test_numpy_decoders_bound_the_blur_kernel_and_the_radius():
    proc = run_python("""
        import numpy as np
        from course_lib import dark, decode as D
        maps = np.random.default_rng(2).random((2, 3, 16, 12)).astype(np.float32)
        for call in (lambda: D.decode(maps, blur_kernel=35),
                     lambda: D.decode(maps, blur_kernel=2**31 - 1),
                     lambda: D.decode_multi(maps, threshold=0.5, max_peaks=2, blur_kernel=10**9 + 1),
                     lambda: dark.blur_heatmaps(maps, 2**31 - 1),
                     lambda: dark.dark_loop(maps, 10**9 + 1)):
            try:
                call()
            except ValueError as exc:
                print("refused:", exc)
        ref = D.decode(maps, method="soft_argmax", radius=16)
        got = D.decode(maps, method="soft_argmax", radius=10**12)
        assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1]), (got, ref)
        assert np.allclose(got[1], 1.0)  # the whole map: all the mass
        print("radius clamped")
        """)
    assert_ok(proc, "radius clamped", "blur_kernel: expected at most 33 (2 * max(H, W, 5) + 1")
    assert proc.stdout.count("refused:") == 5


def test_torch_soft_argmax_radius_is_clamped():
    pytest.importorskip("torch")
    proc = run_python("""
        import numpy as np, torch
        from course_lib import decode as D
        maps = torch.from_numpy(np.random.default_rng(3).random((2, 3, 10, 8)).astype(np.float32))
        ref = D.decode(maps, method="soft_argmax", radius=10, backend="torch")
        got = D.decode(maps, method="soft_argmax", radius=10**9, backend="torch")
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
        print("torch radius clamped")
        """, limit=None)
    assert_ok(proc, "torch radius clamped")


def test_dark_window_on_a_thin_map_stays_bounded():
    """A long kernel on a thin map: only the part of the window inside the map is read, and
    the step equals a float64 blur of the whole zero-padded map."""
    ndimage = pytest.importorskip("scipy.ndimage")
    from course_lib import dark

    rng = np.random.default_rng(4)
    maps = (rng.random((1, 2, 400, 6)) * 0.1).astype(np.float32)
    maps[0, :, 200, 3] = 1.0
    got = D.decode(maps, blur_kernel=801)[0]
    g = dark.gaussian_kernel_1d(801)
    for k in range(2):
        blurred = ndimage.convolve1d(maps[0, k].astype(np.float64), g, axis=0, mode="constant")
        blurred = ndimage.convolve1d(blurred, g, axis=1, mode="constant")
        patch = np.log(np.maximum(blurred[198:203, 1:6], dark.LOG_FLOOR))
        np.testing.assert_allclose(got[0, k], np.array([3.0, 200.0]) + dark.taylor_step(patch),
                                   atol=1e-5)
    assert np.abs(got[0] - [3.0, 200.0]).max() > 0.1  # refined, not just the argmax


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_soft_argmax_temperature_is_finite_and_large_values_are_safe(backend):
    if backend == "torch":
        pytest.importorskip("torch")
    maps = np.zeros((1, 2, 8, 10), np.float32)
    maps[0, 0, 3, 7] = 10.0
    maps[0, 1, 5, 2] = 4.0
    maps[0, 1] -= 3.0  # negative values too
    for bad in (float("inf"), float("-inf"), float("nan"), -1.0, 0.0, "20", True):
        with pytest.raises(ValueError, match="temperature"):
            D.decode(maps, method="soft_argmax", temperature=bad, backend=backend)
    for huge in (1e30, 1e300, np.float64(1.7e308), np.float32(1e38)):
        c, s = D.decode(maps, method="soft_argmax", temperature=huge, backend=backend)
        c, s = np.asarray(c), np.asarray(s)
        assert np.isfinite(c).all() and np.isfinite(s).all(), (huge, c, s)
        np.testing.assert_allclose(c[0], [[7.0, 3.0], [2.0, 5.0]])  # the argmax, exactly
        np.testing.assert_allclose(s, 1.0)


# --- heatmap targets: sigma and heatmap_size -------------------------------------------------


@pytest.mark.parametrize("mode", heatmaps.MODES)
def test_encode_refuses_a_sigma_that_underflows_and_is_finite_at_the_minimum(mode):
    kp, vis = np.array([[5.0, 5.0], [3.3, 2.7]]), np.array([2, 2])
    for tiny in (1e-200, 1e-170, 0.5 * heatmaps.MIN_SIGMA):
        with pytest.raises(ValueError, match="sigma"):
            heatmaps.encode(kp, vis, heatmap_size=(10, 10), sigma=tiny, mode=mode)
        with pytest.raises(ValueError, match="sigma"):
            heatmaps.target_weights(kp, vis, heatmap_size=(10, 10), sigma=tiny, mode=mode)
    maps, weights = heatmaps.encode(kp, vis, heatmap_size=(10, 10), sigma=heatmaps.MIN_SIGMA,
                                    mode=mode)
    assert np.isfinite(maps).all() and maps.max() == 1.0 and weights.tolist() == [1.0, 1.0]


def test_encode_bounds_sigma_and_the_output_size():
    proc = run_python("""
        import numpy as np
        from course_lib import heatmaps
        kp, vis = np.array([[5.0, 5.0]]), np.array([2])
        for mode in heatmaps.MODES:
            for kwargs in ({"heatmap_size": (10, 10), "sigma": 1e9},
                           {"heatmap_size": (10, 10), "sigma": 1e300},
                           {"heatmap_size": (100000, 100000), "sigma": 2.0},
                           {"heatmap_size": (2**40, 3), "sigma": 2.0}):
                try:
                    heatmaps.encode(kp, vis, mode=mode, **kwargs)
                    print("accepted", kwargs)
                except ValueError as exc:
                    print("refused:", exc)
        big = np.zeros((5000, 17, 2)), np.full((5000, 17), 2)
        try:  # 5000 x 17 maps of 128 x 96: 4 GiB of float32
            heatmaps.encode(*big, heatmap_size=(96, 128))
        except ValueError as exc:
            print("refused:", exc)
        print("largest map:", heatmaps.encode(kp, vis, heatmap_size=(10, 10), sigma=10)[0].shape)
        """)
    assert_ok(proc, "largest map: (1, 10, 10)", "GiB")
    assert "accepted" not in proc.stdout
    assert proc.stdout.count("refused:") == 13


# --- flip pairs ------------------------------------------------------------------------------


OVERLAPPING = [((1, 2), (2, 3)), ((1, 1), (1, 2)), ((0, 3), (4, 0)), ((1, 2), (2, 1)),
               ((5, 5), (5, 5))]


@pytest.mark.parametrize("pairs", OVERLAPPING)
def test_overlapping_flip_pairs_are_refused_everywhere(pairs):
    with pytest.raises(ValueError, match="flip_pairs"):
        coco.flip_index(17, pairs)
    with pytest.raises(ValueError, match="flip_pairs"):
        D.flip_back(np.zeros((1, 17, 4, 4), np.float32), pairs)
    with pytest.raises(ValueError, match="flip_pairs"):
        T.flip_keypoints(np.zeros((17, 2)), np.ones(17), 10, pairs)
    with pytest.raises(ValueError, match="flip_pairs"):
        coco.flip_keypoint_list([0] * 51, 10, pairs)


@pytest.mark.parametrize("pairs", [((1, 17),), ((-1, 2),), ((1, 2, 3),), (("a", "b"),), ((1.0, 2),)])
def test_malformed_flip_pairs_are_refused(pairs):
    with pytest.raises(ValueError, match="flip_pairs"):
        coco.flip_index(17, pairs)
    with pytest.raises(ValueError, match="flip_pairs"):
        T.flip_keypoints(np.zeros((17, 2)), np.ones(17), 10, pairs)


def test_valid_flip_pairs_still_flip():
    assert coco.flip_index(4, ((0, 3),)).tolist() == [3, 1, 2, 0]
    assert coco.flip_index(4, ((0, 0), (1, 2))).tolist() == [0, 2, 1, 3]  # 0: its own mirror
    assert coco.flip_index(3, ()).tolist() == [0, 1, 2]
    assert coco.flip_index(17, [[1, 2], [3, 4]])[:5].tolist() == [0, 2, 1, 4, 3]
