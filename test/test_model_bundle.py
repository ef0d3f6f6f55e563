"""A model folder carries everything it needs: text encoder (with a text-space fingerprint), native input size,
recommended settings; the release layout maps to its published defaults; explicit settings win, and say so."""

from __future__ import annotations

import json
import logging
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers import REPO
from eps3d_ros.model.bundle import (
    BUNDLE_FILE,
    FINGERPRINT_WORDS,
    BundleError,
    ModelBundle,
    text_fingerprint,
)
from eps3d_ros.text import TextEncoderUnavailable, create_text_encoder
from eps3d_ros.settings.tree import Eps3dConfig
from eps3d_ros.frames.frame import Frame
from eps3d_ros.pipeline.loading import load_reconstructor, resolve_config

DEMO = REPO / "models" / "demo_tiny"
REDWOOD = REPO.parent / "shared" / "data" / "redwood_rgbd"


@pytest.fixture()
def release_dir(tmp_path: Path, fixture_dir: Path) -> Path:
    """An EPS3D release folder: config.json + model.safetensors, nothing else."""
    d = tmp_path / "release"
    d.mkdir()
    save_file(load_file(fixture_dir / "weights_conv.safetensors"), str(d / "model.safetensors"))
    shutil.copy(fixture_dir / "config_conv.json", d / "config.json")
    return d


@pytest.fixture()
def demo_copy(tmp_path: Path) -> Path:
    d = tmp_path / "demo"
    shutil.copytree(DEMO, d)
    return d


def test_the_demo_folder_carries_its_text_encoder_size_and_settings() -> None:
    b = ModelBundle.load(DEMO)
    assert b.kind == "eps3d_ros" and b.notes == ()
    assert b.text.model == "eps3d-tiny-clip" and Path(b.text.pretrained) == (DEMO / "text_encoder.safetensors").resolve()
    assert b.input_size == (112, 112) and b.settings == {"panoptic.clustering.hdbscan.min_cluster_size": 100,
                                                         "panoptic.min_relevance": 0.65}
    assert b.text.fingerprint["words"] == list(FINGERPRINT_WORDS)
    # the same by the weights file's path
    assert ModelBundle.load(DEMO / "model.safetensors").input_size == (112, 112)


def test_the_release_layout_maps_to_its_published_defaults(release_dir: Path) -> None:
    b = ModelBundle.load(release_dir)
    assert b.kind == "release" and (b.text.model, b.text.pretrained) == ("ViT-B-32", "openai")
    assert b.input_size == (448, 448) and b.settings == {}
    assert any("text_encoder.json" in n for n in b.notes) and any("448x448" in n for n in b.notes)
    cfg = Eps3dConfig()
    cfg.model.weights = str(release_dir)
    resolved, text, line = resolve_config(cfg, b)
    assert (text.model, text.pretrained) == ("ViT-B-32", "openai")
    assert (resolved.pipeline.image_height, resolved.pipeline.image_width) == (448, 448)
    assert resolved.panoptic.clustering.hdbscan.min_cluster_size == 0  # no recommendation: the reference 400 applies
    assert "text encoder ViT-B-32 / openai" in line and "input 448x448" in line


def test_release_folder_offline_fails_fast_and_names_the_encoder(release_dir: Path, monkeypatch) -> None:
    """No weights for ViT-B-32 here: a clear error naming the encoder, and not one connection attempt."""
    attempts = []

    def refuse(self, address):  # noqa: ANN001
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = Eps3dConfig()
    cfg.model.weights = str(release_dir)
    with pytest.raises(TextEncoderUnavailable, match="ViT-B-32 / pretrained='openai'"):
        load_reconstructor(cfg)
    assert attempts == []


def test_explicit_settings_win_and_the_log_line_says_so(demo_copy: Path) -> None:
    b = ModelBundle.load(demo_copy)
    cfg = Eps3dConfig()
    cfg.model.weights = str(demo_copy)
    cfg.pipeline.image_height, cfg.pipeline.image_width = 224, 224
    cfg.panoptic.clustering.hdbscan.min_cluster_size = 300
    resolved, text, line = resolve_config(cfg, b)
    assert (resolved.pipeline.image_height, resolved.pipeline.image_width) == (224, 224)
    assert resolved.panoptic.clustering.hdbscan.min_cluster_size == 300
    assert text.model == "eps3d-tiny-clip"  # left to the model
    assert "overridden by the settings given" in line and "input 224x224 (the model's: 112x112)" in line
    assert "panoptic.clustering.hdbscan.min_cluster_size=300 (the model's: 100)" in line
    assert cfg.pipeline.image_height == 224 and cfg.text.model == ""  # the caller's config is not changed
    resolved, _, line = resolve_config(Eps3dConfig(model=cfg.model), b)
    assert resolved.panoptic.clustering.hdbscan.min_cluster_size == 100 and "nothing" not in line


def test_a_model_folder_with_a_setting_under_its_former_name_still_fills_it(demo_copy: Path) -> None:
    (demo_copy / "bundle.json").write_text(json.dumps({"format": "eps3d_bundle", "version": 1, "input_size": [112, 112],
                                                      "settings": {"panoptic.clustering.min_cluster_size": 70}}))
    cfg = Eps3dConfig()
    cfg.model.weights = str(demo_copy)
    resolved, _, line = resolve_config(cfg, ModelBundle.load(demo_copy))
    assert resolved.panoptic.clustering.hdbscan.min_cluster_size == 70
    assert "panoptic.clustering.hdbscan.min_cluster_size=70" in line


def test_a_different_text_encoder_is_refused_with_both_named(demo_copy: Path) -> None:
    """The same architecture with other weights embeds into another space: the fingerprint catches it."""
    cfg = Eps3dConfig()
    cfg.model.weights = str(demo_copy)
    cfg.text.model, cfg.text.pretrained = "eps3d-tiny-clip", "random"
    torch.manual_seed(123)  # not the seed the demo's text tower was drawn with (0, which the test session starts at)
    with pytest.raises(BundleError, match=r"eps3d-tiny-clip / \S* is not the one the model .* was trained with "
                                          r"\(eps3d-tiny-clip / text_encoder.safetensors"):
        load_reconstructor(cfg)


def test_text_width_must_match_the_model(demo_copy: Path) -> None:
    b = ModelBundle.load(demo_copy)
    encoder = create_text_encoder(b.text_encoder_config())
    with pytest.raises(BundleError, match="512 dimensions but the model .* predicts 768-d"):
        b.check_text_encoder(encoder, 768)
    fp = text_fingerprint(encoder)
    assert len(fp["vectors"]) == len(FINGERPRINT_WORDS) and len(fp["vectors"][0]) == fp["dims"] == 32


@pytest.mark.parametrize("body, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"format": "other", "version": 1}), "not an eps3d_bundle file"),
    (json.dumps({"format": "eps3d_bundle", "version": 1, "input_size": [100, 112]}), "multiples of 14"),
    (json.dumps({"format": "eps3d_bundle", "version": 1, "input_size": "big"}), r"input_size must be \[height, width\]"),
])
def test_a_broken_bundle_file_is_named(demo_copy: Path, body: str, message: str) -> None:
    (demo_copy / BUNDLE_FILE).write_text(body)
    with pytest.raises(BundleError, match=message):
        ModelBundle.load(demo_copy)


def test_settings_a_bundle_may_not_fill_are_ignored_with_a_warning(demo_copy: Path, caplog) -> None:
    body = json.loads((demo_copy / BUNDLE_FILE).read_text())
    body["settings"]["panoptic.vocabulary"] = ["teapot"]
    (demo_copy / BUNDLE_FILE).write_text(json.dumps(body))
    cfg = Eps3dConfig()
    cfg.model.weights = str(demo_copy)
    with caplog.at_level(logging.WARNING, logger="eps3d_ros"):
        resolved, _, _ = resolve_config(cfg, ModelBundle.load(demo_copy))
    assert resolved.panoptic.vocabulary != ["teapot"] and "panoptic.vocabulary is not one a bundle may fill" in caplog.text


def test_missing_weights_and_missing_folder_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model not found"):
        ModelBundle.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no weights file"):
        ModelBundle.load(tmp_path / "empty")


def test_load_reconstructor_with_only_the_folder_runs_redwood_at_the_native_size_without_stretching() -> None:
    """Only ``model.weights`` set: the text encoder and the input size come from the bundle, and 640x480 frames
    reach the network at their own aspect with their fx/fy."""
    from eps3d_ros.data.redwood import load_rgbd_sequence

    cfg = Eps3dConfig()
    cfg.model.weights = str(DEMO)
    cfg.pipeline.window_size = 3
    rec = load_reconstructor(cfg)
    assert rec.text_encoder.arch == "eps3d-tiny-clip" and rec.input_box == (112, 112)
    assert rec.config.panoptic.clustering.hdbscan.min_cluster_size == 100
    seq = load_rgbd_sequence(REDWOOD)
    frames = [Frame(float(seq.stamps[i]), seq.rgb[i], seq.K, "camera", depth=seq.depth[i]) for i in range(3)]
    snap = rec.run(frames)
    cams = snap.cameras
    H, W = seq.rgb.shape[1:3]
    assert cams.intrinsics.shape == (3, 3, 3) and (cams.height, cams.width) == (84, 112)
    assert abs(cams.height / cams.width - H / W) <= 14 / cams.width  # the source's aspect, to one patch
    ratio = cams.intrinsics[:, 0, 0] / cams.intrinsics[:, 1, 1]
    np.testing.assert_allclose(ratio, seq.K[0, 0] / seq.K[1, 1], atol=1e-6)
    np.testing.assert_allclose(cams.intrinsics[:, 0, 0], seq.K[0, 0] * 112 / 640, rtol=1e-9)
    assert cams.depth.shape == (3, 84, 112) and cams.predicted_intrinsics.shape == (3, 3, 3)
    assert snap.scale_known and snap.alignment.method == "depth"  # measured depth, no poses
