"""Training speed at the profile's sizes: images/s, and the real loader against pre-loaded tensors.

    python benchmarks/bench_train.py [--profile cpu] [--steps 8] [--workers N]

Baseline (same run, same model and optimizer): training steps on batches already in memory.
Measured: the same steps fed by ``course_lib.train.epoch_loader`` (decoding JPEGs, affine crops,
augmentation, Gaussian targets in ``num_workers`` processes). Target: loader / pre-loaded step
time <= 1.1 (the loader is not the bottleneck).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from course_lib.losses import keypoint_mse_loss  # noqa: E402
from course_lib.train import build_model, epoch_loader, make_config, make_datasets  # noqa: E402


def step_fn(model, optimizer):
    def step(batch):
        images = batch["image"].contiguous(memory_format=torch.channels_last)
        loss = keypoint_mse_loss(model(images), batch["heatmaps"], batch["weights"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    parser.add_argument("--workers", type=int, default=None, help="loader processes")
    args = parser.parse_args()
    overrides = {} if args.workers is None else {"num_workers": args.workers}
    cfg = make_config(args.profile, **overrides)
    train_ds, _ = make_datasets(cfg)
    torch.manual_seed(0)
    model = build_model(cfg).to(memory_format=torch.channels_last).train()
    step = step_fn(model, torch.optim.Adam(model.parameters(), lr=1e-4))
    bs = cfg.batch_size
    print(f"profile {cfg.profile}: ResNet-{cfg.depth}, input {cfg.input_size} (W, H), "
          f"batch {bs}, {cfg.num_workers} loader workers, {torch.get_num_threads()} threads")

    loader = epoch_loader(train_ds, cfg, epoch=0)
    it = iter(loader)
    batches = [next(it) for _ in range(2)]
    for b in batches:  # warm-up (allocations, oneDNN kernels)
        step(b)
    # interleave the two measurements so that a change of machine load hits both alike
    t_mem = t_loader = 0.0
    for i in range(args.steps):
        t0 = time.perf_counter()
        step(batches[i % 2])
        t1 = time.perf_counter()
        step(next(it))
        t2 = time.perf_counter()
        t_mem += t1 - t0
        t_loader += t2 - t1
    del it
    n = args.steps * bs
    print(f"pre-loaded tensors : {t_mem / args.steps:.3f} s/step, {n / t_mem:.1f} images/s")
    print(f"real loader        : {t_loader / args.steps:.3f} s/step, {n / t_loader:.1f} images/s")
    print(f"ratio loader / pre-loaded: {t_loader / t_mem:.2f}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
