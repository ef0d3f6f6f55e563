"""ROS parameters mirroring the config dataclass tree: one parameter per leaf, dotted names.

``Eps3dConfig().model.weights`` is the parameter ``model.weights``, ``pipeline.window_size`` and so on;
``config/eps3d.yaml`` lists the same leaves (a test keeps them in step). Values are read back into the
dataclasses and validated (:mod:`eps3d_ros.settings.dotted`), so a bad value fails the transition with a
message naming the parameter; a parameter the node does not declare is named at start-up with the nearest
declared one (:func:`unknown_parameters`).
"""

from __future__ import annotations

from rcl_interfaces.msg import ParameterDescriptor, ParameterType

from ..settings.dotted import config_from_values, unknown_names
from ..settings.tree import RUNTIME_SETTINGS, START_ONLY_SETTINGS, Eps3dConfig, config_leaves

# Parameters that may change while the node runs; everything else needs a reconfigure.
RUNTIME_PARAMETERS = RUNTIME_SETTINGS
leaves = config_leaves
BOOL_OR_STRING = frozenset({"pipeline.use_depth"})

_ROS_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
    list: ParameterType.PARAMETER_STRING_ARRAY,  # the only lists in the tree are lists of names
}


def declare_parameters(node, config: Eps3dConfig | None = None) -> None:
    """Declare every leaf with its default and type; runtime-changeable ones say so in the description."""
    for name, default in leaves(config or Eps3dConfig()).items():
        kind = _ROS_TYPES[type(default)]
        descriptor = ParameterDescriptor(
            type=kind,
            description=("changes at runtime" if name in RUNTIME_PARAMETERS else
                         "set at start only (read-only)" if name in START_ONLY_SETTINGS else "applies on configure"),
            read_only=name in START_ONLY_SETTINGS,
            # YAML writes 1 for 1.0: accept integers for doubles and convert them when reading; older files say
            # `use_depth: true` for what is now auto | true | false.
            dynamic_typing=kind == ParameterType.PARAMETER_DOUBLE or name in BOOL_OR_STRING,
        )
        node.declare_parameter(name, default, descriptor)


def config_from_node(node) -> Eps3dConfig:
    names = list(leaves(Eps3dConfig()))
    return config_from_values({n: node.get_parameter(n).value for n in names})


def unknown_parameters(node) -> dict[str, str | None]:
    """Parameters given to ``node`` (command line, parameter file, overrides) that it does not declare, each with
    the nearest declared name: rclpy drops them without a word, so a typo would silently keep the default."""
    given = getattr(node, "_parameter_overrides", {})  # rclpy keeps what it was given here; no public accessor
    return unknown_names(sorted(given), node.get_parameters_by_prefix(""))
