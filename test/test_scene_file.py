"""Scene files: round trip of every part of a Scene, cameras, text encoder config; clear errors on bad files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from eps3d_ros.geometry.similarity import Sim3, nearest_rotation
from eps3d_ros.io.scene_file import (
    FORMAT_VERSION,
    SceneFileError,
    attach_text_encoder,
    cameras_from_prediction,
    load_scene,
    read_scene_header,
    save_scene,
)
from eps3d_ros.panoptic.build import relabel_scene
from eps3d_ros.text import TextEncoderConfig
from helpers.scenes import VOCAB, FakeText, make_file, make_scene


def _assert_same_scene(a, b) -> None:
    for name in ("means", "opacities", "colors", "weights", "semantic_features", "instance_features", "cluster_ids",
                 "labels", "label_scores", "instance_ids"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.vocabulary == b.vocabulary and a.stuff == b.stuff
    assert dataclasses.asdict(a.config) == dataclasses.asdict(b.config)
    assert torch.equal(a.prototypes, b.prototypes)
    assert torch.equal(a.space.weight, b.space.weight) and torch.equal(a.space.bias, b.space.bias)
    assert len(a.objects) == len(b.objects)
    for o, p in zip(a.objects, b.objects):
        assert (o.id, o.label, o.label_id, o.is_thing, o.score, o.num_points) == \
               (p.id, p.label, p.label_id, p.is_thing, p.score, p.num_points)
        for f in ("centroid", "aabb_min", "aabb_max", "embedding", "indices"):
            assert np.array_equal(getattr(o, f), getattr(p, f)), f
        for f in ("center", "rotation", "extent"):
            assert np.array_equal(getattr(o.obb, f), getattr(p.obb, f)), f
    if a.splats is None:
        assert b.splats is None
    else:
        for f in ("scales", "rotations", "harmonics"):
            assert np.array_equal(getattr(a.splats, f), getattr(b.splats, f)), f


def test_make_scene_has_two_things_and_a_stuff_region() -> None:
    s = make_scene()
    assert [(o.label, o.is_thing) for o in s.objects] == [("mug", True), ("bowl", True), ("floor", False)]


def test_round_trip_keeps_every_part(tmp_path) -> None:
    sf = make_file()
    path = save_scene(tmp_path / "scene.eps3d", sf)
    back = load_scene(path)
    _assert_same_scene(sf.scene, back.scene)
    assert back.scene.text_encoder is None  # not asked for
    assert back.scene.metadata == {"frame_id": "map", "note": "test"}
    assert (back.frame_id, back.scale_known, back.stamp, back.version) == ("map", True, 12.5, FORMAT_VERSION)
    assert back.text_encoder == TextEncoderConfig(model="fake", pretrained="")
    assert back.info["source"] == "test" and back.info["created"]
    c, d = sf.cameras, back.cameras
    assert np.array_equal(c.extrinsics, d.extrinsics) and np.array_equal(c.intrinsics, d.intrinsics)
    assert (d.height, d.width, d.num_views) == (64, 64, 2) and np.array_equal(c.stamps, d.stamps)
    # the loaded scene answers queries exactly as the original, once it has an encoder
    loaded = attach_text_encoder(back, FakeText())
    q1 = [(m.object.id, m.score, m.similarity) for m in sf.scene.query("mug", max_results=3)]
    q2 = [(m.object.id, m.score, m.similarity) for m in loaded.scene.query("mug", max_results=3)]
    assert q1 == q2 and q1[0][0] == 1
    # and can be relabelled without the network
    relabelled = relabel_scene(loaded.scene, ["floor", "mug", "bowl", "cup"])
    assert relabelled.vocabulary[-1] == "cup" and relabelled.num_gaussians == sf.scene.num_gaussians


def test_header_is_readable_without_the_tensors(tmp_path) -> None:
    save_scene(tmp_path / "s.eps3d", make_file())
    h = read_scene_header(tmp_path / "s.eps3d")
    assert h["format_version"] == FORMAT_VERSION and h["vocabulary"] == VOCAB and h["frame_id"] == "map"
    assert [o["label"] for o in h["objects"]] == ["mug", "bowl", "floor"]
    assert h["cameras"] == {"num_views": 2, "height": 64, "width": 64}


def test_scene_without_splats_objects_or_cameras(tmp_path) -> None:
    s = make_scene(splats=False)
    empty = dataclasses.replace(s, objects=(), instance_ids=np.zeros_like(s.instance_ids))
    for scene, cams in ((s, None), (empty, None)):
        sf = make_file(scene, cameras=cams, scale_known=False, frame_id="camera")
        back = load_scene(save_scene(tmp_path / "x.eps3d", sf))
        _assert_same_scene(scene, back.scene)
        assert back.cameras is None and not back.scale_known and back.frame_id == "camera"


def test_stored_text_encoder_is_rebuilt_on_request(tmp_path) -> None:
    from safetensors.torch import save_file

    from eps3d_ros.text import create_text_encoder
    from eps3d_ros.text.clip import import_open_clip, register_tiny_test_model

    register_tiny_test_model()
    torch.manual_seed(0)
    clip = import_open_clip().create_model("eps3d-tiny-clip", pretrained=None)
    weights = tmp_path / "tiny_clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(weights))
    cfg = TextEncoderConfig(model="eps3d-tiny-clip", pretrained=str(weights), allow_download=False)
    encoder = create_text_encoder(cfg)
    protos = encoder.prototypes(VOCAB)
    scene = dataclasses.replace(make_scene(dim=512, spacing=0.1), prototypes=protos)  # in this encoder's space
    sf = make_file(scene, text_encoder=cfg)
    path = save_scene(tmp_path / "s.eps3d", sf)
    back = load_scene(path, text_encoder=True)
    assert back.scene.text_encoder is not None and back.text_encoder.pretrained == str(weights.resolve())
    assert torch.allclose(back.scene.text_embedding("mug"), encoder.encode(["mug"])[0], atol=1e-6)
    assert back.scene.query("bowl", min_relevance=0.0)  # answers (random weights: the ranking of every object)


def test_cameras_move_with_the_alignment() -> None:
    """A predicted camera sees a predicted point where its moved version sees the moved point."""
    rng = np.random.default_rng(1)
    E = np.stack([np.concatenate([nearest_rotation(rng.normal(size=(3, 3))), rng.normal(size=(3, 1))], 1)
                  for _ in range(3)])
    K = np.tile(np.array([[80.0, 0, 40], [0, 80.0, 30], [0, 0, 1]]), (3, 1, 1))
    sim = Sim3(2.5, nearest_rotation(rng.normal(size=(3, 3))), rng.normal(size=3))
    cams = cameras_from_prediction(E, K, sim, 60, 80, stamps=[0, 1, 2])
    pts = rng.normal(size=(50, 3))
    moved = sim.apply(pts)
    for i in range(3):
        cam = pts @ E[i, :, :3].T + E[i, :, 3]
        cam2 = moved @ cams.extrinsics[i, :, :3].T + cams.extrinsics[i, :, 3]
        assert np.allclose(cam2, 2.5 * cam, atol=1e-9)  # the same camera, in scene units
        assert np.allclose(cams.extrinsics[i, :, :3] @ cams.extrinsics[i, :, :3].T, np.eye(3), atol=1e-9)
    assert cams.num_views == 3 and np.array_equal(cams.stamps, [0, 1, 2])


# ------------------------------------------------------------------------------------------ errors
def test_missing_file_and_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="scene file not found"):
        load_scene(tmp_path / "nope.eps3d")
    with pytest.raises(SceneFileError, match="is a directory"):
        load_scene(tmp_path)


def test_not_a_scene_file(tmp_path) -> None:
    junk = tmp_path / "junk.eps3d"
    junk.write_bytes(b"this is certainly not a safetensors file" * 10)
    with pytest.raises(SceneFileError, match="not a scene file"):
        load_scene(junk)
    from safetensors.numpy import save_file

    weights = tmp_path / "model.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(weights), metadata={"format": "pt"})
    with pytest.raises(SceneFileError, match="not an eps3d scene file"):
        load_scene(weights)


def _rewrite(path, tmp_path, meta_update=None, tensor_update=None):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), framework="np") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta.update(meta_update or {})
    tensors.update(tensor_update or {})
    out = tmp_path / "edited.eps3d"
    save_file(tensors, str(out), metadata=meta)
    return out


@pytest.mark.parametrize("version, hint", [(FORMAT_VERSION + 1, "update eps3d_ros"), (0, "re-create it")])
def test_other_format_version_is_refused(tmp_path, version, hint) -> None:
    path = save_scene(tmp_path / "s.eps3d", make_file())
    other = _rewrite(path, tmp_path, {"format_version": str(version)})
    with pytest.raises(SceneFileError, match=f"format version {version}") as e:
        load_scene(other)
    assert hint in str(e.value)


def test_corrupt_files_are_refused(tmp_path) -> None:
    path = save_scene(tmp_path / "s.eps3d", make_file())
    data = bytearray(path.read_bytes())
    truncated = tmp_path / "truncated.eps3d"
    truncated.write_bytes(bytes(data[:-100]))
    with pytest.raises(SceneFileError, match="not a scene file|corrupt"):
        load_scene(truncated)
    flipped = tmp_path / "flipped.eps3d"
    data[-10] ^= 0xFF  # inside the tensor data
    flipped.write_bytes(bytes(data))
    with pytest.raises(SceneFileError, match="checksum"):
        load_scene(flipped)
    bad_json = _rewrite(path, tmp_path, {"scene": "{not json"})
    with pytest.raises(SceneFileError, match="JSON header"):
        load_scene(bad_json)
    # consistent checksum but inconsistent content (e.g. written by a buggy tool)
    s = make_file().scene
    edited = _rewrite(path, tmp_path, {"sha256": ""}, {"gaussians/labels": np.full(s.num_gaussians, 7, np.int64)})
    with pytest.raises(SceneFileError, match="labels outside the vocabulary"):
        load_scene(edited)
    h = json.loads(read_scene_header(path) and _meta(path)["scene"])
    h["objects"] = h["objects"][:1]
    fewer = _rewrite(path, tmp_path, {"scene": json.dumps(h)})
    with pytest.raises(SceneFileError, match="object offsets"):
        load_scene(fewer)


def _meta(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return dict(f.metadata())


def test_save_refuses_a_folder_or_missing_parent(tmp_path) -> None:
    with pytest.raises(IsADirectoryError):
        save_scene(tmp_path, make_file())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_scene(tmp_path / "missing" / "s.eps3d", make_file())
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_written_files_follow_the_umask(tmp_path) -> None:
    import os
    import stat

    old = os.umask(0o027)
    try:
        path = save_scene(tmp_path / "scene.eps3d", make_file())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # not the 0600 of a private temporary file
