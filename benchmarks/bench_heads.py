"""The race of ``10_beyond_heatmaps.ipynb``: five heads on one backbone, one budget each.

Every contender trains the profile's network (in ``cpu``: ResNet-18 from scratch, 128x96 crops,
batch 32, Adam with a 50-step warm-up and the profile's decay) for the same time budget, measured
on the CPU clock (``budget_clock="cpu"``: process CPU time / cores, so a run on a shared machine
counts what a quiet laptop would). No validation runs while it trains: the whole budget goes to
training steps. Then each is measured on the validation crops (ground-truth boxes, no flip test):
COCO AP and AP75, the median error of each keypoint in crop (input) pixels, and the time its
decoder takes for a batch of 64 crops (one thread, best of five). The one-term ablation trains
the fusion head again with each term's weight set to 0 in turn, on the same budget, and repeats
the full loss with another seed as a yardstick for run-to-run noise.

    python benchmarks/bench_heads.py --profile cpu --minutes 4 --write    # the reference run
    python benchmarks/bench_heads.py --profile smoke --steps 2            # seconds, placeholders
    python benchmarks/bench_heads.py --profile cpu --probe fusion --lrs 2e-3 5e-4 --minutes 1.5

``--write`` stores everything in ``docs/results/race_10.json`` (the notebook's reference table);
checkpoints go to ``runs/<profile>-race10/<contender>`` and finished ones of the same
configuration are reused (``course_lib.train.compatible``), as the notebook does.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from course_lib import config, predict, train  # noqa: E402
from course_lib.evaluate import evaluate_keypoints  # noqa: E402
from course_lib.heads.fusion import TERM_WEIGHTS  # noqa: E402
from course_lib.transforms import image_to_crop  # noqa: E402

RESULTS = config.repo_root() / "docs" / "results" / "race_10.json"

#: the contenders: the head, its loss, its learning rate (chosen by the probes recorded in the
#: results file) and what decodes it
CONTENDERS: dict[str, dict] = {
    "deconv": {"head": "deconv", "loss": "mse", "lr": 2e-3,
               "label": "heatmap + DARK (deconvolution head, MSE)"},
    "fusion": {"head": "fusion", "loss": "fusion", "lr": 1e-3,
               "label": "fusion head (heatmap + offset + variance, six-term loss)"},
    "lightning": {"head": "lightning", "loss": "lightning", "lr": 3e-3,
                  "label": "Lightning Pose's softmax head (sub-pixel soft-argmax)"},
    "simcc": {"head": "simcc", "loss": "simcc", "lr": 2e-3,
              "label": "SimCC (1-D classification, split ratio 2)"},
    "integral": {"head": "integral", "loss": "integral", "lr": 2e-3,
                 "label": "integral regression (soft-argmax, L1)"},
}
TERMS = tuple(TERM_WEIGHTS)
DECODE_BATCH = 64
QUICK_CROPS = 4  # the smoke profile's quick runs: crops per training batch and per measurement


def contender_config(name: str, profile: str | None = None, *, minutes: float | None = None,
                     steps: int | None = None, lr: float | None = None,
                     head_options: dict | None = None, seed: int = 0,
                     clock: str = "cpu") -> train.TrainConfig:
    """The ``TrainConfig`` of contender ``name``: the profile's recipe with the contender's head,
    loss and learning rate, the budget's ``clock`` (``cpu`` on a shared CPU machine, ``wall`` on
    a GPU) and a budget of ``minutes`` (or ``steps``)."""
    spec = CONTENDERS[name]
    # every head encodes its own targets from MSRA-geometry keypoints, in float32 (the race as
    # recorded in docs/results/race_10.json), whatever the profile trains its deconv head with
    overrides = {"head": spec["head"], "loss": spec["loss"], "lr": lr or spec["lr"],
                 "budget_clock": clock, "head_options": head_options, "seed": seed,
                 "encoding": "msra", "cpu_bf16": False}
    if steps:
        overrides.update(max_train_steps=int(steps), max_train_minutes=None)
    elif minutes:
        overrides.update(max_train_minutes=float(minutes))
    return train.make_config(profile, **overrides)


def run_dir(profile: str, name: str) -> Path:
    """``runs/<profile>-race10/<name>``: where a contender's checkpoints go."""
    return config.repo_root() / "runs" / f"{profile}-race10" / name


def train_or_reuse(cfg: train.TrainConfig, out_dir: Path, train_set, *,
                   progress: bool = True) -> tuple[torch.nn.Module, dict, bool]:
    """``(model in eval mode, history, reused)``: a finished checkpoint of the same configuration
    in ``out_dir`` is reused, an unfinished one resumed, anything else trained afresh."""
    latest = out_dir / "latest.pt"
    found = train.load_checkpoint(latest) if latest.is_file() else None
    same = found is not None and train.compatible(found["config"], cfg)
    if same and found["history"].get("finished"):
        model, _ = predict.load_model(latest)
        return model, found["history"], True
    model, history = train.train(cfg, out_dir, train_dataset=train_set, resume=same,
                                 force=not same, progress=progress)
    return model.eval(), history, False


def crop_truth(meta: dict, input_size) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth of every crop in crop pixels ``[N, K, 2]`` and its labelled mask ``[N, K]``."""
    kps = np.asarray(meta["keypoints"], dtype=np.float64)
    rot = meta["rotation"] if "rotation" in meta else np.zeros(len(kps))
    pts = np.stack([image_to_crop(k[:, :2], c, s, input_size, float(r))
                    for k, c, s, r in zip(kps, meta["center"], meta["scale"], rot)])
    return pts, kps[..., 2] > 0


def keypoint_errors(coords_hm: np.ndarray, meta: dict, cfg: train.TrainConfig) -> np.ndarray:
    """Distance ``[N, K]`` in crop px between decoded points (heatmap px x stride, MSRA) and the
    ground truth; NaN where the keypoint is not labelled."""
    stride = cfg.input_size[0] / cfg.heatmap_size[0]
    truth, labelled = crop_truth(meta, cfg.input_size)
    err = np.hypot(*(np.asarray(coords_hm) * stride - truth).transpose(2, 0, 1))
    return np.where(labelled, err, np.nan)


def decode_ms(model: torch.nn.Module, images: torch.Tensor, repeats: int = 5) -> float:
    """Milliseconds the model's decoder (``predict.decode_output``: DARK for heatmaps, the head's
    own otherwise) takes for the outputs of ``images``: one thread, best of ``repeats``."""
    output = predict.run_network(model.eval(), images)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            predict.decode_output(output, model, "dark")
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return 1e3 * best


def measure(model: torch.nn.Module, cfg: train.TrainConfig, val, *, repeats: int = 5,
            limit: int | None = None) -> dict:
    """AP, AP50, AP75, the median error of each keypoint (crop px) and the decoding time (best
    of ``repeats``) of one trained contender on the validation crops ``val`` (no flip test;
    ``limit``: only the first crops, the people left out count as missed)."""
    coords, scores, meta = predict.predict_keypoints(model, val, batch_size=DECODE_BATCH,
                                                     limit=limit, progress=False)
    results = predict.keypoints_to_results(coords, scores, meta, input_size=cfg.input_size,
                                           heatmap_size=cfg.heatmap_size)
    stats = evaluate_keypoints(val.ann_file, results)
    err = keypoint_errors(coords, meta, cfg)
    n = min(DECODE_BATCH, len(val), limit or len(val))
    images = torch.stack([val[i]["image"] for i in range(n)])
    with np.errstate(all="ignore"):
        per_keypoint = np.nanmedian(err, axis=0)
    return {"AP": stats["AP"], "AP50": stats["AP50"], "AP75": stats["AP75"],
            "median_px": float(np.nanmedian(err)), "mean_px": float(np.nanmean(err)),
            "per_keypoint_median_px": [round(float(v), 3) for v in per_keypoint],
            "decode_ms": round(decode_ms(model, images, repeats), 3), "decode_crops": n}


def run_one(name: str, cfg: train.TrainConfig, out_dir: Path, train_set, val, *,
            progress: bool = True) -> dict:
    """Train (or reuse) one configuration, measure it: one row of the results file. The row is
    kept beside the checkpoint (``row.json``) and read back while the checkpoint is reused."""
    t0 = time.perf_counter()
    model, history, reused = train_or_reuse(cfg, out_dir, train_set, progress=progress)
    cached = out_dir / "row.json"
    if reused and cached.is_file():
        row = json.loads(cached.read_text())
        if train.compatible(row["config"], cfg):
            return {**row, "contender": name, "reused": True}
    last = history["train"][-1] if history["train"] else {}
    row = {"contender": name, "lr": cfg.lr, "head_options": cfg.head_options,
           "steps": last.get("step", 0), "train_time_s": last.get("time_s", 0.0),
           "final_loss": last.get("loss"), "reused": reused, **measure(model, cfg, val),
           "wall_s": round(time.perf_counter() - t0, 1), "config": cfg.to_dict()}
    config.write_atomic(cached, json.dumps(row, indent=1))
    print(f"{out_dir.name:<26} {row['steps']:>5} steps  AP {row['AP']:.3f}  AP75 "
          f"{row['AP75']:.3f}  median {row['median_px']:.2f} px  decode {row['decode_ms']:.1f} ms"
          f"  ({row['wall_s']:.0f} s)", flush=True)
    return row


def quick_run(name: str, cfg: train.TrainConfig, batch: dict, val, *, steps: int,
              limit: int | None = QUICK_CROPS) -> dict:
    """The smoke profile's stand-in for :func:`run_one`: ``steps`` plain Adam steps (``cfg.lr``,
    no schedule, no checkpoint) on one ``batch``, then :func:`measure` on the first ``limit``
    validation crops: placeholder numbers that show the path runs."""
    config.seed_everything(cfg.seed)
    model = train.build_model(cfg).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = train.make_loss(cfg, model)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(batch["image"]), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return {"contender": name, "lr": cfg.lr, "head_options": cfg.head_options, "steps": steps,
            "final_loss": losses[-1], "reused": False,
            **measure(model.eval(), cfg, val, repeats=1, limit=limit),
            "config": cfg.to_dict()}


def quick_batch(train_set, cfg: train.TrainConfig, size: int = QUICK_CROPS) -> dict:
    """The first ``size`` crops of the first training batch (the quick runs' one batch)."""
    batch = next(iter(train.epoch_loader(train_set, cfg, 0)))
    return {k: v[:size] for k, v in batch.items() if k != "meta"}


def safe_run(name: str, *args, **kwargs) -> dict:
    """:func:`run_one`, or a row holding the error (a diverged run must not end the race)."""
    try:
        return run_one(name, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - recorded in the results, the race goes on
        print(f"{name}: failed ({type(exc).__name__}: {exc})", flush=True)
        return {"contender": name, "error": f"{type(exc).__name__}: {exc}"}


def race(profile: str, *, minutes: float | None, steps: int | None, names=tuple(CONTENDERS),
         progress: bool = True, quick_steps: int | None = None, clock: str = "cpu") -> dict:
    """Every contender in ``names`` on the same budget: ``{name: row}``. ``quick_steps``: instead,
    that many steps on one batch each (:func:`quick_run`, the smoke profile's placeholders)."""
    cfg0 = contender_config(names[0], profile, minutes=minutes, steps=steps, clock=clock)
    train_set, val = train.make_datasets(cfg0)
    batch = quick_batch(train_set, cfg0) if quick_steps else None
    rows = {}
    for name in names:
        cfg = contender_config(name, profile, minutes=minutes, steps=steps, clock=clock)
        rows[name] = quick_run(name, cfg, batch, val, steps=quick_steps) if quick_steps else \
            safe_run(name, cfg, run_dir(profile, name), train_set, val, progress=progress)
    return rows


def ablation(profile: str, *, minutes: float | None, steps: int | None, terms=TERMS,
             progress: bool = True, repeat_seed: int | None = 1, full: bool = True,
             quick_steps: int | None = None, clock: str = "cpu") -> dict:
    """The fusion head with each term of ``terms`` switched off in turn (its weight 0), the full
    loss, and the full loss with ``repeat_seed`` (the noise yardstick): ``{row name: row}``.
    ``quick_steps``: as in :func:`race`."""
    cfg0 = contender_config("fusion", profile, minutes=minutes, steps=steps, clock=clock)
    train_set, val = train.make_datasets(cfg0)
    batch = quick_batch(train_set, cfg0) if quick_steps else None
    runs = {"all terms": (None, 0)} if full else {}
    runs.update({f"no {t}": ({"term_weights": {t: 0.0}}, 0) for t in terms})
    if repeat_seed is not None:
        runs[f"all terms, seed {repeat_seed}"] = (None, repeat_seed)
    rows = {}
    for label, (options, seed) in runs.items():
        cfg = contender_config("fusion", profile, minutes=minutes, steps=steps,
                               head_options=options, seed=seed, clock=clock)
        rows[label] = quick_run(label, cfg, batch, val, steps=quick_steps) if quick_steps else \
            safe_run(label, cfg, ablation_dir(profile, label, cfg), train_set, val,
                     progress=progress)
    return rows


def ablation_dir(profile: str, label: str, cfg: train.TrainConfig) -> Path:
    """``runs/<profile>-race10/ablation-<label>``; the full loss reuses the race's fusion run
    when that one has the same configuration (the same budget)."""
    race_run = run_dir(profile, "fusion") / "latest.pt"
    if label == "all terms" and race_run.is_file() and train.compatible(
            train.load_checkpoint(race_run)["config"], cfg):
        return race_run.parent
    return run_dir(profile, "ablation-" + label.replace(", ", "-").replace(" ", "_"))


def probe(profile: str, name: str, lrs, *, minutes: float) -> dict:
    """A short run of contender ``name`` at each learning rate of ``lrs``: ``{lr: row}``."""
    cfg0 = contender_config(name, profile, minutes=minutes)
    train_set, val = train.make_datasets(cfg0)
    return {str(lr): run_one(f"{name} lr {lr:g}", contender_config(name, profile, minutes=minutes,
                                                                   lr=lr),
                             run_dir(profile, f"probe-{name}-{lr:g}"), train_set, val)
            for lr in lrs}


def environment() -> dict:
    """Where and with what the numbers were measured."""
    return {"date": datetime.date.today().isoformat(), "torch": torch.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads(),
            "machine": "2 CPU cores shared with other jobs; budget on the CPU clock "
                       "(process CPU time / 2 cores)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=None)
    parser.add_argument("--minutes", type=float, default=4.0, help="budget per run")
    parser.add_argument("--ablation-minutes", type=float, default=None,
                        help="budget per ablation run (default: --minutes)")
    parser.add_argument("--steps", type=int, default=None, help="a step budget instead")
    parser.add_argument("--only", nargs="*", default=list(CONTENDERS), help="race contenders")
    parser.add_argument("--terms", nargs="*", default=list(TERMS), help="terms to ablate")
    parser.add_argument("--no-full", action="store_true", help="ablation without the full loss")
    parser.add_argument("--no-repeat", action="store_true", help="no second-seed full loss")
    parser.add_argument("--probe", default=None, help="learning-rate probe of one contender")
    parser.add_argument("--lrs", type=float, nargs="*", default=())
    parser.add_argument("--write", nargs="?", const=str(RESULTS), default=None,
                        help=f"write the results file (default {RESULTS})")
    args = parser.parse_args(argv)
    profile = config.get_profile(args.profile).name
    if args.probe:
        rows = probe(profile, args.probe, args.lrs, minutes=args.minutes)
        print(json.dumps({k: {f: v.get(f) for f in ("steps", "AP", "AP75", "final_loss")}
                          for k, v in rows.items()}, indent=1))
        return 0
    budget = {"minutes": None if args.steps else args.minutes, "steps": args.steps}
    out = {"profile": profile, "budget": budget, "environment": environment()}
    if args.only:
        out["race"] = race(profile, **budget, names=tuple(args.only))
    if args.terms or not args.no_full or not args.no_repeat:
        minutes = None if args.steps else (args.ablation_minutes or args.minutes)
        out["ablation_budget"] = {"minutes": minutes, "steps": args.steps}
        out["ablation"] = ablation(profile, minutes=minutes, steps=args.steps,
                                   terms=tuple(args.terms or ()), full=not args.no_full,
                                   repeat_seed=None if args.no_repeat else 1)
    if args.write:
        previous = json.loads(Path(args.write).read_text()) if Path(args.write).is_file() else {}
        keep = {k: v for k, v in previous.items() if k in ("about", "published", "probes")}
        config.write_atomic(args.write, json.dumps({**keep, **out}, indent=1) + "\n")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
