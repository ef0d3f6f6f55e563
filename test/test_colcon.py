"""The ROS user's own path: ``colcon build --packages-select eps3d_ros`` in a temporary workspace (against a
sourced ROS 2, or the ROS wheels' ament_cmake in this venv, with colcon from PyPI: the ``colcon`` extra), then the
installed ``eps3d_node`` started from ``install/`` with the installed two-camera parameter file: it imports the
installed package, subscribes to both cameras and answers its services; SIGINT ends it with code 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO
from helpers.node_client import NodeClient, stop_node

DEMO = REPO / "models" / "demo_tiny"


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    if not env.get("ROS_DISTRO"):  # the wheels: the venv is the prefix ament_cmake and the interfaces live in
        env["AMENT_PREFIX_PATH"] = env["CMAKE_PREFIX_PATH"] = sys.prefix
    env["VIRTUAL_ENV"] = sys.prefix  # CMake's FindPython3 takes the venv's interpreter (torch is there)
    env.pop("PYTHONPATH", None)  # what runs must come from install/, not from the sources
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_colcon_build_installs_a_node_that_starts_with_two_cameras(tmp_path) -> None:
    env = _build_env()
    colcon = shutil.which("colcon", path=env["PATH"])
    assert colcon, "colcon not found: pip install -c .venv/constraints.txt -e '.[colcon]' (or source a ROS 2)"
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "eps3d_ros").symlink_to(REPO)
    build = subprocess.run([colcon, "build", "--packages-select", "eps3d_ros", "--event-handlers", "console_cohesion+"],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=800)
    assert build.returncode == 0, (build.stdout + build.stderr)[-4000:]
    prefix = ws / "install" / "eps3d_ros"
    node_bin = prefix / "lib" / "eps3d_ros" / "eps3d_node"
    params = prefix / "share" / "eps3d_ros" / "config" / "two_cameras.yaml"
    assert node_bin.is_file() and os.access(node_bin, os.X_OK) and params.is_file()
    assert (prefix / "share" / "eps3d_ros" / "launch" / "eps3d.launch.py").is_file()

    setup = ws / "install" / "setup.bash"
    where = subprocess.run(["bash", "-c", f"source {setup} && exec {sys.executable} -c "
                            "'import eps3d_ros, eps3d_ros.msg; print(eps3d_ros.__file__)'"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0 and where.stdout.strip().startswith(str(prefix)), where.stdout + where.stderr

    log = (tmp_path / "node.log").open("w")
    proc = subprocess.Popen(["bash", "-c", f"source {setup} && exec {node_bin} --ros-args --params-file {params} "
                             f"-p model.weights:={DEMO} -r __ns:=/built"], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    client = NodeClient("/built", cameras={c: (f"{c}/image", f"{c}/camera_info", f"{c}/depth") for c in ("head", "wrist")})
    try:
        assert client.query.wait_for_service(timeout_sec=180), (tmp_path / "node.log").read_text()[-3000:]
        assert client.wait_until_heard(cameras=True, pose=False), "the installed node did not subscribe to both cameras"
        assert client.wait_for(lambda: "active:" in (tmp_path / "node.log").read_text(), 30)
        output = (tmp_path / "node.log").read_text()
        assert "head: head/image, head/camera_info, head/depth" in output and "wrist: wrist/image" in output, output
    finally:
        client.close()
        proc.log_file = log
        code = stop_node(proc)  # SIGINT, then the exit code (or "killed" after 60 s)
    output = (tmp_path / "node.log").read_text()
    assert code == 0 and "Traceback" not in output, output[-3000:]
