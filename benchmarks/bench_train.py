"""Training speed at the profile's sizes: the real loader against pre-loaded tensors, and the cost
of notebook 05's live plot.

    python benchmarks/bench_train.py [--profile cpu] [--steps 8] [--workers N] [--plot-seconds 40]

1. Baseline (same run, same model and optimizer): training steps on batches already in memory.
   Measured: the same steps fed by ``course_lib.train.epoch_loader`` (decoding JPEGs, affine
   crops, augmentation, Gaussian targets in ``num_workers`` processes). Target: loader /
   pre-loaded step time <= 1.1 (the loader is not the bottleneck).
2. Baseline: ``train.train`` for a time budget of ``--plot-seconds`` without a callback.
   Measured: the same budget with notebook 05's callback, ``viz.LivePlot``, each render turned
   into a PNG as the notebook's display does. Runs alternate (without, with, with, without) so
   that a change of machine load hits both alike. Target: steps with / steps without >= 0.97.
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
    parser.add_argument("--plot-seconds", type=float, default=40.0,
                        help="training budget per live-plot run (0: skip that measurement)")
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
    if args.plot_seconds > 0:
        live_plot_ratio(cfg, train_ds, args.plot_seconds)


def png_show(fig) -> None:
    """What the notebook's display does with a figure: render it to PNG bytes."""
    from IPython.core.pylabtools import print_figure

    print_figure(fig, "png", bbox_inches="tight")


def live_plot_ratio(cfg, train_ds, seconds: float) -> float:
    """Steps in a ``seconds`` budget with notebook 05's ``viz.LivePlot`` over steps without it."""
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    from course_lib import train, viz

    budget = cfg.replace(max_train_minutes=seconds / 60, max_train_steps=None,
                         eval_every_minutes=None, epochs=1000)
    steps = {"without": [], "with": []}
    for kind in ("without", "with", "with", "without"):
        live = viz.LivePlot(show=png_show) if kind == "with" else None
        with tempfile.TemporaryDirectory() as out:
            _, history = train.train(budget, out, train_dataset=train_ds, progress=False,
                                     callback=live)
        steps[kind].append(history["train"][-1]["step"])
        extra = f", {live.renders} renders, {live.seconds:.1f} s drawing" if live else ""
        print(f"{seconds:.0f} s budget {kind:>7} the live plot: {steps[kind][-1]} steps{extra}")
    ratio = sum(steps["with"]) / sum(steps["without"])
    print(f"ratio steps with / without the live plot: {ratio:.3f} (target >= 0.97)")
    return ratio


if __name__ == "__main__":
    main()
