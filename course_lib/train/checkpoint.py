"""Checkpoints and random-number states: what makes a training run resumable bit for bit.

Taught in ``05_training_mse.ipynb``. A checkpoint is one ``torch.save`` file written atomically
(a temporary file, then ``os.replace``: a reader never sees half a file) holding the model,
optimizer, schedule and gradient-scaler states, every RNG state (:func:`rng_state`), the
config as a plain dict, the epoch, the step and the history. Only types that
``torch.load(weights_only=True)`` accepts are stored, so loading one runs no code. Saving checks
the free space first; loading names the file when it is corrupt (:class:`CheckpointError`).
"""

from __future__ import annotations

import io
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib import config as course_config


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


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: corrupt (truncated, overwritten, not a
    ``torch.save`` file) or refused by ``weights_only`` loading (it holds more than tensors and
    plain types). The message names the file."""


#: bytes kept free beside a checkpoint (the file system's own bookkeeping)
FREE_SPACE_MARGIN = 2**20


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` with ``torch.save`` atomically (``course_lib.config.write_atomic``: a
    temporary file, then ``os.replace``; it also removes what killed saves left), after
    checking that the folder has room for it (``course_lib.config.check_free_space``): when it
    has not, ``OSError`` (``ENOSPC``) and the previous file stays as it was."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    course_config.check_free_space(path, buffer.getbuffer().nbytes + FREE_SPACE_MARGIN,
                                   f"checkpoint {Path(path).name}")
    return course_config.write_atomic(path, buffer.getbuffer())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by ``course_lib.train.train`` (tensors land on the CPU).

    ``FileNotFoundError`` when there is none; :class:`CheckpointError` naming the file when it
    is corrupt or holds objects ``weights_only`` loading refuses."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"path: no checkpoint at {path}; train one with 05_training_mse.ipynb or "
            f"`python -m course_lib.train --out {path.parent}`"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", str(exc))
        if found:
            raise CheckpointError(
                f"checkpoint {path}: refused by weights_only loading: it holds objects other "
                f"than tensors and plain types ({found.group(1)})") from None
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch.save file "
                              f"(it cannot be unpickled safely)") from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError, IndexError,
            AttributeError, TypeError) as exc:
        if isinstance(exc, (PermissionError, IsADirectoryError)):
            raise  # not readable at all: its own message names the file
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch.save file "
                              f"({type(exc).__name__}: {_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else "no message"
