"""The cameras a session reads: ``input.cameras`` (names) and each camera's own settings ``input.<name>.*``.

    input:
      cameras: [head, wrist]      # the node subscribes head/image, head/camera_info, head/depth, wrist/...
      head:
        use_depth: ""             # "" = pipeline.use_depth; auto | true | false
        max_rate_hz: 0.0          # 0 = every frame
      wrist:
        max_rate_hz: 5.0

A camera named ``NAME`` reads ``NAME/image``, ``NAME/camera_info`` and ``NAME/depth`` (relative names, so a
namespace or a remap moves them) unless its ``image_topic`` / ``info_topic`` / ``depth_topic`` say otherwise. The
default is ONE camera, ``camera``, whose topics are the names the node always had (``rgb/image``,
``rgb/camera_info``, ``depth/image``), so launch files and remaps written for one camera keep working.

The per-camera settings are leaves of the one settings tree (``input.head.use_depth`` is a node parameter, a
``--set`` name and a YAML key), listed for the cameras ``input.cameras`` names: see
:func:`~eps3d_ros.settings.tree.config_leaves`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

__all__ = ["DEFAULT_CAMERA", "CameraSettings", "InputConfig", "camera_topics"]

DEFAULT_CAMERA = "camera"
USE_DEPTH_CHOICES = ("", "auto", "true", "false")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # a ROS name token: the camera name is a topic namespace


@dataclass
class CameraSettings:
    """One camera's settings (``input.<name>.*``)."""

    image_topic: str = ""  # colour sensor_msgs/Image; "" = <name>/image
    info_topic: str = ""  # its CameraInfo; "" = <name>/camera_info
    depth_topic: str = ""  # depth registered to the colour image; "" = <name>/depth
    use_depth: str = ""  # "" = pipeline.use_depth; auto | true | false
    max_rate_hz: float = 0.0  # frames per second taken from this camera, by stamp (0 = all)

    def validate(self, name: str) -> "CameraSettings":
        if isinstance(self.use_depth, bool):  # YAML `use_depth: false`
            self.use_depth = "true" if self.use_depth else "false"
        if self.use_depth not in USE_DEPTH_CHOICES:
            raise ValueError(f"input.{name}.use_depth must be one of auto, true, false (or empty: "
                             f"pipeline.use_depth), got {self.use_depth!r}")
        if not (float(self.max_rate_hz) >= 0 and math.isfinite(float(self.max_rate_hz))):
            raise ValueError(f"input.{name}.max_rate_hz must be >= 0 (0: every frame), got {self.max_rate_hz!r}")
        for key in ("image_topic", "info_topic", "depth_topic"):
            topic = getattr(self, key)
            if topic and (" " in topic or topic.endswith("/")):
                raise ValueError(f"input.{name}.{key} is not a topic name: {topic!r}")
        return self


def _default_cameras() -> dict[str, CameraSettings]:
    return {DEFAULT_CAMERA: CameraSettings(image_topic="rgb/image", info_topic="rgb/camera_info",
                                           depth_topic="depth/image")}


@dataclass
class InputConfig:
    """Which cameras, and how long a frame may wait for what it needs (its depth decision, its transform)."""

    cameras: list[str] = field(default_factory=lambda: [DEFAULT_CAMERA])
    # Once some camera's frames have poses (TF reaches the map frame), a frame whose transform is not there yet
    # waits this long (seconds, wall time) for it, then is dropped with a diagnostic naming the transform: a
    # camera whose TF is missing never puts unposed views into a metric map, and the other cameras go on.
    tf_timeout: float = 0.5
    # With use_depth auto and a node publishing on the depth topic: how long (seconds of stamps, or of wall time
    # when frames stop) colour frames are held before it is decided that no depth comes. With no publisher on
    # the depth topic it is decided at once.
    depth_timeout: float = 2.0
    # Per camera settings, the leaves input.<name>.* of the cameras listed (see the module docstring).
    camera_settings: dict[str, CameraSettings] = field(default_factory=_default_cameras,
                                                       metadata={"keyed_by": "cameras", "entry": "camera"})

    def camera(self, name: str) -> CameraSettings:
        """The settings of camera ``name`` (defaults until set)."""
        if name not in self.camera_settings:
            self.camera_settings[name] = CameraSettings()
        return self.camera_settings[name]

    def validate(self) -> "InputConfig":
        names = list(self.cameras)
        if not names:
            raise ValueError("input.cameras must name at least one camera")
        reserved = {f.name for f in dataclasses.fields(self)}
        for name in names:
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(f"input.cameras: {name!r} is not a camera name (letters, digits and _, starting "
                                 "with a letter: it becomes a topic namespace)")
            if name in reserved:
                raise ValueError(f"input.cameras: {name!r} is the name of a setting of input; name the camera "
                                 "otherwise")
        if len(set(names)) != len(names):
            raise ValueError(f"input.cameras names a camera twice: {names}")
        if not (self.tf_timeout >= 0 and math.isfinite(self.tf_timeout)):
            raise ValueError(f"input.tf_timeout must be >= 0 seconds, got {self.tf_timeout!r}")
        if not (self.depth_timeout > 0 and math.isfinite(self.depth_timeout)):
            raise ValueError(f"input.depth_timeout must be > 0 seconds, got {self.depth_timeout!r}")
        for name in names:
            self.camera(name).validate(name)
        return self


def camera_topics(name: str, settings: CameraSettings) -> dict[str, str]:
    """``{"rgb" | "info" | "depth": topic}`` of camera ``name`` (relative unless the settings give absolute ones)."""
    return {"rgb": settings.image_topic or f"{name}/image", "info": settings.info_topic or f"{name}/camera_info",
            "depth": settings.depth_topic or f"{name}/depth"}
