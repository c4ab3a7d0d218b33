"""Generate the synthetic mini-COCO (person keypoints) for a course profile.

    python data_scripts/make_synthetic_coco.py                      # current profile, seed 0
    python data_scripts/make_synthetic_coco.py --profile smoke --seed 1 --out /tmp/mini

Writes ``annotations/person_keypoints_{train,val}.json``, ``train/`` and ``val/`` under ``--out``
(default: ``course_lib.config.data_dir()`` of the profile) and a ``manifest.json`` last. A rerun
with the same seed and sizes does nothing; an interrupted or different earlier run is redone,
damaged files are found (sizes always, every sha256 with ``--verify``) and regenerated. Only an
empty (or new) folder, or one this generator made, is written to. Ctrl-C or SIGTERM stops the
rendering processes too; the run is finished by running the command again.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a clone, uninstalled

from course_lib import config, synthetic  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: the profile's data folder)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--profile", choices=config.PROFILE_NAMES, default=None,
                        help="sizes from this profile (default: COURSE_PROFILE, else cpu/gpu)")
    parser.add_argument("--workers", type=int, default=None,
                        help="rendering processes (default: up to 2)")
    parser.add_argument("--force", action="store_true", help="regenerate even if complete")
    parser.add_argument("--verify", action="store_true",
                        help="check every file's sha256 (not only its size) before skipping")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _stop_on_sigterm(signum: int, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)  # unwinds: the pool is stopped


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed: expected a non-negative integer")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers: expected a positive integer, got {args.workers}")
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm) if main_thread else None
    try:
        profile = config.get_profile(args.profile)
        spec = synthetic.spec_from_profile(profile, args.seed)
        out = args.out if args.out is not None else config.data_dir("synthetic", profile)
        start = time.perf_counter()
        synthetic.generate(out, spec=spec, profile=profile, force=args.force, verify=args.verify,
                           progress=not args.quiet, workers=args.workers)  # fmt: skip
    except KeyboardInterrupt as exc:
        name = str(exc) or "SIGINT"
        print(f"error: interrupted ({name}); the files written so far are kept: run the same "
              "command again to finish", file=sys.stderr)  # fmt: skip
        return 128 + int(signal.Signals[name])
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    print(f"synthetic mini-COCO ({profile.name}, seed {spec.seed}, "
          f"{spec.num_train_images}+{spec.num_val_images} images of {spec.image_size[0]}x"
          f"{spec.image_size[1]}) in {out} [{time.perf_counter() - start:.1f} s]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
