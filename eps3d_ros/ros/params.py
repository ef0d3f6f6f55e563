"""ROS parameters mirroring the config dataclass tree: one parameter per leaf, dotted names.

``Eps3dConfig().model.weights`` is the parameter ``model.weights``, ``pipeline.window_size`` and so on;
``config/eps3d.yaml`` lists the same leaves (a test keeps them in step). Each camera's settings
``input.<name>.*`` are declared for the cameras ``input.cameras`` names (and for any camera whose settings were
given, so that a parameter file written for other cameras is not an error: :func:`declare_camera_parameters`).
Values are read back into the dataclasses and validated (:mod:`eps3d_ros.settings.dotted`), so a bad value
fails the transition with a message naming the parameter; a parameter the node does not declare is named at
start-up with the nearest declared one (:func:`unknown_parameters`).
"""

from __future__ import annotations

from rcl_interfaces.msg import ParameterDescriptor, ParameterType

from ..settings.cameras import CameraSettings
from ..settings.dotted import config_from_values, unknown_names
from ..settings.tree import RUNTIME_SETTINGS, START_ONLY_SETTINGS, Eps3dConfig, config_leaves

# Parameters that may change while the node runs; everything else needs a reconfigure.
RUNTIME_PARAMETERS = RUNTIME_SETTINGS
leaves = config_leaves
BOOL_OR_STRING = frozenset({"pipeline.use_depth"})
_CAMERA_LEAVES = config_leaves(CameraSettings())

_ROS_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
    list: ParameterType.PARAMETER_STRING_ARRAY,  # the only lists in the tree are lists of names
}


def declare_parameters(node, config: Eps3dConfig | None = None) -> list[str]:
    """Declare every leaf with its default and type (runtime-changeable ones say so in the description), and the
    cameras' settings (:func:`declare_camera_parameters`, whose result it returns)."""
    for name, default in leaves(config or Eps3dConfig()).items():
        _declare(node, name, default)
    return declare_camera_parameters(node)


def _declare(node, name: str, default) -> None:
    if node.has_parameter(name):
        return
    kind = _ROS_TYPES[type(default)]
    descriptor = ParameterDescriptor(
        type=kind,
        description=("changes at runtime" if name in RUNTIME_PARAMETERS else
                     "set at start only (read-only)" if name in START_ONLY_SETTINGS else "applies on configure"),
        read_only=name in START_ONLY_SETTINGS,  # where map files may be written: not for other participants to move
        # YAML writes 1 for 1.0: accept integers for doubles and convert them when reading; older files say
        # `use_depth: true` for what is now auto | true | false.
        dynamic_typing=kind == ParameterType.PARAMETER_DOUBLE or name in BOOL_OR_STRING
        or name.endswith(".use_depth"),
    )
    node.declare_parameter(name, default, descriptor)


def declare_camera_parameters(node) -> list[str]:
    """Declare ``input.<name>.*`` for the cameras ``input.cameras`` lists now and for every camera whose settings
    were given (parameter file, command line); returns the names of those given but not listed (ignored)."""
    listed = list(node.get_parameter("input.cameras").value)
    given = getattr(node, "_parameter_overrides", {})
    named = [n.split(".")[1] for n in given if n.startswith("input.") and n.count(".") == 2
             and n.split(".")[2] in _CAMERA_LEAVES]
    defaults = Eps3dConfig().input
    for camera in dict.fromkeys(listed + named):
        for leaf, value in config_leaves(defaults.camera(camera)).items():
            _declare(node, f"input.{camera}.{leaf}", value)
    return sorted(set(named) - set(listed))


def config_from_node(node) -> Eps3dConfig:
    base = Eps3dConfig()
    base.input.cameras = list(node.get_parameter("input.cameras").value)
    names = list(leaves(base))
    return config_from_values({n: node.get_parameter(n).value for n in names})


def unknown_parameters(node) -> dict[str, str | None]:
    """Parameters given to ``node`` (command line, parameter file, overrides) that it does not declare, each with
    the nearest declared name: rclpy drops them without a word, so a typo would silently keep the default."""
    given = getattr(node, "_parameter_overrides", {})  # rclpy keeps what it was given here; no public accessor
    return unknown_names(sorted(given), node.get_parameters_by_prefix(""))
