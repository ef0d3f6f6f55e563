"""PNG figures: renders of a hand-made scene land where the geometry says, with the palette's colours."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from eps3d_ros.io.figures import colorize_labels, legend_image, render_views, write_figures
from eps3d_ros.io.scene_file import Cameras
from eps3d_ros.panoptic.clouds import GREY, instance_color, label_color
from helpers.scenes import COLORS, VOCAB, make_scene


def cameras(n: int = 1) -> Cameras:
    """Cameras at the origin looking down +z at the z = 2 plane: x < 0 (mug) on the left, x > 0 (bowl) right."""
    E = np.tile(np.eye(4)[:3], (n, 1, 1))
    K = np.tile(np.array([[20.0, 0.0, 15.5], [0.0, 20.0, 15.5], [0.0, 0.0, 1.0]]), (n, 1, 1))
    return Cameras(E, K, 32, 32)


@pytest.fixture(scope="module")
def scene():
    return make_scene()


def test_maps_follow_the_geometry(scene) -> None:
    [v] = render_views(scene, cameras(), backend="torch")
    mug, bowl, floor = (VOCAB.index(n) for n in ("mug", "bowl", "floor"))
    # pixel column u sees x = (u - 15.5) / 20 * 2; row v sees y likewise (mug/bowl: y in [-1, 0.2], floor y >= 0.5)
    assert v.semantic[8, 6] == mug and v.semantic[8, 25] == bowl and v.semantic[28, 16] == floor
    assert v.instance[8, 6] == 1 and v.instance[8, 25] == 2 and v.instance[28, 16] == 0  # stuff: no instance
    assert v.semantic[17, 16] == -2 and v.instance[17, 16] == -2  # the gap between things and floor: nothing
    assert np.allclose(v.rgb[8, 6] / 255.0, COLORS["mug"], atol=0.05)
    assert np.allclose(v.rgb[8, 25] / 255.0, COLORS["bowl"], atol=0.05)
    assert v.alpha[8, 6] > 0.9 and v.alpha[17, 16] < 0.5
    sem = colorize_labels(v.semantic, "semantic")
    ins = colorize_labels(v.instance, "instance", background=(255, 255, 255))
    assert tuple(sem[8, 6]) == label_color(mug) and tuple(sem[17, 16]) == (0, 0, 0)
    assert tuple(ins[8, 25]) == instance_color(2) and tuple(ins[28, 16]) == GREY and tuple(ins[17, 16]) == (255, 255, 255)


def test_scale_and_view_choice(scene) -> None:
    a = render_views(scene, cameras(2), views=[1], scale=2.0, backend="torch")
    assert len(a) == 1 and a[0].rgb.shape == (64, 64, 3) and a[0].semantic.shape == (64, 64)
    assert a[0].semantic[16, 12] == VOCAB.index("mug")  # the same place, twice the resolution
    with pytest.raises(ValueError, match="out of range"):
        render_views(scene, cameras(2), views=[2])
    with pytest.raises(ValueError, match="no cameras"):
        render_views(scene, None)


def test_write_figures_files_and_sizes(tmp_path, scene) -> None:
    res = write_figures(scene, cameras(2), tmp_path / "figs", scale=1.5, title="test",
                        inputs=[np.zeros((32, 32, 3), np.uint8)] * 2)
    names = sorted(p.split("/")[-1] for p in res["files"])
    assert names == sorted([f"view_{i:02d}_{k}.png" for i in range(2) for k in ("rgb", "semantic", "instance")]
                           + ["legend.png", "overview.png"])
    for i in range(2):
        for k in ("rgb", "semantic", "instance"):
            with Image.open(tmp_path / "figs" / f"view_{i:02d}_{k}.png") as im:
                assert im.size == (48, 48) and im.mode == "RGB"
    with Image.open(tmp_path / "figs" / "overview.png") as ov, Image.open(tmp_path / "figs" / "legend.png") as lg:
        assert ov.width >= 4 * 48 + lg.width and ov.height >= 2 * 48
    assert res["size"] == (48, 48) and all(0.3 < c < 0.7 for c in res["coverage"])  # about half the view is covered


def test_legend_lists_classes_and_objects(scene) -> None:
    small = legend_image(scene)
    import dataclasses

    fewer = legend_image(dataclasses.replace(scene, objects=scene.objects[:1]))
    assert small.height - fewer.height == 2 * 20  # one row per object
    px = np.asarray(small)
    # a swatch of each class colour and of each thing's instance colour is drawn
    for color in (label_color(0), label_color(1), label_color(2), instance_color(1), instance_color(2)):
        assert (px.reshape(-1, 3) == color).all(1).any(), color


def test_empty_scene_renders_background(tmp_path) -> None:
    import dataclasses

    s = make_scene()
    empty = dataclasses.replace(
        s, **{k: getattr(s, k)[:0] for k in ("means", "opacities", "colors", "weights", "semantic_features",
                                           "instance_features", "cluster_ids", "labels", "label_scores",
                                           "instance_ids")}, objects=(), splats=None)
    [v] = render_views(empty, cameras())
    assert (v.semantic == -2).all() and (v.rgb == 0).all()
    assert len(write_figures(empty, cameras(), tmp_path)["files"]) == 5
