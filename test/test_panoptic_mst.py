"""The torch spanning tree of mutual reachability is exact, and the torch clustering backend gives
hdbscan's clusters (the reference backend is the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eps3d_ros.panoptic.cells import BallCells
from eps3d_ros.panoptic.clustering import ClusteringConfig, cluster_instances
from eps3d_ros.panoptic.hdbscan_clusterer import HdbscanSettings, sample_labels
from eps3d_ros.panoptic.mst import mutual_reachability_mst


def reference_mst_weights(x: np.ndarray, min_samples: int) -> np.ndarray:
    """Sorted edge weights of a minimum spanning tree of the mutual reachability graph (dense Prim, numpy)."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    n = len(x)
    if min_samples > 1:
        core = np.sort(d + np.diag(np.full(n, np.inf)), axis=1)[:, min_samples - 1]
        d = np.maximum(d, np.maximum(core[:, None], core[None, :]))
    in_tree = np.zeros(n, bool)
    in_tree[0] = True
    best = d[0].copy()
    out = []
    for _ in range(n - 1):
        j = int(np.argmin(np.where(in_tree, np.inf, best)))
        out.append(best[j])
        in_tree[j] = True
        best = np.minimum(best, d[j])
    return np.sort(np.array(out))


def blobs(n: int, k: int, dim: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    return centres[rng.integers(0, k, n)] + spread * rng.normal(size=(n, dim))


@pytest.mark.parametrize("min_samples", [1, 3])
@pytest.mark.parametrize("data", ["blobs", "uniform", "line", "duplicates"])
def test_tree_weights_equal_a_dense_reference(data: str, min_samples: int) -> None:
    rng = np.random.default_rng(1)
    x = {"blobs": blobs(400, 6, 8, 0.1, 0), "uniform": rng.random((300, 5)),
         "line": np.linspace(0, 1, 120)[:, None] * np.ones((1, 3)),
         "duplicates": np.repeat(rng.random((60, 4)), 4, axis=0)}[data]
    tree = mutual_reachability_mst(torch.from_numpy(x), min_samples)
    n = len(x)
    assert tree.shape == (n - 1, 3) and tree.dtype == torch.float64
    p, q = tree[:, 0].long(), tree[:, 1].long()
    assert bool((p < q).all()) and bool((tree[1:, 2] >= tree[:-1, 2]).all())
    np.testing.assert_allclose(tree[:, 2].numpy(), reference_mst_weights(x, min_samples), rtol=1e-12, atol=1e-12)
    # a spanning tree: n - 1 edges joining everything
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(p.tolist(), q.tolist()):
        ra, rb = find(a), find(b)
        assert ra != rb, "cycle"
        parent[ra] = rb


@pytest.mark.slow
def test_partitions_and_neighbour_counts_give_the_same_tree() -> None:
    x = torch.from_numpy(blobs(600, 8, 16, 0.2, 3))
    ref = mutual_reachability_mst(x, 1, cells=1)
    for cells, neighbors in ((1, 2), (5, 16), (40, 8), (150, 4)):
        torch.testing.assert_close(mutual_reachability_mst(x, 1, neighbors=neighbors, cells=cells), ref, rtol=0, atol=0)
    # a tiny block budget only changes how the work is cut
    torch.testing.assert_close(mutual_reachability_mst(x, 1, block_elems=1000), ref, rtol=0, atol=0)


def test_cells_knn_is_exact() -> None:
    x = torch.from_numpy(blobs(500, 5, 12, 0.3, 2))
    x = x - x.mean(0)
    idx, dist, radius = BallCells(x, 20).knn(7)
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    true = d.sort(1).values[:, :7]
    torch.testing.assert_close(dist, true, rtol=1e-12, atol=1e-12)
    assert bool((radius <= d.sort(1).values[:, 7] + 1e-12).all())  # a lower bound for every unlisted point


@pytest.mark.parametrize("data", ["blobs", "duplicates"])
def test_single_linkage_rows_equal_hdbscans_label(data: str) -> None:
    from hdbscan._hdbscan_linkage import label

    from eps3d_ros.panoptic.linkage import single_linkage

    x = blobs(800, 5, 6, 0.2, 4) if data == "blobs" else np.repeat(blobs(100, 3, 4, 0.3, 5), 3, axis=0)
    tree = mutual_reachability_mst(torch.from_numpy(x), 2).numpy()
    assert np.array_equal(single_linkage(tree), label(tree))
    with pytest.raises(ValueError, match="N-1, 3"):
        single_linkage(np.zeros((3, 2)))


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        mutual_reachability_mst(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="min_samples"):
        mutual_reachability_mst(torch.rand(5, 3), min_samples=5)
    with pytest.raises(ValueError, match="NaN"):
        mutual_reachability_mst(torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="clustering.hdbscan.backend"):
        ClusteringConfig(hdbscan=HdbscanSettings(backend="fast")).validate()


def test_two_points_and_identical_points() -> None:
    assert mutual_reachability_mst(torch.tensor([[0.0, 0.0], [3.0, 4.0]])).tolist() == [[0.0, 1.0, 5.0]]
    tree = mutual_reachability_mst(torch.ones(10, 4))
    assert tree.shape == (9, 3) and float(tree[:, 2].abs().max()) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_backend_labels_equal_exact_hdbscan(seed: int) -> None:
    import hdbscan

    x = blobs(1500, 7, 32, 0.25, seed)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for min_samples in (1, 4):
        ref = hdbscan.HDBSCAN(min_cluster_size=30, min_samples=min_samples, allow_single_cluster=True,
                              approx_min_span_tree=False, core_dist_n_jobs=1).fit_predict(x)
        got = sample_labels(torch.from_numpy(x), 30, min_samples, True, "torch")
        # the same clusters and noise; hdbscan numbers clusters in its tree's child order, which follows
        # the orientation of the tree's edges (cluster_instances renumbers them by size)
        assert np.array_equal(canonical(got), canonical(ref)), min_samples


def canonical(labels: np.ndarray) -> np.ndarray:
    """Cluster labels renumbered by first appearance; noise stays -1."""
    first = {}
    for v in labels.tolist():
        if v >= 0 and v not in first:
            first[v] = len(first)
    return np.array([first.get(v, -1) for v in labels.tolist()])


def test_backends_give_identical_instance_ids_on_scene_features() -> None:
    """Oracle-like instance features of a synthetic scene (one code per object plus noise)."""
    from eps3d_ros.data.synthetic import generate_scene

    scene = generate_scene(seed=5, num_views=3, height=64, width=64)
    rng = np.random.default_rng(0)
    hit = scene.depth > 0
    key = np.where(scene.instance > 0, scene.instance, 1000 + scene.semantic)[hit]
    codes = {k: rng.normal(size=32) for k in np.unique(key)}
    feats = np.stack([codes[k] for k in key]) + 0.3 * rng.normal(size=(len(key), 32))
    feats = torch.from_numpy(feats.astype(np.float32))
    opac = torch.from_numpy(rng.uniform(0.0, 1.0, len(key)).astype(np.float32))
    out = {b: cluster_instances(feats, opac, ClusteringConfig(
               max_samples=3000, hdbscan=HdbscanSettings(min_cluster_size=60, backend=b)))
           for b in ("torch", "hdbscan")}
    assert out["torch"].num_instances >= 3
    assert torch.equal(out["torch"].ids, out["hdbscan"].ids)
    torch.testing.assert_close(out["torch"].centroids, out["hdbscan"].centroids)
