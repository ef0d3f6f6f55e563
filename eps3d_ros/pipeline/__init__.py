"""The perception pipeline between the ROS glue and the core: frames, keyframes, alignment, one inference worker.

No rclpy and no ROS message types here: the node converts messages to plain values and composes

    sync = ApproximateTimeSynchronizer(2, cfg.pipeline.sync_queue_size, cfg.pipeline.sync_slop, on_pair)
    frame = prepare_frame(Frame(stamp, decode_color(...), K, frame_id, depth=decode_depth(...), pose=pose_from_tf), box)
    buffer.add(frame); buffer.ready() → worker.submit(buffer.select_window())
    worker → Reconstructor.run(window) → SceneSnapshot → cloud_points(snapshot.scene, "semantic", ...)
"""

from ..geometry.alignment import (
    Alignment,
    AlignmentError,
    Sim3,
    camera_centers,
    depth_scale_ratio,
    metric_alignment,
    transform_gaussians,
    umeyama_sim3,
)
from ..geometry.cameras import Cameras, cameras_from_prediction
from ..panoptic.clouds import (
    CLOUD_DTYPE,
    UNKNOWN_LABEL,
    cloud_fields,
    cloud_points,
    cloud_to_bytes,
    instance_color,
    label_color,
    object_cloud,
    pack_rgb,
    unpack_rgb,
    voxel_downsample,
)
from ..settings.tree import Eps3dConfig, ModelSourceConfig, OutputConfig, PipelineConfig
from .frame_buffer import DROP_REASONS, AddResult, EmptyBufferError, FrameBuffer
from ..frames.frame import Frame, synthetic_frames
from ..frames.images import UnsupportedEncoding, decode_color, decode_depth
from ..frames.intake import fit_frame, network_size, prepare_frame, select_indices, select_keyframes, window_frames
from .reconstruct import Reconstructor, SceneSnapshot, measured_world_points
from ..frames.time_sync import ApproximateTimeSynchronizer
from .worker import InferenceWorker

__all__ = [
    "Alignment",
    "AlignmentError",
    "Sim3",
    "camera_centers",
    "depth_scale_ratio",
    "metric_alignment",
    "transform_gaussians",
    "umeyama_sim3",
    "Cameras",
    "cameras_from_prediction",
    "CLOUD_DTYPE",
    "UNKNOWN_LABEL",
    "cloud_fields",
    "cloud_points",
    "cloud_to_bytes",
    "instance_color",
    "label_color",
    "object_cloud",
    "pack_rgb",
    "unpack_rgb",
    "voxel_downsample",
    "Eps3dConfig",
    "ModelSourceConfig",
    "OutputConfig",
    "PipelineConfig",
    "DROP_REASONS",
    "AddResult",
    "EmptyBufferError",
    "FrameBuffer",
    "Frame",
    "synthetic_frames",
    "UnsupportedEncoding",
    "decode_color",
    "decode_depth",
    "fit_frame",
    "network_size",
    "prepare_frame",
    "select_indices",
    "select_keyframes",
    "window_frames",
    "Reconstructor",
    "SceneSnapshot",
    "measured_world_points",
    "ApproximateTimeSynchronizer",
    "InferenceWorker",
]
