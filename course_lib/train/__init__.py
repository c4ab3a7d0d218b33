"""The training loop: Adam, warm-up, step decay, checkpoints, exact resume.

Taught in ``05_training_mse.ipynb``. Read :func:`train` top to bottom: for each batch, forward,
loss, backward, Adam step; every so often validate and save. The rest of the package holds the
pieces it names: :mod:`course_lib.train.config` (the typed :class:`TrainConfig`),
:mod:`course_lib.train.schedule` (learning rate and clock),
:mod:`course_lib.train.checkpoint` (atomic checkpoints, RNG states),
:mod:`course_lib.train.guards` (lock, refusals, signals, finite numbers) and
``python -m course_lib.train`` (:mod:`course_lib.train.__main__`, the command line).

* Adam; the learning rate rises linearly over ``warmup_steps`` steps, then is multiplied by 0.1
  at each epoch of ``lr_steps`` (SimpleBaseline: 1e-3, x0.1 at epochs 90 and 120 of 140). When a
  time budget (``max_train_minutes``) is set, the same milestones are read as fractions of the
  run (``lr_steps[i] / epochs``) measured by steps or by time, whichever is further along, so a
  short run on a slow machine still gets its decay before the budget ends.
* Mixed precision (float16 autocast + gradient scaling) on CUDA only; channels-last memory
  layout everywhere (faster convolutions on CPU and on tensor cores).
* Checkpoints ``latest.pt`` and ``best.pt`` (best validation AP). ``resume=True`` continues bit
  for bit: the data order depends only on ``(seed, epoch)`` and the position inside the epoch,
  and every RNG state is restored (the augmentation too when the data loads in the training
  process, ``num_workers=0``; with loader processes a resume at an epoch boundary is exact).
* Nothing is lost or mixed up (:mod:`course_lib.train.guards`): one run per output folder (a
  lock), a folder holding checkpoints is not trained into afresh unless ``force=True``,
  ``resume=True`` refuses a missing, corrupt or differently configured checkpoint unless told
  (``resume_from="best"``, ``force=True``), Ctrl-C and SIGTERM save at the next step boundary
  (:class:`Interrupted`), and a NaN or infinite loss or gradient stops the run naming the step.
* Validation is whatever ``validate_fn(model, device) -> stats`` the caller passes: training
  does not know how heatmaps become COCO keypoints. ``course_lib.predict.make_validator`` gives
  OKS AP on the val split (ground-truth boxes, DARK decoding); the command line and notebook 05
  pass it. Validation never changes the training's random streams.
* Under ``torchrun`` it trains with DistributedDataParallel (gloo on CPU, nccl on CUDA); each
  process reads its share of every epoch; ``batch_size`` is per process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib import config as course_config
from course_lib.train import guards
from course_lib.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from course_lib.train.config import TrainConfig, compatible, make_config, parse_overrides
from course_lib.train.guards import Interrupted, RunFolderLocked
from course_lib.train.network import autocast_dtype, build_model, make_loss, to_float32
from course_lib.train.schedule import Schedule, learning_rate, make_clock

__all__ = [
    "TrainConfig", "make_config", "compatible", "parse_overrides", "build_model", "make_dataset",
    "make_datasets", "make_loss", "learning_rate", "Schedule", "make_clock", "epoch_loader", "train",
    "load_checkpoint", "save_checkpoint", "rng_state", "set_rng_state", "CheckpointError",
    "Interrupted", "RunFolderLocked",
]


def make_dataset(cfg: TrainConfig, split: str, *, ann_file: Any = None, image_dir: Any = None,
                 boxes_file: Any = None) -> Any:
    """The ``TopDownDataset`` of ``split`` with the config's sizes (``train`` augments; ``val``
    crops ground-truth boxes, or the detections of ``boxes_file``). The annotation file and image
    folder default to the config's profile and data source."""
    from course_lib.data import TopDownDataset
    from course_lib.transforms import AugmentConfig

    ann = Path(ann_file) if ann_file else course_config.annotation_file(
        split, cfg.data_source, cfg.profile)
    images = Path(image_dir) if image_dir else course_config.image_dir(
        split, cfg.data_source, cfg.profile)
    for path, what in ((ann, "annotations"), (images, "images")):
        if not (path.is_file() if what == "annotations" else path.is_dir()):
            raise FileNotFoundError(
                f"no {split} {what} at {path}: generate the data first (`make data`, or "
                f"COURSE_PROFILE={cfg.profile} python data_scripts/make_synthetic_coco.py)")
    if boxes_file is not None and not Path(boxes_file).is_file():
        raise FileNotFoundError(f"boxes_file: no detections file at {boxes_file}")
    training = split == "train"
    augment = AugmentConfig(**cfg.augment) if training and cfg.augment else None
    return TopDownDataset(ann, images, input_size=cfg.input_size, heatmap_size=cfg.heatmap_size,
                          sigma=cfg.sigma, train=training, encoding=cfg.encoding,
                          augment=augment, seed=cfg.seed, boxes_file=boxes_file)


def make_datasets(cfg: TrainConfig) -> tuple[Any, Any]:
    """``(train, val)`` datasets of the config's profile (:func:`make_dataset`)."""
    return make_dataset(cfg, "train"), make_dataset(cfg, "val")


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

class _SkipSampler(torch.utils.data.Sampler):
    """The indices of ``sampler`` without its first ``skip`` ones (resuming inside an epoch)."""

    def __init__(self, sampler: torch.utils.data.Sampler, skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        for i, index in enumerate(self.sampler):
            if i >= self.skip:
                yield index

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)


def epoch_loader(dataset: Any, cfg: TrainConfig, epoch: int, *, skip_batches: int = 0,
                 rank: int = 0, world_size: int = 1) -> torch.utils.data.DataLoader:
    """The training batches of ``epoch`` (order fixed by ``seed`` and ``epoch``), from batch
    ``skip_batches`` on, through ``course_lib.data.make_loader``. Each process of a distributed
    run gets its own share."""
    from course_lib.data import make_loader

    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                                  shuffle=True, seed=cfg.seed, drop_last=True)
    sampler.set_epoch(epoch)
    return make_loader(dataset, batch_size=cfg.batch_size, num_workers=cfg.num_workers,
                       seed=cfg.seed * 100_003 + epoch, drop_last=True, reseed=False,
                       sampler=_SkipSampler(sampler, skip_batches * cfg.batch_size))


# ---------------------------------------------------------------------------------------------
# the state of a run, and the helpers the loop names
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    """What a training run carries from step to step (and saves in its checkpoints)."""

    cfg: TrainConfig
    out_dir: Path
    model: nn.Module
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    device: torch.device
    autocast: torch.dtype | None  # the forward pass's dtype (None: float32), autocast_dtype()
    steps_per_epoch: int
    total_steps: int
    rank: int = 0
    world: int = 1
    step: int = 0
    history: dict = field(default_factory=lambda: {"train": [], "val": [], "best_ap": None,
                                                   "finished": False})
    clock: Callable[[], float] = time.perf_counter
    wall_start: float = field(default_factory=time.perf_counter)
    last_eval_s: float = 0.0
    validation_pending: bool = False  # stopped where a validation was due: it runs on resume

    @property
    def epoch(self) -> int:
        """The epoch the next step belongs to."""
        return self.step // self.steps_per_epoch

    def record(self) -> dict:
        """The time stamps of a history row (``epoch``: that of the last step taken)."""
        return {"step": self.step, "epoch": max(self.step - 1, 0) // self.steps_per_epoch,
                "time_s": round(self.schedule.elapsed_s, 2),
                "wall_s": round(time.perf_counter() - self.wall_start, 2)}


def _distributed() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)``; starts the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size()


def start_run(cfg: TrainConfig, train_dataset: Any, out_dir: Path) -> Run:
    """A fresh run: seeded model (channels-last, on the GPU when there is one), Adam, schedule."""
    rank, local_rank, world = _distributed()
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    course_config.seed_everything(cfg.seed)
    model = build_model(cfg).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = len(train_dataset) // (cfg.batch_size * world)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size: {cfg.batch_size} x {world} process(es) is larger than "
                         f"the {len(train_dataset)} training crops")
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_train_steps:
        total_steps = min(total_steps, cfg.max_train_steps)
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    return Run(cfg=cfg, out_dir=out_dir, model=model, net=net, optimizer=optimizer,
               schedule=Schedule(optimizer, cfg, total_steps),
               scaler=torch.amp.GradScaler("cuda", enabled=device.type == "cuda"),
               device=device, autocast=autocast_dtype(cfg, device),
               steps_per_epoch=steps_per_epoch, total_steps=total_steps, rank=rank, world=world,
               clock=make_clock(cfg.budget_clock))


def resume_run(run: Run, train_dataset: Any, ckpt: dict, changes: dict | None = None, *,
               path: Path | None = None) -> None:
    """Continue from checkpoint ``ckpt`` (read from ``path`` by
    :func:`guards.checkpoint_to_resume`): weights, optimizer, schedule, scaler, history, step and
    every RNG state (the dataset's augmentation generator included). Forced config ``changes``
    are recorded in ``history["config_changes"]`` and let a finished run go on."""
    try:
        run.model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise CheckpointError(f"checkpoint {path or run.out_dir}: its weights do not fit the "
                              f"network of the config ({first})") from None
    run.schedule.load_state_dict(ckpt["scheduler"])
    if "scaler" in ckpt:
        run.scaler.load_state_dict(ckpt["scaler"])
    run.history = ckpt["history"]
    run.step = int(ckpt["step"])
    set_rng_state(ckpt["rng"])
    if "dataset" in ckpt["rng"] and hasattr(train_dataset, "rng"):
        train_dataset.rng.bit_generator.state = ckpt["rng"]["dataset"]
    run.last_eval_s = run.schedule.elapsed_s
    run.validation_pending = bool(ckpt.get("validation_pending", False))
    if changes:
        row = {name: [old, new] for name, (old, new) in changes.items()}
        run.history.setdefault("config_changes", []).append({"step": run.step, **row})
        run.history["finished"] = False


def save(run: Run, train_dataset: Any, *, is_best: bool, validation_pending: bool = False) -> None:
    """Write ``latest.pt``, and ``best.pt`` when ``is_best`` or while nothing was validated
    (then the best is the latest; an earlier run's ``best.pt`` never survives a new one)."""
    if run.rank != 0:
        return
    rng = rng_state()
    if hasattr(train_dataset, "rng"):  # TopDownDataset's augmentation generator
        rng["dataset"] = train_dataset.rng.bit_generator.state
    state = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
             "scheduler": run.schedule.state_dict(), "scaler": run.scaler.state_dict(),
             "rng": rng, "config": run.cfg.to_dict(), "epoch": run.record()["epoch"],
             "step": run.step, "history": run.history, "validation_pending": validation_pending}
    save_checkpoint(state, run.out_dir / "latest.pt")
    if is_best or run.history["best_ap"] is None:
        save_checkpoint(state, run.out_dir / "best.pt")


def validate_and_save(run: Run, train_dataset: Any, validate_fn: Callable | None,
                      callback: Callable | None) -> None:
    """Validation (when a ``validate_fn`` is given; its time counts as training time, and the
    random streams are restored after it), the history row, then the checkpoints."""
    is_best = False
    t0 = run.clock()
    if run.rank == 0 and validate_fn is not None:
        state = rng_state()
        try:
            stats = validate_fn(run.model, run.device)
        finally:
            set_rng_state(state)
        run.history["val"].append({**run.record(), **stats})
        if run.history["best_ap"] is None or stats["AP"] > run.history["best_ap"]:
            run.history["best_ap"], is_best = stats["AP"], True
        if callback is not None:
            callback(run.history)
    save(run, train_dataset, is_best=is_best)
    run.schedule.elapsed_s += run.clock() - t0  # validating and saving count as training time
    run.last_eval_s = run.schedule.elapsed_s


def train_step(run: Run, batch: dict, loss_fn: Callable) -> tuple[torch.Tensor, float]:
    """One optimisation step on ``batch``: forward (in ``run.autocast``), loss, backward, Adam."""
    images = batch["image"].to(run.device, non_blocking=True).contiguous(
        memory_format=torch.channels_last)
    lr = run.schedule.apply()
    with torch.autocast(run.device.type, dtype=run.autocast or torch.float32,
                        enabled=run.autocast is not None):
        output = run.net(images)
    if run.autocast is not None:  # the loss in float32, whatever the forward pass computed in
        output = to_float32(output)
    loss = loss_fn(output, batch)
    guards.check_finite_loss(loss, run.step)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if not run.scaler.is_enabled():  # with a scaler (CUDA), inf gradients skip the step
        guards.check_finite_gradients(run.model, run.step)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.step += 1
    run.schedule.step_count = run.step
    return loss, lr


def stop_reasons(run: Run, signalled: bool = False) -> tuple[bool, bool]:
    """``(time budget spent, a stop signal arrived)``; in a distributed run both are agreed by
    all processes (one clock, any signal), so every process takes the same last step."""
    if run.world > 1:
        import torch.distributed as dist

        flags = torch.tensor([run.schedule.elapsed_s, float(signalled)], dtype=torch.float64,
                             device=run.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        run.schedule.elapsed_s, signalled = float(flags[0].item()), bool(flags[1].item())
    budget = run.cfg.max_train_minutes
    return budget is not None and run.schedule.elapsed_s >= budget * 60, signalled


def validation_due(run: Run) -> bool:
    """At every epoch end, and every ``eval_every_minutes`` of training time."""
    every = run.cfg.eval_every_minutes
    timed = bool(every) and run.schedule.elapsed_s - run.last_eval_s >= every * 60
    return timed or run.step % run.steps_per_epoch == 0


def log_step(run: Run, loss: torch.Tensor, lr: float, bar: Any, callback: Callable | None) -> None:
    """A history row (every step; every 10th on CUDA, where ``.item()`` waits for the GPU)."""
    bar.update(1)
    if run.step % (10 if run.device.type == "cuda" else 1) and run.step != run.total_steps:
        return
    value = float(loss.item())
    run.history["train"].append({**run.record(), "loss": value, "lr": lr})
    bar.set_postfix(loss=f"{value:.2e}", lr=f"{lr:.1e}")
    if callback is not None and run.rank == 0:
        callback(run.history)


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------

def run_epochs(run: Run, train_dataset: Any, loss_fn: Callable, bar: Any, stop: Any, *,
               validate_fn: Callable | None, stop_at_step: int | None,
               callback: Callable | None) -> str:
    """Train until the run ends; returns why: ``"done"`` (steps or time budget),
    ``"stop_at_step"`` or ``"signal"`` (a SIGINT/SIGTERM caught by ``stop``)."""
    if run.validation_pending:  # the interrupted run stopped where it would have validated
        validate_and_save(run, train_dataset, validate_fn, callback)
    if run.step >= run.total_steps or stop_reasons(run)[0]:
        return "done"
    while True:
        loader = epoch_loader(train_dataset, run.cfg, run.epoch,
                              skip_batches=run.step % run.steps_per_epoch, rank=run.rank,
                              world_size=run.world)
        run.net.train()
        tick = run.clock()
        for batch in loader:
            loss, lr = train_step(run, batch, loss_fn)
            run.schedule.elapsed_s += run.clock() - tick  # data loading counts too
            tick = run.clock()
            log_step(run, loss, lr, bar, callback)
            spent, signalled = stop_reasons(run, stop.signum is not None)  # every step (DDP)
            if signalled:
                return "signal"
            if run.step == stop_at_step:
                return "stop_at_step"
            if spent or run.step >= run.total_steps:
                return "done"
            if validation_due(run):
                validate_and_save(run, train_dataset, validate_fn, callback)
                run.net.train()
                tick = run.clock()


def finish(run: Run, train_dataset: Any, why: str, validate_fn: Callable | None,
           callback: Callable | None) -> None:
    """The last validation and checkpoints of a finished run, or the checkpoints of a stopped
    one (it remembers a validation that was due, for the resume)."""
    if why == "done":
        run.history["finished"] = True
        validate_and_save(run, train_dataset, validate_fn, callback)
    else:
        due = validation_due(run) and run.step < run.total_steps  # else the resume finishes
        save(run, train_dataset, is_best=False, validation_pending=due)
    if run.world > 1:
        import torch.distributed as dist

        dist.barrier()


def run_loop(run: Run, train_dataset: Any, *, validate_fn: Callable | None,
             stop_at_step: int | None, progress: bool, callback: Callable | None) -> None:
    """:func:`run_epochs` and :func:`finish` with SIGINT/SIGTERM turned into a checkpoint at
    the next step boundary, then :class:`Interrupted`."""
    from tqdm.auto import tqdm

    loss_fn = make_loss(run.cfg, run.model)
    bar = tqdm(total=run.total_steps, initial=run.step, disable=not progress or run.rank != 0,
               desc="training", unit="step")
    with guards.StopSignals() as stop:
        try:
            why = run_epochs(run, train_dataset, loss_fn, bar, stop, validate_fn=validate_fn,
                             stop_at_step=stop_at_step, callback=callback)
        finally:
            bar.close()
        finish(run, train_dataset, why, validate_fn, callback)
    if why == "signal":
        raise Interrupted(stop.name, run.step, run.out_dir / "latest.pt")


def train(cfg: TrainConfig, out_dir: str | os.PathLike, *, train_dataset: Any = None,
          validate_fn: Callable | None = None, resume: bool = False, resume_from: str = "latest",
          force: bool = False, stop_at_step: int | None = None, progress: bool = True,
          callback: Callable | None = None) -> tuple[nn.Module, dict]:
    """Train the config's network; write ``latest.pt`` / ``best.pt`` in ``out_dir``.

    ``train_dataset`` defaults to the profile's (:func:`make_datasets`). ``validate_fn(model,
    device) -> stats`` (with an ``"AP"``) runs at every epoch end, every ``eval_every_minutes``
    and at the end (None: no validation; checkpoints are still written there).
    ``callback(history)`` is called after every logged step and validation (the live plot).

    ``resume=True`` continues from ``out_dir/latest.pt`` (``resume_from="best"``: from
    ``best.pt``) and raises when there is nothing to continue, when the file is corrupt, or when
    it was trained with another config (every differing field is listed; ``force=True``
    continues with the new one and records the change). ``resume=False`` refuses a folder
    holding checkpoints unless ``force=True``. A second run on the same folder raises
    :class:`RunFolderLocked`. SIGINT (Ctrl-C) or SIGTERM saves at the next step boundary and
    raises :class:`Interrupted` (a ``KeyboardInterrupt``); ``stop_at_step`` stops and saves
    after that many steps, as such an interruption would.

    Returns ``(model, history)``: ``history`` has ``train`` rows (step, epoch, time_s, wall_s,
    loss, lr), ``val`` rows (step, epoch, time_s, wall_s and the stats), ``best_ap`` and
    ``finished``; ``time_s`` is training time on the budget's clock summed over resumes,
    ``wall_s`` wall-clock seconds since this call started.
    """
    out_dir = Path(out_dir)
    with guards.run_folder_lock(out_dir, active=int(os.environ.get("RANK", "0")) == 0):
        found = guards.checkpoint_to_resume(out_dir, cfg, resume_from=resume_from,
                                            force=force) if resume else None
        if not resume and not force:
            guards.refuse_fresh_start(out_dir)
        train_dataset = make_datasets(cfg)[0] if train_dataset is None else train_dataset
        run = start_run(cfg, train_dataset, out_dir)
        if found is not None:
            resume_run(run, train_dataset, *found, path=out_dir / f"{resume_from}.pt")
        if not run.history.get("finished"):
            run_loop(run, train_dataset, validate_fn=validate_fn, stop_at_step=stop_at_step,
                     progress=progress, callback=callback)
    return run.model, run.history
