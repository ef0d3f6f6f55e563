"""The configuration tree of the perception pipeline (what the ROS node, the CLI and config/*.yaml share).

One dataclass tree; the node declares one ROS parameter per leaf with dotted names
(``model.weights``, ``pipeline.window_size``, ``panoptic.clustering.min_cluster_size`` ...), and
``config/eps3d.yaml`` lists the same leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..panoptic.config import PanopticConfig
from ..panoptic.text import TextEncoderConfig


@dataclass
class ModelSourceConfig:
    """Where the network comes from."""

    weights: str = ""  # directory or file for EPS3D.from_pretrained; "" = the preset with random weights
    preset: str = "tiny"  # used when weights == "" (tests and demos only)
    config: str = ""  # optional config JSON overriding what the weights carry
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda", "cuda:1"
    allow_random_weights: bool = False  # refuse to start without weights unless explicitly allowed
    threads: int = -1  # CPU threads: -1 all cores but one, 0 torch's default, N exactly N (pipeline/threads.py)

    def validate(self) -> "ModelSourceConfig":
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < -1:
            raise ValueError(f"model.threads must be an int >= -1, got {self.threads!r}")
        if not self.weights and not self.allow_random_weights:
            raise ValueError("model.weights is empty: give the path of EPS3D weights "
                             "(or set model.allow_random_weights for tests)")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"model.device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        return self


@dataclass
class PipelineConfig:
    """Frames → windows of keyframes → one inference thread."""

    image_height: int = 224  # frames are resized to this (a multiple of 14) before the network
    image_width: int = 224
    window_size: int = 4  # keyframes per reconstruction (V)
    every_n_frames: int = 8  # reconstruct after this many new synchronized frames (0 = only on request)
    buffer_size: int = 32  # frames kept; older ones are dropped (counted)
    keyframe_min_interval: float = 0.2  # seconds between keyframes
    keyframe_min_translation: float = 0.05  # metres of camera motion between keyframes (when poses are known)
    keyframe_min_rotation: float = 5.0  # degrees of camera rotation between keyframes (when poses are known)
    max_frame_age: float = 5.0  # seconds; frames older than the newest by more are stale
    use_depth: bool = True  # use depth images when they arrive (metric scale)
    depth_scale: float = 0.001  # metres per unit of 16UC1 depth (32FC1 is already metres)
    depth_min: float = 0.1  # metres; measurements outside [min, max] are invalid
    depth_max: float = 10.0
    use_measured_depth: bool = False  # with depth + TF: measured depth for Gaussian centres
    sync_slop: float = 0.05  # seconds; approximate time synchronisation
    sync_queue_size: int = 10

    def validate(self) -> "PipelineConfig":
        for name in ("image_height", "image_width"):
            v = getattr(self, name)
            if v <= 0 or v % 14:
                raise ValueError(f"pipeline.{name} must be a positive multiple of 14, got {v}")
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
        if self.depth_scale <= 0 or self.max_frame_age <= 0:
            raise ValueError("pipeline.depth_scale and max_frame_age must be positive")
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
class Eps3dConfig:
    model: ModelSourceConfig = field(default_factory=ModelSourceConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    panoptic: PanopticConfig = field(default_factory=PanopticConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def validate(self) -> "Eps3dConfig":
        self.model.validate()
        self.panoptic.validate()
        self.pipeline.validate()
        self.output.validate()
        return self
