"""What is in a synthetic tabletop scene: a seeded layout (room, one table, things on it, chairs beside it).

World frame: metres, **z up**, the floor is the plane ``z = 0`` and the table is centred over the
origin with its edges parallel to the x and y axes.

The definitions this layout is made of live in their own modules and are re-exported here:
the class vocabulary and colours (:mod:`eps3d_ros.data.vocabulary`), the analytic primitives
(:mod:`eps3d_ros.data.primitives`) and the builders of things and furniture
(:mod:`eps3d_ros.data.furniture`). Objects are unions of primitives that share an instance id.
A room with several tables is :mod:`eps3d_ros.data.room_layout`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eps3d_ros.data.furniture import (
    SceneObject,
    add_room_shell,
    add_table,
    place_chairs,
    place_table_things,
    sample_table,
)
from eps3d_ros.data.primitives import Box, Frustum, Primitive, Sphere, Surface
from eps3d_ros.data.vocabulary import (
    CLASS_NAMES,
    COLOURS,
    STUFF_CLASSES,
    TABLE_OBJECT_CLASSES,
    THING_CLASSES,
)

__all__ = [
    "CLASS_NAMES",
    "STUFF_CLASSES",
    "THING_CLASSES",
    "TABLE_OBJECT_CLASSES",
    "COLOURS",
    "Surface",
    "Box",
    "Sphere",
    "Frustum",
    "Primitive",
    "SceneObject",
    "Layout",
    "sample_layout",
]


@dataclass
class Layout:
    """A sampled scene before cameras and rendering."""

    primitives: list[Primitive]
    objects: list[SceneObject]
    table_half_size: np.ndarray  # [2] half extents of the table top in x, y
    table_height: float  # z of the table top surface
    room_min: np.ndarray  # [2] x, y of the room's walls (present or not)
    room_max: np.ndarray  # [2]
    walls: tuple[str, ...]  # which walls exist: subset of ("-x", "+x", "-y", "+y")


def sample_layout(rng: np.random.Generator, num_objects: int | None = None, num_chairs: int | None = None,
                  num_walls: int | None = None, textures: bool = True) -> Layout:
    """Sample a room, a table, ``num_objects`` things on it and ``num_chairs`` chairs beside it.

    ``None`` counts are drawn from the rng: 3–8 objects, 0–2 chairs, 2–4 walls. If the table top
    is too crowded to place an object after many tries, fewer objects are placed (rare; the count
    is ``len(layout.objects)``).
    """
    u = rng.uniform
    prims: list[Primitive] = []
    objects: list[SceneObject] = []

    # Room: floor, 2-4 walls (thin boxes just outside the room rectangle).
    room_min = -u(2.0, 3.0, size=2)
    room_max = u(2.0, 3.0, size=2)
    wall_h = u(2.4, 2.8)
    n_walls = int(rng.integers(2, 5)) if num_walls is None else num_walls
    sides = ("-x", "+x", "-y", "+y")
    walls = tuple(sides[i] for i in sorted(rng.choice(4, size=n_walls, replace=False)))
    add_room_shell(prims, rng, room_min, room_max, walls, wall_h, textures)

    # Table centred over the origin, axis-aligned; things on its top; chairs beside distinct sides.
    table = sample_table(rng)
    add_table(prims, table, (0.0, 0.0), textures)
    n_obj = int(rng.integers(3, 9)) if num_objects is None else num_objects
    place_table_things(prims, objects, rng, n_obj, (0.0, 0.0), table.half_size, table.top_z, textures)
    n_chairs = int(rng.integers(0, 3)) if num_chairs is None else num_chairs
    place_chairs(prims, objects, rng, rng.choice(4, size=min(n_chairs, 4), replace=False), (0.0, 0.0),
                 table.half_size, textures)

    return Layout(primitives=prims, objects=objects, table_half_size=table.half_size, table_height=table.top_z,
                  room_min=room_min, room_max=room_max, walls=walls)
