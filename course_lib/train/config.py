"""The training configuration: one typed record per run, stored in every checkpoint.

Taught in ``05_training_mse.ipynb``. :func:`make_config` fills a :class:`TrainConfig` from a
course profile (``course_lib.config``); ``--set KEY=VALUE`` on the command line goes through
:func:`parse_overrides`, which reads each value by its field's type. A checkpoint stores
:meth:`TrainConfig.to_dict` (plain types, so ``torch.load(weights_only=True)`` reads it) and
:meth:`TrainConfig.from_dict` reads it back, filling fields an older checkpoint lacks with their
defaults. A config checks every field when it is made: its type (an int where an int is due,
``None`` only for optional fields) and its range (positive budgets and learning rate, finite
numbers), so a bad ``--set`` value or a negative step budget is a ``ValueError`` naming the
field before anything runs. :func:`config_differences` lists what a resume would change.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from typing import Any

from course_lib import config as course_config

ENCODINGS = ("msra", "unbiased", "udp")
HEAD_NAMES = ("deconv", "fusion", "lightning", "simcc", "integral")  # course_lib.heads.HEADS
#: the losses of the deconvolution head; every other head is trained with its own loss
LOSSES = ("mse", "ohkm", *HEAD_NAMES[1:])
CLOCKS = ("wall", "cpu")
LOGGERS = ("none", "tensorboard", "wandb")  # experiment tracking (course_lib.tracking)
DECODE_METHODS = ("argmax", "quarter", "dark", "soft_argmax")
#: fields that say how a run executes, not what it learns: a checkpoint that differs from the
#: current config only in these is still the same experiment (:func:`compatible`).
RUNTIME_FIELDS = ("num_workers", "eval_every_minutes", "pretrained_weights", "logger",
                  "budget_clock")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. ``(W, H)`` order for every 2-D size.

    The defaults are the SimpleBaseline recipe's and the values a field had before it existed
    (so an older checkpoint reads back as what it was trained with).
    """

    profile: str = "cpu"
    data_source: str = "synthetic"
    data_version: int | None = None  # the synthetic generator's version (None: real COCO)
    backbone: str = "resnet"  # resnet (of ``depth``); more in 09_hrnet_hrformer.ipynb
    depth: int = 50  # ResNet depth of the backbone
    head: str = "deconv"  # SimpleBaseline's deconvolution head; more in 10_beyond_heatmaps.ipynb
    head_channels: int = 256  # width of the three deconvolutions (of every head that has them)
    head_options: dict | None = None  # constructor options of a course_lib.heads head
    num_keypoints: int = 17
    input_size: tuple[int, int] = (192, 256)
    heatmap_size: tuple[int, int] = (48, 64)
    sigma: float = 2.0
    encoding: str = "msra"  # msra | unbiased | udp (udp also switches the crop geometry)
    augment: dict | None = None  # None: the paper's; else AugmentConfig fields to change
    pretrained: bool = False  # start from ImageNet weights
    pretrained_weights: str | None = None  # a local ImageNet .pth (None: torchvision's URL)
    zero_init_residual: bool = False  # each residual block starts as the identity
    batch_size: int = 32  # per process
    lr: float = 1e-3
    epochs: int = 140
    lr_steps: tuple[int, ...] = (90, 120)  # epochs where the learning rate is multiplied by 0.1
    warmup_steps: int = 500
    max_train_minutes: float | None = None  # time budget (None: none)
    max_train_steps: int | None = None  # step budget (None: epochs decide)
    budget_clock: str = "wall"  # wall | cpu (process CPU time / cores, for shared machines)
    loss: str = "mse"  # mse | ohkm for the deconvolution head; another head: its own name
    seed: int = 0
    decode_method: str = "dark"  # how validation decodes
    num_workers: int = 0  # loader processes
    cpu_bf16: bool = False  # bfloat16 autocast on a CPU that computes it natively (AVX-512 BF16)
    eval_every_minutes: float | None = None  # validate this often too (None: epoch ends only)
    logger: str = "none"  # experiment tracking: none | tensorboard | wandb (course_lib.tracking)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(TrainConfig)
        for name in field_names():
            _check_type(name, getattr(self, name), hints[name])
        for name, choices in (("encoding", ENCODINGS), ("loss", LOSSES),
                              ("budget_clock", CLOCKS), ("decode_method", DECODE_METHODS),
                              ("logger", LOGGERS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name}: expected one of {', '.join(choices)}, "
                                 f"got {getattr(self, name)!r}")
        for name in ("input_size", "heatmap_size"):
            size = getattr(self, name)
            if len(size) != 2 or not all(v > 0 for v in size):
                raise ValueError(f"{name}: expected (W, H), two positive ints, got {size!r}")
        for name, (low, inclusive) in BOUNDS.items():
            _check_bound(name, getattr(self, name), low, inclusive)
        if any(s < 0 for s in self.lr_steps):
            raise ValueError(f"lr_steps: expected epochs >= 0, got {self.lr_steps!r}")
        self._check_architecture()

    def _check_architecture(self) -> None:
        """Backbone, head and loss fit together (``10_beyond_heatmaps.ipynb``)."""
        from course_lib.models import BACKBONES

        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone: expected one of {', '.join(BACKBONES)}, "
                             f"got {self.backbone!r}")
        if self.head not in HEAD_NAMES:
            raise ValueError(f"head: expected one of {', '.join(HEAD_NAMES)}, got {self.head!r}")
        if self.head == "deconv":
            if self.loss not in ("mse", "ohkm"):
                raise ValueError(f"loss: the deconvolution head trains with mse or ohkm, "
                                 f"got {self.loss!r}")
            return
        if self.loss != self.head:
            raise ValueError(f"loss: head {self.head!r} trains with its own loss: set "
                             f"loss={self.head} (got {self.loss!r})")
        if self.backbone != "resnet" or self.encoding != "msra":
            raise ValueError(f"head {self.head!r}: expected backbone=resnet and encoding=msra "
                             f"(got {self.backbone!r}, {self.encoding!r})")

    def to_dict(self) -> dict:
        """The fields as a plain dict (what a checkpoint stores)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """A config from a checkpoint's dict; missing fields take their defaults, sequences
        become tuples. Unknown keys raise ``ValueError`` naming them."""
        if isinstance(values, TrainConfig):
            return values
        if not isinstance(values, dict):
            raise ValueError(f"config: expected a dict of TrainConfig fields, got "
                             f"{type(values).__name__}")
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise ValueError(f"config: unknown keys {unknown}; expected some of "
                             f"{sorted(field_names())}")
        return cls(**{k: _as_field_value(k, v) for k, v in values.items()})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (unknown keys raise ``ValueError``)."""
        unknown = sorted(set(changes) - set(field_names()))
        if unknown:
            raise ValueError(f"overrides: unknown keys {unknown}; expected some of "
                             f"{sorted(field_names())}")
        return dataclasses.replace(self, **{k: _as_field_value(k, v) for k, v in changes.items()})


#: lower bounds of the numeric fields, ``(bound, bound allowed)``; numbers must be finite too
BOUNDS: dict[str, tuple[float, bool]] = {
    "depth": (1, True), "head_channels": (1, True), "num_keypoints": (1, True),
    "sigma": (0.0, False), "batch_size": (1, True), "lr": (0.0, False), "epochs": (1, True),
    "warmup_steps": (0, True), "max_train_minutes": (0.0, False), "max_train_steps": (1, True),
    "seed": (0, True), "num_workers": (0, True), "eval_every_minutes": (0.0, False),
}


def _check_type(name: str, value: Any, kind: Any) -> None:
    """``ValueError`` naming the field unless ``value`` has the field's type ``kind`` (an int
    is a number, a bool is not an int, ``None`` only where the field is optional)."""
    args = typing.get_args(kind)
    if value is None and type(None) in args:
        return
    base = kind
    if type(None) in args:
        base = next(a for a in args if a is not type(None))
    if not _is_a(value, base):
        raise ValueError(f"{name}: expected {_describe(base)}, got {value!r}")


def _is_a(value: Any, kind: Any) -> bool:
    if typing.get_origin(kind) is tuple:
        return isinstance(value, tuple) and all(_is_a(v, int) for v in value)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_bound(name: str, value: Any, low: float, inclusive: bool) -> None:
    if value is None or (math.isfinite(value) and (value >= low if inclusive else value > low)):
        return
    none = " (or None)" if type(None) in typing.get_args(_field_type(name)) else ""
    raise ValueError(f"{name}: expected a finite number {'>=' if inclusive else '>'} {low:g}"
                     f"{none}, got {value!r}")


def field_names() -> tuple[str, ...]:
    """The names of :class:`TrainConfig`'s fields, in order."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def _field_type(name: str) -> Any:
    return typing.get_type_hints(TrainConfig)[name]


def _as_field_value(name: str, value: Any) -> Any:
    """Lists become tuples for tuple fields (JSON and old checkpoints store lists)."""
    kind = _field_type(name)
    is_tuple = typing.get_origin(kind) is tuple or tuple in typing.get_args(kind)
    if is_tuple and isinstance(value, list):
        return tuple(value)
    return value


def make_config(profile: course_config.Profile | str | None = None,
                **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a profile (default: the active one), with ``overrides``.

    Taught in ``05_training_mse.ipynb``. The profile gives sizes and recipe; ``data_version`` is
    read from the synthetic data's manifest (``course_lib.config.data_version``), so a checkpoint
    records the generation of the data it was trained on.
    """
    prof = (profile if isinstance(profile, course_config.Profile)
            else course_config.get_profile(profile))
    source = course_config.data_source(prof)
    # the profile's encoding is that of its heatmap head; another head encodes its own targets
    # from MSRA-geometry keypoints (``course_lib.heads``)
    heatmap_head = overrides.get("head", "deconv") == "deconv"
    cfg = TrainConfig(
        profile=prof.name, data_source=source,
        data_version=course_config.data_version(source, prof),
        depth=prof.depth, head_channels=int(prof.extra.get("head_channels", 256)),
        input_size=tuple(prof.input_size), heatmap_size=tuple(prof.heatmap_size),
        sigma=float(prof.sigma), augment=prof.extra.get("augment"),
        pretrained=bool(prof.pretrained),
        zero_init_residual=not prof.pretrained,  # from scratch, identity blocks train faster
        batch_size=prof.batch_size, lr=prof.lr, epochs=prof.epochs,
        lr_steps=tuple(prof.lr_steps), warmup_steps=prof.warmup_steps,
        max_train_minutes=prof.max_train_minutes, max_train_steps=prof.max_train_steps,
        budget_clock=course_config.budget_clock(),
        num_workers=prof.num_workers, eval_every_minutes=prof.extra.get("eval_every_minutes"),
        encoding=prof.extra.get("encoding", "msra") if heatmap_head else "msra",
        cpu_bf16=bool(prof.extra.get("cpu_bf16")),
    )
    return cfg.replace(**overrides) if overrides else cfg


def config_differences(checkpoint_config: dict | TrainConfig,
                       cfg: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """``{field: (saved, current)}`` for every field but the runtime ones
    (:data:`RUNTIME_FIELDS`) where a checkpoint's config and ``cfg`` differ. Raises
    ``ValueError`` when the checkpoint's config is not one (unknown keys, bad values)."""
    saved = TrainConfig.from_dict(checkpoint_config)
    return {name: (getattr(saved, name), getattr(cfg, name)) for name in field_names()
            if name not in RUNTIME_FIELDS and getattr(saved, name) != getattr(cfg, name)}


def describe_differences(differences: dict[str, tuple[Any, Any]]) -> str:
    """``"lr: 0.001 -> 0.002, seed: 0 -> 1"``."""
    return ", ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in differences.items())


def compatible(checkpoint_config: dict | TrainConfig, cfg: TrainConfig) -> bool:
    """True when a checkpoint's config equals ``cfg`` in every field but the runtime ones
    (:data:`RUNTIME_FIELDS`): the same experiment, so its weights can be reused."""
    try:
        return not config_differences(checkpoint_config, cfg)
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# --set KEY=VALUE, read by the field's type
# ---------------------------------------------------------------------------------------------


def parse_value(name: str, text: str) -> Any:
    """The value of field ``name`` written as ``text`` on a command line.

    ``None``/``null`` for optional fields, ``true``/``false`` for booleans, ``96,128`` (or JSON
    ``[96, 128]``) for sizes and ``lr_steps``, JSON for ``augment``. Raises ``ValueError`` naming
    the field and the expected form.
    """
    if name not in field_names():
        raise ValueError(f"--set {name}: unknown key; expected one of {', '.join(field_names())}")
    kind = _field_type(name)
    args = typing.get_args(kind)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), kind) if optional else kind
    text = text.strip()
    if text.lower() in ("none", "null") and base is not str:  # a text field takes the word
        if optional:
            return None
        raise ValueError(f"--set {name}: None is not allowed; expected {_describe(base)}")
    try:
        return _parse_as(base, text)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ValueError(f"--set {name}: expected {_describe(base)}, got {text!r}") from None


def _parse_as(kind: Any, text: str) -> Any:
    if kind is bool:
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        return words[text.lower()] if text.lower() in words else _fail()
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if kind is str:
        return text
    if kind is dict:
        value = json.loads(text)
        return value if isinstance(value, dict) else _fail()
    if typing.get_origin(kind) is tuple:
        items = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v]
        values = tuple(int(v) for v in items)
        if typing.get_args(kind)[-1] is not Ellipsis and len(values) != len(typing.get_args(kind)):
            return _fail()
        return values
    raise TypeError(f"no parser for {kind}")


def _fail() -> Any:
    raise ValueError("malformed")


def _describe(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return "comma-separated ints, e.g. 96,128" if typing.get_args(kind)[-1] is not Ellipsis \
            else "comma-separated ints, e.g. 90,120"
    return {bool: "true or false", int: "an int", float: "a number", str: "a word",
            dict: 'a JSON object, e.g. {"rotation_factor": 15}'}.get(kind, str(kind))


def positive_int(text: str) -> int:
    """An ``argparse`` type: an int >= 1 (``--batch-size`` of validate, ``--opset`` of export)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def parse_overrides(items: list[str]) -> dict:
    """``["lr=2e-3", "depth=18"]`` -> ``{"lr": 0.002, "depth": 18}`` (see :func:`parse_value`)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set: expected KEY=VALUE, got {item!r}")
        overrides[key.strip()] = parse_value(key.strip(), value)
    return overrides
