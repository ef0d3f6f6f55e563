"""The network against the reference fixture: strict key match, every recorded tensor within tolerance.

Tolerance per tensor (fixture README §8): ``max|a - e| <= 5e-5 * max|e|``; integers exact.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from eps3d_ros.model import EPS3D, EPS3DConfig
from eps3d_ros.model.voxel_fusion import voxel_fuse

REL_TOL = 5e-5


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    assert tuple(actual.shape) == tuple(expected.shape), f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    if not expected.is_floating_point():
        assert torch.equal(actual.to(expected.dtype), expected), f"{name}: integers differ"
        return
    err = (actual.double() - expected.double()).abs().max().item()
    scale = expected.double().abs().max().item()
    assert err <= REL_TOL * scale, f"{name}: max|diff| {err:.3g} > {REL_TOL} * max|e| ({scale:.3g})"


def state_dict(fixture_dir: Path, variant: str) -> dict[str, torch.Tensor]:
    sd = load_file(fixture_dir / "weights_conv.safetensors")
    if variant == "dinov2":
        sd = {k: v for k, v in sd.items() if not k.startswith("encoder.aggregator.patch_embed.")}
        sd.update(load_file(fixture_dir / "weights_dinov2_patch_embed.safetensors"))
    return sd


def build(fixture_dir: Path, variant: str, **overrides) -> EPS3D:
    cfg = EPS3DConfig.from_json(fixture_dir / f"config_{variant}.json")
    if overrides:
        cfg = cfg.replace(**overrides)
    model = EPS3D(cfg)
    result = model.load_state_dict(state_dict(fixture_dir, variant), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return model.eval()


class Recorder:
    """Forward hooks capturing DPT-internal tensors (fused map, image merger, raw head outputs)."""

    HEADS = ("depth_head", "gaussian_param_head", "gaussian_feature_param_head", "gaussian_instance_param_head")

    def __init__(self, model: EPS3D) -> None:
        self.out: dict[str, torch.Tensor] = {}
        self.handles = []
        for name in self.HEADS:
            head = getattr(model.encoder, name)
            self._hook(head.scratch.output_conv1, f"{name}.fused")
            self._hook(head, f"{name}.out")
            if hasattr(head, "input_merger"):
                self._hook(head.input_merger, f"{name}.input_merger")

    def _hook(self, module: torch.nn.Module, key: str) -> None:
        def fn(_m, _i, o):  # chunks of frames are concatenated in order
            self.out[key] = torch.cat([self.out[key], o], 0) if key in self.out and key.endswith(("fused", "merger")) else o

        self.handles.append(module.register_forward_hook(fn))


CASES = [("conv", "case_conv_2v"), ("conv", "case_conv_3v"), ("dinov2", "case_dinov2_2v")]


@pytest.fixture(scope="module")
def runs(fixture_dir: Path):
    """Run each case once; tests then compare individual stages."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the fixture was recorded single-threaded
    results = {}
    for variant, case in CASES:
        model = build(fixture_dir, variant)
        expected = load_file(fixture_dir / f"{case}.safetensors")
        rec = Recorder(model)
        with torch.no_grad():
            layers, patches = model.encoder.aggregator(expected["input.images"], None)
            pred = model(expected["input.images"])
        results[case] = (model, expected, layers, patches, pred, rec.out)
    torch.set_num_threads(threads)
    return results


@pytest.mark.parametrize("variant,case", CASES)
def test_every_recorded_stage(runs, variant: str, case: str) -> None:
    model, e, layers, patches, pred, hooks = runs[case]
    H, W = e["input.images"].shape[-2:]
    produced = {
        "aggregator.patch_embed_tokens": patches,
        "aggregator.patch_start_idx": torch.tensor(model.encoder.aggregator.patch_start_idx),
        "aggregator.selected_layer_ids": torch.tensor(model.config.dpt.layers),
        **{f"aggregator.layer_{i}": t for i, t in layers.items()},
        **{f"camera.pose_enc_iter{i}": t for i, t in enumerate(pred.pose_enc_list)},
        "camera.extrinsic_w2c_3x4": pred.extrinsics,
        "camera.intrinsic_pixels": pred.intrinsics,
        "depth_head.depth": pred.depth,
        "depth_head.depth_conf": pred.depth_conf,
        "points.world": pred.world_points,
        "gaussian_param_head.out": pred.appearance_raw,
        "gaussian_feature_param_head.out": pred.semantic_maps,
        "gaussian_instance_param_head.out": hooks["gaussian_instance_param_head.out"],
        "sem2ins_fusion.out": pred.instance_maps,
        "encoder_output.extrinsic_c2w_4x4": pred.poses,
        "encoder_output.intrinsic_normalized": pred.intrinsics_normalized,
        "encoder_output.scene_scale": pred.scene_scale,
        "encoder_output.visualization_depth": pred.world_points[..., 2:3, None],
        "encoder_output.conf_valid_mask": torch.ones(pred.depth_conf.shape, dtype=torch.uint8),
        "voxel.conf_channel": pred.appearance_raw[:, :, -1],
        **{f"gaussians.{n}": getattr(pred.gaussians, n) for n in
           ("means", "opacities", "scales", "rotations", "covariances", "harmonics", "semantics", "instances")},
    }
    for head in Recorder.HEADS:
        produced[f"{head}.fused"] = hooks[f"{head}.fused"]
        if f"{head}.input_merger" in hooks:
            produced[f"{head}.input_merger"] = hooks[f"{head}.input_merger"]
    recorded = [k for k in e if k != "input.images" and not k.startswith(("voxel.", "feature_expansion."))]
    if "voxel.conf_channel" in e:
        recorded.append("voxel.conf_channel")
    not_covered = [k for k in recorded if k not in produced]
    assert not not_covered, f"recorded tensors without a counterpart: {not_covered}"
    for k in recorded:
        assert_matches(produced[k], e[k], f"{case}/{k}")
    # gaussians.semantics / instances are not stored; they are the maps in (view, row, col) order.
    if "gaussian_feature_param_head.out" in e:
        B, S = e["input.images"].shape[:2]
        for name, key in (("semantics", "gaussian_feature_param_head.out"), ("instances", "sem2ins_fusion.out")):
            want = e[key].permute(0, 1, 3, 4, 2).reshape(B, S * H * W, -1)
            assert_matches(getattr(pred.gaussians, name), want, f"{case}/gaussians.{name}")
    assert len(layers) == model.config.aggregator.depth


def test_case_metadata_and_layer_count(fixture_dir: Path) -> None:
    for _, case in CASES:
        with safe_open(str(fixture_dir / f"{case}.safetensors"), "pt") as f:
            meta = f.metadata()
            S, H, W = int(meta["S"]), int(meta["H"]), int(meta["W"])
            assert tuple(f.get_slice("input.images").get_shape()) == (1, S, 3, H, W)


def test_voxel_fusion_isolated(fixture_dir: Path) -> None:
    """voxel_fuse on the recorded points and confidences reproduces the recorded voxel positions."""
    e = load_file(fixture_dir / "case_conv_3v.safetensors")
    pts = e["points.world"].reshape(-1, 3)
    conf = e["voxel.conf_channel"].reshape(-1)
    vs = float(e["voxel.voxel_size"])
    assert e["voxel.voxel_size"].dtype == torch.float64 and vs == 103 / 2048
    vpts, vfeats = voxel_fuse(pts, pts.new_zeros(pts.shape[0], 5), conf, vs)
    assert_matches(vpts, e["voxel.voxel_pts"], "voxel.voxel_pts (isolated)")
    assert vfeats.shape == (e["voxel.voxel_pts"].shape[0], 5)


def test_voxelized_model(fixture_dir: Path) -> None:
    """The whole model with voxelize=True reproduces the voxel case end to end."""
    e = load_file(fixture_dir / "case_conv_3v.safetensors")
    model = build(fixture_dir, "conv", gaussians={"voxelize": True, "voxel_size": float(e["voxel.voxel_size"])})
    with torch.no_grad():
        pred = model(e["input.images"])
    g = pred.gaussians
    for n in ("means", "opacities", "scales", "rotations"):
        assert_matches(getattr(g, n), e[f"voxel.gaussians.{n}"], f"voxel.gaussians.{n}")
    assert_matches(g.means[0], e["voxel.voxel_pts"], "voxel.voxel_pts")
    assert g.semantics.shape == (1, 1876, 32) and g.instances.shape == (1, 1876, 32)
    assert g.harmonics.shape == (1, 1876, 3, 25)


@pytest.mark.parametrize("which", ["even", "odd"])
def test_feature_expansion(fixture_dir: Path, which: str) -> None:
    e = load_file(fixture_dir / "case_conv_2v.safetensors")
    model = build(fixture_dir, "conv")
    with torch.no_grad():
        out = model.expand_semantics(e[f"feature_expansion.{which}.in"])
    assert_matches(out, e[f"feature_expansion.{which}.out"], f"feature_expansion.{which}.out")


def test_expansion_per_gaussian_equals_conv(fixture_dir: Path) -> None:
    """The per-Gaussian expansion is the 1x1 conv alone: equal to the map path at full resolution."""
    model = build(fixture_dir, "conv")
    x = torch.randn(2, 32, 6, 8)
    conv = model.decoder.feature_expansion[1]
    with torch.no_grad():
        want = conv(x).permute(0, 2, 3, 1)
        got = model.expand_semantic_features(x.permute(0, 2, 3, 1))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
