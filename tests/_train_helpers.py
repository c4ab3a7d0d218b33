"""Synthetic training data for the training tests (no files, no course_lib.data needed)."""

from __future__ import annotations

import numpy as np
import torch


class BlobDataset(torch.utils.data.Dataset):
    """``n`` crops of ``input_size`` (W, H): a bright square per keypoint on noise, with the
    matching Gaussian heatmaps and weights (keypoint 0 unlabelled in every other crop)."""

    def __init__(self, n: int = 32, input_size=(64, 64), num_keypoints: int = 17, seed: int = 0):
        self.n, self.input_size, self.k, self.seed = n, tuple(input_size), num_keypoints, seed
        self.heatmap_size = (input_size[0] // 4, input_size[1] // 4)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng(self.seed * 10_000 + i)
        w, h = self.input_size
        wh, hh = self.heatmap_size
        image = rng.normal(0, 0.1, (3, h, w)).astype(np.float32)
        pts = rng.uniform(2, [wh - 3, hh - 3], (self.k, 2))
        ys, xs = np.mgrid[0:hh, 0:wh]
        heatmaps = np.exp(-((xs - pts[:, :1, None].round()) ** 2
                            + (ys - pts[:, 1:, None].round()) ** 2) / 8.0).astype(np.float32)
        for k, (x, y) in enumerate(np.round(pts * 4).astype(int)):
            image[k % 3, y - 2:y + 2, x - 2:x + 2] += 1.0 + k / self.k
        weights = np.ones(self.k, np.float32)
        if i % 2:
            weights[0] = 0.0
            heatmaps[0] = 0.0
        return {"image": torch.from_numpy(image), "heatmaps": torch.from_numpy(heatmaps),
                "weights": torch.from_numpy(weights)}


def tiny_config(**overrides) -> dict:
    """A ResNet-18 config on 64x64 crops for fast tests."""
    from course_lib.train import make_config

    base = dict(depth=18, input_size=(64, 64), heatmap_size=(16, 16), batch_size=4, lr=1e-3,
                epochs=2, lr_steps=(1,), warmup_steps=2, max_train_minutes=None,
                max_train_steps=None, num_workers=0)
    base.update(overrides)
    return make_config("smoke", **base)
