"""Write ``docs/results/cpu_training.json`` from a finished ``cpu``-profile run of notebook 05.

    python benchmarks/record_cpu_training.py [--checkpoint runs/cpu/latest.pt] [--source "..."]

The file is the one source of the training figures that ``README.md``,
``05_training_mse.ipynb``, ``08_oks_evaluation.ipynb`` and the capstone's threshold quote:
the recipe (from the checkpoint's configuration), the learning curve (every validation of the
run's history: training minutes on the run's budget clock, steps, AP, AP50, AP75) and the
decoder table (each decoder of ``course_lib.predict``, without and with the flip test, through
``predict.evaluate_checkpoint``: pycocotools AP on the val split, ground-truth boxes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_lib import config, predict, train  # noqa: E402

RESULTS = ROOT / "docs" / "results" / "cpu_training.json"
DECODERS = ("argmax", "quarter", "dark", "soft_argmax")


def recipe(cfg: train.TrainConfig) -> dict:
    """The fields of the run's configuration a reader compares runs by."""
    return {"backbone": cfg.backbone, "depth": cfg.depth, "head_channels": cfg.head_channels,
            "input_size": list(cfg.input_size), "heatmap_size": list(cfg.heatmap_size),
            "encoding": cfg.encoding, "lr": cfg.lr, "batch_size": cfg.batch_size,
            "budget_minutes": cfg.max_train_minutes, "budget_clock": cfg.budget_clock}


def curve(history: dict) -> list[dict]:
    """Every validation of the run: minutes of training (its budget clock), steps, APs."""
    return [{"minutes": round(r["time_s"] / 60, 2), "steps": r["step"],
             **{k: round(r[k], 3) for k in ("AP", "AP50", "AP75")}} for r in history["val"]]


def decoder_table(checkpoint: Path) -> dict:
    """AP and AP75 of each decoder, single pass and with the flip test."""
    table = {}
    for name in DECODERS:
        row = {}
        for flip in (False, True):
            stats, _, _ = predict.evaluate_checkpoint(checkpoint, decoder=name, flip=flip,
                                                      progress=False)
            suffix = "_flip" if flip else ""
            row[f"AP{suffix}"], row[f"AP75{suffix}"] = round(stats["AP"], 3), round(stats["AP75"], 3)
        table[name] = row
        print(f"{name:12s} {row}", flush=True)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: runs/cpu/latest.pt")
    parser.add_argument("--source", default="a run of notebook 05 in the cpu profile",
                        help="how the run was made (machine, clock), written to the file")
    args = parser.parse_args(argv)
    checkpoint = args.checkpoint or config.runs_dir("cpu") / "latest.pt"
    found = train.load_checkpoint(checkpoint)
    cfg = train.TrainConfig.from_dict(found["config"])
    if not found["history"].get("finished"):
        print(f"error: {checkpoint}: the run has not finished", file=sys.stderr)
        return 2
    doc = {"about": "Notebook 05's cpu-profile training run and the decoder table on its "
                    "checkpoint, written by benchmarks/record_cpu_training.py: the one source of "
                    "the training figures that README.md, 05_training_mse.ipynb, "
                    "08_oks_evaluation.ipynb and the capstone quote. Validation: pycocotools OKS "
                    "AP on the synthetic val split, ground-truth boxes.",
           "source": args.source, "recipe": recipe(cfg), "curve": curve(found["history"]),
           "decoders": decoder_table(checkpoint)}
    config.write_atomic(RESULTS, json.dumps(doc, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
