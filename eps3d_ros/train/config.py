"""The training configuration: one dataclass tree, read from YAML (``eps3d train --config FILE``).

Every leaf has a default, so a YAML file only lists what it changes; unknown keys are errors that
name the section. ``config/train_demo.yaml`` is the demo model's configuration. Paths in the file are
resolved relative to the current directory (run from the repository root).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .losses import LossConfig

__all__ = [
    "ModelSection",
    "TextSection",
    "DataSection",
    "TeacherSection",
    "RenderSection",
    "OptimSection",
    "RunSection",
    "TrainConfig",
    "load_train_config",
    "FREEZE_GROUPS",
    "RENDER_CAMERAS",
    "LR_SCALINGS",
    "BATCH_FORWARDS",
    "PRECISIONS",
]

RENDER_CAMERAS = ("predicted", "detached", "ground_truth")
LR_SCALINGS = ("none", "linear", "sqrt")
BATCH_FORWARDS = ("joint", "per_window")
PRECISIONS = ("fp32", "bf16")

# Names usable in ``model.freeze`` besides raw parameter-name prefixes.
FREEZE_GROUPS: dict[str, tuple[str, ...]] = {
    "aggregator": ("encoder.aggregator.",),
    "camera": ("encoder.camera_head.",),
    "depth": ("encoder.depth_head.",),
    "geometry": ("encoder.aggregator.", "encoder.camera_head.", "encoder.depth_head."),
    "appearance": ("encoder.gaussian_param_head.",),  # the release froze this head
    "semantic": ("encoder.gaussian_feature_param_head.", "decoder."),
    "instance": ("encoder.gaussian_instance_param_head.", "encoder.sem2ins_fusion."),
    "expansion": ("decoder.",),
}


@dataclass
class ModelSection:
    preset: str = "tiny"  # EPS3DConfig preset of a fresh model (ignored with init_from)
    init_from: str = ""  # weights (dir or file) to start from, e.g. a release checkpoint
    overrides: dict[str, Any] = field(default_factory=dict)  # EPS3DConfig.replace(**overrides), e.g. {gaussians: {...}}
    freeze: list[str] = field(default_factory=list)  # groups (FREEZE_GROUPS) or parameter-name prefixes
    # A fresh model's starting Gaussian opacity (None = the network's own init, 0.5). Adam moves the
    # opacity logit by ~lr per step and only render steps teach it: from 0.5 a CPU run never gets its
    # surfaces opaque (0.46 after 900 steps of a first demo_small run), so each view's renders had holes.
    init_opacity: float | None = None
    gradient_checkpointing: bool = False


@dataclass
class TextSection:
    """The text encoder whose space the semantic features are distilled into."""

    model: str = "ViT-B-32"  # open_clip architecture ("eps3d-tiny-clip" is registered on demand)
    pretrained: str = "openai"  # tag or local file
    # When ``pretrained`` is a file that does not exist and this is set, seeded random weights are
    # written there first (the demo: no pretrained CLIP offline; see text.clip.create_random_text_encoder).
    create_random_seed: int | None = None
    templates: list[str] = field(default_factory=lambda: ["{}"])


DATA_KINDS = ("synthetic", "recorded", "scannet", "scannetpp", "replica", "transforms")


@dataclass
class DataSection:
    # "synthetic", "recorded" (views.npz + teacher.npz folders) or a dataset: "scannet", "scannetpp", "replica",
    # "transforms" (eps3d_ros/data/; train/scene_dataset.py)
    kind: str = "synthetic"
    height: int = 112  # training image size (multiples of 14)
    width: int = 112
    # multi-resolution: each step draws its size from height/width + k*14, k in -size_steps..size_steps
    # (the same k for both sides); 0 = always height x width
    size_steps: int = 0
    context_views: int = 3  # views through the network
    target_views: int = 1  # held-out views rendered into (need cameras)
    # synthetic: seeds seed_start .. seed_start + num_scenes - 1
    seed_start: int = 0
    num_scenes: int = 1000
    scene_options: dict[str, Any] = field(default_factory=dict)  # generate_scene keyword arguments
    cache_size: int = 2048  # scenes kept in memory
    # recorded: folders in the format of eps3d_ros.train.teachers
    recordings: list[str] = field(default_factory=list)
    stride: int = 1  # frames between the views of a window (recorded and datasets)
    # datasets: where, which scenes (explicit ids, else the official split, else all), how to read them
    root: str = ""
    scenes: list[str] = field(default_factory=list)
    split: str = ""  # e.g. "train" (ScanNet scannetv2_train.txt, ScanNet++ nvs_sem_train.txt)
    label_set: str = "nyu40"  # ScanNet: "nyu40" or "scannet200"
    invalid_poses: str = "skip"  # ScanNet frames with inf/NaN poses: "skip" or "error"
    semantics_dir: str = ""  # ScanNet++ 2D semantics (default ROOT/semantics_2d)
    classes_file: str = ""  # ScanNet++ class list (default ROOT/metadata/semantic_benchmark/top100.txt)
    teachers: str = ""  # folder of `eps3d teachers` outputs (DIR/<scene_id>/teacher.npz): teacher.kind files
    window: str = "stride"  # "stride" (views `stride` frames apart) or "overlap" (by view overlap)
    min_overlap: float = 0.3  # "overlap": consecutive views share at least this fraction of the view ...
    max_overlap: float = 0.9  # ... and at most this
    window_step: int = 1  # a window starts every window_step frames
    # samples per rank per (micro-)step, one image size per batch; the global batch of an optimizer
    # step is batch_size x ranks x optim.accumulate (printed at the start of a run)
    batch_size: int = 1
    # "joint": a rank's batch goes through the network as one [B, S, 3, H, W] tensor (the batching
    # speed-up). "per_window": each window gets its own forward and backward (the memory of one window),
    # so the parameters do not depend on how the global batch is split over ranks, batches and
    # micro-steps, bit for bit on CPU. A joint batch computes the same sums in another order; the
    # ~1e-7 differences grow under AdamW (sign-like steps on near-zero gradients) and the losses'
    # thresholds, to ~1e-3 of the parameters within 20 steps of the tiny preset.
    batch_forward: str = "joint"

    @property
    def is_dataset(self) -> bool:
        return self.kind not in ("synthetic", "recorded")

    @property
    def num_views(self) -> int:
        return self.context_views + self.target_views

    def sizes(self) -> list[tuple[int, int]]:
        """Training sizes ``(height, width)``, smallest first (one when ``size_steps`` is 0)."""
        return [(self.height + 14 * k, self.width + 14 * k) for k in range(-self.size_steps, self.size_steps + 1)]


@dataclass
class TeacherSection:
    # "ground_truth" (synthetic scenes, labelled datasets), "files" (recordings, data.teachers) or "auto": by the data
    kind: str = "auto"
    stuff_masks: bool = True  # ground truth: stuff classes form instance masks too


@dataclass
class RenderSection:
    backend: str = "auto"  # render_gaussians backend ("torch" on CPU, gsplat on CUDA when installed)
    context_views: int = -1  # input views rendered per step (a random subset; -1 = all, 0 = none)
    target_views: bool = True  # render the held-out target views (needs their cameras)
    start_step: int = 0  # rendered losses start here (geometry warm-up: early renders are slow and noisy)
    every: int = 1  # render on every k-th step from start_step (CPU: splatting costs more than the network)
    near_plane: float = 0.01  # Gaussians closer to a rendered camera are culled (normalised scene units)
    # Cameras that place the Gaussians (unprojection of the predicted depth) and render them:
    # "predicted" — the camera head's (the paper: the rendered terms also train the camera head);
    # "detached" — the camera head's, without gradient (only the camera loss trains the head);
    # "ground_truth" — the true cameras relative to the first input view, scaled into the prediction
    # (needs cameras; the rendered terms then judge depth and appearance, not the camera head).
    cameras: str = "predicted"
    # False: the rendered terms do not move the Gaussians (their centres are detached), so depth is
    # taught by the depth loss alone. With true depth at hand this stops the rendered semantic terms
    # from buying lower loss by reordering occlusions (their gradient at the depth head was ~5x the
    # depth loss's in a first demo_small run).
    depth_gradients: bool = True


@dataclass
class OptimSection:
    steps: int = 1000
    lr: float = 2e-4
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 100  # linear warm-up from 0, then cosine decay to min_lr_ratio * lr
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # max gradient norm (0 = off)
    accumulate: int = 1  # micro-steps per optimizer step (gradients summed locally; one all-reduce per step)
    # How lr follows the global batch G (batch_size x ranks x accumulate): "none" = lr as written,
    # "linear" = lr x G / reference_batch, "sqrt" = lr x sqrt(G / reference_batch). Printed at the start.
    lr_scaling: str = "none"
    reference_batch: int = 1  # the global batch that lr was chosen for (lr_scaling linear / sqrt)


@dataclass
class RunSection:
    out_dir: str = "runs/eps3d"
    seed: int = 0
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda[:N]"
    # per rank, as model.threads: -1 all cores but one (shared by this machine's ranks), 0 torch's default, N exactly N
    num_threads: int = -1
    log_every: int = 10  # CSV / TensorBoard rows
    checkpoint_every: int = 200  # steps between checkpoints (0 = only at the end)
    eval_every: int = 0  # steps between held-out evaluations (0 = off)
    eval_scenes: int = 4  # synthetic held-out scenes per evaluation
    eval_seed_start: int = 100_000  # never used for training
    eval_views: int = 4
    tensorboard: bool = True  # also log to TensorBoard when it is installed
    progress: bool = True  # tqdm progress bar
    # "fp32", or "bf16": the network's forward under bf16 autocast (meant for CUDA; the losses, the
    # weights and the optimizer stay float32)
    precision: str = "fp32"
    # processes `eps3d train` starts on this machine when it is not already under a launcher (torchrun,
    # srun + torchrun): 2 on a 2-core CPU (gloo, one thread each); a launcher's own count wins
    nproc_per_node: int = 1
    # DistributedDataParallel's find_unused_parameters: "auto" turns it on only when steps differ in the
    # loss terms they compute (render.every / render.start_step / loss.start), where some parameters get
    # no gradient on some steps; true / false force it
    find_unused_parameters: Any = "auto"
    dist_timeout_s: float = 1800.0  # a collective or barrier waits this long (rank 0's evaluation / export)
    peer_timeout_s: float = 30.0  # a rank silent this long (no heartbeat) ends the job
    # stop after this many minutes of training (0 = no limit): the step that crosses it is the last, then the
    # checkpoint and the model folder are written as at the end of optim.steps (a GPU lent for a while)
    max_minutes: float = 0.0


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    text: TextSection = field(default_factory=TextSection)
    data: DataSection = field(default_factory=DataSection)
    teacher: TeacherSection = field(default_factory=TeacherSection)
    render: RenderSection = field(default_factory=RenderSection)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)

    def validate(self) -> "TrainConfig":
        d, o, r = self.data, self.optim, self.run
        if d.kind not in DATA_KINDS:
            raise ValueError(f"data.kind must be one of {DATA_KINDS}, got {d.kind!r}")
        if d.is_dataset and not d.root:
            raise ValueError(f"data.root must name the {d.kind} dataset's folder")
        if d.window not in ("stride", "overlap") or d.window_step < 1 or d.stride < 1:
            raise ValueError("data.window must be 'stride' or 'overlap', data.stride and data.window_step >= 1")
        for name in ("height", "width"):
            v = getattr(d, name)
            if v <= 0 or v % 14:
                raise ValueError(f"data.{name} must be a positive multiple of 14, got {v}")
        if d.context_views < 1 or d.target_views < 0:
            raise ValueError("data.context_views must be >= 1 and data.target_views >= 0")
        if d.kind == "synthetic" and d.num_scenes < 1:
            raise ValueError("data.num_scenes must be >= 1")
        if d.kind == "recorded" and not d.recordings:
            raise ValueError("data.recordings must list recording folders when data.kind is 'recorded'")
        if d.kind == "synthetic" and d.seed_start <= r.eval_seed_start < d.seed_start + d.num_scenes:
            raise ValueError(f"run.eval_seed_start {r.eval_seed_start} lies inside the training seeds "
                             f"[{d.seed_start}, {d.seed_start + d.num_scenes}): held-out scenes must be unseen")
        if self.teacher.kind not in ("auto", "ground_truth", "files"):
            raise ValueError(f"teacher.kind must be 'auto', 'ground_truth' or 'files', got {self.teacher.kind!r}")
        if self.render.every < 1:
            raise ValueError(f"render.every must be >= 1, got {self.render.every}")
        if not self.render.near_plane > 0:
            raise ValueError(f"render.near_plane must be > 0, got {self.render.near_plane}")
        if self.render.cameras not in RENDER_CAMERAS:
            raise ValueError(f"render.cameras must be one of {RENDER_CAMERAS}, got {self.render.cameras!r}")
        if d.size_steps < 0 or min(d.height, d.width) - 14 * d.size_steps < 14:
            raise ValueError(f"data.size_steps must be >= 0 and leave sizes >= 14 px, got {d.size_steps} for "
                             f"{d.height}x{d.width}")
        if self.render.backend not in ("auto", "torch", "gsplat"):
            raise ValueError(f"render.backend must be 'auto', 'torch' or 'gsplat', got {self.render.backend!r}")
        if o.steps < 1 or o.lr <= 0 or o.warmup_steps < 0 or not 0 <= o.min_lr_ratio <= 1 or o.grad_clip < 0:
            raise ValueError("optim: need steps >= 1, lr > 0, warmup_steps >= 0, 0 <= min_lr_ratio <= 1, grad_clip >= 0")
        if len(o.betas) != 2:
            raise ValueError("optim.betas must have two values")
        if r.log_every < 1 or r.checkpoint_every < 0 or r.eval_every < 0 or r.num_threads < -1:
            raise ValueError("run: need log_every >= 1, checkpoint_every >= 0, eval_every >= 0, num_threads >= -1")
        if d.batch_forward not in BATCH_FORWARDS:
            raise ValueError(f"data.batch_forward must be one of {BATCH_FORWARDS}, got {d.batch_forward!r}")
        if d.batch_size < 1 or o.accumulate < 1:
            raise ValueError(f"data.batch_size and optim.accumulate must be >= 1, got {d.batch_size}, {o.accumulate}")
        if o.lr_scaling not in LR_SCALINGS or o.reference_batch < 1:
            raise ValueError(f"optim.lr_scaling must be one of {LR_SCALINGS} and optim.reference_batch >= 1, got "
                             f"{o.lr_scaling!r}, {o.reference_batch}")
        if r.precision not in PRECISIONS:
            raise ValueError(f"run.precision must be one of {PRECISIONS}, got {r.precision!r}")
        if not (isinstance(r.max_minutes, (int, float)) and r.max_minutes >= 0):
            raise ValueError(f"run.max_minutes must be >= 0 (0: no limit), got {r.max_minutes!r}")
        if r.nproc_per_node < 1 or not r.dist_timeout_s > 0 or not r.peer_timeout_s > 0:
            raise ValueError("run: need nproc_per_node >= 1, dist_timeout_s > 0, peer_timeout_s > 0")
        if r.find_unused_parameters not in ("auto", True, False):
            raise ValueError("run.find_unused_parameters must be auto, true or false, got "
                             f"{r.find_unused_parameters!r}")
        if self.model.init_opacity is not None and not 0.0 < self.model.init_opacity < 1.0:
            raise ValueError(f"model.init_opacity must be in (0, 1), got {self.model.init_opacity}")
        if self.model.init_opacity is not None and self.model.init_from:
            raise ValueError("model.init_opacity sets a fresh model's start: it cannot change model.init_from's weights")
        for name in self.model.freeze:
            if name not in FREEZE_GROUPS and not (name.startswith("encoder.") or name.startswith("decoder.")):
                raise ValueError(f"model.freeze entry {name!r} is neither a group {sorted(FREEZE_GROUPS)} nor a "
                                 "parameter-name prefix (encoder.* / decoder.*)")
        self.loss.validate()
        return self

    @property
    def teacher_kind(self) -> str:
        if self.teacher.kind != "auto":
            return self.teacher.kind
        if self.data.kind == "synthetic":
            return "ground_truth"
        if self.data.is_dataset:
            return "files" if self.data.teachers else "ground_truth"
        return "files"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ValueError(f"a training config must be a mapping, got {type(d).__name__}")
        sections = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(sections)
        if unknown:
            raise ValueError(f"unknown training config sections {sorted(unknown)}; known: {sorted(sections)}")
        kwargs = {}
        for name, value in d.items():
            section_type = sections[name].default_factory  # type: ignore[misc]
            kwargs[name] = _build(section_type, value or {}, name)
        return cls(**kwargs).validate()


def _build(section_type: Any, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ValueError(f"config section {where!r} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(section_type)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown keys in {where}: {sorted(unknown)}; known: {sorted(known)}")
    return section_type(**values)


def load_train_config(path: str | Path, overrides: dict[str, dict[str, Any]] | None = None) -> TrainConfig:
    """Read a YAML training config; ``overrides`` (``{section: {key: value}}``) win over the file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"training config not found: {p}")
    d = yaml.safe_load(p.read_text()) or {}
    if not isinstance(d, dict):
        raise ValueError(f"{p}: a training config must be a YAML mapping")
    for section, values in (overrides or {}).items():
        d.setdefault(section, {})
        d[section] = {**(d[section] or {}), **values}
    try:
        return TrainConfig.from_dict(d)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{p}: {e}") from e
