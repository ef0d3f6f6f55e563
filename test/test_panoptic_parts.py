"""Building blocks of scene construction: slerp pooling, the 32-d cosine trick, clustering, geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eps3d_ros.panoptic.clustering import ClusteringConfig, cluster_instances
from eps3d_ros.panoptic.hdbscan_clusterer import HdbscanSettings
from eps3d_ros.panoptic.geometry import knn_outliers, oriented_box
from eps3d_ros.panoptic.semantic_space import SemanticSpace
from eps3d_ros.geometry.slerp import slerp, weighted_slerp_pool


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def test_slerp_endpoints_norm_and_angle() -> None:
    a, b = unit(10, 16, seed=1), unit(10, 16, seed=2)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    t = torch.rand(10, dtype=torch.float64)
    m = slerp(a, b, t)
    torch.testing.assert_close(m.norm(dim=-1), torch.ones(10, dtype=torch.float64))
    # Constant angular speed: angle(a, m) = t * angle(a, b).
    ang = lambda x, y: torch.acos((x * y).sum(-1).clamp(-1, 1))  # noqa: E731
    torch.testing.assert_close(ang(a, m), t * ang(a, b))
    # Parallel inputs are stable.
    torch.testing.assert_close(slerp(a, a, 0.3), a)


def test_area_weighted_pooling_follows_pe3r_rule() -> None:
    a, b = unit(1, 8, seed=3)[0], unit(1, 8, seed=4)[0]
    e, w = weighted_slerp_pool(torch.stack([a, b]), torch.tensor([3.0, 1.0], dtype=torch.float64))
    # t = area_B / (area_A + area_B) pulls towards the larger region.
    torch.testing.assert_close(e, slerp(a, b, 0.25))
    assert float(w) == 4.0
    # Norm-preserving, unlike a weighted mean of many spread vectors.
    many = unit(999, 32, seed=5)
    pooled, _ = weighted_slerp_pool(many, torch.rand(999, dtype=torch.float64))
    assert abs(float(pooled.norm()) - 1) < 1e-9 and float(many.mean(0).norm()) < 0.2
    # A dominant cluster wins: 900 near v, 100 near -v.
    v = unit(1, 32, seed=6)[0]
    x = torch.cat([v + 0.05 * unit(900, 32, seed=7), -v + 0.05 * unit(100, 32, seed=8)])
    p, _ = weighted_slerp_pool(x)
    assert float(p @ v) > 0.9
    # Zero-weight rows are ignored; chunked pooling stays on the sphere and close to the direct one.
    p0, _ = weighted_slerp_pool(torch.stack([a, b]), torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(p0, a)
    with pytest.raises(ValueError, match="non-empty"):
        weighted_slerp_pool(torch.zeros(0, 4))
    with pytest.raises(ValueError, match="finite"):
        weighted_slerp_pool(torch.full((2, 4), float("nan")))


def test_semantic_space_cosine_equals_explicit_expansion() -> None:
    g = torch.Generator().manual_seed(0)
    space = SemanticSpace(torch.randn(512, 32, generator=g), torch.randn(512, generator=g))
    x = torch.randn(1000, 32, generator=g)
    t = torch.nn.functional.normalize(torch.randn(7, 512, generator=g), dim=-1)
    explicit = torch.nn.functional.normalize(x @ space.weight.T + space.bias, dim=-1) @ t.T
    torch.testing.assert_close(space.cosine(x, t), explicit, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(space.cosine(x, t, chunk=33), explicit, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(space.norms(x), (x @ space.weight.T + space.bias).norm(dim=-1), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="32 channels"):
        space.cosine(torch.zeros(3, 16), t)
    with pytest.raises(ValueError, match="NaN"):
        space.embed(torch.full((2, 32), float("nan")))


def blobs(n: int, k: int, noise: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(k, 32, generator=g), dim=-1)
    gt = torch.randint(0, k, (n,), generator=g)
    return 3 * centres[gt] + noise * torch.randn(n, 32, generator=g), gt


def agreement(ids: np.ndarray, gt: np.ndarray) -> float:
    """Fraction of points whose cluster's majority gt class is their own (purity)."""
    ok = 0
    for k in np.unique(ids):
        members = gt[ids == k]
        ok += np.bincount(members).max()
    return ok / len(gt)


def test_clustering_recovers_blobs_with_subsample_and_is_seeded() -> None:
    x, gt = blobs(6000, 4, 0.15)
    # 400 of 6000 → 100 of 1500
    cfg = ClusteringConfig(max_samples=1500, seed=3, hdbscan=HdbscanSettings(min_cluster_size=400))
    r = cluster_instances(x, torch.ones(6000), cfg)
    assert r.num_instances == 4 and r.sample_size == 1500
    assert (r.ids > 0).all() and agreement(r.ids.numpy(), gt.numpy()) == 1.0
    # Ids are ordered by cluster size, largest first.
    sizes = np.bincount(r.ids.numpy())[1:]
    assert list(sizes) == sorted(sizes, reverse=True)
    again = cluster_instances(x, torch.ones(6000), cfg)
    assert torch.equal(again.ids, r.ids)


def test_clustering_handles_low_opacity_noise_and_degenerate_inputs() -> None:
    x, _ = blobs(3000, 3, 0.2, seed=1)
    opac = torch.ones(3000)
    opac[:100] = 0.01
    far = torch.nn.functional.normalize(torch.randn(50, 32), dim=-1) * 3
    x = torch.cat([x, far])
    opac = torch.cat([opac, torch.ones(50)])
    r = cluster_instances(x, opac, ClusteringConfig(min_similarity=0.8, hdbscan=HdbscanSettings(min_cluster_size=50)))
    assert (r.ids[:100] == 0).all()  # transparent Gaussians are not assigned
    assert (r.ids[3000:] == 0).float().mean() > 0.8  # random directions resemble no centroid
    assert r.num_instances == 3
    for n in (0, 1):
        e = cluster_instances(torch.randn(n, 32), torch.ones(n))
        assert e.num_instances == 0 and e.ids.shape == (n,)
    nanx = torch.full((10, 32), float("nan"))
    assert cluster_instances(nanx, torch.ones(10)).num_instances == 0
    with pytest.raises(ValueError, match="min_cluster_size"):
        cluster_instances(x, opac, ClusteringConfig(hdbscan=HdbscanSettings(min_cluster_size=1)))


def test_oriented_box_of_a_rotated_cuboid() -> None:
    rng = np.random.default_rng(0)
    local = rng.uniform(-1, 1, (5000, 3)) * np.array([2.0, 1.0, 0.25])
    c, s = np.cos(0.5), np.sin(0.5)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    pts = local @ R.T + np.array([1.0, 2.0, 3.0])
    box = oriented_box(pts)
    np.testing.assert_allclose(box.extent, [4.0, 2.0, 0.5], rtol=0.05)  # tight around PCA axes
    np.testing.assert_allclose(box.center, [1, 2, 3], atol=0.05)
    assert abs(abs(box.rotation[:, 0] @ R[:, 0]) - 1) < 1e-3 and np.linalg.det(box.rotation) > 0
    corners = box.corners()
    assert corners.shape == (8, 3)
    np.testing.assert_allclose(sorted(np.linalg.norm(corners - box.center, axis=1))[0], np.linalg.norm(box.extent / 2))
    with pytest.raises(ValueError, match="N > 0"):
        oriented_box(np.zeros((0, 3)))


def test_knn_outliers_flags_stray_points() -> None:
    rng = np.random.default_rng(1)
    body = rng.uniform(-0.1, 0.1, (2000, 3))  # a densely sampled solid, like pixel-aligned Gaussians
    strays = rng.uniform(1.0, 2.0, (20, 3))
    mask = knn_outliers(np.concatenate([body, strays]), k=16, std_ratio=3.0)
    assert mask[2000:].all() and mask[:2000].mean() < 0.02  # a few corner points of the solid
    assert not knn_outliers(np.zeros((5, 3))).any()
