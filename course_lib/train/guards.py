"""What keeps a training run safe: one writer per folder, no earlier run overwritten unasked,
the right checkpoint resumed, a checkpoint on Ctrl-C or SIGTERM, finite losses and gradients.

Taught in ``05_training_mse.ipynb``; :func:`course_lib.train.train` and its command line use
every piece:

* :func:`run_folder_lock`: an ``fcntl`` lock on ``OUT/.train.lock`` for the whole run; a second
  run on the same folder gets :class:`RunFolderLocked` naming the folder and the holder;
* :func:`refuse_fresh_start`: a new run into a folder holding checkpoints (the command line:
  holding anything) raises ``FileExistsError`` unless forced;
* :func:`checkpoint_to_resume`: the checkpoint to continue (``latest.pt``, or ``best.pt`` when
  asked), with an error naming the folder when there is none, the file when it is corrupt, and
  every field (old -> new) when it was trained with another config;
* :class:`StopSignals`: inside it, SIGINT and SIGTERM only ask the loop to stop at the next step
  boundary, where it saves and raises :class:`Interrupted`; a second signal stops at once;
* :func:`check_finite_loss`, :func:`check_finite_gradients`: ``FloatingPointError`` naming the
  step (and the first parameter whose gradient is not finite) before any weight changes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from course_lib.train.checkpoint import CheckpointError, load_checkpoint
from course_lib.train.config import TrainConfig, config_differences, describe_differences

LOCK_NAME = ".train.lock"
CHECKPOINT_NAMES = ("latest.pt", "best.pt")
RESUME_FROM = ("latest", "best")
#: what a checkpoint must hold to be continued
RESUME_KEYS = ("model", "optimizer", "scheduler", "rng", "config", "step", "history")
STOP_SIGNALS = ("SIGINT", "SIGTERM")


# ---------------------------------------------------------------------------------------------
# one writer per folder
# ---------------------------------------------------------------------------------------------

class RunFolderLocked(OSError):
    """Another training run holds the lock of this output folder."""


@contextlib.contextmanager
def run_folder_lock(folder: str | os.PathLike, *, active: bool = True) -> Iterator[Path | None]:
    """Hold ``folder/.train.lock`` (created, with the folder) for the ``with`` block.

    The lock is ``fcntl.flock``: the kernel releases it when the process dies, so a run killed
    with SIGKILL leaves a file but no lock. The file is removed on the way out. ``active=False``
    (the other processes of a distributed run) and systems without ``fcntl`` hold nothing.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock; every other promise still holds
        active = False
    if not active:
        yield None
        return
    path = Path(folder) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, fcntl)
    try:
        yield path
    finally:
        _release(path, fd)


def _acquire(path: Path, fcntl: Any) -> int:
    """Lock ``path``; retry when it was removed or replaced between opening and locking."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown pid"
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise RunFolderLocked(
                f"{path.parent} is in use by another training run ({holder}): wait until it "
                f"ends, or write to another folder") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


def _release(path: Path, fd: int) -> None:
    try:
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            path.unlink()
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# what a folder holds
# ---------------------------------------------------------------------------------------------

def _is_bookkeeping(name: str) -> bool:
    """The lock file, and temporary files of an interrupted checkpoint save."""
    return name == LOCK_NAME or (name.endswith(".tmp") and any(
        name.startswith(f".{ckpt}.") for ckpt in CHECKPOINT_NAMES))


def refuse_fresh_start(folder: str | os.PathLike, *, any_file: bool = False) -> None:
    """``FileExistsError`` naming ``folder`` when it holds ``latest.pt`` or ``best.pt`` (with
    ``any_file``: anything but the lock and temporary files): a new run would overwrite them."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    names = sorted(p.name for p in folder.iterdir() if not _is_bookkeeping(p.name))
    found = names if any_file else [n for n in names if n in CHECKPOINT_NAMES]
    if found:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise FileExistsError(
            f"{folder} is not empty ({shown}): continue its run with --resume (resume=True), "
            f"or start again over it with --force (force=True)")


def resume_path(folder: str | os.PathLike, resume_from: str = "latest") -> Path:
    """``folder/<resume_from>.pt``; ``FileNotFoundError`` naming the folder when it is not
    there (a resume never silently becomes a fresh start)."""
    if resume_from not in RESUME_FROM:
        raise ValueError(f"resume_from: expected one of {', '.join(RESUME_FROM)}, "
                         f"got {resume_from!r}")
    folder = Path(folder)
    path = folder / f"{resume_from}.pt"
    if not path.is_file():
        best = resume_from == "latest" and (folder / "best.pt").is_file()
        raise FileNotFoundError(
            f"nothing to resume in {folder}: no {path.name}"
            + (" (best.pt is there: --resume-from best, resume_from='best')" if best else "")
            + "; start a new run without --resume (resume=False)")
    return path


def checkpoint_to_resume(folder: str | os.PathLike, cfg: TrainConfig, *,
                         resume_from: str = "latest",
                         force: bool = False) -> tuple[dict, dict[str, tuple[Any, Any]]]:
    """``(checkpoint, config differences)`` of ``folder/<resume_from>.pt`` for ``cfg``.

    Raises ``FileNotFoundError`` naming the folder when there is nothing to resume,
    :class:`CheckpointError` naming the file when it is corrupt or incomplete, and
    ``ValueError`` listing every differing field (old -> new; the runtime fields excepted)
    unless ``force``.
    """
    path = resume_path(folder, resume_from)
    ckpt = _load_for_resume(path, resume_from)
    try:
        changes = config_differences(ckpt["config"], cfg)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: its config is not readable ({exc})") from None
    if changes and not force:
        raise ValueError(
            f"{path} was trained with another config: {describe_differences(changes)}; resume "
            f"with the same settings, or pass --force (force=True) to continue with the new "
            f"ones (the change is recorded in the history)")
    return ckpt, changes


def _load_for_resume(path: Path, resume_from: str) -> dict:
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        if resume_from != "latest":
            raise
        raise CheckpointError(
            f"{exc}; resume from best.pt with --resume-from best (resume_from='best'), or "
            f"start again with --force (force=True)") from None
    missing = [k for k in RESUME_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path}: cannot be continued, it lacks "
                              f"{', '.join(missing)} (a checkpoint of course_lib.train has them)")
    return ckpt


# ---------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM
# ---------------------------------------------------------------------------------------------

class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving ``checkpoint`` at step ``step``."""

    def __init__(self, signal_name: str, step: int, checkpoint: Path) -> None:
        super().__init__(f"{signal_name} at step {step}: checkpoint written to {checkpoint}; "
                         f"continue with --resume (resume=True)")
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint


class StopSignals:
    """Inside ``with``, SIGINT and SIGTERM set :attr:`signum` instead of stopping the process
    (a second one raises ``KeyboardInterrupt`` at once). Outside the main thread, where Python
    cannot install handlers, it does nothing. The previous handlers come back on exit."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} again: stopped at once")
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                sig = getattr(signal, name)
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()


# ---------------------------------------------------------------------------------------------
# finite numbers
# ---------------------------------------------------------------------------------------------

def check_finite_loss(loss: torch.Tensor, step: int) -> None:
    """``FloatingPointError`` naming the step when the loss is NaN or infinite."""
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"loss is {loss.item()} at step {step}, before its update: the weights are those "
            f"of step {step}; lower the learning rate or check the data of this batch")


def check_finite_gradients(model: torch.nn.Module, step: int) -> None:
    """``FloatingPointError`` naming the step and the first parameter (in ``named_parameters``
    order) whose gradient holds a NaN or an infinity; one synchronisation for all of them."""
    named = [(n, p.grad) for n, p in model.named_parameters() if p.grad is not None]
    if not named:
        return
    finite = torch.stack([torch.isfinite(g).all() for _, g in named])
    if bool(finite.all()):
        return
    name, grad = named[int((~finite).nonzero()[0, 0])]
    kind = "nan" if bool(torch.isnan(grad).any()) else "inf"
    raise FloatingPointError(
        f"gradient of {name} is not finite ({kind}) at step {step}, before its update: the "
        f"weights are those of step {step}; lower the learning rate or check the data")
