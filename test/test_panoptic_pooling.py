"""The vectorised scene assembly (coefficient-space pooling of all objects, one k-d tree for the outliers,
one table of votes) gives the objects of the per-object reference it replaced."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from eps3d_ros.panoptic import PanopticConfig, SemanticSpace
from eps3d_ros.panoptic.build import _votes, assemble_scene
from eps3d_ros.panoptic.geometry import grouped_knn_outliers, knn_outliers
from eps3d_ros.panoptic.pooling import pool_embeddings
from eps3d_ros.panoptic.scene import UNKNOWN
from eps3d_ros.geometry.slerp import weighted_slerp_pool
from helpers.scenes import FixedPrototypes


def space(seed: int = 0, dim: int = 512, cs: int = 32) -> SemanticSpace:
    g = torch.Generator().manual_seed(seed)
    return SemanticSpace(torch.randn(dim, cs, generator=g) / cs**0.5, 0.3 * torch.randn(dim, generator=g))


def reference_pool(sem: np.ndarray, w: np.ndarray, sp: SemanticSpace, method: str, chunk: int) -> np.ndarray:
    """The per-object pooling of the 512-d embeddings (float32), chunk by chunk, as it was."""
    parts, part_w = [], []
    for i in range(0, len(sem), chunk):
        e = sp.embed(torch.from_numpy(np.ascontiguousarray(sem[i:i + chunk])))
        wi = torch.from_numpy(w[i:i + chunk]).float()
        if method == "slerp":
            p, pw = weighted_slerp_pool(e, wi)
        else:
            p, pw = torch.nn.functional.normalize((wi[:, None] * e).sum(0), dim=0), wi.sum()
        parts.append(p)
        part_w.append(pw)
    if len(parts) == 1:
        out = parts[0]
    elif method == "slerp":
        out, _ = weighted_slerp_pool(torch.stack(parts), torch.stack(part_w))
    else:
        out = torch.nn.functional.normalize((torch.stack(part_w)[:, None] * torch.stack(parts)).sum(0), dim=0)
    return out.numpy()


@pytest.mark.parametrize("method", ["slerp", "mean"])
@pytest.mark.parametrize("chunk", [65536, 7])
def test_pooling_equals_the_512d_reference(method: str, chunk: int) -> None:
    rng = np.random.default_rng(0)
    sp = space()
    sizes = [1, 2, 3, 17, 40, 129]
    sem = rng.normal(size=(sum(sizes), 32)).astype(np.float32)
    w = rng.gamma(1.0, 1.0, sum(sizes)).astype(np.float32)
    w[:3] = 0.0  # an object whose weights are all zero, and a zero weight in the next one
    w[rng.random(len(w)) < 0.1] = 0.0
    seg = np.repeat(np.arange(len(sizes)), sizes)
    got = pool_embeddings(torch.from_numpy(sem), torch.from_numpy(w), torch.from_numpy(seg), len(sizes), sp,
                          method, chunk).numpy()
    for s in range(len(sizes)):
        ref = reference_pool(sem[seg == s], w[seg == s], sp, method, chunk)
        np.testing.assert_allclose(got[s], ref, atol=2e-6)
        if method == "slerp" or w[seg == s].any():  # a zero-weight mean is the zero vector, as before
            assert abs(np.linalg.norm(got[s]) - 1.0) < 1e-6


def test_pooling_rejects_bad_input() -> None:
    sp = space()
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_embeddings(torch.zeros(2, 32), torch.ones(2), torch.zeros(2, dtype=torch.long), 1, sp, "max")
    with pytest.raises(ValueError, match="at least one member"):
        pool_embeddings(torch.zeros(2, 32), torch.ones(2), torch.zeros(2, dtype=torch.long), 2, sp)


def reference_outliers(points: np.ndarray, k: int, ratio: float) -> np.ndarray:
    """One object's outliers as computed before (its own 3D k-d tree)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) <= k + 1:
        return np.zeros(len(pts), dtype=bool)
    dist, _ = cKDTree(pts).query(pts, k=k + 1)
    mean_d = dist[:, 1:].mean(1)
    med = np.median(mean_d)
    mad = 1.4826 * np.median(np.abs(mean_d - med))
    return mean_d > max(med + ratio * max(mad, 1e-12), 2.0 * med)


def test_grouped_outliers_equal_per_object_outliers() -> None:
    rng = np.random.default_rng(1)
    groups, pts = [], []
    for gid, (n, centre) in enumerate([(200, 0.0), (17, 0.5), (18, 5.0), (600, 0.2), (51, -3.0)]):
        p = centre + 0.05 * rng.normal(size=(n, 3))
        p[: max(1, n // 50)] += rng.normal(size=(max(1, n // 50), 3))  # strays
        pts.append(p)
        groups.append(np.full(n, [7, 3, 9, 1, 4][gid]))
    pts, groups = np.concatenate(pts), np.concatenate(groups)
    perm = rng.permutation(len(pts))  # groups interleaved
    pts, groups = pts[perm], groups[perm]
    got = grouped_knn_outliers(pts, groups, 16, 3.0)
    for g in np.unique(groups):
        m = groups == g
        assert np.array_equal(got[m], reference_outliers(pts[m], 16, 3.0)), g
    assert got.any()
    assert np.array_equal(knn_outliers(pts[groups == 1], 16, 3.0), reference_outliers(pts[groups == 1], 16, 3.0))


def test_votes_equal_per_cluster_votes() -> None:
    rng = np.random.default_rng(2)
    n, k, clusters = 5000, 6, 9
    labels = rng.integers(-1, k, n)
    labels[rng.integers(0, n, 10)] = UNKNOWN
    opac = rng.random(n).astype(np.float32)
    slot = rng.integers(-1, clusters, n)
    labels[slot == 4] = UNKNOWN  # a cluster with no known label
    got = _votes(labels, opac, slot, clusters, k)
    for c in range(clusters):
        m = (slot == c) & (labels != UNKNOWN)
        want = UNKNOWN if not m.any() else int(np.argmax(np.bincount(labels[m], weights=opac[m], minlength=k)))
        assert got[c] == want


def reference_objects(scene_in: dict, sp: SemanticSpace, cfg: PanopticConfig, labels: np.ndarray):
    """The object loop as it was: per cluster vote, outliers, pooling; then stuff regions."""
    vocab = cfg.vocabulary
    stuff = set(cfg.stuff)
    means, opac, w, sem, cids = (scene_in[k] for k in ("means", "opacities", "weights", "semantic_features",
                                                     "cluster_ids"))
    out, taken = [], np.zeros(len(means), dtype=np.int64)
    for c in np.unique(cids[cids > 0]):
        members = np.nonzero(cids == c)[0]
        known = labels[members] != UNKNOWN
        if not known.any():
            continue
        label = int(np.argmax(np.bincount(labels[members][known], weights=opac[members][known], minlength=len(vocab))))
        if vocab[label] in stuff:
            continue
        members = members[~reference_outliers(means[members], cfg.outlier_neighbors, cfg.outlier_std_ratio)]
        if len(members) < cfg.min_object_points:
            continue
        out.append((label, True, members))
        taken[members] = len(out)
    for label, name in enumerate(vocab):
        if name in stuff:
            members = np.nonzero((labels == label) & (taken == 0))[0]
            if len(members) >= cfg.min_object_points:
                out.append((label, False, members))
    return [(lab, thing, m, reference_pool(sem[m], w[m], sp, cfg.pooling, cfg.pooling_chunk)) for lab, thing, m in out]


def test_assembled_objects_equal_the_per_object_reference() -> None:
    rng = np.random.default_rng(4)
    vocab = ["floor", "wall", "mug", "bowl", "box"]
    cfg = PanopticConfig(vocabulary=vocab, stuff=["floor", "wall"], min_object_points=20, pooling_chunk=50)
    sp = space(5)
    n_obj, per = 12, 120
    centres = rng.uniform(-2, 2, (n_obj, 3))
    means = (np.repeat(centres, per, axis=0) + 0.05 * rng.normal(size=(n_obj * per, 3))).astype(np.float32)
    means[rng.random(len(means)) < 0.01] += 1.0  # strays
    cids = np.repeat(np.arange(1, n_obj + 1), per)
    cids[rng.random(len(cids)) < 0.05] = 0
    cids[cids == 3] = 2  # one cluster of two blobs
    codes = rng.normal(size=(n_obj + 1, 32))
    sem = (codes[np.repeat(np.arange(n_obj), per)] + 0.5 * rng.normal(size=(len(means), 32))).astype(np.float32)
    opac = rng.random(len(means)).astype(np.float32)
    weights = rng.gamma(1.0, 1.0, len(means)).astype(np.float32)
    enc = FixedPrototypes(vocab)
    scene_in = dict(means=means, opacities=opac, colors=np.zeros_like(means), weights=weights,
                    semantic_features=sem, instance_features=np.zeros_like(sem), cluster_ids=cids)
    scene = assemble_scene(**scene_in, space=sp, text_encoder=enc, config=cfg)
    ref = reference_objects(scene_in, sp, cfg, scene.labels)
    assert len(scene.objects) == len(ref) and sum(o.is_thing for o in scene.objects) >= 3
    for i, (o, (label, thing, members, emb)) in enumerate(zip(scene.objects, ref)):
        assert (o.id, o.label_id, o.is_thing) == (i + 1, label, thing)
        assert np.array_equal(o.indices, members)
        np.testing.assert_allclose(o.embedding, emb, atol=2e-6)
        if thing:
            assert np.all(scene.instance_ids[members] == o.id)
