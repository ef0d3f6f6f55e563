"""Voxel sets: weighted means, exact merging, bounded budgets, overlaps."""

from __future__ import annotations

import numpy as np
import pytest

from eps3d_ros.mapping.voxels import fit_budget, merge_voxels, overlap_coefficient, unique_keys, voxel_keys, voxelize


def test_voxelize_takes_weighted_means_per_voxel() -> None:
    pts = np.array([[0.001, 0.001, 0.001], [0.004, 0.004, 0.004], [0.008, 0.0, 0.0], [-0.006, 0.0, 0.0]])
    cols = np.array([[1.0, 0, 0], [0.0, 1, 0], [0, 0, 1.0], [0.5, 0.5, 0.5]])
    vs = voxelize(pts, cols, np.array([1.0, 3.0, 1.0, 2.0]), 0.01)
    assert len(vs) == 3  # voxels centred on (-1,0,0), (0,0,0) with two points, (1,0,0) x 1 cm
    i = int(np.nonzero(vs.weights == 4.0)[0][0])
    np.testing.assert_allclose(vs.points[i], (pts[0] + 3 * pts[1]) / 4)
    np.testing.assert_allclose(vs.colors[i], [0.25, 0.75, 0.0])
    assert sorted(vs.weights.tolist()) == [1.0, 2.0, 4.0]


def test_merging_is_exact_and_order_free() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-0.2, 0.2, (500, 3)), rng.uniform(-0.1, 0.3, (400, 3))
    ca, cb = rng.uniform(0, 1, (500, 3)), rng.uniform(0, 1, (400, 3))
    va, vb = voxelize(a, ca, None, 0.05), voxelize(b, cb, None, 0.05)
    ab, ba = merge_voxels(va, vb, 0.05), merge_voxels(vb, va, 0.05)
    direct = voxelize(np.concatenate([a, b]), np.concatenate([ca, cb]), None, 0.05)
    for m in (ab, ba):
        np.testing.assert_allclose(m.points, direct.points, atol=1e-12)
        np.testing.assert_allclose(m.colors, direct.colors, atol=1e-12)
        np.testing.assert_array_equal(m.weights, direct.weights)
    # the weighted mean of all points survives any re-gridding
    coarse = voxelize(direct.points, direct.colors, direct.weights, 0.17)
    np.testing.assert_allclose((coarse.weights[:, None] * coarse.points).sum(0) / coarse.weights.sum(),
                               np.concatenate([a, b]).mean(0), atol=1e-12)


def test_budget_grows_the_grid_until_it_fits() -> None:
    rng = np.random.default_rng(1)
    plane = np.c_[rng.uniform(0, 1, (20000, 2)), np.zeros(20000)]  # 1 m^2
    vs = voxelize(plane, np.zeros_like(plane), None, 0.01)
    assert len(vs) > 8000  # 10^4 cells, 2 points each on average: 1 - e^-2 of them occupied
    fitted, size = fit_budget(vs, 0.01, 500)
    assert len(fitted) <= 500 and size > 0.01
    assert len(fitted) > 150  # not far coarser than needed (one growth step at a time)
    assert fitted.weights.sum() == 20000  # every observed point is still counted
    same, size2 = fit_budget(fitted, size, 500)
    assert same is fitted and size2 == size  # within budget: untouched


def test_overlap_coefficient_and_keys() -> None:
    a = unique_keys(np.array([[0.01, 0, 0], [0.06, 0, 0], [0.11, 0, 0]]), 0.05)
    b = unique_keys(np.array([[0.04, 0.01, 0], [0.09, 0.0, 0.0], [0.5, 0.5, 0.5], [0.6, 0.5, 0.5]]), 0.05)
    assert overlap_coefficient(a, b) == pytest.approx(2 / 3)
    assert overlap_coefficient(a, a) == 1.0 and overlap_coefficient(a, np.zeros(0, np.int64)) == 0.0
    # voxels are centred on multiples of the size: -0.02 and 0.02 share one, -0.03 is in the next one down,
    # so a plane at 0 observed with noise below half a voxel fills a single layer
    k = voxel_keys(np.array([[-0.02, 0, 0], [0.02, 0, 0], [-0.03, 0, 0]]), 0.05)
    assert k[0] == k[1] and k[0] != k[2]
    with pytest.raises(ValueError, match="voxel grid"):
        voxel_keys(np.array([[1e6, 0, 0]]), 0.02)
