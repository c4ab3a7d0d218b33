"""Benchmark: the vectorised heatmap encoder against a per-keypoint loop encoder.

Run: ``python benchmarks/bench_encode.py``. A batch of 64 people x 17 COCO keypoints is encoded
in each mode (``msra``, ``unbiased``, ``udp``) by ``course_lib.heatmaps.encode`` and by
:func:`loop_encode`, a straightforward per-keypoint loop written the way MMPose's
``generate_*_gaussian_heatmaps`` are (one Gaussian patch per keypoint, sliced into the map).
The maps and weights must be identical (bit for bit); the script prints the speed ratio
(target >= 10x). For scale it also prints the time of merely allocating and writing an output of
that size, and the loop's time divided by it: an encoder that returns a fresh dense array can
hardly beat that ratio (with 64 x 48 maps it is only a few times the target).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.heatmaps import encode  # noqa: E402


def loop_encode(keypoints, visible, *, heatmap_size, sigma=2.0, mode="msra"):
    """Reference encoder: one Python iteration per keypoint (MMPose style), same conventions."""
    width, height = heatmap_size
    kp = np.asarray(keypoints, dtype=np.float64)
    vis = np.asarray(visible)
    lead = kp.shape[:-2]
    num_k = kp.shape[-2]
    kp = kp.reshape(-1, num_k, 2)
    vis = vis.reshape(-1, num_k)
    heatmaps = np.zeros((kp.shape[0], num_k, height, width), dtype=np.float32)
    weights = np.zeros((kp.shape[0], num_k), dtype=np.float32)
    two_s2 = 2.0 * sigma * sigma
    r = int(math.floor(3.0 * sigma + 1e-9))
    offs = np.arange(-r, r + 1)
    for n in range(kp.shape[0]):
        for k in range(num_k):
            if vis[n, k] <= 0:
                continue
            x, y = kp[n, k]
            if mode == "unbiased":
                reach = 3.0 * sigma
                if x + reach < 0 or x - reach > width - 1 or y + reach < 0 or y - reach > height - 1:
                    continue
                weights[n, k] = 1.0
                gx = np.exp(-((np.arange(width, dtype=np.float64) - x) ** 2) / two_s2)
                gy = np.exp(-((np.arange(height, dtype=np.float64) - y) ** 2) / two_s2)
                heatmaps[n, k] = gy.astype(np.float32)[:, None] * gx.astype(np.float32)[None, :]
                continue
            mx, my = math.floor(x + 0.5), math.floor(y + 0.5)
            left, top, right, bottom = mx - r, my - r, mx + r + 1, my + r + 1
            if left >= width or top >= height or right <= 0 or bottom <= 0:
                continue
            weights[n, k] = 1.0
            if mode == "msra":
                fx = fy = 0.0
            else:
                fx, fy = x - mx, y - my
            gx = np.exp(-((offs - fx) ** 2) / two_s2).astype(np.float32)
            gy = np.exp(-((offs - fy) ** 2) / two_s2).astype(np.float32)
            g = gy[:, None] * gx[None, :]
            gx1, gx2 = max(0, -left), min(width, right) - left
            gy1, gy2 = max(0, -top), min(height, bottom) - top
            hx1, hx2 = max(0, left), min(width, right)
            hy1, hy2 = max(0, top), min(height, bottom)
            heatmaps[n, k, hy1:hy2, hx1:hx2] = g[gy1:gy2, gx1:gx2]
    return heatmaps.reshape(*lead, num_k, height, width), weights.reshape(*lead, num_k)


def random_batch(rng, n, k, heatmap_size):
    width, height = heatmap_size
    kp = rng.uniform([-4, -4], [width + 4, height + 4], size=(n, k, 2))
    vis = rng.choice([0, 1, 2], size=(n, k), p=[0.15, 0.15, 0.7])
    return kp, vis


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_times(fast, slow, repeats):
    """Best of ``repeats`` timings of two functions, measured alternately so that both see the
    same machine load (the cores may be shared)."""
    t_fast, t_slow = [], []
    for _ in range(repeats):
        t_fast.append(best_time(fast, 1))
        t_slow.append(best_time(slow, 1))
    return min(t_fast), min(t_slow)


def run_size(size, args) -> bool:
    kp, vis = random_batch(np.random.default_rng(0), args.batch, 17, size)
    n_values = args.batch * 17 * size[0] * size[1]
    floor = best_time(lambda: np.zeros(n_values, np.float32).fill(0.0), args.repeats)
    print(f"batch {args.batch} x 17 keypoints, heatmaps {size[0]}x{size[1]} (W x H), "
          f"sigma {args.sigma}; writing the {n_values * 4 / 1e6:.1f} MB output alone takes "
          f"{floor * 1e3:.2f} ms")
    ok = True
    for mode in ("msra", "unbiased", "udp"):
        fast = encode(kp, vis, heatmap_size=size, sigma=args.sigma, mode=mode)
        slow = loop_encode(kp, vis, heatmap_size=size, sigma=args.sigma, mode=mode)
        same = np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
        ok &= same
        t_fast, t_loop = best_times(
            lambda m=mode: encode(kp, vis, heatmap_size=size, sigma=args.sigma, mode=m),
            lambda m=mode: loop_encode(kp, vis, heatmap_size=size, sigma=args.sigma, mode=m),
            args.repeats)
        print(f"  {mode:9s} identical={same}  loop {t_loop * 1e3:7.2f} ms  vectorised "
              f"{t_fast * 1e3:6.2f} ms  speed-up {t_loop / t_fast:5.1f}x  (target >= 10x; "
              f"loop / writing the output: {t_loop / floor:4.0f}x)")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--heatmap-size", type=int, nargs=2, action="append", metavar=("W", "H"),
                        help="(W, H) of the maps; repeatable (default: 24 32 and 48 64)")
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    sizes = [tuple(s) for s in args.heatmap_size] if args.heatmap_size else [(24, 32), (48, 64)]
    ok = True
    for size in sizes:
        ok &= run_size(size, args)
    if not ok:
        print("ERROR: the vectorised maps differ from the loop encoder's")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
