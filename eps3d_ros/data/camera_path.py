"""Camera poses: one look-at pose, and the path of a robot's head through a room with furniture groups.

The path (:func:`sample_robot_path`) is what a mobile robot with a pan-tilt head does: it visits the
tables of a :class:`~eps3d_ros.data.room_layout.RoomLayout` in their order, stops at each (it looks at
the table top and pans across it while sliding along the wall), lowers its head, turns in place towards
the next stop, walks there looking ahead and down at the floor, turns to the next table and raises its
head. After the last table it turns round and comes back the same way (tables ``0 1 .. n-1 .. 1 0``),
so every table but the farthest is seen on the way out and again on the way back (the farthest gets a
stop twice as long), and the path ends close to where it began.

The head stays at one height (no roll, world z up). Frames are spread evenly in the path's time
(walking speed, turning rate and stop duration set the share of each part).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eps3d_ros.data.room_layout import RoomLayout

__all__ = ["look_at_pose", "CameraPath", "sample_robot_path"]


def look_at_pose(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world ``[4, 4]`` (OpenCV axes) at ``eye`` looking at ``target``, no roll (world z up)."""
    z = np.asarray(target, np.float64) - np.asarray(eye, np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    nx = np.linalg.norm(x)
    if nx < 1e-9:
        raise ValueError("look_at_pose: viewing direction is vertical, roll is undefined")
    x /= nx
    y = np.cross(z, x)  # points down in the image
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose


@dataclass(frozen=True)
class CameraPath:
    """``T`` head poses along a path, with what the robot was doing at each."""

    poses: np.ndarray  # [T, 4, 4] float64 camera-to-world, OpenCV axes, no roll
    table: np.ndarray  # [T] int64: index into layout.tables of the table being looked at (stopped), -1 = moving
    leg: np.ndarray  # [T] int64: 0 on the way out, 1 on the way back (after turning round at the farthest table)
    stops: tuple[int, ...]  # table indices in visiting order (out and back)
    duration: float  # seconds of path time the frames span

    @property
    def turn_frame(self) -> int:
        """Index of the first frame on the way back (``T`` when none is)."""
        back = np.nonzero(self.leg == 1)[0]
        return int(back[0]) if back.size else int(self.leg.shape[0])


@dataclass(frozen=True)
class _Key:
    time: float
    eye: np.ndarray  # [3]
    yaw: float  # radians, counter-clockwise from +x seen from above
    pitch: float  # radians, positive = looking down
    table: int  # -1 while moving
    leg: int


def _yaw_pitch(eye: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    d = np.asarray(target, np.float64) - eye
    return math.atan2(d[1], d[0]), math.atan2(-d[2], math.hypot(d[0], d[1]))


def _forward(yaw: float, pitch: float) -> np.ndarray:
    return np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), -math.sin(pitch)])


def _angle(a: _Key, yaw: float, pitch: float) -> float:
    c = float(np.clip(_forward(a.yaw, a.pitch) @ _forward(yaw, pitch), -1.0, 1.0))
    return math.acos(c)


def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


class _Timeline:
    """Keyframes in path time: each motion lasts as long as the slower of its turn and its walk."""

    def __init__(self, walk_speed: float, turn_rate: float) -> None:
        self.keys: list[_Key] = []
        self.time = 0.0
        self.walk_speed, self.turn_rate = walk_speed, turn_rate

    def move(self, eye: np.ndarray, yaw: float, pitch: float, table: int, leg: int, minimum: float = 0.0) -> None:
        """Go to ``eye`` looking along (``yaw``, ``pitch``), turning the short way round."""
        if not self.keys:
            self.keys.append(_Key(self.time, eye, yaw, pitch, table, leg))
            return
        last = self.keys[-1]
        yaw = last.yaw + _wrap(yaw - last.yaw)
        self.time += max(_angle(last, yaw, pitch) / self.turn_rate,
                         float(np.linalg.norm(eye - last.eye)) / self.walk_speed, minimum)
        self.keys.append(_Key(self.time, eye, yaw, pitch, table, leg))

    def stop(self, seconds: float, eye: np.ndarray, yaw: float, pitch: float, table: int, leg: int) -> None:
        """Take ``seconds`` to slide to ``eye`` while panning to (``yaw``, ``pitch``)."""
        last = self.keys[-1]
        self.time += seconds
        self.keys.append(_Key(self.time, eye, last.yaw + _wrap(yaw - last.yaw), pitch, table, leg))


def sample_robot_path(
    rng: np.random.Generator,
    layout: RoomLayout,
    num_frames: int,
    *,
    eye_height: tuple[float, float] = (1.3, 1.6),
    distance: tuple[float, float] = (0.9, 1.2),
    slide: tuple[float, float] = (0.3, 0.5),
    walk_pitch_deg: float = 45.0,
    walk_speed: float = 0.7,
    turn_rate_deg: float = 60.0,
    stop_seconds: float = 6.0,
) -> CameraPath:
    """Sample the out-and-back path through ``layout`` (see the module docstring) and its ``num_frames`` poses.

    Args:
        eye_height: range of the head height (m above the floor), one value per path.
        distance: range of the horizontal distance (m) from a table's centre to where the robot stops.
        slide: range of the distance (m) the robot slides along the wall each side of its stop.
        walk_pitch_deg: how far the head looks down while walking.
        walk_speed: m/s; turn_rate_deg: degrees/s of head rotation; stop_seconds: time at each stop.
    """
    n = len(layout.tables)
    if n < 2:
        raise ValueError(f"a robot path needs at least 2 tables, the layout has {n}")
    order = list(range(n))
    stops = order + order[-2::-1]
    h = float(rng.uniform(*eye_height))
    walk_pitch = math.radians(walk_pitch_deg)
    turn_rate = math.radians(turn_rate_deg)

    # Where the robot stands at each stop; the sliding direction follows the way it came (the first
    # stop: the way it will go), so it keeps moving forward through a stop.
    stations = []
    for t in stops:
        tab = layout.tables[t]
        stations.append(np.append(tab.centre + tab.facing * rng.uniform(*distance), h))
    line = _Timeline(walk_speed, turn_rate)
    far = len(order) - 1  # index in stops of the farthest table (the turn)
    for j, t in enumerate(stops):
        tab = layout.tables[t]
        along = np.append(tab.along, 0.0)
        ref = stations[j] - stations[j - 1] if j else stations[j + 1] - stations[j]
        direction = 1.0 if float(ref @ along) >= 0 else -1.0
        s = rng.uniform(*slide)
        pan = rng.uniform(0.15, 0.35) * float(tab.spec.half_size.max())
        eye_a, eye_b = stations[j] - direction * s * along, stations[j] + direction * s * along
        top = tab.top_centre + np.array([0.0, 0.0, 0.05])
        tgt_a, tgt_b = top - direction * pan * along, top + direction * pan * along
        leg = 0 if j <= far else 1  # the way back begins when the robot turns round after the farthest stop
        yaw_a, pitch_a = _yaw_pitch(eye_a, tgt_a)
        if line.keys:  # from the previous stop: head down, turn to the heading, walk, turn to the table, head up
            prev = line.keys[-1]
            line.move(prev.eye, prev.yaw, walk_pitch, -1, leg)  # head down first: turns do not sweep the room
            step = eye_a - prev.eye
            if float(np.linalg.norm(step[:2])) > 0.3:
                heading = math.atan2(step[1], step[0])
                line.move(prev.eye, heading, walk_pitch, -1, leg)
                line.move(eye_a, heading, walk_pitch, -1, leg)
            line.move(eye_a, yaw_a, walk_pitch, -1, leg)
        line.move(eye_a, yaw_a, pitch_a, t, leg, minimum=0.2)
        # the farthest table is seen once only: a longer look
        line.stop(stop_seconds * (2.0 if j == far else 1.0), eye_b, *_yaw_pitch(eye_b, tgt_b), t, leg)

    keys, time = line.keys, line.time
    times = np.array([k.time for k in keys])
    sample_t = np.linspace(0.0, time, num_frames) if num_frames > 1 else np.zeros(1)
    poses = np.empty((num_frames, 4, 4))
    table = np.empty(num_frames, np.int64)
    legs = np.empty(num_frames, np.int64)
    for i, t in enumerate(sample_t):
        k = min(int(np.searchsorted(times, t, side="right")) - 1, len(keys) - 2)
        a, b = keys[k], keys[k + 1]
        w = 0.0 if b.time <= a.time else (t - a.time) / (b.time - a.time)
        eye = (1 - w) * a.eye + w * b.eye
        yaw, pitch = (1 - w) * a.yaw + w * b.yaw, (1 - w) * a.pitch + w * b.pitch
        poses[i] = look_at_pose(eye, eye + _forward(yaw, pitch))
        table[i] = a.table if (a.table == b.table and a.table >= 0) else -1
        legs[i] = b.leg if w > 0 else a.leg
    return CameraPath(poses=poses, table=table, leg=legs, stops=tuple(stops), duration=float(time))
