"""Benchmark: decoding a batch of heatmaps, every decoder against the same in-process floor.

Run: ``python benchmarks/bench_decode.py [--batch 64 17 64 48] [--repeats 5]``. On a float32
batch of realistic peaks (a Gaussian of sigma 2 at a random sub-pixel centre, amplitude 0.6-1,
plus N(0, 0.01) noise) it times:

* the floor: one flat numpy ``argmax`` plus one ``max`` over the same array (no decoder can do
  less than find each map's maximum);
* the per-keypoint Python DARK of ``06_decoding_dark.ipynb`` (``course_lib.dark.dark_loop``,
  MMPose style: full-map ``cv2.GaussianBlur``, a Python loop over keypoints);
* ``course_lib.decode.decode(method="dark")`` with the numpy and torch backends (target: numpy
  >= 4x faster than the per-keypoint loop);
* when ``course_lib.native.available()``: the C++ decoder (``07_dark_cpp.ipynb``), quarter and
  DARK on one thread, DARK on all threads (target: DARK on one thread <= 2x the floor).

Every row is printed as its best time over ``repeats`` and as a ratio to the floor. Import
:func:`run` to reuse the timings (a notebook plots them).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib import dark  # noqa: E402
from course_lib import decode as dec  # noqa: E402


def realistic_batch(batch_shape=(64, 17, 64, 48), seed: int = 0, noise: float = 0.01) -> np.ndarray:
    """Float32 maps ``[N, K, H, W]``: one sigma-2 Gaussian per map at a random sub-pixel centre
    (at least 3 px inside the map), amplitude 0.6-1, plus ``N(0, noise)``."""
    n, k, h, w = batch_shape
    rng = np.random.default_rng(seed)
    cx = rng.uniform(3, w - 4, (n, k, 1, 1))
    cy = rng.uniform(3, h - 4, (n, k, 1, 1))
    amp = rng.uniform(0.6, 1.0, (n, k, 1, 1))
    xs, ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)[:, None]
    maps = amp * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0)
    return (maps + rng.normal(0.0, noise, maps.shape)).astype(np.float32)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls (after one warm-up call), in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _floor(maps: np.ndarray):
    flat = maps.reshape(maps.shape[0] * maps.shape[1], -1)
    return flat.argmax(axis=1), flat.max(axis=1)


def run(batch_shape=(64, 17, 64, 48), repeats: int = 5, *, seed: int = 0,
        include_loop: bool = True, loop_repeats: int = 1, include_native: bool = True) -> list[dict]:
    """Time every decoder on one batch; rows ``{"name", "seconds", "vs_floor"}``, floor first.

    The per-keypoint loop is slow: it runs ``loop_repeats`` times (``include_loop=False`` skips
    it); ``include_native=False`` skips the C++ rows (whose first use may compile). The numpy DARK is checked against the loop (max difference printed by :func:`main`,
    returned in the loop row as ``max_diff``).
    """
    maps = realistic_batch(tuple(batch_shape), seed)
    rows = [{"name": "floor: numpy argmax + max", "seconds": best_time(lambda: _floor(maps), repeats)}]
    if include_loop:
        loop = dark.dark_loop(maps)
        diff = float(np.abs(loop - dec.decode(maps, method="dark")[0]).max())
        rows.append({"name": "per-keypoint Python DARK", "max_diff": diff,
                     "seconds": best_time(lambda: dark.dark_loop(maps), loop_repeats)})
    rows.append({"name": "numpy argmax (decode)",
                 "seconds": best_time(lambda: dec.decode(maps, method="argmax"), repeats)})
    rows.append({"name": "numpy DARK",
                 "seconds": best_time(lambda: dec.decode(maps, method="dark"), repeats)})
    try:
        import torch

        tmaps = torch.from_numpy(maps)
        rows.append({"name": f"torch DARK ({torch.get_num_threads()} threads)", "seconds":
                     best_time(lambda: dec.decode(tmaps, method="dark", backend="torch"), repeats)})
    except ImportError:
        pass
    native, _ = dec._native_module() if include_native else (None, "")
    if native is not None:
        for name, method, threads in (("C++ quarter (argmax + quarter), 1 thread", "quarter", 1),
                                      ("C++ DARK, 1 thread", "dark", 1),
                                      (f"C++ DARK, all threads ({os.cpu_count()} cores)", "dark", 0)):
            rows.append({"name": name, "seconds": best_time(
                lambda m=method, t=threads: native.decode(maps, m, 11, num_threads=t), repeats)})
    floor = rows[0]["seconds"]
    for row in rows:
        row["vs_floor"] = row["seconds"] / floor
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs=4, default=[64, 17, 64, 48],
                        metavar=("N", "K", "H", "W"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-loop", action="store_true", help="skip the slow per-keypoint loop")
    args = parser.parse_args(argv)
    rows = run(tuple(args.batch), args.repeats, include_loop=not args.no_loop)
    print(f"batch {tuple(args.batch)} float32, best of {args.repeats}")
    print(f"{'decoder':<48} {'time':>10} {'x floor':>9}")
    for row in rows:
        print(f"{row['name']:<48} {row['seconds'] * 1e3:>8.2f}ms {row['vs_floor']:>8.2f}x")
    by_name = {r["name"]: r for r in rows}
    loop, numpy_dark = by_name.get("per-keypoint Python DARK"), by_name["numpy DARK"]
    if loop:
        speedup = loop["seconds"] / numpy_dark["seconds"]
        print(f"numpy DARK vs per-keypoint DARK: {speedup:.1f}x faster (target >= 4x); "
              f"max |difference| {loop['max_diff']:.2e} px")
    cpp = by_name.get("C++ DARK, 1 thread")
    if cpp:
        print(f"C++ DARK, 1 thread: {cpp['vs_floor']:.2f}x the floor (target <= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
