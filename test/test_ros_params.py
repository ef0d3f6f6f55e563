"""Node parameters mirror the config dataclasses, and config/eps3d.yaml lists exactly those leaves."""

from __future__ import annotations

from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.node import Node
from rclpy.parameter import Parameter

from eps3d_ros.settings.tree import Eps3dConfig
from eps3d_ros.ros.params import config_from_node, config_from_values, declare_parameters, leaves

YAML = Path(__file__).resolve().parents[1] / "config" / "eps3d.yaml"
NODE_ONLY = {"autostart", "input_qos"}


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def yaml_values() -> dict:
    return flatten(yaml.safe_load(YAML.read_text())["eps3d_node"]["ros__parameters"])


def test_yaml_lists_every_leaf_and_nothing_else() -> None:
    assert set(yaml_values()) - NODE_ONLY == set(leaves(Eps3dConfig()))


def test_yaml_defaults_equal_dataclass_defaults() -> None:
    values = {k: v for k, v in yaml_values().items() if k not in NODE_ONLY}
    defaults = leaves(Eps3dConfig())
    for name, value in values.items():
        assert value == pytest.approx(defaults[name]) if isinstance(value, float) else value == defaults[name], name


def test_values_validate_with_named_errors() -> None:
    values = {k: v for k, v in yaml_values().items() if k not in NODE_ONLY}
    values["model.allow_random_weights"] = True
    cfg = config_from_values(values)
    assert cfg.pipeline.window_size == 4 and cfg.panoptic.clustering.hdbscan.min_cluster_size == 0  # 0: the model's
    assert cfg.pipeline.use_depth == "auto" and cfg.pipeline.image_height == 0 and cfg.text.model == ""
    with pytest.raises(ValueError, match="model.weights is empty"):
        config_from_values({**values, "model.allow_random_weights": False})
    with pytest.raises(ValueError, match="pipeline.image_height must be a positive multiple of 14"):
        config_from_values({**values, "pipeline.image_height": 100})
    with pytest.raises(ValueError, match="parameter pipeline.window_size must be int"):
        config_from_values({**values, "pipeline.window_size": "four"})
    with pytest.raises(ValueError, match="unknown parameter 'pipeline.nope'"):
        config_from_values({**values, "pipeline.nope": 1})
    with pytest.raises(ValueError, match="vocabulary must be a non-empty list"):
        config_from_values({**values, "panoptic.vocabulary": []})
    with pytest.raises(ValueError, match="give both, or neither"):
        config_from_values({**values, "pipeline.image_height": 112})
    with pytest.raises(ValueError, match="pipeline.use_depth must be one of auto, true, false"):
        config_from_values({**values, "pipeline.use_depth": "maybe"})
    # YAML writes 1 for 1.0: integers are accepted for doubles; older files say `use_depth: true`
    assert config_from_values({**values, "pipeline.sync_slop": 1}).pipeline.sync_slop == 1.0
    assert config_from_values({**values, "pipeline.use_depth": True}).pipeline.use_depth == "true"


def test_declared_on_a_real_node_and_read_back() -> None:
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "--params-file", str(YAML),
                                  "-p", "model.allow_random_weights:=true", "-p", "pipeline.window_size:=3"])
    try:
        node = Node("eps3d_node", context=ctx)
        declare_parameters(node)
        cfg = config_from_node(node)
        assert cfg.pipeline.window_size == 3 and cfg.model.allow_random_weights
        assert cfg.panoptic.vocabulary[:3] == ["floor", "wall", "table"]
        node.set_parameters([Parameter("pipeline.sync_slop", Parameter.Type.INTEGER, 1)])
        assert config_from_node(node).pipeline.sync_slop == 1.0
        node.set_parameters([Parameter("pipeline.use_depth", Parameter.Type.BOOL, False)])  # an older YAML's bool
        assert config_from_node(node).pipeline.use_depth == "false"
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
