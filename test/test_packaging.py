"""Packaging checks: package.xml vs setup.py, the installed distribution, and the rule that
only ``eps3d_ros/ros/`` may touch ROS (everything else must import without a ROS install)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = "eps3d_ros"
PKG_DIR = ROOT / PKG
ROS_SUBPACKAGE = PKG_DIR / "ros"

# Top-level modules that need a ROS 2 installation.
ROS_MODULES = {
    "rclpy", "rosidl_runtime_py", "rosidl_parser", "ament_index_python", "launch", "launch_ros",
    "launch_testing", "tf2_ros", "tf2_py", "cv_bridge", "message_filters", "sensor_msgs_py",
    "rosbag2_py", "builtin_interfaces",
}
ROS_SUFFIXES = ("_msgs", "_srvs", "_interfaces")
# Our own generated interfaces (arrive with the node) are ROS too.
OWN_ROS_MODULES = (f"{PKG}.msg", f"{PKG}.srv", f"{PKG}.action")


def _setup_py_version() -> str:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VERSION" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no VERSION = '...'")


@pytest.fixture(scope="module")
def package_xml() -> ET.Element:
    return ET.parse(ROOT / "package.xml").getroot()


def test_package_xml_is_format3_and_matches_setup_py(package_xml):
    assert package_xml.tag == "package"
    assert package_xml.get("format") == "3"
    assert package_xml.findtext("name") == PKG
    assert package_xml.findtext("version") == _setup_py_version()
    assert package_xml.findtext("license")
    assert package_xml.find("maintainer").get("email")
    assert package_xml.findtext("export/build_type") == "ament_python"
    exec_deps = {e.text for e in package_xml.findall("exec_depend")}
    assert {"rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "visualization_msgs", "std_srvs"} <= exec_deps
    assert "python3-pytest" in {e.text for e in package_xml.findall("test_depend")}


def test_ament_resource_marker_exists():
    # setup.py installs it into share/ament_index/resource_index/packages/ (colcon/ros2 find the package by it)
    assert (ROOT / "resource" / PKG).is_file()


def test_installed_distribution_matches_sources(package_xml):
    dist = md.distribution(PKG)
    assert dist.version == package_xml.findtext("version")
    assert dist.metadata["Requires-Python"].replace(" ", "") in {">=3.10,<3.13", "<3.13,>=3.10"}
    requires = dist.requires or []
    assert any(r.startswith("torch") and "extra ==" not in r for r in requires), requires
    extras = set(dist.metadata.get_all("Provides-Extra") or [])
    assert {"gpu", "test"} <= extras


def test_console_script_eps3d_is_installed():
    eps = [ep for ep in md.entry_points(group="console_scripts") if ep.name == "eps3d"]
    assert len(eps) == 1 and eps[0].value == f"{PKG}.cli:main", eps
    assert eps[0].dist is not None and eps[0].dist.name.replace("-", "_") == PKG
    script = Path(sys.prefix) / "bin" / "eps3d"
    assert script.is_file() and os.access(script, os.X_OK), f"{script} missing: run scripts/setup.sh"


def test_eps3d_command_runs():
    script = Path(sys.prefix) / "bin" / "eps3d"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: eps3d" in out.stdout


def test_constraints_pin_the_installed_torch():
    # scripts/setup.sh must pin the torch the venv has, so later installs cannot replace it.
    constraints = Path(sys.prefix) / "constraints.txt"
    assert constraints.is_file(), f"{constraints} missing: run scripts/setup.sh"
    pins = {line.split("==")[0]: line.split("==")[1] for line in constraints.read_text().split() if "==" in line}
    assert pins.get("torch") == md.version("torch")


def _module_package(path: Path) -> list[str]:
    """The package a source file under ROOT belongs to, as name parts."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1]


def _imported_modules(path: Path, package: list[str]) -> set[str]:
    """Absolute names of the modules a source file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def _is_ros_module(name: str) -> bool:
    top = name.split(".")[0]
    return (
        top in ROS_MODULES
        or top.endswith(ROS_SUFFIXES)
        or any(name == m or name.startswith(m + ".") for m in OWN_ROS_MODULES)
    )


def test_only_the_ros_subpackage_imports_ros():
    sources = [p for p in PKG_DIR.rglob("*.py") if ROS_SUBPACKAGE not in p.parents]
    assert sources, f"no Python sources under {PKG_DIR}"
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in _imported_modules(p, _module_package(p)) if _is_ros_module(n))
        for p in sources
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"ROS imports outside {PKG}/ros/ (move that code into {PKG}/ros/): {offenders}"


def test_import_scan_catches_ros_imports(tmp_path):
    # the scanner itself: absolute, from-, relative (to our own msg) and import_module forms
    src = tmp_path / "probe.py"
    src.write_text(
        "import rclpy.node\nfrom sensor_msgs.msg import Image\nfrom ..msg import Panoptic\nfrom .io import load\n"
        "import importlib\nimportlib.import_module('std_srvs.srv')\nimport numpy\n"
    )
    tree_names = _imported_modules(src, [PKG, "model"])
    ros = {n for n in tree_names if _is_ros_module(n)}
    assert {"rclpy.node", "sensor_msgs.msg", f"{PKG}.msg", "std_srvs.srv"} <= ros
    assert {"numpy", f"{PKG}.model.io"} <= tree_names - ros


def test_import_eps3d_ros_is_light():
    # `import eps3d_ros` (e.g. for `eps3d --help`) must not drag in ROS or torch.
    probe = (
        "import sys, json\n"
        f"import {PKG}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'rclpy', 'torch', 'std_msgs', 'sensor_msgs', 'geometry_msgs', 'visualization_msgs'})))\n"
    )
    with tempfile.TemporaryDirectory() as cwd:  # import the installed package, not ./eps3d_ros
        out = subprocess.run(
            [sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120
        )
    assert out.returncode == 0, out.stderr
    heavy = out.stdout.strip().splitlines()[-1]
    assert heavy == "[]", f"`import {PKG}` imported {heavy}: import them lazily, where they are used"
