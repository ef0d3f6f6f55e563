"""Analytic primitives of synthetic scenes, each carrying a :class:`Surface` (labels and material).

* :class:`Box` — a box rotated by ``yaw`` about the vertical axis through its centre;
* :class:`Sphere`;
* :class:`Frustum` — a closed vertical truncated cone (a cylinder when ``r0 == r1``, a cone when
  one radius is 0) with its axis at ``(x, y)`` from ``z0`` to ``z1``.

World frame: metres, **z up**. Part codes (see :mod:`eps3d_ros.data.raycast`): Box faces
``2 * axis + (1 if the outward normal is + else 0)`` in the box frame; Frustum 0 = side,
1 = bottom cap, 2 = top cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Surface", "Box", "Sphere", "Frustum", "Primitive", "BOX_NEG_X", "BOX_POS_X", "BOX_NEG_Y", "BOX_POS_Y",
           "FRUSTUM_BOTTOM_CAP", "FRUSTUM_TOP_CAP"]

BOX_NEG_X, BOX_POS_X, BOX_NEG_Y, BOX_POS_Y = 0, 1, 2, 3
FRUSTUM_BOTTOM_CAP, FRUSTUM_TOP_CAP = 1, 2


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
