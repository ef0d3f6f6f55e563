"""Checkpoint reading, key checking and loading for :class:`EPS3D`.

Understood inputs (file or directory):

* **ours**: ``model.safetensors`` whose metadata carries ``eps3d_config`` (written by
  :meth:`EPS3D.save_pretrained`), with or without a ``config.json`` beside it;
* **EPS3D release**: ``model.safetensors`` + ``config.json`` with the reference key names
  (``encoder.*`` / ``decoder.*``). Extra ``encoder.distill_*`` tensors (training-only copies) are
  ignored and reported;
* **VGGT**: a state dict with ``aggregator.*``, ``camera_head.*``, ``depth_head.*`` (``model.pt``
  or ``.safetensors``). Those parts load; the Gaussian heads, Sem2Ins and the decoder are absent
  and reported (they keep their initialisation); ``point_head.*`` / ``track_head.*`` are ignored.

The configuration comes from, in order: the ``config`` argument, the safetensors metadata, a
``config.json`` beside the weights, or (last resort) the tensor shapes, with the assumptions listed
in the report.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .config import ConfigError, EPS3DConfig

log = logging.getLogger(__name__)

WEIGHT_NAMES = ("model.safetensors", "model.pt", "model.pth", "pytorch_model.bin", "checkpoint.pt")
METADATA_CONFIG_KEY = "eps3d_config"
_VGGT_PARTS = ("aggregator.", "camera_head.", "depth_head.")
_VGGT_IGNORED = ("point_head.", "track_head.")
_VGGT_ABSENT = (
    "encoder.gaussian_param_head.", "encoder.gaussian_feature_param_head.",
    "encoder.gaussian_instance_param_head.", "encoder.sem2ins_fusion.", "decoder.",
)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded as asked; the message names the file and the keys."""


@dataclass
class LoadReport:
    path: str
    format: str  # "eps3d" (ours or release) or "vggt"
    config_source: str
    num_parameters: int = 0  # of the model built from the config
    num_loaded: int = 0  # tensors that load
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # present but deliberately unused
    absent_modules: list[str] = field(default_factory=list)  # not in this kind of checkpoint at all
    assumptions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when a strict load succeeds."""
        return not (self.missing or self.unexpected or self.mismatched)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def describe(self, limit: int = 20) -> str:
        def some(keys: list[Any]) -> str:
            more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
            return ", ".join(map(str, keys[:limit])) + more

        lines = [f"checkpoint {self.path} ({self.format}, config from {self.config_source}):"]
        if self.missing:
            lines.append(f"  {len(self.missing)} missing keys: {some(self.missing)}")
        if self.unexpected:
            lines.append(f"  {len(self.unexpected)} unexpected keys: {some(self.unexpected)}")
        if self.mismatched:
            mm = [f"{m['key']} expected {m['expected']} got {m['got']}" for m in self.mismatched]
            lines.append(f"  {len(self.mismatched)} shape mismatches: {some(mm)}")
        if self.ignored:
            lines.append(f"  {len(self.ignored)} ignored keys: {some(self.ignored)}")
        if self.absent_modules:
            lines.append(f"  not in this checkpoint (left at initialisation): {some(self.absent_modules)}")
        if self.assumptions:
            lines.append(f"  assumed: {some(self.assumptions)}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------- reading
def resolve_weights(path: str | Path) -> tuple[Path, Path | None]:
    """``(weights file, config.json or None)`` for a file or a directory."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in WEIGHT_NAMES:
            if (p / name).is_file():
                cfg = p / "config.json"
                return p / name, cfg if cfg.is_file() else None
        raise FileNotFoundError(f"no weights file in {p}: expected one of {', '.join(WEIGHT_NAMES)}")
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {p}")
    cfg = p.parent / "config.json"
    return p, cfg if cfg.is_file() else None


def read_state_dict(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and (safetensors) metadata; ``.pt``-style files may wrap the dict in ``model``/``state_dict``."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
        except Exception as e:  # safetensors raises several types for a corrupt header
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    import pickle

    try:
        # weights_only: the unpickler builds tensors and plain containers only, so a file cannot run code
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(refused_pickle_message(path, e)) from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({e})") from e
    for wrapper in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}, {}


def refused_pickle_message(path: str | Path, error: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused ``path``: the object its pickle would build or call."""
    found = re.search(r"GLOBAL ([\w.]+)|Unsupported global: ([\w.]+)|Unsupported operand (\d+)", str(error))
    what = next((g for g in found.groups() if g), "") if found else ""
    detail = f" (it names {what!r})" if what else ""
    return (f"{path}: refused: this checkpoint's pickle would create or call something other than tensors and plain "
            f"containers{detail}. Checkpoints are read with torch.load(weights_only=True), so a file cannot run "
            "code when it is loaded; convert trusted weights to a state dict of tensors, or better to safetensors "
            "(safetensors.torch.save_file(state_dict, 'model.safetensors'))")


def detect_format(keys: list[str], path: Path) -> str:
    if any(k.startswith(("encoder.", "decoder.")) for k in keys):
        return "eps3d"
    if any(k.startswith(_VGGT_PARTS) for k in keys):
        return "vggt"
    raise CheckpointError(
        f"{path}: neither an EPS3D checkpoint (encoder.*/decoder.* keys) nor a VGGT one (aggregator.*); "
        f"first keys: {sorted(keys)[:5]}"
    )


def to_eps3d_keys(sd: dict[str, Tensor], fmt: str) -> tuple[dict[str, Tensor], list[str]]:
    """Rename to our key space; return ``(renamed, ignored keys)``."""
    if fmt == "eps3d":
        ignored = [k for k in sd if k.startswith("encoder.distill_")]
        return {k: v for k, v in sd.items() if k not in set(ignored)}, ignored
    ignored = [k for k in sd if k.startswith(_VGGT_IGNORED)]
    out = {f"encoder.{k}": v for k, v in sd.items() if k.startswith(_VGGT_PARTS)}
    ignored += [k for k in sd if not k.startswith(_VGGT_PARTS) and k not in set(ignored)]
    return out, ignored


# ------------------------------------------------------------------------------------ config
def resolve_config(
    config: EPS3DConfig | str | Path | None,
    metadata: dict[str, str],
    config_file: Path | None,
    sd: dict[str, Tensor],
) -> tuple[EPS3DConfig, str, list[str]]:
    """``(config, where it came from, assumptions)``."""
    if isinstance(config, EPS3DConfig):
        return config, "argument", []
    if config is not None:
        return EPS3DConfig.from_json(config), str(config), []
    if METADATA_CONFIG_KEY in metadata:
        return EPS3DConfig.from_dict(json.loads(metadata[METADATA_CONFIG_KEY])), "safetensors metadata", []
    if config_file is not None:
        try:
            return EPS3DConfig.from_json(config_file), str(config_file), []
        except ConfigError as e:
            log.warning("%s; inferring the configuration from the weights instead", e)
    cfg, assumptions = infer_config(sd)
    return cfg, "tensor shapes", assumptions


def _count(sd: dict[str, Tensor], prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    ids = {int(m.group(1)) for k in sd for m in [pat.match(k)] if m}
    return max(ids) + 1 if ids else 0


def infer_config(sd: dict[str, Tensor]) -> tuple[EPS3DConfig, list[str]]:
    """A configuration from tensor shapes (our key space), with the values that shapes cannot tell."""
    cfg = EPS3DConfig.from_preset("eps3d")
    assumed: list[str] = []
    a, d, g, c = cfg.aggregator, cfg.dpt, cfg.gaussians, cfg.camera_head
    pre = "encoder.aggregator."
    try:
        a.embed_dim = sd[pre + "camera_token"].shape[-1]
        a.num_register_tokens = sd[pre + "register_token"].shape[2]
        a.depth = _count(sd, pre + "frame_blocks.")
        a.mlp_ratio = sd[pre + "frame_blocks.0.mlp.fc1.weight"].shape[0] / a.embed_dim
        qn = sd.get(pre + "frame_blocks.0.attn.q_norm.weight")
        a.qk_norm = qn is not None
        if qn is not None:
            a.num_heads = a.embed_dim // qn.shape[0]
        else:
            a.num_heads = max(1, a.embed_dim // 64)
            assumed.append(f"aggregator.num_heads={a.num_heads} (head width 64)")
        if pre + "patch_embed.proj.weight" in sd:
            a.patch_embed = "conv"
            a.patch_size = sd[pre + "patch_embed.proj.weight"].shape[-1]
        else:
            dp = pre + "patch_embed."
            a.patch_embed = "dinov2"
            a.patch_size = sd[dp + "patch_embed.proj.weight"].shape[-1]
            a.dinov2.embed_dim = sd[dp + "cls_token"].shape[-1]
            a.dinov2.depth = _count(sd, dp + "blocks.")
            a.dinov2.num_register_tokens = sd[dp + "register_tokens"].shape[1]
            a.dinov2.mlp_ratio = sd[dp + "blocks.0.mlp.fc1.weight"].shape[0] / a.dinov2.embed_dim
            grid = int(round((sd[dp + "pos_embed"].shape[1] - 1) ** 0.5))
            a.dinov2.img_size = grid * a.patch_size
            a.dinov2.num_heads = max(1, a.dinov2.embed_dim // 64)
            assumed.append(f"aggregator.dinov2.num_heads={a.dinov2.num_heads} (head width 64)")
        ch = "encoder.camera_head."
        dim = 2 * a.embed_dim
        c.trunk_depth = _count(sd, ch + "trunk.")
        c.mlp_ratio = sd[ch + "trunk.0.mlp.fc1.weight"].shape[0] / dim
        c.num_heads = max(1, dim // 128)
        assumed.append(f"camera_head.num_heads={c.num_heads} (head width 128)")
        dh = "encoder.depth_head."
        d.features = sd[dh + "scratch.layer1_rn.weight"].shape[0]
        d.out_channels = [sd[f"{dh}projects.{i}.weight"].shape[0] for i in range(4)]
        d.depth_hidden = sd[dh + "scratch.output_conv2.0.weight"].shape[0]
        if a.depth == 24:
            d.layers = [4, 11, 17, 23]
        else:
            d.layers = sorted({round(i * (a.depth - 1) / 3) for i in range(4)})
        assumed.append(f"dpt.layers={d.layers}")
        gh = "encoder.gaussian_param_head."
        if gh + "input_merger.0.weight" in sd:
            d.gs_merger_channels = sd[gh + "input_merger.0.weight"].shape[0]
            d.gs_hidden = sd[gh + "scratch.output_conv2.0.weight"].shape[0]
            n_sh3 = sd[gh + "scratch.output_conv2.2.weight"].shape[0] - 9
            g.sh_degree = int(round((n_sh3 / 3) ** 0.5)) - 1
            g.semantic_dim = sd["encoder.gaussian_feature_param_head.scratch.output_conv2.2.weight"].shape[0]
            g.instance_dim = sd["encoder.gaussian_instance_param_head.scratch.output_conv2.2.weight"].shape[0]
        else:
            d.gs_merger_channels = d.gs_hidden = d.features // 2
            assumed.append("Gaussian heads absent: release head sizes scaled to the DPT width")
        g.use_sem2ins = "encoder.sem2ins_fusion.w_1" in sd or "encoder.gaussian_param_head.norm.weight" not in sd
        if "encoder.sem2ins_fusion.proj_instance.weight" in sd:
            g.sem2ins_hidden = sd["encoder.sem2ins_fusion.proj_instance.weight"].shape[0]
        if "decoder.feature_expansion.1.weight" in sd:
            g.semantic_expanded_dim = sd["decoder.feature_expansion.1.weight"].shape[0]
    except KeyError as e:
        raise CheckpointError(f"cannot infer the configuration: tensor {e} is missing; pass a config") from e
    cfg.preset = "inferred"
    try:
        return cfg.validate(), assumed
    except ConfigError as e:
        raise CheckpointError(f"cannot infer a valid configuration from the weights ({e}); pass a config") from e


# ----------------------------------------------------------------------------------- compare
def compare(
    expected: dict[str, tuple[int, ...]], provided: dict[str, tuple[int, ...]], report: LoadReport, fmt: str
) -> list[str]:
    """Fill missing/unexpected/mismatched in ``report``; return the keys that load."""
    absent_prefixes = _VGGT_ABSENT if fmt == "vggt" else ()
    loadable = []
    for k, shape in expected.items():
        if k not in provided:
            if k.startswith(absent_prefixes):
                continue
            report.missing.append(k)
        elif tuple(provided[k]) != shape:
            report.mismatched.append({"key": k, "expected": list(shape), "got": list(provided[k])})
        else:
            loadable.append(k)
    report.unexpected = sorted(set(provided) - set(expected))
    if absent_prefixes:
        report.absent_modules = sorted({p.rstrip(".") for p in absent_prefixes for k in expected if k.startswith(p)})
    report.num_loaded = len(loadable)
    return loadable


def load_pretrained(
    cls: type[nn.Module],
    path: str | Path,
    device: str | torch.device = "cpu",
    strict: bool = True,
    config: EPS3DConfig | str | Path | None = None,
) -> nn.Module:
    """``cls(config)`` (an :class:`~eps3d_ros.model.EPS3D`) with the checkpoint's tensors, in eval mode; see the
    module docstring for the formats and :attr:`LoadReport` (``model.load_report``) for what was loaded."""
    weights, config_file = resolve_weights(path)
    sd, metadata = read_state_dict(weights)
    fmt = detect_format(list(sd), weights)
    sd, ignored = to_eps3d_keys(sd, fmt)
    cfg, source, assumptions = resolve_config(config, metadata, config_file, sd)
    report = LoadReport(str(weights), fmt, source, ignored=ignored, assumptions=assumptions)
    with torch.device(device):
        model = cls(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    report.num_parameters = model.num_parameters
    loadable = compare(expected, {k: tuple(v.shape) for k, v in sd.items()}, report, fmt)
    if strict and not report.ok:
        raise CheckpointError(report.describe())
    model.load_state_dict({k: sd[k] for k in loadable}, strict=False)
    for line in report.describe().splitlines()[1:]:
        log.warning("%s", line.strip())
    model.load_report = report
    return model.eval()


def save_pretrained(model: nn.Module, directory: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    meta = {METADATA_CONFIG_KEY: json.dumps(model.config.to_dict()), "format": "eps3d_ros"}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(out / "model.safetensors"), metadata=meta)
    model.config.to_json(out / "config.json")
    return out
