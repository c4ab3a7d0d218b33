"""Checkpoints and random-number states: what makes a training run resumable bit for bit.

Taught in ``05_training_mse.ipynb``. A checkpoint is one ``torch.save`` file written atomically
(a temporary file, then ``os.replace``: a reader never sees half a file) holding the model,
optimizer, schedule and gradient-scaler states, every RNG state (:func:`rng_state`), the
config as a plain dict, the epoch, the step and the history. Only types that
``torch.load(weights_only=True)`` accepts are stored, so loading one runs no code.
"""

from __future__ import annotations

import io
import os
import random
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


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` with ``torch.save`` atomically: a temporary file, then ``os.replace``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return course_config.write_atomic(path, buffer.getbuffer())


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by ``course_lib.train.train`` (tensors land on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"path: no checkpoint at {path}; train one with 05_training_mse.ipynb or "
            f"`python -m course_lib.train --out {path.parent}`"
        )
    return torch.load(path, map_location="cpu", weights_only=True)
