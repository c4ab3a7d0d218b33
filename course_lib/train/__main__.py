"""``python -m course_lib.train``: train a profile's network from the command line.

Taught in ``05_training_mse.ipynb``::

    python -m course_lib.train --profile cpu --out runs/NAME [--resume [--resume-from best]]
        [--force] [--logger none|tensorboard|wandb] [--set KEY=VALUE ...]
    torchrun --nproc-per-node 4 -m course_lib.train --profile gpu --out runs/ddp

It wires the loop of ``course_lib.train`` to the validation of ``course_lib.predict`` (OKS AP on
the val split, ground-truth boxes) and prints a JSON summary. ``--set`` values are read by the
type of their :class:`~course_lib.train.TrainConfig` field (``--set eval_every_minutes=None``,
``--set lr_steps=15,18``).

What it refuses (one ``error:`` line, exit code 2): an ``--out`` folder that is not empty
without ``--resume`` (continue it) or ``--force`` (train over it); ``--resume`` with no
``latest.pt`` (or a corrupt one: ``--resume-from best`` continues from ``best.pt``), or with a
config that differs from the checkpoint's (listed field by field; ``--force`` continues with
the new one); a folder another run is writing; a ``--logger`` whose package is not installed.
Ctrl-C or SIGTERM saves at the next step and exits with 130 or 143; ``--resume`` then
continues exactly.

Experiment tracking (:mod:`course_lib.tracking`): ``--logger`` (or ``--set logger=...``) picks
``none``, ``tensorboard`` (``OUT/tensorboard``: losses, learning rate, the ten validation
stats, drawn validation predictions; ``tensorboard --logdir runs``) or ``wandb`` (the same in
``OUT/wandb``, offline unless you are logged in). The default is ``tensorboard`` when the
``tensorboard`` package is installed (``pip install -e ".[track]"``; ``make venv`` installs it),
else ``none``. The logger is how a run is watched, not what it learns: a run resumes with
another one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from course_lib import config as course_config
from course_lib import predict, tracking
from course_lib.train import Interrupted, guards, make_config, make_datasets, parse_overrides, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m course_lib.train",
                                     description="Train the pose network of a course profile.")
    parser.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: COURSE_PROFILE)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<profile>)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt")
    parser.add_argument("--resume-from", default="latest", choices=guards.RESUME_FROM,
                        help="with --resume: the checkpoint to continue (best: OUT/best.pt, "
                             "when latest.pt is corrupt)")
    parser.add_argument("--force", action="store_true",
                        help="train into a non-empty OUT afresh, or --resume with another config")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config values, e.g. --set depth=18 max_train_minutes=5")
    parser.add_argument("--logger", default=None, choices=tracking.LOGGERS,
                        help="experiment tracking (default: --set logger=..., else "
                             f"{tracking.default_logger()}: tensorboard when it is installed)")
    args = parser.parse_args(argv)
    if args.resume_from != "latest" and not args.resume:
        parser.error("--resume-from: only with --resume")
    try:  # a bad --set value is one "error:" line and exit code 2, as argparse's own errors
        overrides = parse_overrides(args.set)
        logger = overrides.pop("logger", None)  # --logger wins over --set logger=...
        logger = args.logger or logger or tracking.default_logger()
        if not tracking.available(logger):
            raise ValueError(f"--logger {logger}: the {logger} package is not installed "
                             f"(pip install {logger}, or pip install -e \".[track]\")")
        args.config = make_config(args.profile, **overrides, logger=logger)
    except ValueError as exc:
        parser.error(str(exc))
    args.parser = parser
    return args


def start_tracking(args: argparse.Namespace, out: Path) -> tracking.Tracker:
    """The run's tracker (``none`` outside the first process of a ``torchrun`` job); a resumed
    run skips the rows its checkpoint already holds."""
    cfg = args.config
    if int(os.environ.get("RANK", "0")) != 0:
        return tracking.make_tracker(cfg, out, logger="none")
    resume = None
    if args.resume:
        resume = tracking.resume_point(guards.resume_path(out, args.resume_from))
    return tracking.make_tracker(cfg, out, resume=resume)


def run(args: argparse.Namespace) -> dict:
    """Check the output folder, train with validation, print the summary (rank 0)."""
    cfg = args.config
    out = Path(args.out) if args.out else course_config.runs_dir(cfg.profile)
    if args.resume:
        guards.resume_path(out, args.resume_from)  # nothing to resume: fail before the data
    elif not args.force:
        guards.refuse_fresh_start(out, any_file=True)
    train_set, val_set = make_datasets(cfg)
    tracker = start_tracking(args, out)
    try:
        _, history = train(cfg, out, train_dataset=train_set, resume=args.resume,
                           resume_from=args.resume_from, force=args.force,
                           validate_fn=tracker.wrap_validate(predict.make_validator(val_set, cfg),
                                                             val_set, cfg),
                           callback=tracker.callback)
    finally:
        tracker.close()
    if int(os.environ.get("RANK", "0")) == 0:
        last = history["train"][-1] if history["train"] else None
        summary = {"steps": last["step"] if last else 0,
                   "minutes": last["time_s"] / 60 if last else 0.0,
                   "best_ap": history["best_ap"], "val": history["val"][-1:] or None}
        print(json.dumps(summary, indent=1))
    return history


def main(argv: list[str] | None = None) -> dict:
    """Parse, train, print; returns the history. Bad arguments and files are one ``error:``
    line and exit code 2; a signal saves and exits with 128 + its number."""
    args = parse_args(argv)
    try:
        return run(args)
    except Interrupted as exc:
        print(f"{args.parser.prog}: stopped: {exc}", file=sys.stderr)
        raise SystemExit(128 + getattr(signal, exc.signal_name)) from None
    except KeyboardInterrupt:  # a second Ctrl-C: at once, the last checkpoint stays
        print(f"{args.parser.prog}: stopped at once; the last checkpoint in the output folder "
              f"is intact", file=sys.stderr)
        raise SystemExit(128 + signal.SIGINT) from None
    except (OSError, ValueError, FloatingPointError) as exc:
        message = " ".join(str(exc).split())
        args.parser.exit(2 if not isinstance(exc, FloatingPointError) else 1,
                         f"{args.parser.prog}: error: {message}\n")
    finally:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


if __name__ == "__main__":
    main()
