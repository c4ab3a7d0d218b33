"""Heatmap regression losses: MSE with target weights and its hard-keypoint (OHKM) variant.

Taught in ``05_training_mse.ipynb``.

Every keypoint ``k`` of every crop has a target weight ``w[n, k]`` (``course_lib.data``: 1 for a
labelled keypoint inside the heatmap, 0 otherwise). A keypoint with weight 0 has an all-zero
target map, and the loss must not teach the network that such a joint is "nowhere": its
squared errors are multiplied by 0.

    loss = mean over n, k, y, x of  w[n, k] * (pred[n, k, y, x] - target[n, k, y, x]) ** 2

How this relates to the two reference implementations (same gradients up to a constant):

* MMPose's ``KeypointMSELoss(use_target_weight=True)`` computes exactly this (squared error
  times the weight, then ``.mean()`` over all elements, masked ones included), times its
  ``loss_weight`` (1 by default).
* HRNet / SimpleBaseline's ``JointsMSELoss`` computes ``0.5 * MSE(pred * w, target * w)``
  averaged over keypoints: it multiplies before squaring (so the weight counts as ``w ** 2``)
  and has a factor 0.5. With 0/1 weights it equals ``0.5 *`` our loss. The factor only rescales
  the gradient, which Adam largely undoes; the loss values printed by the two differ by 2x.
"""

from __future__ import annotations

import torch


def _check(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> None:
    if pred.ndim != 4:
        raise ValueError(f"pred: expected a 4-D tensor [N, K, H, W], got shape {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(
            f"target: expected the shape of pred {tuple(pred.shape)}, got {tuple(target.shape)}"
        )
    if weights is not None and tuple(weights.shape) != tuple(pred.shape[:2]):
        raise ValueError(
            f"weights: expected shape [N, K] = {tuple(pred.shape[:2])}, got {tuple(weights.shape)}"
        )


def keypoint_mse_loss(pred: torch.Tensor, target: torch.Tensor,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``weights[n, k] * (pred - target) ** 2`` over all N*K*H*W elements.

    ``pred``, ``target``: ``[N, K, H, W]``; ``weights``: ``[N, K]`` or None (all ones).
    Equals MMPose's ``KeypointMSELoss`` and twice HRNet's ``JointsMSELoss`` (module docstring).
    """
    _check(pred, target, weights)
    squared = (pred.float() - target.float()) ** 2
    if weights is not None:
        squared = squared * weights.float()[:, :, None, None]
    return squared.mean()


def ohkm_mse_loss(pred: torch.Tensor, target: torch.Tensor,
                  weights: torch.Tensor | None = None, *, topk: int = 8) -> torch.Tensor:
    """Online hard keypoint mining: per crop, average only the ``topk`` largest keypoint losses.

    The per-keypoint loss is the weighted MSE of its map (mean over H*W); then each crop keeps its
    ``topk`` worst keypoints (HRNet's ``JointsOHKMMSELoss``, k = 8 of 17, without its 0.5
    factor) and the result is averaged over the batch. With ``topk = K`` it equals
    :func:`keypoint_mse_loss`.
    """
    _check(pred, target, weights)
    k = pred.shape[1]
    if not isinstance(topk, int) or not 1 <= topk <= k:
        raise ValueError(f"topk: expected an int in [1, {k}], got {topk!r}")
    per_keypoint = ((pred.float() - target.float()) ** 2).mean(dim=(2, 3))  # [N, K]
    if weights is not None:
        per_keypoint = per_keypoint * weights.float()
    hardest, _ = per_keypoint.topk(topk, dim=1)
    return hardest.mean()
