"""Where ``~/save_map`` and ``~/load_map`` may write and read: inside ``map.directory`` only.

A service request comes from anyone on the ROS domain, so its path is not trusted: it names a map file inside
the node's map directory (default ``$ROS_HOME/eps3d_maps``, ``~/.ros/eps3d_maps`` when ``ROS_HOME`` is unset),
as a plain name (``room.eps3d``) or a path below it (``lab/room.eps3d``, or an absolute path that lies in it).
Everything is resolved first — ``..`` and symbolic links included — and refused when the real path leaves the
directory, unless ``map.allow_any_path`` is true. A file that exists and is not a map file is never replaced
(:func:`~eps3d_ros.io.scene_file.check_replaceable`, applied by every map writer).

Confining paths keeps a map request from touching the node user's other files; it does not authenticate the
caller. On a shared domain, SROS2 (enclaves with access control) decides who may call the services (README).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MapPathError", "default_map_directory", "map_directory", "resolve_map_path"]

MAP_SUBFOLDER = "eps3d_maps"


class MapPathError(ValueError):
    """A requested map path that is refused (outside the map directory, empty, a folder); says why and the fix."""


def default_map_directory() -> Path:
    """``$ROS_HOME/eps3d_maps`` (ROS 2's per-user folder; ``~/.ros`` when ``ROS_HOME`` is unset)."""
    ros_home = os.environ.get("ROS_HOME", "").strip()
    return Path(ros_home).expanduser() / MAP_SUBFOLDER if ros_home else Path.home() / ".ros" / MAP_SUBFOLDER


def map_directory(setting: str) -> Path:
    """The map directory a ``map.directory`` setting names ("" = :func:`default_map_directory`), absolute."""
    d = Path(setting).expanduser() if setting.strip() else default_map_directory()
    return d if d.is_absolute() else Path.cwd() / d


def resolve_map_path(requested: str, directory: str | Path, allow_any_path: bool = False,
                     writing: bool = False) -> Path:
    """The real path of the map file ``requested`` names, inside ``directory`` (see the module docstring).

    ``writing``: the directory is created when missing (mode 0700) and the file's folder must exist. Raises
    :class:`MapPathError` with the reason and the fix."""
    text = requested.strip()
    if not text:
        raise MapPathError("empty path: give a map file name such as 'room.eps3d'")
    if "\x00" in text:
        raise MapPathError("the path contains a NUL character")
    if allow_any_path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else Path.cwd() / path
    base = Path(directory)
    if writing:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    real_base = base.resolve()
    candidate = Path(text) if Path(text).is_absolute() else base / text
    real = candidate.resolve()  # '..' and every symbolic link that exists, the last component's included
    if real == real_base or not real.is_relative_to(real_base):
        raise MapPathError(
            f"'{text}' is outside the map directory {base} (it resolves to {real}): give a name inside it, such as "
            "'room.eps3d', or set map.directory to another folder (map.allow_any_path: true lifts the confinement; "
            "only on a trusted ROS domain)")
    if real.is_dir():
        raise MapPathError(f"'{text}' is a folder in the map directory: give a file name such as '{text}/room.eps3d'")
    if writing and not real.parent.is_dir():
        raise MapPathError(f"'{text}': the folder {real.parent} does not exist in the map directory")
    return real
