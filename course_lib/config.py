"""Profiles, paths and seeding: the only place that reads ``COURSE_PROFILE``, ``COURSE_DATA``,
``COURSE_COCO_DIR`` (a COCO folder kept elsewhere) and ``COURSE_BUDGET_CLOCK``.

Taught in ``00_setup.ipynb``. Every size in the course (synthetic data, crop and heatmap sizes,
model depth, training budget) comes from a :class:`Profile`, so a notebook never needs editing
to switch between a quick CI run (``smoke``), a laptop (``cpu``) and the paper recipe (``gpu``).

Size convention (the MMPose one): ``input_size`` and ``heatmap_size`` are ``(W, H)``.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

PROFILE_NAMES = ("smoke", "cpu", "gpu")
DATA_SOURCES = ("synthetic", "coco")


@dataclass(frozen=True)
class Profile:
    """All sizes of one way to run the course. ``(W, H)`` order for every 2-D size."""

    name: str
    description: str
    data: str  # "synthetic" | "coco": the default data source of this profile
    # synthetic mini-COCO sizes (ignored for real COCO)
    num_train_images: int
    num_val_images: int
    image_size: tuple[int, int]  # (W, H) of a synthetic image
    # network input and target
    input_size: tuple[int, int]  # (W, H) of the crop fed to the network
    heatmap_size: tuple[int, int]  # (W, H) of the predicted heatmaps
    sigma: float
    depth: int  # ResNet depth of the backbone
    pretrained: bool  # start from ImageNet weights (needs a local file or the network)
    # training recipe
    batch_size: int
    lr: float
    epochs: int
    lr_steps: tuple[int, ...]  # epochs at which the learning rate is multiplied by 0.1
    warmup_steps: int
    max_train_minutes: float | None  # wall-clock budget of notebook 05 (None: no limit)
    max_train_steps: int | None  # step budget (None: epochs decide)
    num_workers: int
    # what a learner should expect, shown by check_env() and the notebooks
    expected_runtime: str
    extra: dict = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="tiny sizes for CI: every notebook finishes in well under a minute on 2 cores",
        data="synthetic",
        num_train_images=24,
        num_val_images=12,
        image_size=(192, 160),
        input_size=(96, 128),
        heatmap_size=(24, 32),
        sigma=2.0,
        depth=18,
        pretrained=False,
        batch_size=8,
        lr=1e-3,
        epochs=1,
        lr_steps=(),
        warmup_steps=2,
        max_train_minutes=0.5,
        max_train_steps=6,
        num_workers=0,
        expected_runtime="about 10-30 s per notebook, a few minutes for all of them",
    ),
    "cpu": Profile(
        name="cpu",
        description="a laptop CPU: synthetic mini-COCO, 128x96 crops, trains for minutes",
        data="synthetic",
        num_train_images=2000,
        num_val_images=200,
        image_size=(320, 256),
        input_size=(96, 128),
        heatmap_size=(24, 32),
        sigma=2.0,
        depth=18,
        pretrained=False,
        batch_size=32,
        lr=3e-3,
        epochs=20,
        lr_steps=(15, 18),
        warmup_steps=50,
        max_train_minutes=14.0,
        max_train_steps=None,
        num_workers=0,  # on 2 cores loader processes only take CPU time from the training step
        expected_runtime="about 25 minutes for notebooks 00-08, 14 of them training in 05",
        extra={"eval_every_minutes": 5.0,
               # a 128-wide deconvolution head (the paper: 256) trains ~1.45x faster at 128x96
               "head_channels": 128,
               # DARK's recipe: unbiased targets for the DARK decoder (notebooks 02 and 06)
               "encoding": "unbiased",
               # bfloat16 autocast where the CPU computes it natively (AVX-512 BF16 / AMX):
               # about twice the steps per budget there; float32 on other CPUs
               "cpu_bf16": True,
               # milder than the paper's (rotation factor 40, half-body 0.3): a short run learns
               # faster, and the synthetic people stand upright (torso lean within +-26 deg)
               "augment": {"rotation_factor": 15.0, "half_body_prob": 0.0}},
    ),
    "gpu": Profile(
        name="gpu",
        description="the SimpleBaseline paper recipe on real COCO 2017 (256x192, 140 epochs)",
        data="coco",
        num_train_images=20000,
        num_val_images=1000,
        image_size=(384, 320),
        input_size=(192, 256),
        heatmap_size=(48, 64),
        sigma=2.0,
        depth=50,
        pretrained=True,
        batch_size=32,
        lr=1e-3,
        epochs=140,
        lr_steps=(90, 120),
        warmup_steps=500,
        max_train_minutes=None,
        max_train_steps=None,
        num_workers=8,
        expected_runtime="hours: about a day of training on one modern GPU",
    ),
}


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def profile_name(name: str | None = None) -> str:
    """The active profile's name: ``name``, else ``COURSE_PROFILE``, else ``gpu``/``cpu`` by CUDA."""
    name = name or os.environ.get("COURSE_PROFILE") or ("gpu" if _cuda_available() else "cpu")
    name = name.strip().lower()
    if name not in PROFILES:
        raise ValueError(
            f"profile: expected one of {', '.join(PROFILE_NAMES)} "
            f"(argument or COURSE_PROFILE), got {name!r}"
        )
    return name


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The :class:`Profile` called ``name`` (default: the active one), with fields overridden."""
    profile = PROFILES[profile_name(name)]
    return replace(profile, **overrides) if overrides else profile


def repo_root() -> Path:
    """The course repository's root, whatever the working directory (notebooks run in notebooks/).

    ``COURSE_ROOT`` wins; otherwise the folder above this package when it holds ``pyproject.toml``
    (a clone or an editable install); otherwise the current directory.
    """
    env = os.environ.get("COURSE_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file():
        return here
    return Path.cwd().resolve()


def data_source(profile: Profile | str | None = None) -> str:
    """``COURSE_DATA`` (``synthetic`` or ``coco``) if set, else the profile's default source."""
    source = os.environ.get("COURSE_DATA") or _as_profile(profile).data
    if source not in DATA_SOURCES:
        raise ValueError(
            f"COURSE_DATA: expected one of {', '.join(DATA_SOURCES)}, got {source!r}"
        )
    return source


def data_dir(source: str | None = None, profile: Profile | str | None = None) -> Path:
    """Folder of a dataset. Synthetic data of the ``smoke`` profile lives apart
    (``data/synthetic-smoke``) so that running the tests never replaces a learner's data.

    Real COCO lives in ``data/coco`` unless ``COURSE_COCO_DIR`` names a COCO folder elsewhere
    (``annotations/person_keypoints_{train,val}2017.json``, ``{train,val}2017/``); a relative
    path is taken from the repository root. This is the only place that reads it: the download
    script, the notebooks and the command lines all ask this function."""
    prof = _as_profile(profile)
    source = source or data_source(prof)
    if source == "coco":
        coco_dir = os.environ.get("COURSE_COCO_DIR", "").strip()
        if coco_dir:
            return (repo_root() / Path(coco_dir).expanduser()).resolve()
        return repo_root() / "data" / "coco"
    if source != "synthetic":
        raise ValueError(f"source: expected 'synthetic' or 'coco', got {source!r}")
    return repo_root() / "data" / ("synthetic-smoke" if prof.name == "smoke" else "synthetic")


def annotation_file(split: str, source: str | None = None, profile: Profile | str | None = None) -> Path:
    """Path of the COCO keypoint annotation file of ``split`` (``train`` or ``val``)."""
    if split not in ("train", "val"):
        raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
    prof = _as_profile(profile)
    source = source or data_source(prof)
    suffix = "2017" if source == "coco" else ""
    return data_dir(source, prof) / "annotations" / f"person_keypoints_{split}{suffix}.json"


def image_dir(split: str, source: str | None = None, profile: Profile | str | None = None) -> Path:
    """Folder of the images of ``split`` (``train`` or ``val``)."""
    if split not in ("train", "val"):
        raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
    prof = _as_profile(profile)
    source = source or data_source(prof)
    suffix = "2017" if source == "coco" else ""
    return data_dir(source, prof) / f"{split}{suffix}"


MANIFEST_NAME = "manifest.json"  # written last by the synthetic generator (00_setup.ipynb)


def data_version(source: str | None = None, profile: Profile | str | None = None) -> int | None:
    """The generator version recorded in the synthetic data folder's manifest (None for real
    COCO, or when the data is missing). Checkpoints record it, so a model trained on an older
    generation of the synthetic data is not reused (``course_lib.train.compatible``)."""
    import json

    prof = _as_profile(profile)
    source = source or data_source(prof)
    if source != "synthetic":
        return None
    try:
        manifest = json.loads((data_dir(source, prof) / MANIFEST_NAME).read_text())
        return int(manifest["spec"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def runs_dir(profile: Profile | str | None = None) -> Path:
    """Where training writes checkpoints: ``runs/<profile>``."""
    return repo_root() / "runs" / _as_profile(profile).name


def checkpoint_path(profile: Profile | str | None = None, which: str = "best") -> Path:
    """The checkpoint notebook 05 writes and notebooks 06-08 read (``best`` or ``latest``)."""
    if which not in ("best", "latest"):
        raise ValueError(f"which: expected 'best' or 'latest', got {which!r}")
    return runs_dir(profile) / f"{which}.pt"


_TEMP_SLOTS = 16  # temporary file names per target: ``.<name>.0.tmp`` ... ``.<name>.15.tmp``


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` atomically and durably.

    The bytes go to a temporary file ``.<name>.<n>.tmp`` in the same folder (locked while in
    use), are ``fsync``-ed, replace ``path`` with ``os.replace``, and the folder is ``fsync``-ed.
    A reader never sees half a file; an interrupted run leaves the old file (or none), never a
    truncated one. The temporary files that killed saves of ``path`` left behind are removed by
    the next successful write of ``path`` (only those: unlocked ``.<name>.<n>.tmp`` files of
    this user; a save in progress keeps its own). Taught in ``00_setup.ipynb``; checkpoints
    (``05_training.ipynb``) are saved with it. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = _claim_temp(path)
    replaced = False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
            if hasattr(os, "fchmod"):  # as a plain file would be (not mkstemp's 0o600)
                os.fchmod(f.fileno(), 0o644)
            os.replace(tmp, path)  # still locked: no sweep can take the file meanwhile
            replaced = True
    except BaseException:
        if not replaced:
            tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    for slot in range(_TEMP_SLOTS):
        if os.path.lexists(_temp_name(path, slot)):
            _remove_if_stale(_temp_name(path, slot))
    return path


def _temp_name(path: Path, slot: int) -> Path:
    return path.with_name(f".{path.name}.{slot}.tmp")


def _claim_temp(path: Path) -> tuple[int, Path]:
    """A new temporary file beside ``path``, created and locked: ``(fd, its path)``."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): a random name, which no later write sweeps
        return _random_temp(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for slot in range(_TEMP_SLOTS):
        tmp = _temp_name(path, slot)
        for _attempt in range(3):
            try:
                fd = os.open(tmp, flags, 0o600)
            except FileExistsError:
                if _remove_if_stale(tmp):
                    continue  # a killed save's file: the name is free again
                break  # a save in progress (or not our file): the next name
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:  # a file system without locks
                os.close(fd)
                tmp.unlink(missing_ok=True)
                return _random_temp(path)
            if _same_file(fd, tmp):
                return fd, tmp
            os.close(fd)  # swept between creation and lock: try again
    return _random_temp(path)  # every name is in use by a save in progress


def _random_temp(path: Path) -> tuple[int, Path]:
    """A temporary file of a random name beside ``path`` (no later write sweeps it)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    return fd, Path(tmp)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.lstat(path))
    except FileNotFoundError:
        return False


def _remove_if_stale(tmp: Path) -> bool:
    """Remove ``tmp`` when it is a regular file of this user that no live save holds locked;
    True when the name is free afterwards."""
    import fcntl
    import stat

    try:
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return True
    except OSError:  # a symbolic link or a file we cannot read: not ours
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a save in progress (or a file system without locks)
        if not _same_file(fd, tmp):
            return False
        os.unlink(tmp)
        return True
    except OSError:  # it cannot be removed here: left alone
        return False
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where folders can be opened: not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not sync folders
        pass
    finally:
        os.close(fd)


def check_free_space(path: str | os.PathLike, need_bytes: int, what: str) -> None:
    """Raise ``OSError`` (``errno.ENOSPC``) unless the file system that holds (or will hold)
    ``path`` has ``need_bytes`` free; the message names ``what``, the folder and both byte
    counts. Used before downloading, extracting and generating data, and before checkpoints."""
    import errno
    import shutil

    if need_bytes < 0:
        raise ValueError(f"need_bytes: expected a non-negative number, got {need_bytes!r}")
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need_bytes > free:
        exc = OSError(f"{what}: needs {int(need_bytes)} bytes ({need_bytes / 2**20:.1f} MiB) in "
                      f"{path}, but only {free} bytes ({free / 2**20:.1f} MiB) are free there")
        exc.errno = errno.ENOSPC
        raise exc


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, numpy and (when installed) torch, CPU and CUDA."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed!r}")
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def budget_clock() -> str:
    """``COURSE_BUDGET_CLOCK`` (``wall``, the default, or ``cpu``): how a training budget is
    measured. ``cpu`` counts the process's CPU time divided by the cores, the wall time the run
    would take with the machine to itself: for measuring on a shared machine."""
    clock = os.environ.get("COURSE_BUDGET_CLOCK", "wall").strip().lower() or "wall"
    if clock not in ("wall", "cpu"):
        raise ValueError(f"COURSE_BUDGET_CLOCK: expected wall or cpu, got {clock!r}")
    return clock


def strict() -> bool:
    """True under ``COURSE_STRICT=1``: exercise checks raise instead of only printing."""
    return os.environ.get("COURSE_STRICT", "0").strip().lower() in ("1", "true", "yes")


def check_env(profile: Profile | str | None = None) -> dict:
    """Print (and return) what the course runs on: versions, device, profile and data status."""
    import numpy as np

    prof = _as_profile(profile)
    info: dict = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
        info["device"] = torch.cuda.get_device_name(0) if info["cuda"] else "cpu"
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info.update(torch="not installed", cuda=False, device="cpu")
    try:
        import torchvision  # noqa: F401  (optional: see README, "Why torchvision is optional")

        info["torchvision"] = torchvision.__version__
    except Exception as exc:  # a broken install raises RuntimeError, not ImportError
        info["torchvision"] = f"not usable ({type(exc).__name__}); the course does not need it"
    source = data_source(prof)
    ann = annotation_file("train", source, prof)
    info["profile"] = prof.name
    info["profile_description"] = prof.description
    info["expected_runtime"] = prof.expected_runtime
    info["data_source"] = source
    info["data_dir"] = str(data_dir(source, prof))
    info["data_ready"] = ann.is_file() and annotation_file("val", source, prof).is_file()
    info["repo_root"] = str(repo_root())
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}} : {value}")
    if not info["data_ready"]:
        hint = "make data" if source == "synthetic" else "python data_scripts/download_coco.py"
        print(f"-> data missing: run `{hint}` (or the preparation cell of 00_setup.ipynb)")
    return info


def _as_profile(profile: Profile | str | None) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)
