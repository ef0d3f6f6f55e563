"""Settings by dotted name (``pipeline.window_size``, ``panoptic.clustering.hdbscan.min_cluster_size``): the one
way to read, set and check a leaf of a config tree, for the node's parameters, the CLI's ``--set``, a model
folder's recommended settings and :meth:`~eps3d_ros.pipeline.session.Session.from_model_dir`.

Values are coerced the way ROS parameters and YAML give them: an int for a float, ``true``/``false`` for a
setting that takes the strings ``"true"``/``"false"``, a list of names. An unknown name is an error that names the
nearest known one.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .tree import RENAMED, Eps3dConfig, config_leaves

__all__ = ["config_from_values", "get_dotted", "nearest_name", "set_dotted", "unknown_names"]


def nearest_name(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (its new name, a typo, or a setting named without its section), or None."""
    known = list(known)
    if RENAMED.get(name) in known:
        return RENAMED[name]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    leaf = name.rsplit(".", 1)[-1]
    same_leaf = [k for k in known if k.rsplit(".", 1)[-1] == leaf]
    return same_leaf[0] if len(same_leaf) == 1 else None


def unknown_names(names: Iterable[str], known: Iterable[str]) -> dict[str, str | None]:
    """``{name: nearest known name or None}`` for every name of ``names`` that is not known."""
    known = set(known)
    return {n: nearest_name(n, known) for n in names if n not in known}


def _unknown(name: str, known: Iterable[str], what: str) -> ValueError:
    near = nearest_name(name, known)
    return ValueError(f"unknown {what} {name!r}" + (f" (did you mean {near!r}?)" if near else ""))


def get_dotted(config: Any, name: str) -> Any:
    target = config
    for part in name.split("."):
        target = _child(target, part)
    return target


def _child(target: Any, part: str) -> Any:
    """``target.part``, or the entry ``part`` of a keyed dict field (``input.head`` → the settings of camera head)."""
    if dataclasses.is_dataclass(target) and part not in {f.name for f in dataclasses.fields(target)}:
        for f in dataclasses.fields(target):
            if f.metadata.get("keyed_by") and part in getattr(target, f.metadata["keyed_by"]):
                return getattr(target, f.metadata["entry"])(part)
    return getattr(target, part)


def set_dotted(config: Any, values: Mapping[str, Any], what: str = "setting") -> Any:
    """Set the leaves ``{dotted.name: value}`` of the dataclass tree ``config`` in place (coerced to the leaf's
    type) and return it; an unknown name or a value of another type is a ``ValueError`` naming it. Nothing is
    set when any value is wrong. Lists that key other leaves (``input.cameras``) are read first, so that
    ``{"input.cameras": ["head"], "input.head.use_depth": "false"}`` sets both."""
    known = config_leaves(config)
    keys = {name: value for name, value in values.items() if name in _key_lists(config)}
    if keys:
        trial = copy.deepcopy(config)
        for name, value in keys.items():
            *path, leaf = name.split(".")
            setattr(get_dotted(trial, ".".join(path)), leaf, _coerce(name, value, known[name], what))
        known = config_leaves(trial)
    coerced = {}
    for name, value in values.items():
        if name not in known:
            raise _unknown(name, known, what)
        coerced[name] = _coerce(name, value, known[name], what)
    for name, value in sorted(coerced.items(), key=lambda item: item[0] not in keys):  # key lists first
        *path, leaf = name.split(".")
        setattr(get_dotted(config, ".".join(path)) if path else config, leaf, value)
    return config


def _key_lists(config: Any, prefix: str = "") -> set[str]:
    """Dotted names of the list leaves that key other leaves (``input.cameras``)."""
    out: set[str] = set()
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("keyed_by"):
            out.add(f"{prefix}{f.metadata['keyed_by']}")
        elif dataclasses.is_dataclass(value):
            out |= _key_lists(value, f"{prefix}{f.name}.")
    return out


def config_from_values(values: Mapping[str, Any], base: Eps3dConfig | None = None,
                       what: str = "parameter") -> Eps3dConfig:
    """A validated :class:`~eps3d_ros.settings.Eps3dConfig` from ``{dotted.name: value}`` over ``base``."""
    return set_dotted(base or Eps3dConfig(), values, what).validate()


def _coerce(name: str, value: Any, default: Any, what: str) -> Any:
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, bool):  # YAML `use_depth: true` for a "true" / "false" / "auto" setting
        return "true" if value else "false"
    if kind is list:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{what} {name} must be a list of strings, got {value!r}")
        return [v.strip() for v in value]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{what} {name} must be {kind.__name__}, got {type(value).__name__} {value!r}")
    return value
