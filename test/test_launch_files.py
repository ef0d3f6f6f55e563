"""The launch file and the rviz config: arguments, topics, and (where launch is installed) that it builds."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "eps3d.launch.py"


def declared_arguments() -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(LAUNCH.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            names.add(node.args[0].value)
    return names


def test_launch_arguments() -> None:
    assert declared_arguments() == {"config_file", "namespace", "model", "use_depth", "rviz"}
    src = LAUNCH.read_text()
    assert 'executable="eps3d_node"' in src and '"rviz", "eps3d.rviz"' in src


def test_rviz_shows_both_clouds_and_markers_with_latched_qos() -> None:
    cfg = yaml.safe_load((ROOT / "rviz" / "eps3d.rviz").read_text())
    displays = {d["Name"]: d for d in cfg["Visualization Manager"]["Displays"]}
    topics = {d["Topic"]["Value"]: d["Topic"] for d in displays.values() if "Topic" in d}
    assert set(topics) == {"/eps3d_node/semantic_cloud", "/eps3d_node/instance_cloud", "/eps3d_node/markers"}
    assert all(t["Durability Policy"] == "Transient Local" and t["Reliability Policy"] == "Reliable" for t in topics.values())


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros is not on PyPI; runs on ROS systems")
def test_launch_description_builds() -> None:  # pragma: no cover - needs a ROS distribution
    spec = importlib.util.spec_from_file_location("eps3d_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len(module.generate_launch_description().entities) == 7
