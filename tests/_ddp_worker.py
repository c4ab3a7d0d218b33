"""Launched by tests/test_train.py under ``torchrun --nproc_per_node 2``: trains a few steps with
DistributedDataParallel (gloo, CPU) and saves each rank's weights and losses to OUT/rank<r>.pt."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from _train_helpers import BlobDataset, tiny_config  # noqa: E402

from course_lib.train import train  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    cfg = tiny_config(epochs=1, batch_size=2)
    model, history = train(cfg, out / "run", train_dataset=BlobDataset(16), progress=False)
    import torch.distributed as dist

    rank = dist.get_rank()
    torch.save({"model": model.state_dict(), "world": dist.get_world_size(),
                "losses": [r["loss"] for r in history["train"]]}, out / f"rank{rank}.pt")
    dist.destroy_process_group()
    assert os.environ["WORLD_SIZE"] == "2"


if __name__ == "__main__":
    main()
