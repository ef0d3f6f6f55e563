"""What is in a synthetic scene: the class vocabulary, named colours, analytic primitives and a
seeded layout (room, table, objects on the table, chairs beside it).

World frame: metres, **z up**, the floor is the plane ``z = 0`` and the table is centred over the
origin with its edges parallel to the x and y axes.

Every visible surface is one of three analytic primitives, each carrying a :class:`Surface`
(labels and material):

* :class:`Box` — a box rotated by ``yaw`` about the vertical axis through its centre;
* :class:`Sphere`;
* :class:`Frustum` — a closed vertical truncated cone (a cylinder when ``r0 == r1``, a cone when
  one radius is 0) with its axis at ``(x, y)`` from ``z0`` to ``z1``.

Objects are unions of primitives that share an instance id. Objects on the table are placed by
rejection sampling of their footprint circles, so they never interpenetrate each other; chairs
stand on the floor outside the table footprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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

# Bare English nouns (they double as CLIP prompts). Index = semantic id; 0 = nothing hit.
CLASS_NAMES: tuple[str, ...] = (
    "background",
    "floor",
    "wall",
    "table",
    "chair",
    "mug",
    "bowl",
    "box",
    "bottle",
    "ball",
    "book",
    "lamp",
    "can",
    "plant",
)
_ID = {name: i for i, name in enumerate(CLASS_NAMES)}
STUFF_CLASSES: tuple[int, ...] = (_ID["floor"], _ID["wall"], _ID["table"])
THING_CLASSES: tuple[int, ...] = tuple(i for i in range(1, len(CLASS_NAMES)) if i not in STUFF_CLASSES)
# Things that stand on the table top (chairs stand on the floor).
TABLE_OBJECT_CLASSES: tuple[int, ...] = tuple(i for i in THING_CLASSES if CLASS_NAMES[i] != "chair")

# Named colours (albedo in [0, 1], sRGB-ish) for things, so "red mug" is a meaningful query.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.82, 0.10, 0.10),
    "green": (0.12, 0.62, 0.18),
    "blue": (0.12, 0.28, 0.85),
    "yellow": (0.95, 0.85, 0.12),
    "white": (0.93, 0.93, 0.93),
    "black": (0.10, 0.10, 0.10),
    "orange": (0.96, 0.50, 0.06),
    "purple": (0.52, 0.16, 0.68),
}
_WALL_TONES = ((0.90, 0.87, 0.80), (0.82, 0.84, 0.86), (0.80, 0.86, 0.92), (0.84, 0.90, 0.82), (0.92, 0.84, 0.78))
_FLOOR_TONES = ((0.62, 0.60, 0.57), (0.70, 0.58, 0.42), (0.55, 0.50, 0.47), (0.74, 0.70, 0.62))
_WOOD_TONES = ((0.55, 0.36, 0.20), (0.66, 0.47, 0.28), (0.42, 0.27, 0.16))
_PAGES = (0.95, 0.93, 0.84)
_METAL = (0.62, 0.63, 0.66)
_TERRACOTTA = (0.72, 0.38, 0.22)

# Part codes (see eps3d_ros.data.raycast): Box faces 2*axis + (1 if the outward normal is + else 0)
# in the box frame; Frustum 0 = side, 1 = bottom cap, 2 = top cap.
_BOX_NEG_X, _BOX_POS_X, _BOX_NEG_Y, _BOX_POS_Y = 0, 1, 2, 3
_TOP_CAP = 2


@dataclass(frozen=True)
class Surface:
    """Labels and material of a primitive.

    ``texture`` is a solid texture evaluated at the hit point in the frame centred at ``origin``
    and rotated by ``yaw``: ``"plain"``, ``"stripes"`` (horizontal bands of height ``period``),
    ``"checker"`` (3D checker of cell ``period``), ``"tiles"`` (checker in x/y), ``"wood"`` (grain)
    or ``"wallpaper"`` (vertical bands). Alternate cells use ``secondary`` (default: a darker
    ``albedo``). ``part_albedo`` overrides the albedo on given parts (e.g. a mug's top cap is dark
    coffee, a book's page edges are cream).
    """

    class_id: int
    instance_id: int
    albedo: tuple[float, float, float]
    texture: str = "plain"
    period: float = 0.05
    secondary: tuple[float, float, float] | None = None
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw: float = 0.0
    part_albedo: tuple[tuple[int, tuple[float, float, float]], ...] = ()
    name: str = ""  # which part of the object this primitive is (e.g. "handle")


@dataclass(frozen=True)
class Box:
    """Box with centre ``center`` [3], half extents ``half_size`` [3] in its own frame, rotated by
    ``yaw`` (radians, counter-clockwise seen from above) about the vertical through its centre."""

    center: np.ndarray
    half_size: np.ndarray
    yaw: float
    surface: Surface
    kind: str = field(default="box", init=False)

    def aabb(self) -> tuple[np.ndarray, np.ndarray]:
        c, s = abs(np.cos(self.yaw)), abs(np.sin(self.yaw))
        hx, hy, hz = self.half_size
        ext = np.array([c * hx + s * hy, s * hx + c * hy, hz])
        return self.center - ext, self.center + ext


@dataclass(frozen=True)
class Sphere:
    center: np.ndarray
    radius: float
    surface: Surface
    kind: str = field(default="sphere", init=False)

    def aabb(self) -> tuple[np.ndarray, np.ndarray]:
        return self.center - self.radius, self.center + self.radius


@dataclass(frozen=True)
class Frustum:
    """Closed vertical truncated cone: axis through ``(x, y)``, radius ``r0`` at ``z0`` and ``r1``
    at ``z1`` (``z0 < z1``, radii >= 0, not both 0), with flat caps."""

    x: float
    y: float
    z0: float
    z1: float
    r0: float
    r1: float
    surface: Surface
    kind: str = field(default="frustum", init=False)

    def aabb(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(self.r0, self.r1)
        return np.array([self.x - r, self.y - r, self.z0]), np.array([self.x + r, self.y + r, self.z1])


Primitive = Box | Sphere | Frustum


@dataclass(frozen=True)
class SceneObject:
    """One thing instance. Geometry is in world coordinates (metres, z up).

    ``centroid`` is the centre of the world axis-aligned bounding box ``box_min``/``box_max``;
    ``size = box_max - box_min``. ``primitive_indices`` index ``SyntheticScene.primitives``.
    ``pixels_per_view`` counts the pixels of this instance in each rendered view.
    """

    instance_id: int
    class_id: int
    class_name: str
    colour: str
    colour_rgb: tuple[float, float, float]
    texture: str
    centroid: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray
    size: np.ndarray
    yaw: float
    on: str  # "table" or "floor"
    primitive_indices: tuple[int, ...]
    pixels_per_view: tuple[int, ...] = ()


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


def _darker(rgb, f: float = 0.62) -> tuple[float, float, float]:
    return tuple(float(c) * f for c in rgb)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


# --------------------------------------------------------------------------- things on the table
# Objects are built in their own frame (base centre at the origin, yaw 0) and then placed.


def _object_parts(cls: str, rng: np.random.Generator, colour: tuple) -> tuple[list, float, str]:
    """Parts of a ``cls`` object standing at the origin: list of (kind, params, name, albedo,
    part_albedo), footprint radius, texture. Box params are (center, half, yaw_local)."""
    u = rng.uniform
    tex = _pick(rng, ("plain", "plain", "stripes", "checker"))
    if cls == "mug":
        r, h = u(0.035, 0.05), u(0.08, 0.11)
        tex = _pick(rng, ("plain", "stripes"))
        body = ("frustum", (0.0, 0.0, 0.0, h, r, r), "body", colour, ((_TOP_CAP, (0.25, 0.14, 0.08)),))
        hl = 0.5 * 0.03  # radial half-length of the handle
        handle = ("box", (np.array([r + hl - 0.004, 0.0, 0.52 * h]), np.array([hl, 0.006, 0.25 * h]), 0.0),
                  "handle", colour, ())
        return [body, handle], r + 2 * hl, tex
    if cls == "bowl":
        rb, rt, h = u(0.035, 0.05), u(0.07, 0.10), u(0.045, 0.07)
        tex = _pick(rng, ("plain", "stripes"))
        return [("frustum", (0.0, 0.0, 0.0, h, rb, rt), "body", colour, ((_TOP_CAP, _darker(colour, 0.5)),))], rt, tex
    if cls == "box":
        hx, hy, hz = u(0.04, 0.10), u(0.04, 0.10), u(0.03, 0.09)
        body = ("box", (np.array([0.0, 0.0, hz]), np.array([hx, hy, hz]), 0.0), "body", colour, ())
        return [body], float(np.hypot(hx, hy)), tex
    if cls == "bottle":
        r, h = u(0.028, 0.042), u(0.12, 0.20)
        rn, hs, hn = 0.38 * r, u(0.03, 0.05), u(0.035, 0.06)
        tex = _pick(rng, ("plain", "stripes"))
        return [
            ("frustum", (0.0, 0.0, 0.0, h, r, r), "body", colour, ()),
            ("frustum", (0.0, 0.0, h, h + hs, r, rn), "shoulder", colour, ()),
            ("frustum", (0.0, 0.0, h + hs - 0.002, h + hs + hn, rn, rn), "neck", colour, ((_TOP_CAP, _METAL),)),
        ], r, tex
    if cls == "ball":
        r = u(0.04, 0.08)
        ball = ("sphere", (np.array([0.0, 0.0, r]), r), "ball", colour, ())
        return [ball], r, _pick(rng, ("plain", "stripes", "checker"))
    if cls == "book":
        hx, hy, hz = u(0.075, 0.12), u(0.05, 0.085), u(0.01, 0.025)
        pages = tuple((p, _PAGES) for p in (_BOX_NEG_X, _BOX_NEG_Y, _BOX_POS_Y))  # spine on +x
        book = ("box", (np.array([0.0, 0.0, hz]), np.array([hx, hy, hz]), 0.0), "book", colour, pages)
        return [book], float(np.hypot(hx, hy)), _pick(rng, ("plain", "checker"))
    if cls == "lamp":
        rb, hb = u(0.055, 0.075), u(0.015, 0.025)
        rp, hp = u(0.008, 0.012), u(0.16, 0.26)
        rs0, rs1, hs = u(0.08, 0.11), u(0.04, 0.06), u(0.08, 0.12)
        zs = hb + hp - 0.3 * hs
        return [
            ("frustum", (0.0, 0.0, 0.0, hb, rb, rb), "base", _METAL, ()),
            ("frustum", (0.0, 0.0, hb, zs + 0.5 * hs, rp, rp), "pole", _METAL, ()),
            ("frustum", (0.0, 0.0, zs, zs + hs, rs0, rs1), "shade", colour, ()),
        ], max(rb, rs0), _pick(rng, ("plain", "stripes"))
    if cls == "can":
        r, h = u(0.03, 0.036), u(0.10, 0.125)
        can = ("frustum", (0.0, 0.0, 0.0, h, r, r), "can", colour, ((_TOP_CAP, _METAL), (1, _METAL)))
        return [can], r, _pick(rng, ("plain", "stripes", "stripes"))
    if cls == "plant":
        rb, rt, h = u(0.04, 0.05), u(0.055, 0.07), u(0.07, 0.10)
        rf = u(0.065, 0.095)
        return [
            ("frustum", (0.0, 0.0, 0.0, h, rb, rt), "pot", _TERRACOTTA, ((_TOP_CAP, (0.30, 0.20, 0.12)),)),
            ("sphere", (np.array([0.0, 0.0, h + 0.6 * rf]), rf), "foliage", colour, ()),
        ], max(rt, rf), "checker"
    raise ValueError(f"unknown table object class {cls!r}")


def _place_parts(parts, x: float, y: float, z: float, yaw: float, class_id: int, instance_id: int,
                 texture: str, period: float, colour: tuple) -> list[Primitive]:
    """Instantiate object-frame parts at (x, y, z) rotated by yaw."""
    c, s = np.cos(yaw), np.sin(yaw)
    origin = (float(x), float(y), float(z))
    out: list[Primitive] = []
    for kind, params, name, albedo, part_albedo in parts:
        surf = Surface(class_id=class_id, instance_id=instance_id, albedo=tuple(float(a) for a in albedo),
                       texture=texture if albedo == colour else "plain", period=period, origin=origin,
                       yaw=float(yaw), part_albedo=part_albedo, name=name)
        if kind == "box":
            ctr, half, yaw_local = params
            world = np.array([x + c * ctr[0] - s * ctr[1], y + s * ctr[0] + c * ctr[1], z + ctr[2]])
            out.append(Box(center=world, half_size=np.asarray(half, float), yaw=float(yaw + yaw_local), surface=surf))
        elif kind == "sphere":
            ctr, r = params
            world = np.array([x + c * ctr[0] - s * ctr[1], y + s * ctr[0] + c * ctr[1], z + ctr[2]])
            out.append(Sphere(center=world, radius=float(r), surface=surf))
        else:
            fx, fy, z0, z1, r0, r1 = params
            out.append(Frustum(x=float(x + c * fx - s * fy), y=float(y + s * fx + c * fy), z0=float(z + z0),
                               z1=float(z + z1), r0=float(r0), r1=float(r1), surface=surf))
    return out


def _chair_parts(rng: np.random.Generator, colour: tuple) -> tuple[list, float, float]:
    """Chair in its own frame: seat centred on the origin, the back on the +x side (away from the
    table). Returns parts, seat half width, total height."""
    u = rng.uniform
    hw, seat_z, st = u(0.19, 0.23), u(0.43, 0.48), 0.04
    leg, back_top, bt = 0.018, u(0.82, 0.94), 0.035
    legs_col = _darker(colour, 0.7)
    parts = [("box", (np.array([0.0, 0.0, seat_z - 0.5 * st]), np.array([hw, hw, 0.5 * st]), 0.0), "seat", colour, ())]
    for sx in (-1, 1):
        for sy in (-1, 1):
            ctr = np.array([sx * (hw - leg - 0.01), sy * (hw - leg - 0.01), 0.5 * (seat_z - st)])
            parts.append(("box", (ctr, np.array([leg, leg, 0.5 * (seat_z - st)]), 0.0), "leg", legs_col, ()))
    parts.append(("box", (np.array([hw - 0.5 * bt, 0.0, 0.5 * (seat_z + back_top)]),
                          np.array([0.5 * bt, hw, 0.5 * (back_top - seat_z)]), 0.0), "back", colour, ()))
    return parts, hw, back_top


# --------------------------------------------------------------------------- the layout


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

    def stuff(class_id: int, albedo, texture: str, period: float, secondary=None, name: str = "") -> Surface:
        return Surface(class_id=class_id, instance_id=0, albedo=tuple(albedo), texture=texture if textures else "plain",
                       period=period, secondary=secondary, name=name)

    # Room: floor, 2-4 walls (thin boxes just outside the room rectangle).
    room_min = -u(2.0, 3.0, size=2)
    room_max = u(2.0, 3.0, size=2)
    wall_h, wall_t = u(2.4, 2.8), 0.1
    n_walls = int(rng.integers(2, 5)) if num_walls is None else num_walls
    sides = ("-x", "+x", "-y", "+y")
    walls = tuple(sides[i] for i in sorted(rng.choice(4, size=n_walls, replace=False)))
    floor_tone = _pick(rng, _FLOOR_TONES)
    prims.append(Box(center=np.array([0.0, 0.0, -0.05]), half_size=np.array([8.0, 8.0, 0.05]), yaw=0.0,
                     surface=stuff(_ID["floor"], floor_tone, "tiles", float(u(0.4, 0.6)), _darker(floor_tone, 0.82),
                                   "floor")))
    wall_tone = _pick(rng, _WALL_TONES)
    wall_surf = stuff(_ID["wall"], wall_tone, _pick(rng, ("plain", "wallpaper")), float(u(0.15, 0.3)),
                      _darker(wall_tone, 0.93), "wall")
    (x0, y0), (x1, y1) = room_min, room_max
    for side in walls:
        if side in ("-x", "+x"):
            x = x0 - 0.5 * wall_t if side == "-x" else x1 + 0.5 * wall_t
            ctr, half = [x, 0.5 * (y0 + y1), 0.5 * wall_h], [0.5 * wall_t, 0.5 * (y1 - y0) + wall_t, 0.5 * wall_h]
        else:
            y = y0 - 0.5 * wall_t if side == "-y" else y1 + 0.5 * wall_t
            ctr, half = [0.5 * (x0 + x1), y, 0.5 * wall_h], [0.5 * (x1 - x0) + wall_t, 0.5 * wall_t, 0.5 * wall_h]
        prims.append(Box(center=np.array(ctr), half_size=np.array(half), yaw=0.0, surface=wall_surf))

    # Table: top box and four legs, centred over the origin, axis-aligned.
    hx, hy = u(0.35, 0.55), u(0.28, 0.42)
    top_z, top_t, leg = u(0.70, 0.78), u(0.03, 0.05), u(0.02, 0.03)
    wood = _pick(rng, _WOOD_TONES)
    table_surf = stuff(_ID["table"], wood, "wood", float(u(0.04, 0.08)), name="table")
    prims.append(Box(center=np.array([0.0, 0.0, top_z - 0.5 * top_t]), half_size=np.array([hx, hy, 0.5 * top_t]),
                     yaw=0.0, surface=table_surf))
    leg_h = top_z - top_t
    for sx in (-1, 1):
        for sy in (-1, 1):
            prims.append(Box(center=np.array([sx * (hx - leg - 0.04), sy * (hy - leg - 0.04), 0.5 * leg_h]),
                             half_size=np.array([leg, leg, 0.5 * leg_h]), yaw=0.0, surface=table_surf))

    # Things on the table: rejection sampling of footprint circles inside the top.
    n_obj = int(rng.integers(3, 9)) if num_objects is None else num_objects
    colour_names = list(COLOURS)
    placed: list[tuple[float, float, float]] = []  # (x, y, footprint radius)
    used: set[tuple[int, int]] = set()
    table_classes = [CLASS_NAMES[i] for i in TABLE_OBJECT_CLASSES]
    margin, gap = 0.015, 0.012
    for _ in range(n_obj):
        for _attempt in range(12):  # class / size resamples
            cls = _pick(rng, table_classes)
            if cls == "lamp" and any(o.class_name == "lamp" for o in objects):
                continue
            cname = "green" if cls == "plant" else _pick(rng, colour_names)
            if (_ID[cls], cname) in used and cls != "plant":
                cname = _pick(rng, [c for c in colour_names if (_ID[cls], c) not in used] or colour_names)
            colour = COLOURS[cname]
            parts, radius, texture = _object_parts(cls, rng, colour)
            if not textures:
                texture = "plain"
            ax, ay = hx - radius - margin, hy - radius - margin
            if ax <= 0 or ay <= 0:
                continue
            pos = None
            for _try in range(60):
                x, y = u(-ax, ax), u(-ay, ay)
                if all(np.hypot(x - px, y - py) >= radius + pr + gap for px, py, pr in placed):
                    pos = (x, y)
                    break
            if pos is None:
                continue
            yaw = float(u(0.0, 2.0 * np.pi))
            inst = len(objects) + 1
            period = float(u(0.015, 0.03))
            new = _place_parts(parts, pos[0], pos[1], top_z, yaw, _ID[cls], inst, texture, period, colour)
            objects.append(_record(new, len(prims), inst, cls, cname, colour, texture, yaw, "table"))
            prims.extend(new)
            placed.append((pos[0], pos[1], radius))
            used.add((_ID[cls], cname))
            break

    # Chairs on the floor beside distinct table sides, facing the table, outside its footprint.
    n_chairs = int(rng.integers(0, 3)) if num_chairs is None else num_chairs
    for side in rng.choice(4, size=min(n_chairs, 4), replace=False):
        cname = _pick(rng, colour_names)
        colour = COLOURS[cname]
        parts, hw, _ = _chair_parts(rng, colour)
        normal = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])[side]
        edge = hx if side < 2 else hy
        along = (hy if side < 2 else hx) * u(-0.5, 0.5)
        jitter = float(u(-0.14, 0.14))
        dist = edge + u(0.10, 0.22) + hw * np.sqrt(2.0)  # clears the table even when the chair is yawed
        x, y = normal * dist + np.array([-normal[1], normal[0]]) * along
        yaw = float(np.arctan2(normal[1], normal[0]) + jitter)
        inst = len(objects) + 1
        texture = _pick(rng, ("plain", "stripes")) if textures else "plain"
        new = _place_parts(parts, x, y, 0.0, yaw, _ID["chair"], inst, texture, float(u(0.03, 0.06)), colour)
        objects.append(_record(new, len(prims), inst, "chair", cname, colour, texture, yaw, "floor"))
        prims.extend(new)

    return Layout(primitives=prims, objects=objects, table_half_size=np.array([hx, hy]), table_height=float(top_z),
                  room_min=room_min, room_max=room_max, walls=walls)


def _record(prims: list[Primitive], first_index: int, inst: int, cls: str, cname: str, colour, texture: str,
            yaw: float, on: str) -> SceneObject:
    boxes = [p.aabb() for p in prims]
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    return SceneObject(instance_id=inst, class_id=_ID[cls], class_name=cls, colour=cname,
                       colour_rgb=tuple(float(c) for c in colour), texture=texture, centroid=0.5 * (lo + hi),
                       box_min=lo, box_max=hi, size=hi - lo, yaw=yaw, on=on,
                       primitive_indices=tuple(range(first_index, first_index + len(prims))))
