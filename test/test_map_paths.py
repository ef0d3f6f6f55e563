"""Map files stay in ``map.directory``: the path rules (``eps3d_ros/io/map_paths.py``), a writer that never replaces
a file it did not write, and ``~/save_map`` / ``~/load_map`` of a node in another process asked for paths outside
(absolute, ``..``, symbolic links out) — refused, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import REPO
from helpers.synthetic import oracle_session
from eps3d_ros.io.map_paths import MapPathError, default_map_directory, map_directory, resolve_map_path

DEMO = REPO / "models" / "demo_tiny"


def test_names_and_paths_inside_resolve_and_everything_else_is_refused(tmp_path: Path) -> None:
    maps, outside = tmp_path / "maps", tmp_path / "outside"
    outside.mkdir()
    assert resolve_map_path("room.eps3d", maps, writing=True) == (maps / "room.eps3d").resolve()
    assert maps.is_dir() and oct(maps.stat().st_mode & 0o777) == "0o700"  # made on the first save, private
    (maps / "lab").mkdir()
    assert resolve_map_path("lab/room.eps3d", maps, writing=True).parent == (maps / "lab").resolve()
    assert resolve_map_path(str(maps / "room.eps3d"), maps) == (maps / "room.eps3d").resolve()  # absolute, inside
    (maps / "out").symlink_to(outside)  # a folder link out
    (maps / "profile.eps3d").symlink_to(outside / "profile")  # a file link out
    for bad in ["../room.eps3d", "lab/../../room.eps3d", str(outside / "room.eps3d"), "out/room.eps3d",
                "profile.eps3d", "/etc/passwd", "."]:
        with pytest.raises(MapPathError, match="outside the map directory|is a folder"):
            resolve_map_path(bad, maps, writing=True)
    with pytest.raises(MapPathError):  # no home-folder expansion: a folder named "~" in the map directory
        resolve_map_path("~/.bashrc", maps, writing=True)
    with pytest.raises(MapPathError, match="empty path"):
        resolve_map_path("  ", maps)
    with pytest.raises(MapPathError, match="does not exist in the map directory"):
        resolve_map_path("no/such/room.eps3d", maps, writing=True)
    # the confinement lifted on request: any path, relative to the working directory
    assert resolve_map_path(str(outside / "room.eps3d"), maps, allow_any_path=True) == outside / "room.eps3d"


def test_the_default_directory_follows_ros_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ROS_HOME", str(tmp_path / "ros"))
    assert default_map_directory() == tmp_path / "ros" / "eps3d_maps" == map_directory("")
    monkeypatch.delenv("ROS_HOME")
    assert default_map_directory() == Path.home() / ".ros" / "eps3d_maps"
    assert map_directory(str(tmp_path / "x")) == tmp_path / "x"


@pytest.fixture(scope="module")
def map_file(tmp_path_factory) -> Path:
    """A small map file (ground truth through the real panoptic stage, in the demo model's text space)."""
    from eps3d_ros.data.synthetic import generate_sequence
    from eps3d_ros.eval.oracle import OracleReconstructor

    seq = generate_sequence(seed=3, num_frames=4, height=84, width=84)
    cfg = OracleReconstructor.default_config()
    session = oracle_session(seq, cfg)
    try:
        path = tmp_path_factory.mktemp("seed") / "seed.eps3d"
        session.save_map(path)
    finally:
        session.close()
    return path


def test_a_file_that_is_not_a_map_is_never_overwritten(tmp_path: Path, map_file: Path) -> None:
    from eps3d_ros.io.map_file import load_map, save_map
    from eps3d_ros.io.scene_file import SceneFileError

    m = load_map(map_file)
    notes = tmp_path / "notes.eps3d"
    notes.write_text("my notes\n")
    with pytest.raises(SceneFileError, match="not an eps3d file: it is never overwritten"):
        save_map(notes, m)
    assert notes.read_text() == "my notes\n"
    assert save_map(tmp_path / "new.eps3d", m).is_file()
    assert save_map(tmp_path / "new.eps3d", m).is_file()  # a map file is replaced


@pytest.mark.timeout(600)
def test_node_services_refuse_paths_outside_the_map_directory(tmp_path: Path, map_file: Path) -> None:
    """From a separate process, as any participant of the ROS domain could."""
    from eps3d_ros.srv import LoadMap, SaveMap
    from helpers.node_client import NodeClient, start_node, stop_node

    maps, outside = tmp_path / "maps", tmp_path / "outside"
    maps.mkdir()
    outside.mkdir()
    (maps / "seed.eps3d").write_bytes(map_file.read_bytes())
    profile = outside / "profile"
    profile.write_text("export PATH=/usr/bin\n")
    (maps / "escape").symlink_to(outside)
    (maps / "profile.eps3d").symlink_to(profile)
    (maps / "notes.eps3d").write_text("not a map\n")
    (outside / "room.eps3d").write_bytes(map_file.read_bytes())
    node = start_node(tmp_path / "node.log", {"model.weights": str(DEMO), "map.directory": str(maps)}, "/paths")
    client = NodeClient("/paths")
    log = lambda: (tmp_path / "node.log").read_text()[-3000:]  # noqa: E731
    try:
        assert client.save_map.wait_for_service(timeout_sec=120), log()
        r = client.call(client.load_map, LoadMap.Request(path="seed.eps3d"))
        assert r.success, r.message
        before = sorted(p.name for p in tmp_path.rglob("*"))
        for bad in ["../room.eps3d", "../outside/room.eps3d", str(outside / "room.eps3d"), "escape/room.eps3d",
                    "profile.eps3d", str(tmp_path / "room.eps3d")]:
            r = client.call(client.save_map, SaveMap.Request(path=bad))
            assert not r.success and "outside the map directory" in r.message, (bad, r.message)
        r = client.call(client.save_map, SaveMap.Request(path="notes.eps3d"))
        assert not r.success and "never overwritten" in r.message, r.message
        assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written anywhere
        assert profile.read_text() == "export PATH=/usr/bin\n" and (maps / "notes.eps3d").read_text() == "not a map\n"
        r = client.call(client.save_map, SaveMap.Request(path="room.eps3d"))
        assert r.success and (maps / "room.eps3d").is_file(), r.message
        for bad in ["../outside/room.eps3d", str(outside / "room.eps3d"), "escape/room.eps3d"]:
            r = client.call(client.load_map, LoadMap.Request(path=bad))
            assert not r.success and "outside the map directory" in r.message, (bad, r.message)
        r = client.call(client.load_map, LoadMap.Request(path=str(maps / "room.eps3d")))
        assert r.success, r.message
    finally:
        client.close()
        assert stop_node(node) == 0
    assert not os.path.exists(tmp_path / "room.eps3d")


def test_the_map_directory_cannot_be_changed_once_the_node_runs(tmp_path: Path) -> None:
    """map.directory and map.allow_any_path are read-only parameters: a client on the domain cannot widen them."""
    from rclpy.parameter import Parameter

    from helpers.node_harness import Harness

    h = Harness(namespace="readonly", **{"map.directory": str(tmp_path)})
    try:
        for name, value in (("map.directory", "/"), ("map.allow_any_path", True)):
            [result] = h.node.set_parameters([Parameter(name, value=value)])
            assert not result.successful and "read-only" in result.reason, (name, result.reason)
        assert h.node.get_parameter("map.directory").value == str(tmp_path)
        assert h.node.get_parameter("map.allow_any_path").value is False
    finally:
        h.close()
