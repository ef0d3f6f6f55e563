"""The network's public API: presets, configs, forward shapes and conventions, input errors, gradients."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from eps3d_ros.conventions import extrinsics_to_poses
from eps3d_ros.model import EPS3D, ConfigError, EPS3DConfig, list_presets
from eps3d_ros.model.inspection import expected_shapes
from eps3d_ros.model.pose_encoding import (
    extrinsics_intrinsics_to_pose_encoding,
    pose_encoding_to_extrinsics_intrinsics,
)


@pytest.fixture(scope="module")
def tiny() -> EPS3D:
    torch.manual_seed(0)
    return EPS3D(EPS3DConfig.from_preset("tiny")).eval()


def test_presets() -> None:
    assert list_presets() == ["eps3d", "small", "tiny"]
    small = EPS3DConfig.from_preset("small")
    a, g = small.aggregator, small.gaussians
    assert (a.embed_dim, a.depth, a.num_heads, a.patch_embed) == (64, 8, 4, "conv")
    assert (small.dpt.layers, small.dpt.features, g.scale_multiplier, g.scale_max) == ([1, 3, 5, 7], 32, 0.01, 0.03)
    # between tiny and the release: in size, and in what the model folder can afford (<= 25 MB with a text tower)
    sizes = {name: sum(math.prod(s) for s in expected_shapes(EPS3DConfig.from_preset(name)).values())
             for name in ("tiny", "small", "eps3d")}
    assert sizes["tiny"] < sizes["small"] < sizes["eps3d"] and 4 * sizes["small"] < 12 * 2**20, sizes
    rel = EPS3DConfig.from_preset("eps3d")
    a, d, g = rel.aggregator, rel.dpt, rel.gaussians
    assert (a.embed_dim, a.depth, a.num_heads, a.patch_embed) == (1024, 24, 16, "dinov2_vitl14_reg")
    assert (a.dinov2.embed_dim, a.dinov2.depth, a.dinov2.num_heads) == (1024, 24, 16)
    assert (d.features, d.layers, d.gs_merger_channels, d.gs_hidden) == (256, [4, 11, 17, 23], 128, 128)
    assert (g.semantic_dim, g.semantic_expanded_dim, g.instance_dim, g.sh_degree) == (32, 512, 32, 4)
    shapes = expected_shapes(rel)  # built on the meta device: no memory
    assert shapes["encoder.aggregator.patch_embed.pos_embed"] == (1, 1370, 1024)
    assert shapes["encoder.camera_head.trunk.3.attn.qkv.weight"] == (3 * 2048, 2048)
    assert shapes["encoder.gaussian_param_head.input_merger.0.weight"] == (128, 3, 7, 7)
    assert shapes["encoder.gaussian_param_head.scratch.output_conv2.2.weight"] == (84, 128, 1, 1)
    assert shapes["decoder.feature_expansion.1.weight"] == (512, 32, 1, 1)
    with pytest.raises(ConfigError, match="unknown EPS3D preset 'big'"):
        EPS3DConfig.from_preset("big")
    # a config built field by field is "custom" and its JSON form reads back
    assert EPS3DConfig().preset == "custom" and EPS3DConfig.from_preset("tiny").preset == "tiny"
    assert EPS3DConfig.from_dict(EPS3DConfig().to_dict()).preset == "custom"


def test_tiny_preset_equals_fixture_conv_config(fixture_dir: Path) -> None:
    fx = EPS3DConfig.from_json(fixture_dir / "config_conv.json")
    assert expected_shapes(fx) == expected_shapes(EPS3DConfig.from_preset("tiny"))
    dino = EPS3DConfig.from_json(fixture_dir / "config_dinov2.json")
    assert dino.aggregator.patch_embed.startswith("dinov2") and dino.aggregator.dinov2.depth == 2


def test_config_json_round_trip_and_errors(tmp_path: Path) -> None:
    cfg = EPS3DConfig.from_preset("tiny").replace(gaussians={"voxelize": True, "voxel_size": 0.01})
    cfg.to_json(tmp_path / "c.json")
    back = EPS3DConfig.from_json(tmp_path / "c.json")
    assert back == cfg and back.gaussians.voxelize
    (tmp_path / "bad.json").write_text(json.dumps({"format": "eps3d_ros", "aggregator": {"embed_dim": 32, "widht": 1}}))
    with pytest.raises(ConfigError, match=r"unknown keys in aggregator: \['widht'\]"):
        EPS3DConfig.from_json(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ConfigError, match="unrecognised EPS3D config"):
        EPS3DConfig.from_json(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        EPS3DConfig.from_json(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        EPS3DConfig.from_json(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="divisible"):
        EPS3DConfig.from_preset("tiny").replace(aggregator={"num_heads": 3})


def test_release_style_config() -> None:
    cfg = EPS3DConfig.from_dict({"encoder_cfg": {"voxelize": True, "voxel_size": 0.004, "gs_semantic_fea": 32}, "decoder_cfg": {}})
    assert cfg.preset == "eps3d-release" and cfg.gaussians.voxelize and cfg.gaussians.voxel_size == 0.004
    assert cfg.aggregator.embed_dim == 1024


def test_forward_shapes_and_types(tiny: EPS3D) -> None:
    B, S, H, W = 2, 3, 28, 42
    with torch.no_grad():
        out = tiny(torch.rand(B, S, 3, H, W))
    N = S * H * W
    assert out.depth.shape == (B, S, H, W, 1) and out.depth_conf.shape == (B, S, H, W)
    assert out.pose_enc.shape == (B, S, 9) and len(out.pose_enc_list) == 4
    assert out.extrinsics.shape == (B, S, 3, 4) and out.intrinsics.shape == (B, S, 3, 3)
    assert out.world_points.shape == (B, S, H, W, 3)
    g = out.gaussians
    assert g.means.shape == (B, N, 3) and g.opacities.shape == (B, N) and g.scales.shape == (B, N, 3)
    assert g.rotations.shape == (B, N, 4) and g.covariances.shape == (B, N, 3, 3)
    assert g.harmonics.shape == (B, N, 3, 25) and g.semantics.shape == (B, N, 32) and g.instances.shape == (B, N, 32)
    assert torch.all((g.opacities > 0) & (g.opacities < 1)) and torch.all(g.scales <= 0.3)
    torch.testing.assert_close(g.rotations.norm(dim=-1), torch.ones(B, N), atol=1e-5, rtol=0)
    # Covariances are symmetric positive semi-definite.
    torch.testing.assert_close(g.covariances, g.covariances.transpose(-1, -2))
    assert torch.all(torch.linalg.eigvalsh(g.covariances.double()) > -1e-12)
    # Degree-masked SH: degree-1 coefficients scaled by 0.1 * 0.25 relative to the raw head output.
    raw_sh = out.appearance_raw[:, :, 8:83].permute(0, 1, 3, 4, 2).reshape(B, N, 3, 25)
    torch.testing.assert_close(g.harmonics[..., 1:4], raw_sh[..., 1:4] * 0.025)
    assert out.semantic_maps.shape == (B, S, 32, H, W) and out.instance_maps.shape == (B, S, 32, H, W)
    assert out.poses.shape == (B, S, 4, 4) and out.intrinsics_normalized[0, 0, 0, 2] == 0.5
    assert tiny.expand_semantics(out.semantic_maps).shape == (B, S, 512, H // 2, W // 2)
    assert tiny.expand_semantic_features(g.semantics).shape == (B, N, 512)


def test_world_points_reproject_to_their_pixels(tiny: EPS3D) -> None:
    """Conventions end to end: world points, camera-from-world extrinsics and pixel K agree."""
    H, W = 28, 42
    with torch.no_grad():
        out = tiny(torch.rand(1, 2, 3, H, W))
    pts = out.world_points[0].double()  # [S, H, W, 3]
    E, K = out.extrinsics[0].double(), out.intrinsics[0].double()
    cam = torch.einsum("sij,shwj->shwi", E[:, :, :3], pts) + E[:, None, None, :, 3]
    torch.testing.assert_close(cam[..., 2:3], out.depth[0].double(), rtol=1e-5, atol=1e-6)
    uv = torch.einsum("sij,shwj->shwi", K, cam)
    uv = uv[..., :2] / uv[..., 2:]
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    # The model is float32 and random weights can predict focal lengths of 10^4 px, where float32 rounding alone
    # moves a projection by 0.01 px (it depends on the CPU's kernels): compare in units of the focal length.
    f = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None, None, :]  # [S, 1, 1, 2]
    torch.testing.assert_close(uv / f, torch.stack([u, v], -1).expand_as(uv) / f, atol=1e-5, rtol=0)
    # Camera centres from the poses are where the rays start: C = pose[:3, 3].
    P = extrinsics_to_poses(E)
    torch.testing.assert_close(torch.einsum("sij,sj->si", E[:, :, :3], P[:, :3, 3]) + E[:, :, 3], torch.zeros(2, 3, dtype=torch.float64), atol=1e-6, rtol=0)


def test_pose_encoding_round_trip() -> None:
    enc = torch.tensor([[0.1, -0.2, 0.3, 0.1, 0.2, 0.3, 0.9, 0.8, 1.1]], dtype=torch.float64)
    enc[:, 3:7] /= enc[:, 3:7].norm()
    E, K = pose_encoding_to_extrinsics_intrinsics(enc, 28, 42)
    assert K[0, 0, 2] == 21 and K[0, 1, 2] == 14
    assert abs(float(K[0, 1, 1]) - 14 / (math.tan(0.4) + 1e-3)) < 1e-9
    back = extrinsics_intrinsics_to_pose_encoding(E, K, 28, 42)
    torch.testing.assert_close(back, enc)


@pytest.mark.parametrize(
    "images,match",
    [
        (torch.rand(1, 2, 3, 30, 42), "multiples of the patch size 14, got 30x42"),
        (torch.rand(1, 2, 4, 28, 42), r"\[B, S, 3, H, W\]"),
        (torch.randint(0, 255, (1, 2, 3, 28, 42), dtype=torch.uint8), "floating point"),
        (torch.full((1, 2, 3, 28, 42), float("nan")), "NaN"),
        (torch.rand(1, 2, 3, 28, 42) * 255, r"must be in \[0, 1\]"),
        (torch.rand(3, 28), r"\[B, S, 3, H, W\]"),
    ],
)
def test_bad_images_are_named(tiny: EPS3D, images: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny(images)


def test_four_dim_input_is_one_batch(tiny: EPS3D) -> None:
    x = torch.rand(2, 3, 14, 28)
    with torch.no_grad():
        a, b = tiny(x), tiny(x[None])
    torch.testing.assert_close(a.gaussians.means, b.gaussians.means)


def test_first_view_is_the_reference_frame(tiny: EPS3D) -> None:
    """Frame 0 gets its own camera/register token slot: swapping views changes the prediction."""
    x = torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        a = tiny(x).pose_enc
        b = tiny(x.flip(1)).pose_enc
    assert not torch.allclose(a, b.flip(1))


def test_gradients_reach_every_parameter_and_checkpointing_matches() -> None:
    torch.manual_seed(0)
    model = EPS3D(EPS3DConfig.from_preset("tiny")).train()
    x = torch.rand(1, 2, 3, 28, 28)

    def loss_and_grads() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad()
        out = model(x)
        g = out.gaussians
        loss = (out.depth.mean() + sum(p.square().mean() for p in out.pose_enc_list) + g.opacities.mean() + g.scales.mean()
                + g.harmonics.square().mean() + g.semantics.square().mean() + g.instances.square().mean()
                + model.expand_semantics(out.semantic_maps).square().mean() + out.depth_conf.mean())
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss, grads = loss_and_grads()
    no_grad = [n for n, p in model.named_parameters() if n not in grads]
    assert not no_grad, f"parameters without gradient: {no_grad[:10]}"
    assert all(torch.isfinite(g).all() for g in grads.values())
    model.set_gradient_checkpointing(True)
    loss2, grads2 = loss_and_grads()
    torch.testing.assert_close(loss2, loss)
    for n in grads:
        torch.testing.assert_close(grads2[n], grads[n], rtol=1e-4, atol=1e-6)


def test_voxelize_pads_batches_with_transparent_gaussians() -> None:
    torch.manual_seed(0)
    model = EPS3D(EPS3DConfig.from_preset("tiny").replace(gaussians={"voxelize": True, "voxel_size": 0.05})).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 2, 3, 28, 28))
    g = out.gaussians
    assert g.means.shape[0] == 2 and g.means.shape[1] <= 2 * 28 * 28
    n_real = (g.opacities > 0).sum(dim=1)
    assert n_real.max() == g.means.shape[1]
    assert torch.all(g.opacities[g.opacities > 0] < 1)
