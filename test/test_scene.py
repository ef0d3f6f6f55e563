"""Scene construction and queries: crafted Gaussians with known answers, and the tiny network end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eps3d_ros.conventions import covariance_from_scale_rotation
from eps3d_ros.model import EPS3D, EPS3DConfig, Gaussians
from eps3d_ros.panoptic import ClusteringConfig, PanopticConfig, SemanticSpace, build_scene, render_panoptic_views
from eps3d_ros.panoptic.hdbscan_clusterer import HdbscanSettings
from eps3d_ros.text import TextEncoder, create_text_encoder
from eps3d_ros.text.clip import register_tiny_test_model
from eps3d_ros.render import render_gaussians
from eps3d_ros.panoptic.build import relabel_scene

VOCAB = ["floor", "table", "mug", "ball", "box", "lamp"]
THINGS = {"mug": (0.0, 0.0, 0.8), "ball": (0.4, 0.1, 0.85), "box": (-0.4, -0.1, 0.82)}


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return create_text_encoder(model=register_tiny_test_model(), pretrained="", cache_size=256)


@pytest.fixture(scope="module")
def space(encoder: TextEncoder) -> SemanticSpace:
    """An expansion whose first columns are the vocabulary prototypes: feature e_k maps to class k."""
    protos = encoder.prototypes(VOCAB)  # [6, 512]
    rest = torch.nn.functional.normalize(torch.randn(512, 32 - len(VOCAB), generator=torch.Generator().manual_seed(0)), dim=0)
    return SemanticSpace(torch.cat([protos.T, 0.01 * rest], dim=1), torch.zeros(512))


def crafted(n_obj: int = 600, seed: int = 0, strays: int = 0) -> tuple[Gaussians, dict[str, np.ndarray]]:
    """Three objects on a table above a floor; semantic feature = one-hot class, instance feature = object code."""
    g = torch.Generator().manual_seed(seed)
    means, sem, ins, parts = [], [], [], {}
    codes = torch.nn.functional.normalize(torch.randn(6, 32, generator=g), dim=-1)

    def add(name: str, pts: torch.Tensor, cls: str, code: int) -> None:
        start = sum(m.shape[0] for m in means)
        parts[name] = np.arange(start, start + pts.shape[0])
        means.append(pts)
        s = torch.zeros(pts.shape[0], 32)
        s[:, VOCAB.index(cls)] = 1.0
        sem.append(s + 0.05 * torch.randn(pts.shape[0], 32, generator=g))
        ins.append(codes[code] + 0.05 * torch.randn(pts.shape[0], 32, generator=g))

    floor = torch.rand(3000, 3, generator=g) * torch.tensor([4.0, 4.0, 0.0]) - torch.tensor([2.0, 2.0, 0.0])
    table = torch.rand(2000, 3, generator=g) * torch.tensor([1.4, 0.8, 0.0]) + torch.tensor([-0.7, -0.4, 0.75])
    add("floor", floor, "floor", 0)
    add("table", table, "table", 1)
    for i, (name, c) in enumerate(THINGS.items()):
        pts = torch.tensor(c) + 0.04 * torch.nn.functional.normalize(torch.randn(n_obj, 3, generator=g), dim=-1)
        add(name, pts, name, 2 + i)
    if strays:  # points that carry the mug's features but float far from it
        add("strays", torch.tensor([[1.5, 1.5, 1.5]]) + 0.01 * torch.randn(strays, 3, generator=g), "mug", 2)
    m = torch.cat(means)
    n = m.shape[0]
    scales = torch.full((n, 3), 0.01)
    rot = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(n, 4)
    gs = Gaussians(
        means=m[None], opacities=torch.full((1, n), 0.9), scales=scales[None], rotations=rot[None],
        covariances=covariance_from_scale_rotation(scales, rot)[None], harmonics=torch.zeros(1, n, 3, 25),
        semantics=torch.cat(sem)[None], instances=torch.cat(ins)[None],
    )
    return gs, parts


def config(**kw) -> PanopticConfig:
    base = dict(vocabulary=VOCAB, stuff=["floor", "table"],
                clustering=ClusteringConfig(hdbscan=HdbscanSettings(min_cluster_size=200)))
    return PanopticConfig(**{**base, **kw})


def test_objects_labels_and_geometry(encoder, space) -> None:
    gs, parts = crafted()
    scene = build_scene(gs, space, encoder, config())
    things = {o.label: o for o in scene.objects if o.is_thing}
    assert sorted(things) == ["ball", "box", "mug"]
    for name, centre in THINGS.items():
        o = things[name]
        assert np.linalg.norm(o.centroid - np.array(centre)) < 0.01
        assert set(o.indices.tolist()) == set(parts[name].tolist())
        assert o.num_points == 600 and 1 / len(VOCAB) < o.score <= 1.0
        # Uniform weights here: the score is the mean probability of the object's label.
        assert o.score == pytest.approx(float(scene.label_scores[o.indices].mean()), rel=1e-4)
        np.testing.assert_allclose(o.aabb_max - o.aabb_min, 0.08, atol=0.01)
        assert np.all(o.obb.extent <= 0.081 + 1e-6) and abs(np.linalg.norm(o.embedding) - 1) < 1e-5
        assert np.all(scene.instance_ids[o.indices] == o.id)
    stuff = {o.label: o for o in scene.objects if not o.is_thing}
    assert sorted(stuff) == ["floor", "table"] and stuff["floor"].num_points == 3000
    assert np.all(scene.instance_ids[parts["floor"]] == 0)  # stuff is not an instance
    sem, ins = scene.panoptic_labels()
    assert np.all(sem[parts["ball"]] == VOCAB.index("ball")) and np.all(ins[parts["table"]] == 0)
    assert scene.labels.flags.writeable is False  # immutable snapshot
    with pytest.raises(ValueError):
        scene.labels[0] = 3


def test_queries_rank_and_normalise(encoder, space) -> None:
    scene = build_scene(crafted()[0], space, encoder, config())
    res = scene.query("mug", max_results=10, min_relevance=0.0)  # the ranking of every object
    assert res[0].object.label == "mug" and res[0].score == 1.0
    assert res[-1].score == 0.0 and len(res) == len(scene.objects)
    assert all(a.score >= b.score for a, b in zip(res, res[1:]))
    # by default only the objects the text matches (calibrated relevance >= 0.5): the mug alone
    assert [r.object.label for r in scene.query("mug", max_results=10)] == ["mug"]
    assert res[0].relevance > 0.5 and all(r.relevance < 0.5 for r in res[1:])
    assert [r.object.label for r in scene.query("ball", max_results=1)] == ["ball"]
    assert all(r.score >= 0.5 for r in scene.query("box", max_results=10, min_score=0.5))
    # Raw cosines are kept beside the normalised scores.
    sims = scene.similarities("mug")
    assert res[0].similarity == pytest.approx(float(sims.max()))
    rel = scene.relevance("mug")
    assert rel.shape == (scene.num_gaussians,) and rel.min() == 0.0 and rel.max() == 1.0
    mug = next(o for o in scene.objects if o.label == "mug")
    # The mug's Gaussians are the most relevant (the random test encoder's prototypes are correlated,
    # so only the ranking is meaningful).
    assert all(rel[mug.indices].mean() > rel[o.indices].mean() for o in scene.objects if o is not mug)
    assert rel[mug.indices].mean() > 0.9
    for bad in ("", "   "):
        with pytest.raises(ValueError, match="empty query"):
            scene.query(bad)
    with pytest.raises(ValueError, match="max_results"):
        scene.query("mug", max_results=0)


def test_vocabulary_changes_without_network(encoder, space) -> None:
    scene = build_scene(crafted()[0], space, encoder, config())
    reordered = ["mug", "floor", "table", "ball", "box", "lamp"]
    other = relabel_scene(scene, reordered, stuff=["floor", "table"])
    assert np.array_equal(other.cluster_ids, scene.cluster_ids)  # no re-clustering, no network
    assert other.vocabulary == tuple(reordered)
    mug = next(o for o in other.objects if o.label == "mug")
    assert mug.label_id == 0 and np.array_equal(mug.indices, next(o for o in scene.objects if o.label == "mug").indices)
    # Without "mug" in the vocabulary no object is called a mug any more.
    assert all(o.label != "mug" for o in relabel_scene(scene, ["floor", "table", "ball", "box"]).objects)
    with pytest.raises(ValueError, match="non-empty"):
        relabel_scene(scene, [])
    with pytest.raises(ValueError, match="duplicate"):
        relabel_scene(scene, ["mug", "mug"])


def test_outliers_are_removed(encoder, space) -> None:
    gs, parts = crafted(strays=12)
    scene = build_scene(gs, space, encoder, config())
    mug = next(o for o in scene.objects if o.label == "mug")
    assert not set(parts["strays"].tolist()) & set(mug.indices.tolist())
    assert np.all(scene.instance_ids[parts["strays"]] == 0)
    kept = build_scene(gs, space, encoder, config(outlier_removal=False))
    mug2 = next(o for o in kept.objects if o.label == "mug")
    assert set(parts["strays"].tolist()) <= set(mug2.indices.tolist())


def test_degenerate_inputs(encoder, space) -> None:
    gs, _ = crafted()
    empty = Gaussians(**{k: v[:, :0] for k, v in gs.__dict__.items()})
    scene = build_scene(empty, space, encoder, config())
    assert scene.num_gaussians == 0 and scene.objects == () and scene.query("mug") == []
    one = Gaussians(**{k: v[:, :1] for k, v in gs.__dict__.items()})
    scene = build_scene(one, space, encoder, config())
    assert scene.objects == () and scene.labels.shape == (1,)
    bad = Gaussians(**{**gs.__dict__, "semantics": torch.full_like(gs.semantics, float("nan"))})
    with pytest.raises(ValueError, match="NaN"):
        build_scene(bad, space, encoder, config())
    with pytest.raises(ValueError, match="vocabulary"):
        build_scene(gs, space, encoder, config(vocabulary=[]))


def test_expansion_commutes_with_alpha_blending() -> None:
    """Rendering expanded features equals expanding rendered features: W F + b * alpha (CPU renderer)."""
    torch.manual_seed(0)
    model = EPS3D(EPS3DConfig.from_preset("tiny")).eval()
    n = 400
    means = torch.randn(n, 3) * 0.3 + torch.tensor([0.0, 0.0, 3.0])
    scales = torch.rand(n, 3) * 0.05 + 0.02
    rots = torch.nn.functional.normalize(torch.randn(n, 4), dim=-1)
    opac = torch.rand(n) * 0.9 + 0.05
    sem = torch.randn(n, 32)
    view = torch.eye(4)[None]
    K = torch.tensor([[[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]]])
    kw = dict(viewmats=view, Ks=K, width=64, height=48, scales=scales, rotations=rots, backend="torch")
    with torch.no_grad():
        small = render_gaussians(means, opac, sem, **kw)
        big = render_gaussians(means, opac, model.expand_semantic_features(sem), **kw)
        conv = model.decoder.feature_expansion[1]
        expected = small.features @ conv.weight[:, :, 0, 0].T + conv.bias * small.alphas
    assert small.alphas.max() > 0.9 and small.alphas.min() < 0.1  # covered and uncovered pixels
    torch.testing.assert_close(big.features, expected, rtol=1e-4, atol=1e-4)


def test_tiny_network_end_to_end(encoder) -> None:
    torch.manual_seed(0)
    model = EPS3D(EPS3DConfig.from_preset("tiny")).eval()
    with torch.no_grad():
        pred = model(torch.rand(1, 2, 3, 56, 56))
    clustering = ClusteringConfig(hdbscan=HdbscanSettings(min_cluster_size=50))
    scene = build_scene(pred, model, encoder, PanopticConfig(clustering=clustering))
    n = 2 * 56 * 56
    assert scene.means.shape == (n, 3) and scene.labels.shape == (n,) and scene.colors.max() <= 1.0
    assert ((scene.labels >= -1) & (scene.labels < len(scene.vocabulary))).all()
    for o in scene.objects:
        assert np.all(scene.instance_ids[o.indices] == (o.id if o.is_thing else 0))
    assert scene.metadata["clustered_samples"] <= n
    assert scene.splats.scales.shape == (n, 3) and scene.splats.rotations.shape == (n, 4)
    assert scene.splats.harmonics.shape == (n, 3, 25)
    np.testing.assert_allclose(scene.splats.scales, pred.gaussians.scales[0].numpy())


def test_render_panoptic_views_labels_covered_pixels(encoder, space) -> None:
    gs, _ = crafted(n_obj=300)
    # A camera above the table looking down (camera-from-world: z_cam = -(z_world - 3)).
    E = torch.tensor([[[1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, -1.0, 3.0]]])
    K = torch.tensor([[[300.0, 0, 40], [0, 300.0, 30], [0, 0, 1]]])
    views = render_panoptic_views(gs, E, K, 60, 80, space, encoder.prototypes(VOCAB),
                                  ClusteringConfig(min_opacity=0.5, hdbscan=HdbscanSettings(
                                      min_cluster_size=50, allow_single_cluster=False)))
    assert views.semantic.shape == (1, 60, 80) and views.instance.shape == (1, 60, 80)
    covered = views.alpha[0] >= 0.5
    assert covered.mean() > 0.5
    assert np.all(views.semantic[0][~covered] == -1)
    # The image centre sees the mug from above.
    assert views.semantic[0, 30, 40] == VOCAB.index("mug") and views.instance[0, 30, 40] > 0
