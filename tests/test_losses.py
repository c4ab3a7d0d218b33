"""course_lib.losses: masked MSE against HRNet's and MMPose's formulas, OHKM."""

from __future__ import annotations

import pytest
import torch

from course_lib.losses import keypoint_mse_loss, ohkm_mse_loss


def _batch(seed=0, n=3, k=5, h=6, w=4):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(n, k, h, w, generator=g)
    target = torch.rand(n, k, h, w, generator=g)
    weights = (torch.rand(n, k, generator=g) > 0.3).float()
    return pred, target, weights


def hrnet_joints_mse(output, target, target_weight):
    """HRNet's JointsMSELoss (lib/core/loss.py), written out as in the reference repository."""
    criterion = torch.nn.MSELoss(reduction="mean")
    batch_size, num_joints = output.size(0), output.size(1)
    heatmaps_pred = output.reshape((batch_size, num_joints, -1)).split(1, 1)
    heatmaps_gt = target.reshape((batch_size, num_joints, -1)).split(1, 1)
    loss = 0
    for idx in range(num_joints):
        pred, gt = heatmaps_pred[idx].squeeze(), heatmaps_gt[idx].squeeze()
        w = target_weight[:, idx].unsqueeze(1)
        loss += 0.5 * criterion(pred.mul(w), gt.mul(w))
    return loss / num_joints


def mmpose_keypoint_mse(output, target, target_weights):
    """MMPose 1.x KeypointMSELoss(use_target_weight=True, loss_weight=1.)."""
    loss = torch.nn.functional.mse_loss(output, target, reduction="none")
    return (loss * target_weights[:, :, None, None]).mean()


def test_hand_computed_value():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.ones(1, 2, 2, 2)
    target[0, 1] = 3.0
    # keypoint 0: squared error 1 on 4 pixels, keypoint 1 masked out: (4 * 1 + 0) / 8
    assert keypoint_mse_loss(pred, target, torch.tensor([[1.0, 0.0]])).item() == 0.5
    assert keypoint_mse_loss(pred, target).item() == (4 * 1 + 4 * 9) / 8


def test_equals_mmpose_and_twice_hrnet_with_binary_weights():
    pred, target, weights = _batch()
    ours = keypoint_mse_loss(pred, target, weights)
    torch.testing.assert_close(ours, mmpose_keypoint_mse(pred, target, weights))
    torch.testing.assert_close(ours, 2 * hrnet_joints_mse(pred, target, weights))


def test_masked_keypoints_get_no_gradient():
    pred, target, weights = _batch(1)
    weights[:, 2] = 0
    pred.requires_grad_(True)
    keypoint_mse_loss(pred, target, weights).backward()
    assert torch.all(pred.grad[:, 2] == 0)
    assert torch.all(pred.grad[:, 0][weights[:, 0] > 0] != 0)


def test_ohkm_keeps_the_hardest_keypoints_per_crop():
    pred = torch.zeros(2, 4, 1, 1)
    target = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1).repeat(2, 1, 1, 1)
    # per-keypoint losses 1, 4, 9, 16: the two hardest average to 12.5
    assert ohkm_mse_loss(pred, target, topk=2).item() == 12.5
    weights = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    # crop 0 loses keypoint 3: (9 + 4) / 2; crop 1: (16 + 9) / 2
    assert ohkm_mse_loss(pred, target, weights, topk=2).item() == (6.5 + 12.5) / 2


def test_ohkm_with_all_keypoints_equals_mse():
    pred, target, weights = _batch(2)
    torch.testing.assert_close(ohkm_mse_loss(pred, target, weights, topk=5),
                               keypoint_mse_loss(pred, target, weights))


def test_bad_shapes_raise():
    pred, target, weights = _batch()
    with pytest.raises(ValueError, match="pred: expected a 4-D"):
        keypoint_mse_loss(pred[0], target[0])
    with pytest.raises(ValueError, match="target"):
        keypoint_mse_loss(pred, target[:, :2])
    with pytest.raises(ValueError, match=r"weights: expected shape \[N, K\]"):
        keypoint_mse_loss(pred, target, weights[:, :2])
    with pytest.raises(ValueError, match="topk"):
        ohkm_mse_loss(pred, target, topk=6)
