"""ROS parameters mirroring the config dataclass tree: one parameter per leaf, dotted names.

``Eps3dConfig().model.weights`` is the parameter ``model.weights``, ``panoptic.clustering.min_cluster_size``
and so on; ``config/eps3d.yaml`` lists the same leaves (a test keeps them in step). Values are read
back into the dataclasses and validated, so a bad value fails the transition with a message naming
the parameter.
"""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, ParameterType

from ..settings.tree import RUNTIME_SETTINGS, Eps3dConfig, config_leaves

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
            description="changes at runtime" if name in RUNTIME_PARAMETERS else "applies on configure",
            # YAML writes 1 for 1.0: accept integers for doubles and convert them when reading; older files say
            # `use_depth: true` for what is now auto | true | false.
            dynamic_typing=kind == ParameterType.PARAMETER_DOUBLE or name in BOOL_OR_STRING,
        )
        node.declare_parameter(name, default, descriptor)


def config_from_values(values: dict[str, Any], base: Eps3dConfig | None = None) -> Eps3dConfig:
    """Build and validate a config from ``{dotted.name: value}``; unknown names or bad types are errors."""
    config = base or Eps3dConfig()
    known = leaves(config)
    for name, value in values.items():
        if name not in known:
            raise ValueError(f"unknown parameter {name!r}")
        _assign(config, name, _coerce(name, value, known[name]))
    return config.validate()


def config_from_node(node) -> Eps3dConfig:
    names = list(leaves(Eps3dConfig()))
    return config_from_values({n: node.get_parameter(n).value for n in names})


def _coerce(name: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, bool):  # YAML `use_depth: true` for a "true" / "false" / "auto" setting
        return "true" if value else "false"
    if kind is list:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"parameter {name} must be a list of strings, got {value!r}")
        return [v.strip() for v in value]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"parameter {name} must be {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _assign(config: Any, dotted: str, value: Any) -> None:
    *path, leaf = dotted.split(".")
    target = config
    for part in path:
        target = getattr(target, part)
    setattr(target, leaf, value)
