"""Building blocks of synthetic rooms: things (recipes of the table-top classes and chairs), tables, floor
and walls, and :class:`SceneObject`, the record of a placed thing.

World frame: metres, **z up**, the floor is the plane ``z = 0``. Every builder appends primitives to
a list (their indices are the primitive ids of the rendered ground truth) and draws from the given
``np.random.Generator`` in a fixed order, so a layout is a pure function of its seed. Things on a
table are placed by rejection sampling of their footprint circles, so they never interpenetrate
each other; chairs stand on the floor outside the table footprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eps3d_ros.data.primitives import (
    BOX_NEG_X,
    BOX_NEG_Y,
    BOX_POS_Y,
    FRUSTUM_BOTTOM_CAP,
    FRUSTUM_TOP_CAP,
    Box,
    Frustum,
    Primitive,
    Sphere,
    Surface,
)
from eps3d_ros.data.vocabulary import CLASS_IDS, CLASS_NAMES, COLOURS, TABLE_OBJECT_CLASSES, THING_CLASSES

__all__ = [
    "SceneObject",
    "TableSpec",
    "add_room_shell",
    "sample_table",
    "add_table",
    "place_table_things",
    "place_chairs",
    "object_record",
]

_WALL_TONES = ((0.90, 0.87, 0.80), (0.82, 0.84, 0.86), (0.80, 0.86, 0.92), (0.84, 0.90, 0.82), (0.92, 0.84, 0.78))
_FLOOR_TONES = ((0.62, 0.60, 0.57), (0.70, 0.58, 0.42), (0.55, 0.50, 0.47), (0.74, 0.70, 0.62))
_WOOD_TONES = ((0.55, 0.36, 0.20), (0.66, 0.47, 0.28), (0.42, 0.27, 0.16))
_PAGES = (0.95, 0.93, 0.84)
_METAL = (0.62, 0.63, 0.66)
_TERRACOTTA = (0.72, 0.38, 0.22)


@dataclass(frozen=True)
class SceneObject:
    """One thing instance. Geometry is in world coordinates (metres, z up).

    ``centroid`` is the centre of the world axis-aligned bounding box ``box_min``/``box_max``;
    ``size = box_max - box_min``. ``primitive_indices`` index the scene's primitives.
    ``pixels_per_view`` counts the pixels of this instance in each rendered view (frame).
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

    @property
    def is_thing(self) -> bool:
        """True for countable things (every record here is one; stuff — floor, walls, tables — has none)."""
        return self.class_id in THING_CLASSES


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
        body = ("frustum", (0.0, 0.0, 0.0, h, r, r), "body", colour, ((FRUSTUM_TOP_CAP, (0.25, 0.14, 0.08)),))
        hl = 0.5 * 0.03  # radial half-length of the handle
        handle = ("box", (np.array([r + hl - 0.004, 0.0, 0.52 * h]), np.array([hl, 0.006, 0.25 * h]), 0.0),
                  "handle", colour, ())
        return [body, handle], r + 2 * hl, tex
    if cls == "bowl":
        rb, rt, h = u(0.035, 0.05), u(0.07, 0.10), u(0.045, 0.07)
        tex = _pick(rng, ("plain", "stripes"))
        body = ("frustum", (0.0, 0.0, 0.0, h, rb, rt), "body", colour, ((FRUSTUM_TOP_CAP, _darker(colour, 0.5)),))
        return [body], rt, tex
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
            ("frustum", (0.0, 0.0, h + hs - 0.002, h + hs + hn, rn, rn), "neck", colour, ((FRUSTUM_TOP_CAP, _METAL),)),
        ], r, tex
    if cls == "ball":
        r = u(0.04, 0.08)
        ball = ("sphere", (np.array([0.0, 0.0, r]), r), "ball", colour, ())
        return [ball], r, _pick(rng, ("plain", "stripes", "checker"))
    if cls == "book":
        hx, hy, hz = u(0.075, 0.12), u(0.05, 0.085), u(0.01, 0.025)
        pages = tuple((p, _PAGES) for p in (BOX_NEG_X, BOX_NEG_Y, BOX_POS_Y))  # spine on +x
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
        caps = ((FRUSTUM_TOP_CAP, _METAL), (FRUSTUM_BOTTOM_CAP, _METAL))
        can = ("frustum", (0.0, 0.0, 0.0, h, r, r), "can", colour, caps)
        return [can], r, _pick(rng, ("plain", "stripes", "stripes"))
    if cls == "plant":
        rb, rt, h = u(0.04, 0.05), u(0.055, 0.07), u(0.07, 0.10)
        rf = u(0.065, 0.095)
        return [
            ("frustum", (0.0, 0.0, 0.0, h, rb, rt), "pot", _TERRACOTTA, ((FRUSTUM_TOP_CAP, (0.30, 0.20, 0.12)),)),
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

# --------------------------------------------------------------------------- room, tables, placement


def _stuff_surface(class_name: str, albedo, texture: str, period: float, textures: bool, secondary=None,
                   name: str = "") -> Surface:
    return Surface(class_id=CLASS_IDS[class_name], instance_id=0, albedo=tuple(albedo),
                   texture=texture if textures else "plain", period=period, secondary=secondary, name=name)


def add_room_shell(prims: list[Primitive], rng: np.random.Generator, room_min: np.ndarray, room_max: np.ndarray,
                   walls: tuple[str, ...], wall_height: float, textures: bool = True) -> None:
    """Append the floor (a 16 m square slab under ``z = 0``) and the ``walls`` (thin boxes just outside the
    room rectangle ``room_min``/``room_max`` [2], subset of ``("-x", "+x", "-y", "+y")``), drawing their
    tones and textures from ``rng``."""
    u = rng.uniform
    floor_tone = _pick(rng, _FLOOR_TONES)
    prims.append(Box(center=np.array([0.0, 0.0, -0.05]), half_size=np.array([8.0, 8.0, 0.05]), yaw=0.0,
                     surface=_stuff_surface("floor", floor_tone, "tiles", float(u(0.4, 0.6)), textures,
                                            _darker(floor_tone, 0.82), "floor")))
    wall_tone = _pick(rng, _WALL_TONES)
    wall_surf = _stuff_surface("wall", wall_tone, _pick(rng, ("plain", "wallpaper")), float(u(0.15, 0.3)), textures,
                               _darker(wall_tone, 0.93), "wall")
    wall_t = 0.1
    (x0, y0), (x1, y1) = room_min, room_max
    for side in walls:
        if side in ("-x", "+x"):
            x = x0 - 0.5 * wall_t if side == "-x" else x1 + 0.5 * wall_t
            ctr = [x, 0.5 * (y0 + y1), 0.5 * wall_height]
            half = [0.5 * wall_t, 0.5 * (y1 - y0) + wall_t, 0.5 * wall_height]
        elif side in ("-y", "+y"):
            y = y0 - 0.5 * wall_t if side == "-y" else y1 + 0.5 * wall_t
            ctr = [0.5 * (x0 + x1), y, 0.5 * wall_height]
            half = [0.5 * (x1 - x0) + wall_t, 0.5 * wall_t, 0.5 * wall_height]
        else:
            raise ValueError(f"unknown wall {side!r}: use '-x', '+x', '-y' or '+y'")
        prims.append(Box(center=np.array(ctr), half_size=np.array(half), yaw=0.0, surface=wall_surf))


@dataclass(frozen=True)
class TableSpec:
    """An axis-aligned table before placement: top half extents ``half_size`` [2] (x, y), top surface at
    ``top_z``, top thickness, half width of the square legs, wood tone and grain period."""

    half_size: np.ndarray
    top_z: float
    thickness: float
    leg: float
    wood: tuple[float, float, float]
    period: float


def sample_table(rng: np.random.Generator, half_x: tuple[float, float] = (0.35, 0.55),
                 half_y: tuple[float, float] = (0.28, 0.42)) -> TableSpec:
    """Draw a table's size (half extents uniform in ``half_x`` / ``half_y``), height and wood."""
    u = rng.uniform
    hx, hy = u(*half_x), u(*half_y)
    top_z, top_t, leg = u(0.70, 0.78), u(0.03, 0.05), u(0.02, 0.03)
    wood = _pick(rng, _WOOD_TONES)
    return TableSpec(half_size=np.array([hx, hy]), top_z=float(top_z), thickness=float(top_t), leg=float(leg),
                     wood=wood, period=float(u(0.04, 0.08)))


def add_table(prims: list[Primitive], spec: TableSpec, centre: tuple[float, float], textures: bool = True) -> None:
    """Append a table (top box and four legs, stuff class ``table``) centred over ``centre`` (x, y)."""
    cx, cy = centre
    hx, hy = spec.half_size
    surf = _stuff_surface("table", spec.wood, "wood", spec.period, textures, name="table")
    prims.append(Box(center=np.array([cx, cy, spec.top_z - 0.5 * spec.thickness]),
                     half_size=np.array([hx, hy, 0.5 * spec.thickness]), yaw=0.0, surface=surf))
    leg, leg_h = spec.leg, spec.top_z - spec.thickness
    for sx in (-1, 1):
        for sy in (-1, 1):
            prims.append(Box(center=np.array([cx + sx * (hx - leg - 0.04), cy + sy * (hy - leg - 0.04), 0.5 * leg_h]),
                             half_size=np.array([leg, leg, 0.5 * leg_h]), yaw=0.0, surface=surf))


def place_table_things(prims: list[Primitive], objects: list[SceneObject], rng: np.random.Generator, count: int,
                       centre: tuple[float, float], half_size: np.ndarray, top_z: float, textures: bool = True,
                       used: set[tuple[int, str]] | None = None) -> int:
    """Place up to ``count`` things of the table-top classes on the top ``half_size`` [2] centred over
    ``centre`` at height ``top_z``; instance ids continue ``objects``. At most one lamp per table. A
    (class, colour) pair in ``used`` is avoided while another colour is free (so "red mug" names one
    thing); ``used`` is updated. Returns how many were placed (fewer when the top is too crowded)."""
    u = rng.uniform
    cx, cy = centre
    hx, hy = half_size
    used = set() if used is None else used
    colour_names = list(COLOURS)
    placed: list[tuple[float, float, float]] = []  # (x, y, footprint radius) relative to the centre
    table_classes = [CLASS_NAMES[i] for i in TABLE_OBJECT_CLASSES]
    margin, gap = 0.015, 0.012
    first = len(objects)
    for _ in range(count):
        for _attempt in range(12):  # class / size resamples
            cls = _pick(rng, table_classes)
            if cls == "lamp" and any(o.class_name == "lamp" for o in objects[first:]):
                continue
            cname = "green" if cls == "plant" else _pick(rng, colour_names)
            if (CLASS_IDS[cls], cname) in used and cls != "plant":
                cname = _pick(rng, [c for c in colour_names if (CLASS_IDS[cls], c) not in used] or colour_names)
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
            new = _place_parts(parts, cx + pos[0], cy + pos[1], top_z, yaw, CLASS_IDS[cls], inst, texture, period,
                               colour)
            objects.append(object_record(new, len(prims), inst, cls, cname, colour, texture, yaw, "table"))
            prims.extend(new)
            placed.append((pos[0], pos[1], radius))
            used.add((CLASS_IDS[cls], cname))
            break
    return len(objects) - first


def place_chairs(prims: list[Primitive], objects: list[SceneObject], rng: np.random.Generator, sides,
                 centre: tuple[float, float], half_size: np.ndarray, textures: bool = True) -> None:
    """One chair on the floor beside each of the table's ``sides`` (0 = -x, 1 = +x, 2 = -y, 3 = +y), facing
    the table (its back away from it), outside the footprint even when yawed; ids continue ``objects``."""
    u = rng.uniform
    cx, cy = centre
    hx, hy = half_size
    colour_names = list(COLOURS)
    for side in sides:
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
        new = _place_parts(parts, cx + x, cy + y, 0.0, yaw, CLASS_IDS["chair"], inst, texture, float(u(0.03, 0.06)),
                           colour)
        objects.append(object_record(new, len(prims), inst, "chair", cname, colour, texture, yaw, "floor"))
        prims.extend(new)


def object_record(prims: list[Primitive], first_index: int, inst: int, cls: str, cname: str, colour, texture: str,
                  yaw: float, on: str) -> SceneObject:
    """The record of a thing made of ``prims`` (appended at ``first_index`` of the scene's primitives)."""
    boxes = [p.aabb() for p in prims]
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    return SceneObject(instance_id=inst, class_id=CLASS_IDS[cls], class_name=cls, colour=cname,
                       colour_rgb=tuple(float(c) for c in colour), texture=texture, centroid=0.5 * (lo + hi),
                       box_min=lo, box_max=hi, size=hi - lo, yaw=yaw, on=on,
                       primitive_indices=tuple(range(first_index, first_index + len(prims))))
