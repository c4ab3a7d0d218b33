"""``python -m course_lib.validate``: a checkpoint's COCO keypoint AP, and its results file.

Taught in ``08_oks_evaluation.ipynb``. Command line::

    python -m course_lib.validate --checkpoint runs/cpu/best.pt \\
        --ann data/synthetic/annotations/person_keypoints_val.json --images data/synthetic/val \\
        [--boxes person_detections.json] [--decoder dark|quarter|argmax|soft_argmax] [--flip] \\
        --out results.json

Every argument has a default from the active profile (``course_lib.config``): the profile's best
checkpoint, its val annotation file and image folder, DARK decoding, no flip test, and
``<checkpoint folder>/results_val_<decoder>[_flip].json``. The work is
``course_lib.predict.evaluate_checkpoint``; this module only reads the arguments and prints.
"""

from __future__ import annotations

import argparse

from course_lib.evaluate import format_stats
from course_lib.predict import DECODERS, evaluate_checkpoint
from course_lib.train.config import positive_int


def main(argv: list[str] | None = None) -> dict:
    """Parse the arguments, evaluate, print the ten stats; returns them. A missing, corrupt or
    foreign checkpoint, missing data or a bad argument: one ``error:`` line, exit code 2."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.validate",
        description="Evaluate a checkpoint with COCO keypoint AP (OKS); writes a results JSON.",
    )
    parser.add_argument("--checkpoint", help="checkpoint (default: the profile's best.pt)")
    parser.add_argument("--ann", help="COCO keypoint annotation file (default: the profile's val)")
    parser.add_argument("--images", help="image folder (default: the profile's val images)")
    parser.add_argument("--boxes", help="COCO person detections to crop instead of GT boxes")
    parser.add_argument("--decoder", default="dark", choices=DECODERS)
    parser.add_argument("--flip", action="store_true", help="flip test (average with mirror)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--out", help="results JSON (default: beside the checkpoint)")
    args = parser.parse_args(argv)
    try:  # a bad file is one "error:" line and exit code 2, as a bad argument is
        stats, results, out = evaluate_checkpoint(
            args.checkpoint, ann=args.ann, images=args.images, boxes=args.boxes,
            decoder=args.decoder, flip=args.flip, out=args.out, batch_size=args.batch_size)
    except (OSError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(exc).split())}\n")
    print(f"{len(results)} results written to {out}")
    print(format_stats(stats))
    return stats


if __name__ == "__main__":
    main()
