"""The training loop: Adam, warm-up, step decay, checkpoints, exact resume, validation AP.

Taught in ``05_training_mse.ipynb``; the checkpoint it writes is read by notebooks 06-08 through
:func:`load_model`.

One plain loop, readable top to bottom in :func:`train`:

* Adam; the learning rate rises linearly over ``warmup_steps`` steps, then is multiplied by 0.1
  at each epoch of ``lr_steps`` (SimpleBaseline: 1e-3, x0.1 at epochs 90 and 120 of 140). When a
  wall-clock budget (``max_train_minutes``) is set, the same milestones are read as fractions of
  the run (``lr_steps[i] / epochs``) measured by steps or by time, whichever is further along, so
  a short run on a slow machine still gets its decay before the budget ends.
* Mixed precision (float16 autocast + gradient scaling) on CUDA only; channels-last memory
  layout everywhere (faster convolutions on CPU and on tensor cores).
* Checkpoints written atomically (temporary file + ``os.replace``) as ``latest.pt`` and
  ``best.pt`` (best validation AP): model, optimizer, scheduler and RNG states, config, epoch,
  step, history. ``--resume`` continues bit for bit: the data order depends only on
  ``(seed, epoch)`` and the position inside the epoch, and every RNG state is restored (the
  augmentation too when the data loads in the training process, ``num_workers=0``; with loader
  processes, a resume at an epoch boundary is exact, one inside an epoch draws other
  augmentations for the rest of that epoch).
* Validation: OKS AP with pycocotools' ``COCOeval`` on the val split, with ground-truth boxes
  (so AP measures the keypoints, not a detector) and DARK (or quarter-offset) decoding.
* Under ``torchrun`` it trains with DistributedDataParallel (gloo on CPU, nccl on CUDA); each
  process reads its share of every epoch through a ``DistributedSampler``; ``batch_size`` is
  per process.

Command line: ``python -m course_lib.train --profile cpu --out runs/NAME [--resume]``.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib import config as course_config
from course_lib.losses import keypoint_mse_loss, ohkm_mse_loss
from course_lib.models import load_imagenet_weights, pose_resnet
from course_lib.synthetic import GENERATOR_VERSION

#: Config keys that must match for a checkpoint to be reused instead of training again.
CONFIG_KEYS = (
    "profile", "data_source", "data_version", "depth", "head_channels", "num_keypoints",
    "input_size", "heatmap_size", "sigma", "encoding", "augment", "pretrained",
    "zero_init_residual", "batch_size", "lr", "epochs", "lr_steps", "warmup_steps",
    "max_train_minutes", "max_train_steps", "budget_clock", "loss", "seed", "decode_method",
)


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------

def make_config(profile: course_config.Profile | str | None = None, **overrides: Any) -> dict:
    """The training configuration of a profile, as a plain dict (stored in every checkpoint).

    Keys: everything in :data:`CONFIG_KEYS` plus ``num_workers`` and ``eval_every_minutes``
    (validate every that many minutes of training as well as at the end of every epoch and of
    training; None: only the latter). ``budget_clock`` says how ``max_train_minutes`` is
    measured: ``"wall"`` (the clock on the wall) or ``"cpu"`` (the process's CPU time divided
    by the number of cores: the wall time the run would take with the machine to itself, for
    measuring on a shared machine; load the data in the process, ``num_workers=0``, so that
    all the work is counted). ``overrides``
    replace values (unknown keys raise ``ValueError``).
    """
    prof = (profile if isinstance(profile, course_config.Profile)
            else course_config.get_profile(profile))
    source = course_config.data_source(prof)
    cfg = {
        "profile": prof.name,
        "data_source": source,
        # a checkpoint trained on an older generation of the synthetic data is not reused
        "data_version": GENERATOR_VERSION if source == "synthetic" else None,
        "depth": prof.depth,
        "head_channels": int(prof.extra.get("head_channels", 256)),
        "num_keypoints": 17,
        "input_size": tuple(prof.input_size),
        "heatmap_size": tuple(prof.heatmap_size),
        "sigma": float(prof.sigma),
        "encoding": "msra",
        # training augmentation: None = the paper's (course_lib.transforms.AugmentConfig), or a
        # dict of AugmentConfig fields to change (a short run learns faster with milder ones)
        "augment": prof.extra.get("augment"),
        "pretrained": bool(prof.pretrained),
        "pretrained_weights": None,  # a local ImageNet .pth (None: torchvision's URL)
        # from scratch, blocks that start as the identity train faster (module docstring)
        "zero_init_residual": not prof.pretrained,
        "batch_size": prof.batch_size,
        "lr": prof.lr,
        "epochs": prof.epochs,
        "lr_steps": tuple(prof.lr_steps),
        "warmup_steps": prof.warmup_steps,
        "max_train_minutes": prof.max_train_minutes,
        "max_train_steps": prof.max_train_steps,
        "budget_clock": "wall",
        "loss": "mse",
        "seed": 0,
        "decode_method": "dark",
        "num_workers": prof.num_workers,
        "eval_every_minutes": prof.extra.get("eval_every_minutes"),
    }
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"overrides: unknown keys {sorted(unknown)}; expected some of {sorted(cfg)}")
    cfg.update(overrides)
    for key in ("input_size", "heatmap_size", "lr_steps"):
        cfg[key] = tuple(cfg[key])
    return cfg


def compatible(checkpoint_config: dict, cfg: dict) -> bool:
    """True when a checkpoint was trained with the same :data:`CONFIG_KEYS` values as ``cfg``."""
    def norm(value: Any) -> Any:
        return list(value) if isinstance(value, (tuple, list)) else value

    return all(norm(checkpoint_config.get(k)) == norm(cfg.get(k)) for k in CONFIG_KEYS)


def build_model(cfg: dict) -> nn.Module:
    """The network of a config; ImageNet weights are fetched only when ``pretrained`` is set."""
    model = pose_resnet(cfg["depth"], cfg["num_keypoints"],
                        head_channels=cfg.get("head_channels", 256),
                        zero_init_residual=cfg.get("zero_init_residual", False))
    if cfg.get("pretrained"):
        load_imagenet_weights(model, cfg.get("pretrained_weights"), download=True)
    return model


# ---------------------------------------------------------------------------------------------
# learning rate
# ---------------------------------------------------------------------------------------------

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

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: dict, total_steps: int) -> None:
        self.optimizer = optimizer
        self.base_lr = float(cfg["lr"])
        self.warmup_steps = int(cfg["warmup_steps"])
        self.milestones = tuple(s / cfg["epochs"] for s in cfg["lr_steps"])
        self.total_steps = total_steps
        self.budget_s = None if cfg.get("max_train_minutes") is None else cfg["max_train_minutes"] * 60
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


# ---------------------------------------------------------------------------------------------
# checkpoints and RNG states
# ---------------------------------------------------------------------------------------------

def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) RNG states, as types ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(_to_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(value: Any) -> Any:
    return tuple(_to_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a temporary file, then ``os.replace``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return course_config.write_atomic(path, buffer.getbuffer())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`train` (tensors land on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"path: no checkpoint at {path}; train one with 05_training_mse.ipynb or "
            f"`python -m course_lib.train --out {path.parent}`"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(path: str | os.PathLike | None = None) -> tuple[nn.Module, dict]:
    """``(model in eval mode, config dict)`` from a checkpoint (default: the profile's best).

    The one way notebooks 06-08 load the network trained in 05.
    """
    ckpt = load_checkpoint(path if path is not None else course_config.checkpoint_path())
    cfg = dict(ckpt["config"])
    model = build_model({**cfg, "pretrained": False})  # no ImageNet fetch: weights come next
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

def make_datasets(cfg: dict) -> tuple[Any, Any]:
    """``(train, val)`` TopDownDatasets of the config's profile (val uses ground-truth boxes)."""
    from course_lib.data import TopDownDataset

    def make(split: str, train: bool) -> Any:
        ann = course_config.annotation_file(split, cfg["data_source"], cfg["profile"])
        images = course_config.image_dir(split, cfg["data_source"], cfg["profile"])
        if not ann.is_file():
            raise FileNotFoundError(
                f"no {split} annotations at {ann}: generate the data first "
                f"(`make data`, or COURSE_PROFILE={cfg['profile']} "
                f"python data_scripts/make_synthetic_coco.py)"
            )
        augment = None
        if train and cfg.get("augment"):
            from course_lib.transforms import AugmentConfig

            augment = AugmentConfig(**cfg["augment"])
        return TopDownDataset(ann, images, input_size=cfg["input_size"],
                              heatmap_size=cfg["heatmap_size"], sigma=cfg["sigma"], train=train,
                              encoding=cfg["encoding"], augment=augment, seed=cfg["seed"])

    return make("train", True), make("val", False)


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


def _worker_init(worker_id: int) -> None:
    # each worker: one thread for torch/OpenCV, numpy and random seeded from torch's worker seed
    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(0)
    except ImportError:
        pass
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):  # TopDownDataset's augmentation
        info.dataset.rng = np.random.default_rng([seed, worker_id])


def epoch_loader(dataset: Any, cfg: dict, epoch: int, *, skip_batches: int = 0,
                 rank: int = 0, world_size: int = 1) -> torch.utils.data.DataLoader:
    """The training batches of ``epoch`` (order fixed by ``seed`` and ``epoch``), from batch
    ``skip_batches`` on. Each process of a distributed run gets its own share."""
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                                  shuffle=True, seed=cfg["seed"], drop_last=True)
    sampler.set_epoch(epoch)
    batch = cfg["batch_size"]
    workers = cfg.get("num_workers", 0)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch, sampler=_SkipSampler(sampler, skip_batches * batch),
        drop_last=True, num_workers=workers, worker_init_fn=_worker_init,
        generator=torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch),
        pin_memory=torch.cuda.is_available(), persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )


# ---------------------------------------------------------------------------------------------
# validation: OKS AP with ground-truth boxes
# ---------------------------------------------------------------------------------------------

COCO_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


KEYPOINT_SCORE_THRESHOLD = 0.2  # keypoints above it count in the instance score


def results_from_heatmaps(heatmaps: np.ndarray, meta: dict, *, input_size: tuple[int, int],
                          method: str = "dark", udp: bool = False) -> list[dict]:
    """COCO keypoint results from a batch of heatmaps ``[N, K, H, W]`` and the batch's ``meta``.

    ``course_lib.decode.decode``, then heatmap -> crop -> image pixels with the crop's centre,
    scale and rotation (MSRA or ``udp`` convention). Keypoints are written as ``x, y,
    confidence`` (pycocotools reads only x and y). The score is the box score times the mean
    confidence of the keypoints above 0.2 (SimpleBaseline's rescoring). Notebook 08's
    ``course_lib.validate`` uses the same function.
    """
    from course_lib.decode import decode
    from course_lib.transforms import crop_to_image, heatmap_to_crop

    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    hm_size = (heatmaps.shape[3], heatmaps.shape[2])
    coords, scores = decode(heatmaps, method=method)
    coords = np.asarray(coords, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    results = []
    for i in range(len(heatmaps)):
        crop = heatmap_to_crop(coords[i], input_size, hm_size, udp=udp)
        rotation = float(meta["rotation"][i]) if "rotation" in meta else 0.0
        points = crop_to_image(crop, np.asarray(meta["center"][i], dtype=np.float64),
                               np.asarray(meta["scale"][i], dtype=np.float64), input_size,
                               rotation, udp=udp)
        confident = scores[i][scores[i] > KEYPOINT_SCORE_THRESHOLD]
        box_score = float(meta["box_score"][i]) if "box_score" in meta else 1.0
        kps = np.concatenate([np.asarray(points, dtype=np.float64), scores[i][:, None]], axis=1)
        results.append({
            "image_id": int(meta["image_id"][i]),
            "category_id": 1,
            "keypoints": [round(float(v), 3) for v in kps.ravel()],
            "score": box_score * (float(confident.mean()) if confident.size else 0.0),
        })
    return results


@torch.no_grad()
def predict_keypoints(model: nn.Module, dataset: Any, *, method: str = "dark",
                      batch_size: int = 32, device: str | torch.device = "cpu",
                      max_items: int | None = None) -> list[dict]:
    """COCO keypoint results for every crop of ``dataset`` (see :func:`results_from_heatmaps`)."""
    indices = list(range(len(dataset) if max_items is None else min(max_items, len(dataset))))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices),
                                         batch_size=batch_size, shuffle=False, num_workers=0)
    was_training = model.training
    model.eval()
    results = []
    for batch in loader:
        images = batch["image"].to(device).contiguous(memory_format=torch.channels_last)
        heatmaps = model(images).float().cpu().numpy()
        results += results_from_heatmaps(heatmaps, batch["meta"], method=method,
                                         input_size=(images.shape[3], images.shape[2]))
    model.train(was_training)
    return results


def coco_keypoint_ap(ann_file: str | os.PathLike, results: list[dict]) -> dict:
    """The 10 COCO keypoint stats of ``results`` against ``ann_file`` (pycocotools, silenced)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return dict.fromkeys(COCO_STATS, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.imgIds = sorted({r["image_id"] for r in results})
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(COCO_STATS, ev.stats)}


def validate(model: nn.Module, dataset: Any, cfg: dict, *, device: str | torch.device = "cpu",
             ann_file: str | os.PathLike | None = None) -> dict:
    """OKS AP of ``model`` on ``dataset`` (ground-truth boxes), decoding with the config's method."""
    if ann_file is None:
        ann_file = getattr(dataset, "ann_file", None) or course_config.annotation_file(
            "val", cfg["data_source"], cfg["profile"])
    state = rng_state()  # validation must not change the training's random streams
    try:
        results = predict_keypoints(model, dataset, method=cfg.get("decode_method", "dark"),
                                    batch_size=2 * cfg["batch_size"], device=device)
    finally:
        set_rng_state(state)
    return coco_keypoint_ap(ann_file, results)


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------

def make_clock(kind: str = "wall"):
    """A function returning seconds: wall time, or CPU time / cores (see :func:`make_config`)."""
    if kind == "wall":
        return time.perf_counter
    if kind == "cpu":
        cores = os.cpu_count() or 1
        return lambda: time.process_time() / cores
    raise ValueError(f"budget_clock: expected 'wall' or 'cpu', got {kind!r}")


def _distributed() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)``; starts the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size()


def train(cfg: dict, out_dir: str | os.PathLike, *, train_dataset: Any = None,
          val_dataset: Any = None, resume: bool = False, stop_at_step: int | None = None,
          progress: bool = True, callback: Any = None) -> tuple[nn.Module, dict]:
    """Train the config's network; write ``latest.pt`` / ``best.pt`` in ``out_dir``.

    ``train_dataset`` / ``val_dataset`` default to the profile's TopDownDatasets (validation is
    skipped when ``val_dataset`` is None and a train dataset was given). ``resume`` continues
    from ``out_dir/latest.pt``. ``stop_at_step`` interrupts the run after that many steps (as a
    crash would; the schedule is unchanged). ``callback(history)`` is called after every logged
    step and validation (the notebook's live plot). Returns ``(model, history)``; ``history``
    has ``train`` (step, epoch, time_s, wall_s, loss, lr) and ``val`` (step, epoch, time_s,
    wall_s, the 10 COCO stats) lists, ``best_ap`` and ``finished``. ``time_s`` is the training
    time on the budget's clock (validation and checkpoints included, summed over resumes);
    ``wall_s`` the wall-clock seconds since this call started.
    """
    rank, local_rank, world = _distributed()
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    use_amp = device.type == "cuda"
    out_dir = Path(out_dir)
    if train_dataset is None:
        train_dataset, default_val = make_datasets(cfg)
        val_dataset = default_val if val_dataset is None else val_dataset

    course_config.seed_everything(cfg["seed"])
    model = build_model(cfg).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    steps_per_epoch = len(train_dataset) // (cfg["batch_size"] * world)
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch_size: {cfg['batch_size']} x {world} process(es) is larger than the "
            f"{len(train_dataset)} training crops"
        )
    total_steps = steps_per_epoch * cfg["epochs"]
    if cfg.get("max_train_steps"):
        total_steps = min(total_steps, cfg["max_train_steps"])
    schedule = Schedule(optimizer, cfg, total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: dict = {"train": [], "val": [], "best_ap": None, "finished": False}
    step = 0

    latest = out_dir / "latest.pt"
    if resume and latest.is_file():
        ckpt = load_checkpoint(latest)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
        history = ckpt["history"]
        step = int(ckpt["step"])
        set_rng_state(ckpt["rng"])
        if "dataset" in ckpt["rng"] and hasattr(train_dataset, "rng"):
            train_dataset.rng.bit_generator.state = ckpt["rng"]["dataset"]

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)

    clock = make_clock(cfg.get("budget_clock", "wall"))
    wall_start = time.perf_counter()
    loss_fn = ohkm_mse_loss if cfg.get("loss") == "ohkm" else keypoint_mse_loss
    budget_s = None if cfg.get("max_train_minutes") is None else cfg["max_train_minutes"] * 60
    eval_every_s = None if cfg.get("eval_every_minutes") is None else cfg["eval_every_minutes"] * 60
    last_eval_s = schedule.elapsed_s

    def checkpoint(epoch: int, is_best: bool) -> None:
        if rank != 0:
            return
        rng = rng_state()
        if hasattr(train_dataset, "rng"):  # TopDownDataset's augmentation generator
            rng["dataset"] = train_dataset.rng.bit_generator.state
        state = {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": schedule.state_dict(), "scaler": scaler.state_dict(),
            "rng": rng, "config": dict(cfg), "epoch": epoch, "step": step,
            "history": history,
        }
        save_checkpoint(state, latest)
        if is_best or not (out_dir / "best.pt").is_file():
            save_checkpoint(state, out_dir / "best.pt")

    def run_validation(epoch: int) -> None:
        is_best = False
        t0 = clock()
        if rank == 0 and val_dataset is not None:
            stats = validate(model, val_dataset, cfg, device=device)
            schedule.elapsed_s += clock() - t0
            t0 = clock()
            history["val"].append({"step": step, "epoch": epoch,
                                   "time_s": round(schedule.elapsed_s, 2),
                                   "wall_s": round(time.perf_counter() - wall_start, 2), **stats})
            if history["best_ap"] is None or stats["AP"] > history["best_ap"]:
                history["best_ap"], is_best = stats["AP"], True
            if callback is not None:
                callback(history)
        checkpoint(epoch, is_best)
        schedule.elapsed_s += clock() - t0  # writing checkpoints counts as training time

    def out_of_budget() -> bool:
        if world > 1:  # one clock for all processes: same learning rate, same last step
            import torch.distributed as dist

            elapsed = torch.tensor([schedule.elapsed_s], dtype=torch.float64, device=device)
            dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
            schedule.elapsed_s = float(elapsed.item())
        return budget_s is not None and schedule.elapsed_s >= budget_s

    from tqdm.auto import tqdm

    if history.get("finished"):
        return model, history
    bar = tqdm(total=total_steps, initial=step, disable=not progress or rank != 0,
               desc="training", unit="step")
    log_every = 10 if use_amp else 1  # .item() waits for the GPU: log less often there
    interrupted = over_budget = False
    while step < total_steps and not (interrupted or over_budget):
        epoch = step // steps_per_epoch
        loader = epoch_loader(train_dataset, cfg, epoch, skip_batches=step % steps_per_epoch,
                              rank=rank, world_size=world)
        net.train()
        t_last = clock()
        for batch in loader:
            images = batch["image"].to(device, non_blocking=True).contiguous(
                memory_format=torch.channels_last)
            target = batch["heatmaps"].to(device, non_blocking=True)
            weights = batch["weights"].to(device, non_blocking=True)
            lr = schedule.apply()
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                pred = net(images)
            loss = loss_fn(pred.float(), target, weights)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            schedule.step_count = step
            now = clock()
            schedule.elapsed_s += now - t_last
            t_last = now
            bar.update(1)
            if step % log_every == 0 or step == total_steps:
                history["train"].append({"step": step, "epoch": epoch,
                                         "time_s": round(schedule.elapsed_s, 2),
                                         "wall_s": round(time.perf_counter() - wall_start, 2),
                                         "loss": float(loss.item()), "lr": lr})
                bar.set_postfix(loss=f"{loss.item():.2e}", lr=f"{lr:.1e}")
                if callback is not None and rank == 0:
                    callback(history)
            interrupted = step == stop_at_step
            over_budget = out_of_budget()
            if interrupted or over_budget or step >= total_steps:
                break
            if (eval_every_s and schedule.elapsed_s - last_eval_s >= eval_every_s) \
                    or step % steps_per_epoch == 0:
                run_validation(epoch)
                last_eval_s = schedule.elapsed_s
                t_last = clock()
    bar.close()
    if interrupted:  # stopped on request: save where we are, as at any other checkpoint
        checkpoint((step - 1) // steps_per_epoch, False)
    else:
        history["finished"] = True
        run_validation((step - 1) // steps_per_epoch)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    return model, history


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------

def plot_history(history: dict, ax: Any = None) -> Any:
    """Loss (log scale, left axis) and validation AP (right axis) against training minutes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    ax.clear()
    for other in ax.figure.axes:  # remove the AP twin axis of a previous call
        if other is not ax and getattr(other, "_course_twin", False):
            other.remove()
    tr = history.get("train", [])
    if tr:
        ax.plot([r["time_s"] / 60 for r in tr], [r["loss"] for r in tr], color="tab:blue",
                label="training loss")
        ax.set_yscale("log")
    ax.set_xlabel("training time (min)")
    ax.set_ylabel("MSE loss", color="tab:blue")
    val = history.get("val", [])
    if val:
        twin = ax.twinx()
        twin._course_twin = True
        twin.plot([r["time_s"] / 60 for r in val], [r["AP"] for r in val], "o-", color="tab:red",
                  label="val OKS AP")
        twin.set_ylim(0, 1)
        twin.set_ylabel("val OKS AP", color="tab:red")
    ax.grid(alpha=0.3)
    return ax


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict:
    """``python -m course_lib.train --profile cpu --out runs/NAME [--resume]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: COURSE_PROFILE)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/<profile>)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config values, e.g. --set depth=18 max_train_minutes=5")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    cfg = make_config(args.profile, **overrides)
    out = Path(args.out) if args.out else course_config.runs_dir(cfg["profile"])
    _, history = train(cfg, out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {"steps": history["train"][-1]["step"] if history["train"] else 0,
                   "minutes": (history["train"][-1]["time_s"] / 60) if history["train"] else 0.0,
                   "best_ap": history["best_ap"], "val": history["val"][-1:] or None}
        print(json.dumps(summary, indent=1))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return history


if __name__ == "__main__":
    main()
