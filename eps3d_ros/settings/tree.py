"""The configuration tree of the perception pipeline (what the ROS node, the CLI and config/*.yaml share):
``model``, ``text``, ``panoptic`` (+ ``clustering``), ``input`` (the cameras), ``pipeline``, ``output``, ``map``.

One dataclass tree; the node declares one ROS parameter per leaf with dotted names
(``model.weights``, ``pipeline.window_size``, ``panoptic.clustering.hdbscan.min_cluster_size`` ...), and
``config/eps3d.yaml`` lists the same leaves. Each camera's settings are leaves too: ``input.<name>.*`` for the
names ``input.cameras`` lists (a dict field whose metadata says ``keyed_by``, see :func:`config_leaves`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..devices import check_device_name
from ..mapping.config import MapConfig
from ..panoptic.config import PanopticConfig
from ..text import TextEncoderConfig
from .cameras import InputConfig

# A run's settings that the model folder (its bundle, see eps3d_ros.model.bundle) fills when they are left
# at these values; any other value is the user's and wins (pipeline/loading.py logs which did).
AUTO = {"text.encoder": "", "text.model": "", "text.pretrained": "", "pipeline.image_height": 0, "pipeline.image_width": 0,
        "panoptic.clustering.hdbscan.min_cluster_size": 0, "panoptic.min_relevance": -1.0}
# Settings that had another name before: model folders (bundle.json) and scene files written then still say so.
RENAMED = {f"panoptic.clustering.{name}": f"panoptic.clustering.hdbscan.{name}"
           for name in ("min_cluster_size", "min_subsample_cluster", "min_samples", "allow_single_cluster", "backend")}
USE_DEPTH = ("auto", "true", "false")
# Settings that may change while a session runs (a new config object is swapped in); the rest need a new
# session (the node: a reconfigure).
RUNTIME_SETTINGS = frozenset({
    "panoptic.vocabulary", "panoptic.stuff", "panoptic.unknown_threshold", "panoptic.min_relevance",
    "output.max_cloud_points", "output.min_opacity", "pipeline.every_n_frames",
} | {f"map.{f.name}" for f in dataclasses.fields(MapConfig)})
# Settings fixed when the process starts (the node declares them read-only): where the map services may write
# and read must not be widened by anyone who can set a parameter on the ROS domain.
START_ONLY_SETTINGS = frozenset({"map.directory", "map.allow_any_path"})


@dataclass
class ModelSourceConfig:
    """Where the network comes from."""

    weights: str = ""  # directory or file for EPS3D.from_pretrained; "" = the preset with random weights
    preset: str = "tiny"  # used when weights == "" (tests and demos only)
    config: str = ""  # optional config JSON overriding what the weights carry
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda", "cuda:1"
    allow_random_weights: bool = False  # refuse to start without weights unless explicitly allowed
    threads: int = -1  # CPU threads: -1 all cores but one, 0 torch's default, N exactly N (process/threads.py)
    # Python's thread switch interval (GIL hand-over), set once at start; 0 = Python's default (5 ms). Short, so
    # that a query thread is not starved while other threads keep re-taking the GIL (process/threads.py).
    switch_interval_ms: float = 0.5

    def validate(self) -> "ModelSourceConfig":
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < -1:
            raise ValueError(f"model.threads must be an int >= -1, got {self.threads!r}")
        if not 0.0 <= float(self.switch_interval_ms) <= 100.0:
            raise ValueError(f"model.switch_interval_ms must be in [0, 100] (0: Python's default), "
                             f"got {self.switch_interval_ms!r}")
        if not self.weights and not self.allow_random_weights:
            demo = Path(__file__).resolve().parents[2] / "models" / "demo_tiny"
            hint = f"; to try it, this repository ships a demo model: model.weights:={demo}" if demo.is_dir() else ""
            raise ValueError("model.weights is empty: pass a model folder (model.safetensors + config.json), e.g. "
                             f"`eps3d_node --ros-args -p model.weights:=/path/to/eps3d`{hint}")
        check_device_name(self.device, "model.device")
        return self


@dataclass
class PipelineConfig:
    """Frames → windows of keyframes → one inference thread."""

    # The box frames are fitted into, aspect kept (see frames/intake.py); 0 = the model's native size
    image_height: int = 0
    image_width: int = 0
    window_size: int = 4  # keyframes per reconstruction (V)
    every_n_frames: int = 8  # reconstruct after this many new synchronized frames (0 = only on request)
    buffer_size: int = 32  # frames kept; older ones are dropped (counted)
    max_buffer_mb: float = 256.0  # image data kept (frames are held at the network's size); older frames leave
    keyframe_min_interval: float = 0.2  # seconds between keyframes
    keyframe_min_translation: float = 0.05  # metres of camera motion between keyframes (when poses are known)
    keyframe_min_rotation: float = 5.0  # degrees of camera rotation between keyframes (when poses are known)
    max_frame_age: float = 5.0  # seconds; frames older than the newest by more are stale
    max_future_stamp: float = 2.0  # seconds; frames stamped further ahead of the node's clock are refused
    # "auto": subscribe to depth and use it when it arrives in sync, else work from RGB alone; "true": expect
    # depth (warn when none comes); "false": never use depth
    use_depth: str = "auto"
    depth_scale: float = 0.001  # metres per unit of 16UC1 depth (32FC1 is already metres)
    depth_min: float = 0.1  # metres; measurements outside [min, max] are invalid
    depth_max: float = 10.0
    use_measured_depth: bool = False  # with depth + TF: measured depth for Gaussian centres
    sync_slop: float = 0.05  # seconds; approximate time synchronisation
    sync_queue_size: int = 10
    # A TF alignment whose RMS camera-centre residual exceeds this fraction of the cameras' spread is
    # rejected (TF and images disagree): the scene stays in the camera frame instead of a wrong metric map.
    max_alignment_error: float = 0.25
    # Depth gives no scale when log(measured / predicted) varies more than this (median absolute deviation).
    max_depth_ratio_spread: float = 0.25
    # A window whose estimated peak memory (pipeline/memory.py: views x network pixels) exceeds this is refused
    # before anything is allocated; 0 = 80 % of the memory available (CPU: free + this process's; CUDA: the GPU's free)
    max_memory_mb: float = 0.0

    @property
    def depth_enabled(self) -> bool:
        """Depth is used when frames carry it (``use_depth`` auto or true)."""
        return self.use_depth not in ("false", False)  # a bool set by Python code before validate() counts too

    def validate(self) -> "PipelineConfig":
        if isinstance(self.use_depth, bool):  # Python callers and old YAML files: true / false
            self.use_depth = "true" if self.use_depth else "false"
        if self.use_depth not in USE_DEPTH:
            raise ValueError(f"pipeline.use_depth must be one of {', '.join(USE_DEPTH)}, got {self.use_depth!r}")
        for name in ("image_height", "image_width"):
            v = getattr(self, name)
            if v < 0 or v % 14:
                raise ValueError(f"pipeline.{name} must be a positive multiple of 14 (or 0: the model's native "
                                 f"size), got {v}")
        if (self.image_height == 0) != (self.image_width == 0):
            raise ValueError("pipeline.image_height and image_width: give both, or neither (0: the model's native size)")
        if not self.max_alignment_error > 0 or not self.max_depth_ratio_spread > 0:
            raise ValueError("pipeline.max_alignment_error and max_depth_ratio_spread must be positive")
        if self.window_size < 1:
            raise ValueError("pipeline.window_size must be >= 1")
        if self.every_n_frames < 0:
            raise ValueError("pipeline.every_n_frames must be >= 0 (0 = only on ~/reconstruct)")
        if self.buffer_size < self.window_size:
            raise ValueError(f"pipeline.buffer_size ({self.buffer_size}) must be >= window_size ({self.window_size})")
        if self.sync_slop <= 0 or self.sync_queue_size < 1:
            # message_filters' rule is a strict "spread < slop": 0 would never match anything
            raise ValueError("pipeline.sync_slop must be > 0 and sync_queue_size >= 1")
        if not 0 < self.depth_min < self.depth_max:
            raise ValueError("pipeline.depth_min must be positive and below depth_max")
        if not (isinstance(self.max_memory_mb, (int, float)) and self.max_memory_mb >= 0):
            raise ValueError(f"pipeline.max_memory_mb must be >= 0 (0: 80 % of the memory available), got {self.max_memory_mb!r}")
        if self.depth_scale <= 0 or self.max_frame_age <= 0 or self.max_future_stamp <= 0 or self.max_buffer_mb <= 0:
            raise ValueError("pipeline.depth_scale, max_frame_age, max_future_stamp and max_buffer_mb must be positive")
        return self


@dataclass
class OutputConfig:
    map_frame: str = "map"  # frame of the outputs when TF (or a pose topic) gives the camera poses
    max_cloud_points: int = 200_000  # clouds are voxel-downsampled to at most this many points
    min_opacity: float = 0.1  # Gaussians more transparent than this are not published

    def validate(self) -> "OutputConfig":
        if self.max_cloud_points < 1:
            raise ValueError("output.max_cloud_points must be >= 1")
        if not self.map_frame:
            raise ValueError("output.map_frame must not be empty")
        return self


@dataclass
class TextSettings(TextEncoderConfig):
    """The run's text encoder: empty ``encoder``, ``model`` and ``pretrained`` = the model folder's own encoder
    (the EPS3D release's: open_clip ViT-B-32 / openai). ``pretrained: random`` gives random weights (tests only)."""

    encoder: str = ""
    model: str = ""
    pretrained: str = ""


@dataclass
class MapSettings(MapConfig):
    """The node's object map: the map's rules (:class:`~eps3d_ros.mapping.config.MapConfig`) and where its map
    services may write and read (eps3d_ros/io/map_paths.py). Set at start only: a client on the ROS domain must
    not be able to widen them with a parameter change."""

    # ~/save_map and ~/load_map take names or paths inside this folder ("" = $ROS_HOME/eps3d_maps, i.e.
    # ~/.ros/eps3d_maps when ROS_HOME is unset); created on the first save
    directory: str = ""
    allow_any_path: bool = False  # true: any path the node's user may write or read (a trusted domain only)

    def validate(self) -> "MapSettings":
        super().validate()
        if not isinstance(self.directory, str):
            raise ValueError(f"map.directory must be a folder path (a string), got {self.directory!r}")
        if not isinstance(self.allow_any_path, bool):
            raise ValueError(f"map.allow_any_path must be true or false, got {self.allow_any_path!r}")
        return self


@dataclass
class Eps3dConfig:
    model: ModelSourceConfig = field(default_factory=ModelSourceConfig)
    text: TextSettings = field(default_factory=TextSettings)
    panoptic: PanopticConfig = field(default_factory=PanopticConfig)
    input: InputConfig = field(default_factory=InputConfig)  # the cameras (eps3d_ros/settings/cameras.py)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    map: MapSettings = field(default_factory=MapSettings)  # the object map (eps3d_ros.mapping) and its files

    def validate(self) -> "Eps3dConfig":
        self.model.validate()
        self.panoptic.validate()
        self.input.validate()
        self.pipeline.validate()
        self.output.validate()
        self.map.validate()
        return self

    def camera_use_depth(self, name: str) -> str:
        """``input.<name>.use_depth``, or ``pipeline.use_depth`` where the camera does not say."""
        return self.input.camera(name).use_depth or self.pipeline.use_depth


def config_leaves(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted.name: value}`` of every leaf of a dataclass tree (lists copied). A dict field whose metadata names
    ``keyed_by`` (a list field beside it) gives the leaves ``<key>.<leaf>`` of the entry of each key in that list:
    ``input.head.use_depth`` for ``input.cameras: [head]``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = f"{prefix}{f.name}"
        keyed_by = f.metadata.get("keyed_by")
        if keyed_by:
            for key in getattr(config, keyed_by):
                out.update(config_leaves(getattr(config, f.metadata["entry"])(key), f"{prefix}{key}."))
        elif dataclasses.is_dataclass(value):
            out.update(config_leaves(value, name + "."))
        else:
            out[name] = list(value) if isinstance(value, list) else value
    return out
