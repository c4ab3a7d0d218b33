"""Tests of the keypoint distance errors and PCK of ``course_lib.evaluate_arrays``
(taught in ``06_decoding_dark.ipynb``)."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.evaluate_arrays import keypoint_errors, pck


def test_errors_are_distances_with_nan_where_unlabelled():
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[0, 0] = 3.0, 4.0  # distance 5
    pred[1, 2] = -1.0, 0.0  # distance 1, but unlabelled
    visible = np.array([[2, 1, 0], [1, 1, 0]])
    err = keypoint_errors(pred, gt, visible)
    assert err.shape == (2, 3)
    np.testing.assert_allclose(err[visible > 0], [5.0, 0.0, 0.0, 0.0])
    assert np.isnan(err[visible == 0]).all()


def test_boolean_visibility_and_one_person():
    err = keypoint_errors([[1.0, 1.0], [0.0, 2.0]], [[1.0, 1.0], [0.0, 0.0]], [True, True])
    np.testing.assert_allclose(err, [0.0, 2.0])


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="pred, gt"):
        keypoint_errors(np.zeros((2, 2)), np.zeros((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match="visible"):
        keypoint_errors(np.zeros((2, 2)), np.zeros((2, 2)), np.ones(3))


def test_pck_per_person_scale_and_strict_threshold():
    err = np.array([[0.5, 1.0, np.nan], [3.0, 9.0, 1.0]])
    scale = np.array([10.0, 40.0])[:, None]  # sqrt(area) of each person
    # limits: 1.0 for person 0, 4.0 for person 1; 1.0 < 1.0 is false (strict)
    assert pck(err, scale, 0.1) == pytest.approx(3 / 5)
    assert pck(err, 1.0, 2.0) == pytest.approx(3 / 5)  # within 2 pixels


def test_pck_against_a_loop():
    rng = np.random.default_rng(0)
    err = rng.exponential(3.0, (20, 17))
    err[rng.random(err.shape) < 0.3] = np.nan
    scale = rng.uniform(20, 80, 20)
    hits = [e < 0.1 * s for row, s in zip(err, scale) for e in row if not np.isnan(e)]
    assert pck(err, scale[:, None], 0.1) == pytest.approx(np.mean(hits))


def test_pck_edge_cases():
    assert np.isnan(pck(np.full((2, 3), np.nan), 1.0, 0.1))
    with pytest.raises(ValueError, match="alpha"):
        pck(np.ones(3), 1.0, 0.0)
