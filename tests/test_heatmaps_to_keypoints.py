"""The drop-in API of the ``heatmaps_to_keypoints`` package on known peaks."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.heatmaps_to_keypoints import (
    Keypoint,
    decode_heatmaps,
    from_normalized,
    to_normalized,
)


def peaks(points, h=64, w=48, sigma=2.0):
    """[N, K, H, W] float32 Gaussians at the given (x, y) heatmap pixels, points [N][K]."""
    ys, xs = np.mgrid[0:h, 0:w]
    out = np.zeros((len(points), len(points[0]), h, w), np.float32)
    for i, row in enumerate(points):
        for j, (x, y) in enumerate(row):
            out[i, j] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return out


def test_known_peaks_normalised_by_width_and_height():
    pts = [[(12.0, 40.0), (30.3, 20.6)], [(0.0, 0.0), (47.0, 63.0)]]
    results = decode_heatmaps(peaks(pts))
    assert len(results) == 2 and all(len(r) == 2 for r in results)
    kp = results[0][0]
    assert isinstance(kp, Keypoint)
    assert kp.x == pytest.approx(12 / 48, abs=1e-6) and kp.y == pytest.approx(40 / 64, abs=1e-6)
    assert kp.score == pytest.approx(1.0, abs=1e-6)
    sub = results[0][1]  # DARK recovers the sub-pixel centre
    assert sub.x == pytest.approx(30.3 / 48, abs=0.02 / 48)
    assert sub.y == pytest.approx(20.6 / 64, abs=0.02 / 64)
    corner, far = results[1]
    assert (corner.x, corner.y) == (0.0, 0.0)
    assert far.x == pytest.approx(47 / 48) and far.y == pytest.approx(63 / 64)
    for row in results:
        for p in row:
            assert 0.0 <= p.x <= 1.0 and 0.0 <= p.y <= 1.0


def test_torch_tensor_and_missing_keypoint():
    torch = pytest.importorskip("torch")
    maps = peaks([[(10.0, 10.0), (5.0, 5.0)]])
    maps[0, 1] = -0.25  # no keypoint in this map
    results = decode_heatmaps(torch.from_numpy(maps))
    assert results[0][0].x == pytest.approx(10 / 48)
    assert (results[0][1].x, results[0][1].y) == (-1.0, -1.0)
    assert results[0][1].score == pytest.approx(-0.25)


def test_input_rules_give_clear_errors():
    maps = peaks([[(10.0, 10.0)]])
    with pytest.raises(ValueError, match="float32"):
        decode_heatmaps(maps.astype(np.float64))
    with pytest.raises(ValueError, match="4 dimensions"):
        decode_heatmaps(maps[0])
    with pytest.raises(ValueError, match="contiguous"):
        decode_heatmaps(np.asfortranarray(np.repeat(maps, 2, axis=0)))
    with pytest.raises(ValueError, match="torch.Tensor or numpy array"):
        decode_heatmaps(maps.tolist())
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(np.repeat(maps, 2, axis=3))
    with pytest.raises(ValueError, match="contiguous"):
        decode_heatmaps(t[..., ::2])
    with pytest.raises(ValueError, match="float32"):
        decode_heatmaps(torch.from_numpy(maps).double())
    with pytest.raises(ValueError, match="4 dimensions"):
        decode_heatmaps(torch.from_numpy(maps)[0])
    if hasattr(torch, "device"):
        meta = torch.empty((1, 1, 4, 4), dtype=torch.float32, device="meta")
        with pytest.raises(ValueError, match="CPU"):
            decode_heatmaps(meta)


def test_normalisation_round_trip():
    coords = np.array([[[3.25, 7.5], [-1.0, -1.0], [47.0, 0.0]]])
    norm = to_normalized(coords, (48, 64))
    np.testing.assert_allclose(norm[0, 0], [3.25 / 48, 7.5 / 64])
    assert norm[0, 1].tolist() == [-1.0, -1.0]
    np.testing.assert_allclose(from_normalized(norm, (48, 64)), coords)
