"""What the pose networks of ``09_hrnet_hrformer.ipynb`` cost, and that notebook's race.

    python benchmarks/bench_models.py                      # count, compare with the results file
    python benchmarks/bench_models.py --write [--step-rounds 4]
    python benchmarks/bench_models.py race [--minutes 5] [--write]

1. Parameters and multiply-accumulates (``course_lib.models.count_parameters`` and
   ``count_flops``, the course's counter) of ResNet-18/50, HRNet-mini/W32/W48 and HRFormer-T/S/B
   at 256x192 and 128x96. Without ``--write`` the numbers are compared with
   ``docs/results/models.json`` (exit status 1 when they differ); ``--write`` writes that file.
   ``--step-rounds N`` also times training steps at 128x96, batch 32 (random data, Adam,
   channels-last): every network in one process, one step each per round in turn, the median of
   ``N`` rounds after one warm-up step, wall and process CPU time.
2. ``race``: notebook 09's race in the ``cpu`` profile -- each backbone of :data:`RACE` trains for
   the same budget (``--minutes`` on the ``cpu`` clock: process CPU time / cores, so a shared
   machine does not shorten anyone's budget), validated every ``--eval-every`` minutes, in
   ``runs/cpu-race/<backbone>`` (a finished run of the same configuration is reused, an
   unfinished one resumed). ``--write`` writes ``docs/results/race_09.json``, the reference table
   the notebook shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from course_lib import config, models, predict, train  # noqa: E402

RESULTS = ROOT / "docs" / "results"
#: key -> (label, backbone, depth, head_channels); depth and head apply to ResNet only
NETWORKS = {
    "resnet18": ("ResNet-18 + 3 deconvs (256)", "resnet", 18, 256),
    "resnet18_h128": ("ResNet-18 + 3 deconvs (128), the cpu profile's", "resnet", 18, 128),
    "resnet50": ("ResNet-50 + 3 deconvs (256), SimpleBaseline", "resnet", 50, 256),
    "hrnet_mini": ("HRNet-mini (W32, 1 module/stage, 2 blocks)", "hrnet_mini", 50, 256),
    "hrnet_w32": ("HRNet-W32", "hrnet_w32", 50, 256),
    "hrnet_w48": ("HRNet-W48", "hrnet_w48", 50, 256),
    "hrformer_tiny": ("HRFormer-T", "hrformer_tiny", 50, 256),
    "hrformer_small": ("HRFormer-S", "hrformer_small", 50, 256),
    "hrformer_base": ("HRFormer-B", "hrformer_base", 50, 256),
}
SIZES = {"256x192": (192, 256), "128x96": (96, 128)}  # name -> (W, H)
TIMED = ("resnet18_h128", "hrnet_mini", "hrformer_tiny", "hrnet_w32")
#: the race of notebook 09's cpu profile: the profile's ResNet-18 against the small HRNet and
#: HRFormer-T (the notebook defines the same race; it checks that its configs equal these)
RACE = ("resnet", "hrnet_mini", "hrformer_tiny")


def build(key: str) -> torch.nn.Module:
    _, backbone, depth, head = NETWORKS[key]
    return models.build_pose_model(backbone, depth=depth, head_channels=head)


def count_all() -> dict:
    """``{key: {label, backbone, parameters, gmacs: {size: G}}}`` for every network."""
    out = {}
    for key, (label, backbone, depth, head) in NETWORKS.items():
        torch.manual_seed(0)
        net = build(key)
        gmacs = {name: round(models.count_flops(net, size) / 1e9, 3)
                 for name, size in SIZES.items()}
        out[key] = {"label": label, "backbone": backbone,
                    **({"depth": depth, "head_channels": head} if backbone == "resnet" else {}),
                    "parameters": models.count_parameters(net), "gmacs": gmacs}
        print(f"{label:48s} {out[key]['parameters']:>11,d} params  "
              + "  ".join(f"{n} {g:6.3f} G" for n, g in gmacs.items()), flush=True)
    return out


def time_steps(rounds: int, batch: int = 32) -> dict:
    """Median wall and CPU seconds of one training step at 128x96 per network of :data:`TIMED`,
    all in one process, interleaved (one step each per round, after one warm-up step each)."""
    from course_lib.losses import keypoint_mse_loss

    torch.manual_seed(0)
    images = torch.randn(batch, 3, 128, 96).contiguous(memory_format=torch.channels_last)
    target, weights = torch.rand(batch, 17, 32, 24) * 0.1, torch.ones(batch, 17)
    nets = {k: build(k).to(memory_format=torch.channels_last).train() for k in TIMED}
    opts = {k: torch.optim.Adam(n.parameters(), lr=1e-4) for k, n in nets.items()}

    def step(key: str) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        loss = keypoint_mse_loss(nets[key](images), target, weights)
        opts[key].zero_grad(set_to_none=True)
        loss.backward()
        opts[key].step()
        return time.perf_counter() - wall, time.process_time() - cpu

    for key in TIMED:
        step(key)
    seen: dict[str, list[tuple[float, float]]] = {k: [] for k in TIMED}
    for r in range(rounds):
        for key in TIMED[r % len(TIMED):] + TIMED[:r % len(TIMED)]:  # rotate the order
            seen[key].append(step(key))
    base = statistics.median(w for w, _ in seen[TIMED[0]])
    out = {}
    for key, times in seen.items():
        wall = statistics.median(w for w, _ in times)
        out[key] = {"wall_s_per_step": round(wall, 3),
                    "cpu_s_per_step": round(statistics.median(c for _, c in times), 3),
                    "images_per_s": round(batch / wall, 1), "ratio_to_resnet18_h128": round(
                        wall / base, 2)}
        print(f"{key:16s} {wall:6.2f} s/step  x{wall / base:4.2f}", flush=True)
    return out


def machine() -> dict:
    return {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average": [round(v, 2) for v in os.getloadavg()]}


def compare(counted: dict, path: Path) -> int:
    """0 when ``path`` holds the same parameters and MACs, else 1 (and what differs)."""
    if not path.is_file():
        print(f"{path}: missing (run with --write)")
        return 1
    saved = json.loads(path.read_text(encoding="utf-8"))["networks"]
    wrong = [k for k in counted if k not in saved or
             (saved[k]["parameters"], saved[k]["gmacs"]) != (counted[k]["parameters"],
                                                              counted[k]["gmacs"])]
    for key in wrong:
        print(f"{key}: counted {counted[key]}, {path.name} has {saved.get(key)}")
    print(f"{path.relative_to(ROOT)}: {'up to date' if not wrong else f'{len(wrong)} differ'}")
    return 1 if wrong else 0


def models_main(args: argparse.Namespace) -> int:
    counted = count_all()
    path = RESULTS / "models.json"
    if not args.write:
        return compare(counted, path)
    doc = {"what": "parameters (17 keypoints) and multiply-accumulates (course_lib.models."
                   "count_flops: conv, transposed conv, linear, attention products) of the "
                   "pose networks of 09_hrnet_hrformer.ipynb; written by "
                   "benchmarks/bench_models.py --write",
           "machine": machine(), "networks": counted}
    if args.step_rounds:
        doc["step_cost_128x96_batch32"] = {
            "setup": f"random data, Adam, MSE, channels-last, forward+backward+step; all in one "
                     f"process, interleaved, median of {args.step_rounds} rounds after a "
                     f"warm-up step", "networks": time_steps(args.step_rounds),
            "machine_after": machine()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    config.write_atomic(path, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


# --------------------------------------------------------------------------------- the race


def race_config(backbone: str, minutes: float, eval_every: float) -> train.TrainConfig:
    """The cpu profile's recipe for ``backbone``, a ``minutes`` budget on the ``cpu`` clock."""
    return train.make_config("cpu", backbone=backbone, max_train_minutes=minutes,
                             budget_clock="cpu", eval_every_minutes=eval_every)


def run_contender(cfg: train.TrainConfig, out: Path, val_set) -> tuple[dict, bool]:
    """``(history, reused)``: a finished run of the same config in ``out``, else train there."""
    latest = out / "latest.pt"
    found = train.load_checkpoint(latest) if latest.is_file() else None
    reuse = found is not None and train.compatible(found["config"], cfg)
    if reuse and found["history"].get("finished"):
        return found["history"], True
    _, history = train.train(cfg, out, train_dataset=train.make_dataset(cfg, "train"),
                             validate_fn=predict.make_validator(val_set, cfg), resume=reuse,
                             force=not reuse, progress=False)
    return history, False


def race_row(cfg: train.TrainConfig, history: dict, wall_s: float) -> dict:
    last = history["val"][-1]
    return {"backbone": cfg.backbone, "steps": history["train"][-1]["step"],
            "minutes": round(last["time_s"] / 60, 2), "wall_minutes": round(wall_s / 60, 2),
            "AP": round(last["AP"], 4), "AP50": round(last["AP50"], 4),
            "AP75": round(last["AP75"], 4), "best_AP": round(history["best_ap"], 4),
            "curve": [{"step": r["step"], "minutes": round(r["time_s"] / 60, 2),
                       "AP": round(r["AP"], 4)} for r in history["val"]],
            "config": cfg.to_dict()}


def race_main(args: argparse.Namespace) -> int:
    before = machine()
    rows = []
    for backbone in RACE:
        cfg = race_config(backbone, args.minutes, args.eval_every)
        val_set = train.make_dataset(cfg, "val")
        start = time.perf_counter()
        history, reused = run_contender(cfg, config.repo_root() / "runs" / "cpu-race" / backbone,
                                        val_set)
        rows.append(race_row(cfg, history, time.perf_counter() - start))
        r = rows[-1]
        print(f"{backbone:14s} {r['steps']:5d} steps {r['minutes']:5.2f} min (cpu clock) "
              f"{r['wall_minutes']:6.2f} min wall{' (reused)' if reused else ''}  AP {r['AP']:.3f}"
              f"  AP50 {r['AP50']:.3f}  AP75 {r['AP75']:.3f}", flush=True)
    if args.write:
        doc = {"what": "the race of 09_hrnet_hrformer.ipynb (cpu profile): each backbone trains "
                       "for the same budget on the synthetic data; AP = COCO OKS AP on the "
                       "validation crops (ground-truth boxes, DARK decoding) at the end",
               "budget_minutes": args.minutes, "budget_clock": "cpu (process CPU time / cores)",
               "eval_every_minutes": args.eval_every, "machine_before": before,
               "machine_after": machine(), "contenders": rows}
        RESULTS.mkdir(parents=True, exist_ok=True)
        config.write_atomic(RESULTS / "race_09.json", json.dumps(doc, indent=1) + "\n")
        print(f"wrote {(RESULTS / 'race_09.json').relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=("models", "race"), default="models")
    parser.add_argument("--write", action="store_true", help="write the results file")
    parser.add_argument("--step-rounds", type=int, default=0,
                        help="models: also time training steps, median of N rounds")
    parser.add_argument("--minutes", type=float, default=5.0, help="race: budget per backbone")
    parser.add_argument("--eval-every", type=float, default=1.25,
                        help="race: validate every this many minutes of training")
    args = parser.parse_args(argv)
    return race_main(args) if args.what == "race" else models_main(args)


if __name__ == "__main__":
    sys.exit(main())
