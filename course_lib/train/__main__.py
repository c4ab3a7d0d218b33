"""``python -m course_lib.train``: train a profile's network from the command line.

Taught in ``05_training_mse.ipynb``::

    python -m course_lib.train --profile cpu --out runs/NAME [--resume] [--set KEY=VALUE ...]
    torchrun --nproc-per-node 4 -m course_lib.train --profile gpu --out runs/ddp

It wires the loop of ``course_lib.train`` to the validation of ``course_lib.predict`` (OKS AP on
the val split, ground-truth boxes) and prints a JSON summary. ``--set`` values are read by the
type of their :class:`~course_lib.train.TrainConfig` field (``--set eval_every_minutes=None``,
``--set lr_steps=15,18``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from course_lib import config as course_config
from course_lib import predict
from course_lib.train import make_config, make_datasets, parse_overrides, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m course_lib.train",
                                     description="Train the pose network of a course profile.")
    parser.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: COURSE_PROFILE)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<profile>)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config values, e.g. --set depth=18 max_train_minutes=5")
    args = parser.parse_args(argv)
    try:  # a bad --set value is one "error:" line and exit code 2, as argparse's own errors
        args.config = make_config(args.profile, **parse_overrides(args.set))
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> dict:
    """Parse, train with validation, print the summary (rank 0); returns the history."""
    args = parse_args(argv)
    cfg = args.config
    out = Path(args.out) if args.out else course_config.runs_dir(cfg.profile)
    train_set, val_set = make_datasets(cfg)
    _, history = train(cfg, out, train_dataset=train_set, resume=args.resume,
                       validate_fn=predict.make_validator(val_set, cfg))
    if int(os.environ.get("RANK", "0")) == 0:
        last = history["train"][-1] if history["train"] else None
        summary = {"steps": last["step"] if last else 0,
                   "minutes": last["time_s"] / 60 if last else 0.0,
                   "best_ap": history["best_ap"], "val": history["val"][-1:] or None}
        print(json.dumps(summary, indent=1))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return history


if __name__ == "__main__":
    main()
