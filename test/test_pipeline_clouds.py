"""Scenes → PointCloud2-ready structured arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eps3d_ros.panoptic import PanopticConfig, SemanticSpace
from eps3d_ros.panoptic.build import assemble_scene
from eps3d_ros.panoptic.clouds import (
    CLOUD_DTYPE,
    GREY,
    UNKNOWN_LABEL,
    cloud_fields,
    cloud_points,
    cloud_to_bytes,
    instance_color,
    label_color,
    object_cloud,
    pack_rgb,
    unpack_rgb,
    voxel_downsample,
)


class OneHotText:
    """Text embeddings for a fixed vocabulary: one axis per class (a stand-in for the CLIP encoder)."""

    def __init__(self, vocab: list[str], dim: int = 8) -> None:
        self.vocab, self.dim = vocab, dim

    def prototypes(self, names) -> torch.Tensor:
        return torch.eye(self.dim)[[self.vocab.index(n) for n in names]]

    def encode(self, texts) -> torch.Tensor:
        return self.prototypes([texts] if isinstance(texts, str) else list(texts))


VOCAB = ["floor", "mug", "bowl"]


def make_scene(seed: int = 0):
    """A floor grid (stuff), a mug and a bowl (things) and some unknown points (no class evidence)."""
    rng = np.random.default_rng(seed)
    g = np.stack(np.meshgrid(np.linspace(-1, 1, 40), np.linspace(-1, 1, 40)), -1).reshape(-1, 2)
    floor = np.c_[g, np.zeros(len(g))]
    mug = rng.normal([0.3, 0.0, 0.1], 0.02, size=(200, 3))
    bowl = rng.normal([-0.3, 0.2, 0.05], 0.03, size=(150, 3))
    unknown = rng.uniform(-1, 1, size=(50, 3))
    means = np.concatenate([floor, mug, bowl, unknown]).astype(np.float32)
    cls = np.r_[np.zeros(len(floor)), np.ones(200), np.full(150, 2), np.full(50, -1)].astype(int)
    sem = np.zeros((len(means), 8), np.float32)
    sem[cls >= 0, cls[cls >= 0]] = 1.0  # unknown points: zero features → uniform probabilities
    clusters = np.r_[np.zeros(len(floor)), np.ones(200), np.full(150, 2), np.zeros(50)].astype(np.int64)
    n = len(means)
    cfg = PanopticConfig(vocabulary=VOCAB, stuff=["floor"], unknown_threshold=0.5, min_object_points=5,
                         outlier_removal=False)
    opac = rng.uniform(0.05, 1.0, n).astype(np.float32)
    return assemble_scene(
        means=means, opacities=opac, colors=rng.random((n, 3)).astype(np.float32), weights=np.ones(n, np.float32),
        semantic_features=sem, instance_features=np.zeros((n, 4), np.float32), cluster_ids=clusters,
        space=SemanticSpace(torch.eye(8), torch.zeros(8)), text_encoder=OneHotText(VOCAB), config=cfg.validate(),
    )


@pytest.fixture(scope="module")
def scene():
    s = make_scene()
    assert [(o.label, o.is_thing) for o in s.objects] == [("mug", True), ("bowl", True), ("floor", False)]
    return s


def test_dtype_is_exactly_the_contract() -> None:
    assert CLOUD_DTYPE.names == ("x", "y", "z", "rgb", "label", "instance", "score")
    assert [CLOUD_DTYPE[n].str for n in CLOUD_DTYPE.names] == ["<f4"] * 4 + ["<u4"] * 2 + ["<f4"]
    assert CLOUD_DTYPE.itemsize == 28
    assert cloud_fields() == [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("rgb", 12, 7, 1),
                              ("label", 16, 6, 1), ("instance", 20, 6, 1), ("score", 24, 7, 1)]


def test_semantic_cloud_fields_and_colours(scene) -> None:
    c = cloud_points(scene, "semantic", max_points=10_000, min_opacity=0.3)
    assert c.dtype == CLOUD_DTYPE
    keep = scene.opacities >= 0.3
    assert len(c) == int(keep.sum())  # no downsampling needed
    np.testing.assert_array_equal(np.c_[c["x"], c["y"], c["z"]], scene.means[keep])
    sem, ins = scene.panoptic_labels()
    np.testing.assert_array_equal(c["label"], np.where(sem[keep] < 0, UNKNOWN_LABEL, sem[keep]))
    assert (c["label"] == UNKNOWN_LABEL).sum() == ((sem == -1) & keep).sum() > 0
    np.testing.assert_array_equal(c["instance"], ins[keep])
    np.testing.assert_array_equal(c["score"], scene.label_scores[keep])
    rgb = unpack_rgb(c["rgb"])
    expected = np.array([label_color(-1 if v == UNKNOWN_LABEL else int(v)) for v in c["label"]], np.uint8)
    np.testing.assert_array_equal(rgb, expected)
    assert tuple(rgb[c["label"] == UNKNOWN_LABEL][0]) == GREY
    # PCL packing: the float's bits are 0x00RRGGBB
    r, g, b = label_color(1)
    bits = c["rgb"][c["label"] == 1][:1].view("<u4")[0]
    assert bits == (r << 16) | (g << 8) | b


def test_instance_cloud_colours(scene) -> None:
    c = cloud_points(scene, "instance", max_points=10_000, min_opacity=0.0)
    assert len(c) == scene.num_gaussians
    rgb = unpack_rgb(c["rgb"])
    for i in (0, 1, 2):
        sel = c["instance"] == i
        assert sel.sum() == (scene.instance_ids == i).sum() > 0
        assert (rgb[sel] == instance_color(i)).all()
    assert instance_color(0) == GREY
    col = cloud_points(scene, "color", max_points=10_000, min_opacity=0.0)
    np.testing.assert_array_equal(unpack_rgb(col["rgb"]), np.round(scene.colors * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="unknown cloud kind 'depth'"):
        cloud_points(scene, "depth")


def test_downsampling_bounds_count_and_is_deterministic(scene) -> None:
    for m in (1, 37, 500):
        a = cloud_points(scene, "semantic", max_points=m, min_opacity=0.1)
        assert 1 <= len(a) <= m
        if m > 1:
            assert len(a) >= 0.5 * m  # the voxel search lands close to the bound
        assert cloud_to_bytes(a) == cloud_to_bytes(cloud_points(scene, "semantic", max_points=m, min_opacity=0.1))
        assert len(cloud_to_bytes(a)) == 28 * len(a)
        # every kept point is one of the scene's, with its own attributes
        idx = [int(np.nonzero((scene.means == (p["x"], p["y"], p["z"])).all(1))[0][0]) for p in a[:20]]
        assert (scene.opacities[idx] >= 0.1).all()


def test_voxel_representative_is_the_most_opaque() -> None:
    pts = np.array([[0.0, 0, 0], [0.01, 0, 0], [1.0, 1, 1], [1.01, 1, 1], [0.5, 0.5, 0.5]])
    idx = voxel_downsample(pts, 2, priority=np.array([0.2, 0.9, 0.5, 0.5, 0.1]))
    assert len(idx) <= 2 and list(idx) == sorted(idx)
    out = voxel_downsample(pts, 3, priority=np.array([0.2, 0.9, 0.5, 0.5, 0.1]))
    assert out.tolist() == [1, 2, 4]  # one per cluster; ties go to the lowest index
    assert voxel_downsample(np.zeros((10, 3)), 3).tolist() == [0]
    with pytest.raises(ValueError, match="max_points must be >= 1"):
        voxel_downsample(pts, 0)


def test_object_cloud(scene) -> None:
    mug, floor = scene.objects[0], scene.objects[2]
    c = object_cloud(scene, mug)
    assert len(c) == mug.num_points and (c["instance"] == mug.id).all() and (c["label"] == mug.label_id).all()
    assert (unpack_rgb(c["rgb"]) == instance_color(mug.id)).all()
    f = object_cloud(scene, floor, max_points=100)
    assert len(f) <= 100 and (unpack_rgb(f["rgb"]) == label_color(floor.label_id)).all() and (f["instance"] == 0).all()


def test_palettes() -> None:
    assert label_color(-1) == GREY == label_color(UNKNOWN_LABEL)
    assert label_color(3) == label_color(23)  # 20 colours, cycled
    cols = [instance_color(i) for i in range(1, 41)]
    assert GREY not in cols and len(set(cols)) == 40
    assert all(label_color(i) != GREY for i in range(20))
    np.testing.assert_array_equal(unpack_rgb(pack_rgb(np.array([[1, 2, 3], [255, 0, 128]]))), [[1, 2, 3], [255, 0, 128]])
