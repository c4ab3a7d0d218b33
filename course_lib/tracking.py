"""Experiment tracking for ``python -m course_lib.train``: TensorBoard or Weights & Biases.

Taught in ``05_training_mse.ipynb`` (the command line). The training loop knows nothing of it:
the tracker rides on the two hooks :func:`course_lib.train.train` already has,
``callback(history)`` (after every logged step and every validation) and the injected
``validate_fn(model, device) -> stats``::

    tracker = make_tracker(cfg, out_dir)                   # cfg.logger: none|tensorboard|wandb
    validate_fn = tracker.wrap_validate(make_validator(val_set, cfg), val_set, cfg)
    try:
        train(cfg, out_dir, validate_fn=validate_fn, callback=tracker.callback)
    finally:
        tracker.close()

What is logged, against the training step:

* ``train/loss`` and ``train/lr``, one point per history row (every step on CPU);
* ``val/AP``, ``val/AP50``, ... ``val/ARl``: the ten COCO stats of every validation;
* ``val/predictions``: a few validation crops (the same ones every time, spread over the val
  set), ground truth on the top row, the prediction below (keypoints whose confidence is at
  most 0.2 as hollow rings), drawn after each validation (its time counts as training time);
* the config: TensorBoard's text tab, W&B's run config.

Backends (:data:`LOGGERS`): ``none``; ``tensorboard`` writes ``OUT/tensorboard/events.out.*``
(``tensorboard --logdir runs``); ``wandb`` writes ``OUT/wandb/`` and runs **offline** unless
the user is logged in (``WANDB_API_KEY`` set, or ``wandb login`` wrote ``~/.netrc``) or sets
``WANDB_MODE`` themselves; ``wandb sync OUT/wandb/offline-run-*`` uploads an offline run later.
A resumed run (``--resume``) logs only the rows after its checkpoint (TensorBoard drops the
events an interrupted run wrote past it; W&B logs under the run id kept in
``OUT/wandb-run-id``). Only the first process of a ``torchrun`` job tracks.
"""

from __future__ import annotations

import importlib.util
import json
import netrc
import os
import secrets
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.train import config as train_config

LOGGERS = train_config.LOGGERS
IMAGE_TAG = "val/predictions"
DRAWN_CROPS = 4
RECORD_KEYS = ("step", "epoch", "time_s", "wall_s")  # the time stamps of a history row
WANDB_PROJECT = "heatmaps-to-keypoints"
WANDB_ID_FILE = "wandb-run-id"


def available(logger: str) -> bool:
    """True when the package ``logger`` needs imports (``none`` always)."""
    check_logger(logger)
    if logger == "none":
        return True
    return importlib.util.find_spec(logger) is not None


def default_logger() -> str:
    """The command line's default: ``tensorboard`` when it is installed, else ``none``."""
    return "tensorboard" if available("tensorboard") else "none"


def check_logger(logger: str) -> str:
    """``logger`` when it is one of :data:`LOGGERS`, else ``ValueError`` naming them."""
    if logger not in LOGGERS:
        raise ValueError(f"logger: expected one of {', '.join(LOGGERS)}, got {logger!r}")
    return logger


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts: the checkpoint's step and how many history rows it holds."""

    step: int = 0
    train_rows: int = 0
    val_rows: int = 0


def resume_point(checkpoint: str | os.PathLike) -> ResumePoint:
    """The :class:`ResumePoint` of a checkpoint (a fresh start when it cannot be read: the
    training then reports the bad file itself)."""
    import torch

    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
        history = ckpt["history"]
        return ResumePoint(int(ckpt["step"]), len(history["train"]), len(history["val"]))
    except Exception:  # any unreadable file: train() names the problem when it reads it
        return ResumePoint()


def row_scalars(kind: str, row: dict) -> dict[str, float]:
    """``{"train/loss": ..., "train/lr": ...}`` or ``{"val/AP": ..., ...}`` of a history row
    (every number but the time stamps)."""
    return {f"{kind}/{key}": float(value) for key, value in row.items()
            if key not in RECORD_KEYS and isinstance(value, (int, float))
            and not isinstance(value, bool)}


# ---------------------------------------------------------------------------------------------
# drawn predictions
# ---------------------------------------------------------------------------------------------

def pick_crops(length: int, count: int = DRAWN_CROPS) -> list[int]:
    """``count`` crop indices spread evenly over ``length`` crops (all when fewer)."""
    if length <= 0 or count <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, length - 1, min(count, length)).round()})


def crop_keypoints(model: Any, images: Any, cfg: Any, device: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(keypoints [N, K, 2] in crop pixels, scores [N, K])`` predicted for ``images`` with the
    config's decoder (any head, through ``course_lib.predict``); the model's mode is kept."""
    import torch

    from course_lib import predict
    from course_lib import transforms as T

    was_training = model.training
    model.eval()
    try:
        batch = images.to(device).contiguous(memory_format=torch.channels_last)
        output = predict.run_network(model, batch, udp=cfg.encoding == "udp")
        coords, scores = predict.decode_output(output, model, cfg.decode_method)
    finally:
        model.train(was_training)
    points = np.stack([T.heatmap_to_crop(c, cfg.input_size, cfg.heatmap_size,
                                         udp=cfg.encoding == "udp") for c in coords])
    return points, np.asarray(scores)


def true_crop_keypoints(meta: dict, cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(keypoints [K, 2] in crop pixels, COCO visibility [K])`` of one crop's annotation."""
    from course_lib import transforms as T

    kps = np.asarray(meta["keypoints"], dtype=np.float64)
    points = T.image_to_crop(kps[:, :2], meta["center"], meta["scale"], cfg.input_size,
                             float(meta.get("rotation", 0.0)), udp=cfg.encoding == "udp")
    return points, kps[:, 2].astype(int)


def draw_panel(crop: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, label: str,
               zoom: int = 2) -> np.ndarray:
    """One crop, enlarged ``zoom`` times, with a skeleton and a label in its corner."""
    import cv2

    from course_lib.viz import render_skeleton

    big = cv2.resize(crop, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    drawn = render_skeleton(big, (np.asarray(keypoints) + 0.5) * zoom - 0.5, visible)
    (w, h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    cv2.rectangle(drawn, (0, 0), (w + 5, h + 6), (0, 0, 0), -1)
    cv2.putText(drawn, label, (3, h + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return drawn


def draw_predictions(model: Any, dataset: Any, cfg: Any, device: Any = "cpu",
                     count: int = DRAWN_CROPS) -> np.ndarray | None:
    """An RGB image ``[H, W, 3]``: :func:`pick_crops` crops of ``dataset`` side by side, the
    ground truth on the top row and the prediction below (None for an empty dataset)."""
    import torch

    from course_lib.data import denormalize_image

    items = [dataset[i] for i in pick_crops(len(dataset), count)]
    if not items:
        return None
    images = torch.stack([item["image"] for item in items])
    points, scores = crop_keypoints(model, images, cfg, device)
    top, bottom = [], []
    for item, pred, score in zip(items, points, scores):
        crop = denormalize_image(item["image"])
        truth, visible = true_crop_keypoints(item["meta"], cfg)
        top.append(draw_panel(crop, truth, visible, "truth"))
        bottom.append(draw_panel(crop, pred, np.where(score > 0.2, 2, 1), "prediction"))
    return np.concatenate([np.concatenate(top, axis=1), np.concatenate(bottom, axis=1)], axis=0)


# ---------------------------------------------------------------------------------------------
# the trackers
# ---------------------------------------------------------------------------------------------

class Tracker:
    """Logs the rows a training history gains (``logger="none"``: logs nothing).

    Subclasses open their backend on the first thing to log (a run refused before its first
    step leaves no files) and implement ``_open``, ``_scalars``, ``_image`` and ``_close``."""

    name = "none"

    def __init__(self, cfg: Any, out_dir: str | os.PathLike, *,
                 resume: ResumePoint | None = None, count: int = DRAWN_CROPS) -> None:
        self.cfg, self.out_dir, self.count = cfg, Path(out_dir), count
        self.resume = resume
        start = resume or ResumePoint()
        self.seen = {"train": start.train_rows, "val": start.val_rows}
        self.pending: np.ndarray | None = None  # drawn at the last validation, not yet logged
        self.opened = False

    def callback(self, history: dict) -> None:
        """``course_lib.train.train``'s ``callback``: log the rows added since the last call
        (and the drawing of a validation with its row)."""
        for kind in ("train", "val"):
            rows = history.get(kind, [])
            new, self.seen[kind] = rows[self.seen[kind]:], len(rows)
            for row in new:
                self._ensure_open()
                self._scalars(row_scalars(kind, row), int(row["step"]))
                if kind == "val" and self.pending is not None:
                    self._image(IMAGE_TAG, self.pending, int(row["step"]))
                    self.pending = None

    def wrap_validate(self, validate_fn: Callable | None, dataset: Any,
                      cfg: Any = None) -> Callable | None:
        """``validate_fn`` that also draws :func:`draw_predictions` after each validation
        (logged with the validation's row); a drawing that fails warns and training goes on."""
        if validate_fn is None or self.name == "none":
            return validate_fn
        cfg = cfg if cfg is not None else self.cfg

        def validate_and_draw(model: Any, device: Any) -> dict:
            stats = validate_fn(model, device)
            try:
                self.pending = draw_predictions(model, dataset, cfg, device, self.count)
            except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
                warnings.warn(f"tracking: could not draw the validation predictions ({exc})",
                              stacklevel=2)
            return stats

        return validate_and_draw

    def close(self) -> None:
        """Flush and close the backend (nothing when nothing was logged)."""
        if self.opened:
            self._close()
            self.opened = False

    def _ensure_open(self) -> None:
        if not self.opened:
            self._open()
            self.opened = True

    def _open(self) -> None:
        pass

    def _scalars(self, values: dict[str, float], step: int) -> None:
        pass

    def _image(self, tag: str, image: np.ndarray, step: int) -> None:
        pass

    def _close(self) -> None:
        pass


class TensorBoardTracker(Tracker):
    """``OUT/tensorboard/events.out.tfevents.*`` through ``torch.utils.tensorboard``."""

    name = "tensorboard"

    def _open(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge = self.resume.step + 1 if self.resume else None  # drop events past the checkpoint
        self.writer = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=purge)
        text = json.dumps(self.cfg.to_dict(), indent=1, default=str)
        self.writer.add_text("config", "    " + text.replace("\n", "\n    "),
                             global_step=self.resume.step if self.resume else 0)

    def _scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def _image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def _close(self) -> None:
        self.writer.close()


def wandb_logged_in() -> bool:
    """True when W&B has credentials: ``WANDB_API_KEY``, or a ``.netrc`` entry (``NETRC`` or
    ``~/.netrc``, written by ``wandb login``) for the host of ``WANDB_BASE_URL``."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1]
    path = Path(os.environ.get("NETRC", "~/.netrc")).expanduser()
    try:
        return netrc.netrc(path).authenticators(host.split("/")[0]) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str | None:
    """``None`` when ``WANDB_MODE`` is set (W&B reads it), ``online`` when logged in
    (:func:`wandb_logged_in`), else ``offline``."""
    if os.environ.get("WANDB_MODE"):
        return None
    return "online" if wandb_logged_in() else "offline"


class WandbTracker(Tracker):
    """A W&B run in ``OUT/wandb/`` (offline unless logged in, :func:`wandb_mode`)."""

    name = "wandb"

    def _run_id(self) -> str:
        path = self.out_dir / WANDB_ID_FILE
        if self.resume and path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        run_id = secrets.token_hex(4)
        from course_lib import config

        config.write_atomic(path, run_id + "\n")
        return run_id

    def _open(self) -> None:
        import wandb

        mode = wandb_mode()
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT), name=self.out_dir.name,
            dir=str(self.out_dir), config=self.cfg.to_dict(), mode=mode, id=self._run_id(),
            resume="allow", settings=wandb.Settings(console="off"))
        if mode == "offline":
            print(f"wandb: offline run in {self.out_dir / 'wandb'} (not logged in); upload it "
                  f"later with `wandb sync {self.out_dir / 'wandb'}/offline-run-*`",
                  file=sys.stderr)

    def _scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def _image(self, tag: str, image: np.ndarray, step: int) -> None:
        import wandb

        caption = "top: ground truth, bottom: prediction"
        self.run.log({tag: wandb.Image(image, caption=caption)}, step=step)

    def _close(self) -> None:
        self.run.finish()


TRACKERS: dict[str, type[Tracker]] = {"none": Tracker, "tensorboard": TensorBoardTracker,
                                       "wandb": WandbTracker}


def make_tracker(cfg: Any, out_dir: str | os.PathLike, *, resume: ResumePoint | None = None,
                 logger: str | None = None, count: int = DRAWN_CROPS) -> Tracker:
    """The tracker of ``logger`` (default: ``cfg.logger``) writing into ``out_dir``.

    ``resume``: the :class:`ResumePoint` of the checkpoint a run continues (its rows are not
    logged again). Raises ``ValueError`` for an unknown logger and ``ImportError`` naming the
    package to install (``pip install -e ".[track]"``) when the backend is missing."""
    name = check_logger(logger or cfg.logger)
    if not available(name):
        raise ImportError(f"logger {name!r}: the {name} package is not installed "
                          f"(pip install {name}, or pip install -e \".[track]\")")
    return TRACKERS[name](cfg, out_dir, resume=resume, count=count)
