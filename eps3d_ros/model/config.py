"""Configuration of the EPS3D network: one dataclass tree, presets, and JSON readers.

Three JSON dialects are understood by :meth:`EPS3DConfig.from_json` / :meth:`EPS3DConfig.from_dict`:

* ours (``{"format": "eps3d_ros", ...}``, written by :meth:`EPS3DConfig.to_dict`);
* the reference fixture's ``config_conv.json`` / ``config_dinov2.json`` (keys ``aggregator``,
  ``gs_head_common``, ``encoder_cfg`` ...);
* an EPS3D/AnySplat-style release ``config.json`` (``{"encoder_cfg": {...}, "decoder_cfg": {...}}``
  without architecture sizes): the release preset with the overrides it names.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FORMAT = "eps3d_ros"
CONFIG_VERSION = 1


class ConfigError(ValueError):
    """A configuration that cannot describe an EPS3D network."""


@dataclass
class DinoV2Config:
    """DINOv2-with-registers ViT used as the aggregator's patch embedding."""

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    img_size: int = 518  # the stored position grid is (img_size / patch_size)^2
    interpolate_antialias: bool = True
    interpolate_offset: float = 0.0
    init_values: float = 1.0


@dataclass
class AggregatorConfig:
    """VGGT-style alternating-attention transformer."""

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    patch_size: int = 14
    img_size: int = 518
    patch_embed: str = "dinov2_vitl14_reg"  # or "conv"
    aa_order: list[str] = field(default_factory=lambda: ["frame", "global"])
    aa_block_size: int = 1
    qk_norm: bool = True
    rope_freq: float = 100.0
    init_values: float = 0.01
    qkv_bias: bool = True
    proj_bias: bool = True
    ffn_bias: bool = True
    dinov2: DinoV2Config = field(default_factory=DinoV2Config)


@dataclass
class CameraHeadConfig:
    """Iterative camera head; its width is twice the aggregator width."""

    trunk_depth: int = 4
    num_heads: int = 16
    mlp_ratio: float = 4.0
    init_values: float = 0.01
    num_iterations: int = 4
    trans_act: str = "linear"
    quat_act: str = "linear"
    fl_act: str = "relu"


@dataclass
class DPTConfig:
    """Shared sizes of the four DPT heads (depth + three Gaussian heads)."""

    layers: list[int] = field(default_factory=lambda: [4, 11, 17, 23])
    features: int = 256
    out_channels: list[int] = field(default_factory=lambda: [256, 512, 1024, 1024])
    depth_hidden: int = 32  # hidden width of the depth head's last block
    gs_merger_channels: int = 128  # image-merger width of the Gaussian heads (reference: features / 2)
    gs_hidden: int = 128  # hidden width of the Gaussian heads' last block
    frames_chunk_size: int = 8  # frames decoded at once (memory only; results are identical)


@dataclass
class OpacityMappingConfig:
    initial: float = 0.0
    final: float = 0.0
    warm_up: int = 1


@dataclass
class GaussianConfig:
    """Panoptic Gaussian parameters: appearance, semantic and instance features."""

    sh_degree: int = 4
    semantic_dim: int = 32
    semantic_expanded_dim: int = 512  # width of the CLIP space after the decoder's expansion
    instance_dim: int = 32
    use_sem2ins: bool = True
    sem2ins_hidden: int = 32
    sem2ins_w_init: float = 0.1
    scale_multiplier: float = 0.001
    scale_max: float = 0.3
    opacity_mapping: OpacityMappingConfig = field(default_factory=OpacityMappingConfig)
    voxelize: bool = False
    voxel_size: float = 0.002

    @property
    def num_sh(self) -> int:
        return (self.sh_degree + 1) ** 2

    @property
    def appearance_channels(self) -> int:
        """Raw appearance-head channels: opacity 1, scale 3, rotation 4, SH 3*(d+1)^2, confidence 1."""
        return 1 + 3 + 4 + 3 * self.num_sh + 1


@dataclass
class EPS3DConfig:
    """The whole network. ``preset`` names where it came from (informational)."""

    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    camera_head: CameraHeadConfig = field(default_factory=CameraHeadConfig)
    dpt: DPTConfig = field(default_factory=DPTConfig)
    gaussians: GaussianConfig = field(default_factory=GaussianConfig)
    # bf16 autocast of the aggregator on CUDA, as the reference runs it; heads stay float32.
    aggregator_autocast_bf16: bool = True
    preset: str = "custom"

    # ----------------------------------------------------------------------------- validation
    def validate(self) -> "EPS3DConfig":
        a, d, g = self.aggregator, self.dpt, self.gaussians
        if a.embed_dim % a.num_heads:
            raise ConfigError(f"aggregator.embed_dim {a.embed_dim} not divisible by num_heads {a.num_heads}")
        if (a.embed_dim // a.num_heads) % 4:
            raise ConfigError("aggregator head_dim must be a multiple of 4 for the 2-D RoPE")
        if a.patch_embed not in ("conv",) and not a.patch_embed.startswith("dinov2"):
            raise ConfigError(f"unknown aggregator.patch_embed {a.patch_embed!r}: use 'conv' or 'dinov2_*'")
        if a.patch_embed.startswith("dinov2") and a.dinov2.embed_dim != a.embed_dim:
            raise ConfigError("aggregator.dinov2.embed_dim must equal aggregator.embed_dim")
        if sorted(a.aa_order) != sorted(set(a.aa_order)) or not set(a.aa_order) <= {"frame", "global"}:
            raise ConfigError(f"aggregator.aa_order must list 'frame'/'global' once each, got {a.aa_order}")
        if a.depth % a.aa_block_size:
            raise ConfigError("aggregator.depth must be a multiple of aa_block_size")
        if len(d.layers) != 4 or len(d.out_channels) != 4:
            raise ConfigError("dpt.layers and dpt.out_channels must have 4 entries")
        if any(not 0 <= i < a.depth for i in d.layers) or list(d.layers) != sorted(set(d.layers)):
            raise ConfigError(f"dpt.layers {d.layers} must be increasing indices below depth {a.depth}")
        if d.features % 2 or (d.features // 2) % 4:
            raise ConfigError("dpt.features must be divisible by 8 (position maps use features/2 channels)")
        if 2 * a.embed_dim % self.camera_head.num_heads:
            raise ConfigError("camera_head.num_heads must divide 2 * aggregator.embed_dim")
        if not 0 <= g.sh_degree <= 4:
            raise ConfigError(f"gaussians.sh_degree must be in 0..4, got {g.sh_degree}")
        if g.voxel_size <= 0:
            raise ConfigError("gaussians.voxel_size must be positive")
        return self

    # ------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, **out}

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def replace(self, **sections: Any) -> "EPS3DConfig":
        """A copy with nested overrides, e.g. ``cfg.replace(gaussians={"voxelize": True})``."""
        d = self.to_dict()
        for k, v in sections.items():
            if isinstance(v, dict) and isinstance(d.get(k), dict):
                _deep_update(d[k], v)
            else:
                d[k] = v
        return EPS3DConfig.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EPS3DConfig":
        """Build from any of the three understood dialects (see module docstring)."""
        if d.get("format") == CONFIG_FORMAT:
            return _from_ours(d).validate()
        if "gs_head_common" in d and "aggregator" in d:
            return _from_fixture(d).validate()
        if "encoder_cfg" in d:
            return _from_release(d).validate()
        raise ConfigError(
            "unrecognised EPS3D config: expected an eps3d_ros config (\"format\": \"eps3d_ros\"), a reference "
            f"fixture config (aggregator/gs_head_common) or a release config (encoder_cfg); top-level keys: {sorted(d)}"
        )

    @classmethod
    def from_json(cls, path: str | Path) -> "EPS3DConfig":
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"EPS3D config file not found: {p}")
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}: not valid JSON ({e})") from e
        try:
            return cls.from_dict(d)
        except (ConfigError, TypeError) as e:
            raise ConfigError(f"{p}: {e}") from e

    @classmethod
    def from_preset(cls, name: str) -> "EPS3DConfig":
        if name not in PRESETS:
            raise ConfigError(f"unknown EPS3D preset {name!r}; available: {sorted(PRESETS)}")
        return copy.deepcopy(PRESETS[name]).validate()


def list_presets() -> list[str]:
    return sorted(PRESETS)


# ------------------------------------------------------------------------------------ dialects
_SECTION_TYPES = {
    "aggregator": AggregatorConfig,
    "camera_head": CameraHeadConfig,
    "dpt": DPTConfig,
    "gaussians": GaussianConfig,
}


def _build(dc_type: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(dc_type)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown keys in {where}: {sorted(unknown)}")
    kwargs = {}
    for k, v in values.items():
        sub = {"dinov2": DinoV2Config, "opacity_mapping": OpacityMappingConfig}.get(k)
        kwargs[k] = _build(sub, v, f"{where}.{k}") if sub and isinstance(v, dict) else v
    return dc_type(**kwargs)


def _from_ours(d: dict[str, Any]) -> EPS3DConfig:
    if d.get("version", CONFIG_VERSION) > CONFIG_VERSION:
        raise ConfigError(f"config version {d['version']} is newer than this eps3d_ros ({CONFIG_VERSION})")
    body = {k: v for k, v in d.items() if k not in ("format", "version")}
    kwargs: dict[str, Any] = {}
    for k, v in body.items():
        if k in _SECTION_TYPES:
            kwargs[k] = _build(_SECTION_TYPES[k], v, k)
        elif k in ("aggregator_autocast_bf16", "preset"):
            kwargs[k] = v
        else:
            raise ConfigError(f"unknown top-level key {k!r}")
    return EPS3DConfig(**kwargs)


def _from_fixture(d: dict[str, Any]) -> EPS3DConfig:
    ag, cam, dh, gs = d["aggregator"], d["camera_head"], d["depth_head"], d["gs_head_common"]
    enc, adapter, om = d["encoder_cfg"], d["gaussian_adapter"], d["opacity_mapping"]
    calls = d.get("call_arguments", {})
    dino = d.get("dinov2_patch_embed", {})
    dino_cfg = DinoV2Config(
        embed_dim=dino.get("embed_dim", ag["embed_dim"]),
        depth=dino.get("depth", 24),
        num_heads=dino.get("num_heads", 16),
        mlp_ratio=float(dino.get("mlp_ratio", 4.0)),
        num_register_tokens=dino.get("num_register_tokens", 4),
        img_size=dino.get("img_size", ag["img_size"]),
        interpolate_antialias=dino.get("interpolate_antialias", True),
        interpolate_offset=float(dino.get("interpolate_offset", 0.0)),
        init_values=float(dino.get("init_values", 1.0)),
    )
    if 2 * ag["embed_dim"] != cam["dim_in"] or cam["dim_in"] != dh["dim_in"]:
        raise ConfigError("head dim_in must be twice the aggregator embed_dim")
    layers = calls.get("aggregator_intermediate_layer_idx", dh["intermediate_layer_idx"])
    if list(layers) != list(dh["intermediate_layer_idx"]) or list(gs["intermediate_layer_idx"]) != list(layers):
        raise ConfigError("the depth head, the Gaussian heads and the aggregator must use the same layers")
    out_dims = d.get("gs_head_output_dims", {})
    cfg = EPS3DConfig(
        aggregator=AggregatorConfig(
            embed_dim=ag["embed_dim"], depth=ag["depth"], num_heads=ag["num_heads"],
            mlp_ratio=float(ag["mlp_ratio"]), num_register_tokens=ag["num_register_tokens"],
            patch_size=ag["patch_size"], img_size=ag["img_size"], patch_embed=ag["patch_embed"],
            aa_order=list(ag["aa_order"]), aa_block_size=ag["aa_block_size"], qk_norm=ag["qk_norm"],
            rope_freq=float(ag["rope_freq"]), init_values=float(ag["init_values"]),
            qkv_bias=ag.get("qkv_bias", True), proj_bias=ag.get("proj_bias", True),
            ffn_bias=ag.get("ffn_bias", True), dinov2=dino_cfg,
        ),
        camera_head=CameraHeadConfig(
            trunk_depth=cam["trunk_depth"], num_heads=cam["num_heads"], mlp_ratio=float(cam["mlp_ratio"]),
            init_values=float(cam["init_values"]),
            num_iterations=calls.get("camera_head_num_iterations", 4),
            trans_act=cam["trans_act"], quat_act=cam["quat_act"], fl_act=cam["fl_act"],
        ),
        dpt=DPTConfig(
            layers=list(layers), features=dh["features"], out_channels=list(dh["out_channels"]),
            depth_hidden=d.get("release_reference_values", {}).get("depth_head", {}).get("output_conv2_hidden", 32),
            gs_merger_channels=gs["input_merger_out_channels"], gs_hidden=gs["output_conv2_hidden"],
            frames_chunk_size=calls.get("dpt_frames_chunk_size", 8),
        ),
        gaussians=GaussianConfig(
            sh_degree=adapter["sh_degree"],
            semantic_dim=enc.get("gs_semantic_fea", 32),
            semantic_expanded_dim=d.get("decoder_feature_expansion", {}).get("out_channels", 512),
            instance_dim=enc.get("gs_instance_fea", 32),
            use_sem2ins=enc.get("use_sem2ins", True),
            sem2ins_hidden=d.get("sem2ins_fusion", {}).get("hidden_dim", 32),
            sem2ins_w_init=d.get("sem2ins_fusion", {}).get("w_init", 0.1),
            opacity_mapping=OpacityMappingConfig(float(om["initial"]), float(om["final"]), int(om["warm_up"])),
            voxelize=enc.get("voxelize", False),
            voxel_size=float(enc.get("voxel_size", 0.002)),
        ),
        preset=f"fixture-{d.get('variant', 'unknown')}",
    )
    if out_dims and out_dims.get("gaussian_param_head", 84) != cfg.gaussians.appearance_channels:
        raise ConfigError("gaussian_param_head output width does not match sh_degree")
    return cfg


def _from_release(d: dict[str, Any]) -> EPS3DConfig:
    """Release preset plus the few options an EPS3D/AnySplat ``encoder_cfg`` carries."""
    cfg = EPS3DConfig.from_preset("eps3d")
    enc = d["encoder_cfg"] or {}
    g = cfg.gaussians
    g.semantic_dim = enc.get("gs_semantic_fea", g.semantic_dim)
    g.instance_dim = enc.get("gs_instance_fea", g.instance_dim)
    g.voxelize = bool(enc.get("voxelize", g.voxelize))
    g.voxel_size = float(enc.get("voxel_size", g.voxel_size))
    g.use_sem2ins = bool(enc.get("use_sem2ins", g.use_sem2ins))
    if isinstance(enc.get("gaussian_adapter"), dict):
        g.sh_degree = enc["gaussian_adapter"].get("sh_degree", g.sh_degree)
    if isinstance(enc.get("opacity_mapping"), dict):
        om = enc["opacity_mapping"]
        g.opacity_mapping = OpacityMappingConfig(
            float(om.get("initial", 0.0)), float(om.get("final", 0.0)), int(om.get("warm_up", 1))
        )
    if enc.get("intermediate_layer_idx"):
        cfg.dpt.layers = list(enc["intermediate_layer_idx"])
    cfg.preset = "eps3d-release"
    return cfg


def _deep_update(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = v


# ------------------------------------------------------------------------------------- presets
def _tiny() -> EPS3DConfig:
    """Small enough for 2 CPU cores (tests, demo): 32-wide, 6 layers, conv patch embedding."""
    return EPS3DConfig(
        aggregator=AggregatorConfig(embed_dim=32, depth=6, num_heads=2, patch_embed="conv"),
        camera_head=CameraHeadConfig(trunk_depth=2, num_heads=4),
        dpt=DPTConfig(layers=[1, 2, 4, 5], features=16, out_channels=[8, 16, 32, 32], gs_merger_channels=8, gs_hidden=12),
        preset="tiny",
    )


def _small() -> EPS3DConfig:
    """Between tiny and the release, sized for training on CPU cores (the demo model): 64-wide, 8 layers,
    4 heads, conv patch embedding, DPT heads twice tiny's width. Gaussians start about one pixel wide at
    the (normalised) mean depth 1 — ``scale_multiplier`` 0.01: with the release's 0.001 a from-scratch
    model needs thousands of steps to grow them (Adam moves the raw scale ~lr per step) — and are capped
    at 0.03 (the CPU renderer pays for every covered tile)."""
    return EPS3DConfig(
        aggregator=AggregatorConfig(embed_dim=64, depth=8, num_heads=4, patch_embed="conv"),
        camera_head=CameraHeadConfig(trunk_depth=2, num_heads=4),
        dpt=DPTConfig(layers=[1, 3, 5, 7], features=32, out_channels=[16, 32, 64, 64], gs_merger_channels=16,
                      gs_hidden=16),
        gaussians=GaussianConfig(scale_multiplier=0.01, scale_max=0.03),
        preset="small",
    )


def _eps3d() -> EPS3DConfig:
    """Release shapes: DINOv2 ViT-L/14 with registers, 1024 wide, 24 layers, 16 heads."""
    return EPS3DConfig(preset="eps3d")


PRESETS: dict[str, EPS3DConfig] = {"tiny": _tiny(), "small": _small(), "eps3d": _eps3d()}
