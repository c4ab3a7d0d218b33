"""The learning rate and the clock of a run: linear warm-up, step decay, time budgets.

Taught in ``05_training_mse.ipynb`` (section 3). :func:`learning_rate` is the formula,
:class:`Schedule` the small object the loop of :mod:`course_lib.train` keeps (and saves in its
checkpoints), :func:`make_clock` the clock its time budget is measured on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch

from course_lib.train.config import TrainConfig


def learning_rate(step: int, *, base_lr: float, warmup_steps: int, progress: float = 0.0,
                  milestones: tuple[float, ...] = (), gamma: float = 0.1) -> float:
    """The learning rate of optimisation step ``step`` (0-based).

    Linear warm-up: ``base_lr * (step + 1) / warmup_steps`` for the first ``warmup_steps`` steps
    (so step 0 already moves a little). Then ``base_lr * gamma ** m`` where ``m`` counts the
    ``milestones`` (fractions of the run in (0, 1]) that ``progress`` (fraction done) has reached.
    """
    if step < 0:
        raise ValueError(f"step: expected a non-negative int, got {step!r}")
    decay = gamma ** sum(progress >= m for m in milestones)
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps * decay
    return base_lr * decay


class Schedule:
    """Warm-up + multi-step decay as a tiny object with ``state_dict`` (saved in checkpoints).

    ``milestones`` are fractions of the run: ``lr_steps[i] / epochs``. ``progress`` is the
    fraction of steps done, or of the time budget used when that is further along.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                 total_steps: int) -> None:
        self.optimizer = optimizer
        self.base_lr = float(cfg.lr)
        self.warmup_steps = int(cfg.warmup_steps)
        self.milestones = tuple(s / cfg.epochs for s in cfg.lr_steps)
        self.total_steps = total_steps
        self.budget_s = None if cfg.max_train_minutes is None else cfg.max_train_minutes * 60
        self.step_count = 0
        self.elapsed_s = 0.0  # training time spent (carried over by resume)

    def progress(self) -> float:
        done = self.step_count / max(self.total_steps, 1)
        if self.budget_s:
            done = max(done, self.elapsed_s / self.budget_s)
        return done

    def lr(self) -> float:
        return learning_rate(self.step_count, base_lr=self.base_lr,
                             warmup_steps=self.warmup_steps, progress=self.progress(),
                             milestones=self.milestones)

    def apply(self) -> float:
        """Set the optimizer's learning rate for the next step; return it."""
        lr = self.lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "elapsed_s": self.elapsed_s,
                "total_steps": self.total_steps}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self.elapsed_s = float(state["elapsed_s"])


def make_clock(kind: str = "wall") -> Callable[[], float]:
    """Seconds on the budget's clock: the wall, or the process's CPU time divided by the cores
    (``cpu``: the wall time the run would take with the machine to itself, for measuring on a
    shared machine; load the data in the process, ``num_workers=0``, so all the work counts)."""
    if kind == "wall":
        return time.perf_counter
    if kind == "cpu":
        cores = os.cpu_count() or 1
        return lambda: time.process_time() / cores
    raise ValueError(f"budget_clock: expected 'wall' or 'cpu', got {kind!r}")
