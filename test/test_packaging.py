"""Packaging checks: package.xml vs setup.py vs CMakeLists.txt (one ament_cmake package with our
interfaces and the Python package), the installed distribution, and the rule that only
``eps3d_ros/ros/`` may touch ROS (everything else must import without a ROS install)."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
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


def _deps(package_xml, *tags) -> set[str]:
    return {e.text.strip() for tag in tags for e in package_xml.findall(tag)}


# The packages our msg/srv files use (field types): build AND exec dependencies.
INTERFACE_DEPS = {"builtin_interfaces", "std_msgs", "geometry_msgs", "sensor_msgs"}


def test_package_xml_is_an_ament_cmake_interface_package(package_xml):
    assert package_xml.findtext("export/build_type") == "ament_cmake"
    assert {"ament_cmake", "ament_cmake_python", "rosidl_default_generators"} <= _deps(package_xml, "buildtool_depend")
    assert INTERFACE_DEPS <= _deps(package_xml, "depend", "build_depend")
    assert INTERFACE_DEPS <= _deps(package_xml, "depend", "exec_depend")
    exec_deps = _deps(package_xml, "depend", "exec_depend")
    assert {"rclpy", "rosidl_default_runtime", "std_srvs", "visualization_msgs", "diagnostic_msgs",
            "lifecycle_msgs"} <= exec_deps
    assert "rosidl_interface_packages" in {e.text for e in package_xml.findall("member_of_group")}
    # Python dependencies come from setup.py through pip (scripts/setup.sh), never rosdep.
    python_keys = {d for d in _deps(package_xml, "depend", "build_depend", "exec_depend", "test_depend")
                   if d.startswith("python3-")}
    assert not python_keys, f"Python dependencies belong in setup.py, not package.xml: {python_keys}"


def _cmake() -> str:
    """CMakeLists.txt without comments (a '#' that starts a line or follows a blank)."""
    return re.sub(r"(^|\s)#[^\n]*", r"\1", (ROOT / "CMakeLists.txt").read_text())


def _interface_files() -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for d in ("msg", "srv", "action") for p in (ROOT / d).glob(f"*.{d}"))


def test_cmakelists_matches_package_xml_and_interface_files(package_xml):
    cmake = _cmake()
    m = re.search(r"project\(\s*(\w+)", cmake)
    assert m and m.group(1) == package_xml.findtext("name") == PKG
    m = re.search(r"rosidl_generate_interfaces\(\s*\$\{PROJECT_NAME\}(.*?)\)", cmake, re.S)
    assert m, "CMakeLists.txt does not call rosidl_generate_interfaces(${PROJECT_NAME} ...)"
    args = m.group(1).split()
    files = sorted(a.strip('"') for a in args if a.strip('"').endswith((".msg", ".srv", ".action")))
    assert files == _interface_files() == ["msg/Object3D.msg", "msg/ObjectArray.msg", "srv/LoadMap.srv",
                                                     "srv/QueryObjects.srv", "srv/SaveMap.srv"]
    assert "DEPENDENCIES" in args
    deps = set(args[args.index("DEPENDENCIES") + 1:])
    assert deps == INTERFACE_DEPS, "rosidl DEPENDENCIES must be the interface packages of package.xml"
    for dep in deps:
        assert re.search(rf"find_package\(\s*{dep}\s+REQUIRED", cmake), f"find_package({dep} REQUIRED) missing"
    # our Python package is installed over rosidl's generated one, so after rosidl_generate_interfaces
    install_py = re.search(r'install\(\s*DIRECTORY\s+eps3d_ros/\s+DESTINATION\s+"?\$\{PYTHON_INSTALL_DIR\}/', cmake)
    assert install_py and install_py.start() > m.start()
    assert "ament_python_install_package" not in cmake  # rosidl already called it for eps3d_ros
    assert cmake.rstrip().endswith("ament_package()")


def test_interface_files_name_only_declared_packages():
    # field types come from the packages above (all exist as PyPI wheels) or our own interfaces
    builtin = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
               "uint32", "int64", "uint64", "string", "wstring"}
    own = {Path(f).stem for f in _interface_files()}
    for f in _interface_files():
        for line in (ROOT / f).read_text().splitlines():
            line = line.split("#")[0].strip()
            if not line or line == "---":
                continue
            ftype = re.sub(r"(\[\d*\]|\[<=\d+\])$", "", line.split()[0])
            if "/" in ftype:
                assert ftype.split("/")[0] in INTERFACE_DEPS, f"{f}: {line}"
            else:
                assert ftype in builtin or ftype in own, f"{f}: {line}"


def test_ros_executables_are_installed_from_scripts():
    # `ros2 run eps3d_ros eps3d_node` / `eps3d`: CMakeLists.txt installs scripts/<name> into lib/eps3d_ros
    cmake = _cmake()
    assert re.search(r"DESTINATION\s+lib/\$\{PROJECT_NAME\}", cmake)
    for name, target in (("eps3d_node", "eps3d_ros.ros.node"), ("eps3d", "eps3d_ros.cli")):
        script = ROOT / "scripts" / name
        assert script.is_file() and os.access(script, os.X_OK), script
        text = script.read_text()
        assert text.startswith("#!") and "python3" in text.splitlines()[0]
        assert f"from {target} import main" in text
        assert f"scripts/{name}" in cmake or name in cmake


def test_installed_distribution_matches_sources(package_xml):
    dist = md.distribution(PKG)
    assert dist.version == package_xml.findtext("version")
    assert dist.metadata["Requires-Python"].replace(" ", "") in {">=3.10,<3.13", "<3.13,>=3.10"}
    requires = dist.requires or []
    assert any(r.startswith("torch") and "extra ==" not in r for r in requires), requires
    extras = set(dist.metadata.get_all("Provides-Extra") or [])
    assert {"gpu", "test", "ros-wheels", "ros-build"} <= extras


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
