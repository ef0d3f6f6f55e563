"""3DGS PLY export: the standard layout and conventions, read back exactly; label/instance properties."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from eps3d_ros.io.ply import SH_C0, read_gaussian_ply, read_ply, write_gaussian_ply
from helpers.scenes import VOCAB, make_scene

STANDARD = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(45)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def _header(path) -> list[str]:
    data = path.read_bytes()
    return data[:data.index(b"end_header")].decode().splitlines()


def test_layout_is_the_3dgs_one_plus_label_and_instance(tmp_path) -> None:
    scene = make_scene()
    info = write_gaussian_ply(tmp_path / "s.ply", scene)
    assert info == {"path": str(tmp_path / "s.ply"), "gaussians": scene.num_gaussians, "sh_degree": 3,
                    "scene_sh_degree": 4}
    header = _header(tmp_path / "s.ply")
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    assert f"element vertex {scene.num_gaussians}" in header
    props = [line.split() for line in header if line.startswith("property")]
    assert [p[2] for p in props] == STANDARD + ["label", "instance"]
    assert all(p[1] == "float" for p in props[:-2]) and props[-2][1] == props[-1][1] == "uint"
    assert [f"comment label {i} {n}" for i, n in enumerate(VOCAB)] == [h for h in header if h.startswith("comment label ")
                                                                       and "unknown" not in h]
    size = (tmp_path / "s.ply").stat().st_size
    assert size == len("\n".join(header)) + len("end_header\n") + 1 + scene.num_gaussians * (62 * 4 + 2 * 4)


def test_values_follow_the_3dgs_conventions(tmp_path) -> None:
    scene = make_scene()
    write_gaussian_ply(tmp_path / "s.ply", scene)
    raw, comments = read_ply(tmp_path / "s.ply")
    sp = scene.splats
    assert np.array_equal(np.stack([raw["x"], raw["y"], raw["z"]], 1), scene.means)
    o = scene.opacities.astype(np.float64)
    assert np.allclose(raw["opacity"], np.log(o / (1 - o)), atol=1e-5)  # logit
    assert np.allclose(raw["scale_0"], np.log(sp.scales[:, 0]), atol=1e-6)  # log std-dev
    assert np.allclose(raw["rot_0"], sp.rotations[:, 3], atol=1e-6)  # w first
    assert np.allclose(raw["rot_1"], sp.rotations[:, 0], atol=1e-6)
    assert np.allclose(raw["f_dc_1"], sp.harmonics[:, 1, 0])
    # f_rest channel-major: R's 15 coefficients, then G's, then B's
    assert np.allclose(raw["f_rest_0"], sp.harmonics[:, 0, 1]) and np.allclose(raw["f_rest_14"], sp.harmonics[:, 0, 15])
    assert np.allclose(raw["f_rest_15"], sp.harmonics[:, 1, 1]) and np.allclose(raw["f_rest_44"], sp.harmonics[:, 2, 15])
    assert np.allclose(0.5 + SH_C0 * np.stack([raw[f"f_dc_{c}"] for c in range(3)], 1), scene.colors, atol=1e-6)
    sem, ins = scene.panoptic_labels()
    assert np.array_equal(raw["label"], sem.astype(np.uint32)) and np.array_equal(raw["instance"], ins)
    assert raw["label"].dtype == np.uint32 and set(np.unique(raw["instance"])) == {0, 1, 2}
    assert not any(np.any(raw[k]) for k in ("nx", "ny", "nz"))
    assert "sh_degree 3" in comments


def test_read_back_as_gaussians(tmp_path) -> None:
    scene = make_scene()
    write_gaussian_ply(tmp_path / "s.ply", scene, sh_degree=4)
    g = read_gaussian_ply(tmp_path / "s.ply")
    assert np.allclose(g.opacities, scene.opacities, atol=1e-6)
    assert np.allclose(g.scales, scene.splats.scales, rtol=1e-5)
    assert np.allclose(np.abs((g.rotations * scene.splats.rotations).sum(1)), 1.0, atol=1e-6)  # same rotation
    assert np.array_equal(g.harmonics, scene.splats.harmonics)  # all 25 coefficients at degree 4
    assert np.allclose(g.colors, scene.colors, atol=1e-6)
    sem, ins = scene.panoptic_labels()
    assert np.array_equal(g.labels, sem) and np.array_equal(g.instances, ins)


def test_unknown_labels_degree_zero_and_opacity_filter(tmp_path) -> None:
    scene = make_scene()
    labels = scene.labels.copy()
    labels[:10] = -1
    opac = scene.opacities.copy()
    opac[-5:] = 0.01
    scene = dataclasses.replace(scene, labels=labels, opacities=opac, objects=())  # no objects: labels as they are
    info = write_gaussian_ply(tmp_path / "s.ply", scene, sh_degree=0, min_opacity=0.05)
    assert info["gaussians"] == scene.num_gaussians - 5 and info["sh_degree"] == 0
    raw, _ = read_ply(tmp_path / "s.ply")
    assert not any(k.startswith("f_rest") for k in raw)
    assert np.all(raw["label"][:10] == 0xFFFFFFFF)
    assert read_gaussian_ply(tmp_path / "s.ply").labels[:10].tolist() == [-1] * 10


def test_scene_without_splat_parameters(tmp_path) -> None:
    scene = make_scene(splats=False)
    write_gaussian_ply(tmp_path / "s.ply", scene)
    g = read_gaussian_ply(tmp_path / "s.ply")
    # the degree asked (3: the 45 f_rest viewers expect) is kept; the bands the scene lacks are zeros
    assert g.harmonics.shape == (scene.num_gaussians, 3, 16) and not np.any(g.harmonics[:, :, 1:])
    assert np.allclose(g.colors, scene.colors, atol=1e-6)
    assert np.allclose(g.scales, 0.025, rtol=1e-3)  # half the 0.05 grid spacing
    assert np.allclose(g.rotations, [0, 0, 0, 1])


def test_opacity_filter_leaving_nothing_is_an_error(tmp_path) -> None:
    scene = make_scene()
    with pytest.raises(ValueError, match=r"min_opacity 0.99 leaves no Gaussian .*opacities are"):
        write_gaussian_ply(tmp_path / "s.ply", dataclasses.replace(scene, opacities=np.full_like(scene.opacities, 0.5)),
                           min_opacity=0.99)
    assert not (tmp_path / "s.ply").exists()


def test_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        write_gaussian_ply(tmp_path / "missing" / "s.ply", make_scene())
    with pytest.raises(IsADirectoryError):
        write_gaussian_ply(tmp_path, make_scene())
    with pytest.raises(ValueError, match="sh_degree"):
        write_gaussian_ply(tmp_path / "s.ply", make_scene(), sh_degree=5)
    (tmp_path / "bad.ply").write_text("not a ply")
    with pytest.raises(ValueError, match="not a PLY"):
        read_ply(tmp_path / "bad.ply")
    (tmp_path / "points.ply").write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
                                         "property float y\nproperty float z\nend_header\n1 2 3\n")
    assert read_ply(tmp_path / "points.ply")[0]["y"].tolist() == [2.0]
    with pytest.raises(ValueError, match="not a 3D Gaussian splatting PLY"):
        read_gaussian_ply(tmp_path / "points.ply")
