"""A seeded room with several furniture groups along its walls, for sequences a robot walks through.

World frame: metres, **z up**, the floor is the plane ``z = 0``, the room rectangle is centred on the
origin with its long walls parallel to the x axis (all four walls stand). Each furniture group is a
table against a long wall (its long side along the wall, a gap behind it), things of the table-top
classes on its top and 0–2 chairs at its ends (the sides along the wall, so they neither hide the
table top from the room nor stand between the table and the wall). Groups are spread evenly along the
walls, about 3 m apart, so that from in front of one table its neighbours are out of a 60° view. The
middle of the room stays free: that is where the camera path (:mod:`eps3d_ros.data.camera_path`) walks.

Tables are numbered by angle about the room centre: along ``+y`` from ``+x`` to ``-x``, then along
``-y`` from ``-x`` to ``+x``; ``ceil(n / 2)`` of them stand on ``+y``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eps3d_ros.data.furniture import (
    SceneObject,
    TableSpec,
    add_room_shell,
    add_table,
    place_chairs,
    place_table_things,
    sample_table,
)
from eps3d_ros.data.primitives import Primitive

__all__ = ["TablePlacement", "RoomLayout", "sample_room_layout", "min_distance_to_furniture"]

_WALL_NORMALS = {"+x": (-1.0, 0.0), "-x": (1.0, 0.0), "+y": (0.0, -1.0), "-y": (0.0, 1.0)}  # into the room


@dataclass(frozen=True)
class TablePlacement:
    """One furniture group: a table against ``wall`` with what stands on and beside it."""

    centre: np.ndarray  # [2] x, y of the table centre
    spec: TableSpec  # half_size in world x (along the wall), y
    wall: str  # "+x", "-x", "+y" or "-y"
    facing: np.ndarray  # [2] unit, horizontal: from the table into the room (where a viewer stands)
    thing_ids: tuple[int, ...]  # instance ids of the things on its top
    chair_ids: tuple[int, ...]  # instance ids of the chairs beside it

    @property
    def along(self) -> np.ndarray:
        """``[2]`` unit, horizontal, along the wall (``facing`` turned by +90°)."""
        return np.array([-self.facing[1], self.facing[0]])

    @property
    def top_centre(self) -> np.ndarray:
        """``[3]`` the centre of the table top surface."""
        return np.array([self.centre[0], self.centre[1], self.spec.top_z])


@dataclass
class RoomLayout:
    """A sampled room before cameras and rendering (objects are things only; their ids are 1..n)."""

    primitives: list[Primitive]
    objects: list[SceneObject]
    tables: list[TablePlacement]  # in slot order (by angle about the room centre)
    room_min: np.ndarray  # [2] x, y
    room_max: np.ndarray  # [2]
    walls: tuple[str, ...]
    wall_height: float


def sample_room_layout(
    rng: np.random.Generator,
    num_tables: int | None = None,
    things_per_table: tuple[int, int] = (4, 7),
    min_things: int = 20,
    chairs_per_table: tuple[int, int] = (0, 2),
    textures: bool = True,
) -> RoomLayout:
    """Sample a room (about 3.3 m of wall per group × 5–6.5 m) with ``num_tables`` furniture groups (default 4–5).

    Each table gets ``things_per_table`` things (inclusive range, drawn); counts are raised round-robin
    (up to the range's maximum) until the room holds at least ``min_things`` things, chairs included.

    Raises:
        ValueError: bad counts, or ``min_things`` could not be placed (tables too crowded).
    """
    n_tables = int(rng.integers(4, 6)) if num_tables is None else int(num_tables)
    if not 4 <= n_tables <= 6:
        raise ValueError(f"num_tables must be in [4, 6], got {num_tables}")
    lo_things, hi_things = (int(v) for v in things_per_table)
    lo_chairs, hi_chairs = (int(v) for v in chairs_per_table)
    if not 1 <= lo_things <= hi_things <= 10:
        raise ValueError(f"things_per_table must satisfy 1 <= min <= max <= 10, got {things_per_table}")
    if not 0 <= lo_chairs <= hi_chairs <= 2:
        raise ValueError(f"chairs_per_table must satisfy 0 <= min <= max <= 2, got {chairs_per_table}")
    most = n_tables * (hi_things + hi_chairs)
    if min_things > most:
        raise ValueError(f"min_things {min_things} exceeds what {n_tables} tables hold ({most})")

    u = rng.uniform
    prims: list[Primitive] = []
    objects: list[SceneObject] = []
    per_wall = {"+y": (n_tables + 1) // 2, "-y": n_tables // 2}
    spacing = u(3.1, 3.6)  # wall length per furniture group
    end_gap = u(0.5, 1.0)  # free wall at each end
    length = max(per_wall.values()) * spacing + 2 * end_gap
    depth = u(5.0, 6.5)
    room_min, room_max = np.array([-0.5 * length, -0.5 * depth]), np.array([0.5 * length, 0.5 * depth])
    walls = ("-x", "+x", "-y", "+y")
    wall_h = float(u(2.5, 2.9))
    add_room_shell(prims, rng, room_min, room_max, walls, wall_h, textures)

    specs, centres = [], []
    for wall in ("+y", "-y"):
        m = per_wall[wall]
        slots = [room_min[0] + end_gap + (k + 0.5) * (length - 2 * end_gap) / m for k in range(m)]
        for x_slot in (slots[::-1] if wall == "+y" else slots):  # by angle: +y from +x to -x, -y from -x to +x
            spec = sample_table(rng, half_x=(0.50, 0.70), half_y=(0.32, 0.42))
            gap = u(0.25, 0.45)  # between the table's back and the wall
            x = x_slot + u(-0.15, 0.15)
            y = (room_max[1] - gap - spec.half_size[1]) if wall == "+y" else (room_min[1] + gap + spec.half_size[1])
            add_table(prims, spec, (x, y), textures)
            specs.append((wall, spec))
            centres.append(np.array([x, y]))
    sides = [(0, 1)] * n_tables  # chairs at the -x / +x ends

    counts, n_chairs = _thing_counts(rng, n_tables, (lo_things, hi_things), (lo_chairs, hi_chairs), min_things)
    used: set[tuple[int, str]] = set()
    tables: list[TablePlacement] = []
    for (wall, spec), centre, chair_sides, count, chairs in zip(specs, centres, sides, counts, n_chairs):
        first = len(objects)
        place_table_things(prims, objects, rng, count, (centre[0], centre[1]), spec.half_size, spec.top_z, textures,
                           used)
        mid = len(objects)
        order = rng.permutation(2)[:chairs]
        place_chairs(prims, objects, rng, [chair_sides[j] for j in order], (centre[0], centre[1]), spec.half_size,
                     textures)
        tables.append(TablePlacement(
            centre=centre, spec=spec, wall=wall, facing=np.array(_WALL_NORMALS[wall]),
            thing_ids=tuple(o.instance_id for o in objects[first:mid]),
            chair_ids=tuple(o.instance_id for o in objects[mid:])))
    if len(objects) < min_things:
        raise ValueError(f"only {len(objects)} of min_things {min_things} things could be placed "
                         f"({n_tables} tables, things_per_table {things_per_table}): raise the per-table maximum")
    _check_footprints(tables, objects)
    return RoomLayout(primitives=prims, objects=objects, tables=tables, room_min=room_min, room_max=room_max,
                      walls=walls, wall_height=wall_h)


def _thing_counts(rng: np.random.Generator, n_tables: int, things: tuple[int, int], chairs: tuple[int, int],
                  min_things: int) -> tuple[list[int], list[int]]:
    """Things and chairs per table, drawn; things raised round-robin (up to their maximum) until there are at
    least ``min_things`` in all."""
    counts = [int(rng.integers(things[0], things[1] + 1)) for _ in range(n_tables)]
    n_chairs = [int(rng.integers(chairs[0], chairs[1] + 1)) for _ in range(n_tables)]
    i = 0
    while sum(counts) + sum(n_chairs) < min_things and any(c < things[1] for c in counts):
        if counts[i % len(counts)] < things[1]:
            counts[i % len(counts)] += 1
        i += 1
    return counts, n_chairs


def _check_footprints(tables: list[TablePlacement], objects: list[SceneObject]) -> None:
    """Tables and chairs must not overlap (a layout bug, not bad input)."""
    boxes = [(t.centre - t.spec.half_size, t.centre + t.spec.half_size) for t in tables]
    boxes += [(o.box_min[:2], o.box_max[:2]) for o in objects if o.on == "floor"]
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            if (boxes[a][0] < boxes[b][1]).all() and (boxes[b][0] < boxes[a][1]).all():
                raise RuntimeError(f"room layout: furniture footprints {a} and {b} overlap")


def min_distance_to_furniture(layout: RoomLayout, xy: np.ndarray) -> np.ndarray:
    """Horizontal distance ``[n]`` (m) from points ``xy [n, 2]`` to the nearest table or chair footprint
    (axis-aligned boxes; 0 inside one)."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    boxes = [(t.centre - t.spec.half_size, t.centre + t.spec.half_size) for t in layout.tables]
    boxes += [(o.box_min[:2], o.box_max[:2]) for o in layout.objects if o.on == "floor"]
    best = np.full(len(xy), math.inf)
    for lo, hi in boxes:
        d = np.maximum(np.maximum(lo - xy, xy - hi), 0.0)
        best = np.minimum(best, np.hypot(d[:, 0], d[:, 1]))
    return best
