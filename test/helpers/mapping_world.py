"""A ray-cast test world for the object map: windows of cameras → realistic SceneSnapshots.

The world (metres, z up): a floor (z = 0), a wall (x = ``WALL_X``), and spherical things. A window is a
set of cameras; every pixel ray that hits something becomes one Gaussian (pixel-aligned, as the network
gives), labelled by what it hit: semantic feature = the class prototype + noise (identity semantic space),
cluster = the thing it hit (stuff: none). ``assemble_scene`` then builds the window's panoptic scene (ids
renumbered per window, as in a real run), and the cameras carry the ray-cast depth. ``offset`` shifts the
window's Gaussians and cameras together (a map-frame pose error). Also used by bench/bench_mapping.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import torch

from eps3d_ros.mapping import MapConfig
from eps3d_ros.panoptic import PanopticConfig, SemanticSpace
from eps3d_ros.panoptic.build import assemble_scene
from eps3d_ros.panoptic.clustering import ClusteringConfig
from eps3d_ros.panoptic.hdbscan_clusterer import HdbscanSettings
from eps3d_ros.geometry.alignment import Alignment
from eps3d_ros.geometry.cameras import Cameras
from eps3d_ros.pipeline.reconstruct import SceneSnapshot
from eps3d_ros.geometry.similarity import Sim3
from helpers.scenes import FakeText

VOCAB = ["floor", "wall", "table", "mug", "ball", "box", "bowl", "lamp"]
MIN_OBJECT_POINTS = 10  # the windows' panoptic min_object_points (small images: 48 x 64 by default)
STUFF = ["floor", "wall", "table"]
DIM = 16
WALL_X = 3.0
COLOURS = {"floor": (0.5, 0.5, 0.5), "wall": (0.8, 0.8, 0.7), "mug": (0.9, 0.1, 0.1), "ball": (0.1, 0.8, 0.1),
           "box": (0.6, 0.4, 0.2), "bowl": (0.1, 0.2, 0.9), "lamp": (0.9, 0.9, 0.1), "table": (0.4, 0.3, 0.2)}


TEXT = FakeText()


@dataclass
class Thing:
    label: str
    centre: tuple[float, float, float]
    radius: float = 0.08


@dataclass
class World:
    things: list[Thing] = field(default_factory=list)
    floor_half: float = 4.0  # the floor covers [-floor_half, floor_half]^2
    wall: bool = True

    def without(self, index: int) -> "World":
        return World([t for i, t in enumerate(self.things) if i != index], self.floor_half, self.wall)


def look_at(eye, target) -> np.ndarray:
    """Camera-from-world ``[3, 4]`` (OpenCV axes: x right, y down, z forward), world z up, no roll."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    if np.linalg.norm(x) < 1e-6:  # looking straight down/up
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: camera axes in the world
    return np.concatenate([R, (-R @ eye)[:, None]], 1)


def intrinsics(height: int, width: int, fov_deg: float = 70.0) -> np.ndarray:
    f = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def raycast(world: World, E: np.ndarray, K: np.ndarray, height: int, width: int):
    """``(depth [H, W] camera z (NaN: no hit), points [H, W, 3], label [H, W] class index (-1), thing [H, W] (0 none,
    else index + 1))`` of the pixel rays through pixel centres ``(u, v)``."""
    u, v = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    rc = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T  # [H, W, 3], z = 1
    R, t = E[:, :3], E[:, 3]
    o = -R.T @ t
    d = rc @ R  # world directions (R^T rc), camera z = 1 per unit t
    best = np.full((height, width), np.inf)
    label = np.full((height, width), -1)
    thing = np.zeros((height, width), int)
    with np.errstate(divide="ignore", invalid="ignore"):
        tf = -o[2] / d[..., 2]
        p = o + tf[..., None] * d
        hit = (tf > 0) & (np.abs(p[..., 0]) <= world.floor_half) & (np.abs(p[..., 1]) <= world.floor_half)
        take = hit & (tf < best)
        best[take], label[take] = tf[take], VOCAB.index("floor")
        if world.wall:
            tw = (WALL_X - o[0]) / d[..., 0]
            p = o + tw[..., None] * d
            hit = (tw > 0) & (p[..., 2] >= 0) & (p[..., 2] <= 2.5) & (np.abs(p[..., 1]) <= world.floor_half)
            take = hit & (tw < best)
            best[take], label[take] = tw[take], VOCAB.index("wall")
        for i, th in enumerate(world.things):
            oc = o - np.asarray(th.centre)
            a = (d * d).sum(-1)
            b = 2 * (d @ oc)
            c = oc @ oc - th.radius ** 2
            disc = b * b - 4 * a * c
            ts = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
            take = (disc >= 0) & (ts > 0) & (ts < best)
            best[take], label[take], thing[take] = ts[take], VOCAB.index(th.label), i + 1
    depth = np.where(np.isfinite(best), best, np.nan)
    points = o + np.where(np.isfinite(best), best, 0.0)[..., None] * d
    return depth.astype(np.float32), points, label, thing


def window(world: World, eyes, targets, stamp: float, **kw) -> SceneSnapshot:
    """:func:`make_window` on one torch thread: the scene assembly of these small windows gains nothing from
    threads, and on a loaded 2-core machine OpenMP's waiting threads make it 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return make_window(world, eyes, targets, stamp, **kw)
    finally:
        torch.set_num_threads(threads)


@dataclass
class RawWindow:
    """The ray hits of a window's views (map frame, the offset applied) and its cameras."""

    means: np.ndarray  # [N, 3] float32
    classes: np.ndarray  # [N] index into VOCAB
    things: np.ndarray  # [N] int64 thing index + 1 (0: stuff)
    colors: np.ndarray  # [N, 3] float32
    cameras: Cameras


def cast_window(world: World, eyes, targets, stamp: float, height: int = 48, width: int = 64,
                offset=(0.0, 0.0, 0.0), with_depth: bool = True) -> RawWindow:
    K = intrinsics(height, width)
    Es = np.stack([look_at(e, t) for e, t in zip(eyes, targets)])
    depths, pts, labels, things = [], [], [], []
    for E in Es:
        d, p, lab, th = raycast(world, E, K, height, width)
        ok = lab >= 0
        depths.append(d)
        pts.append(p[ok])
        labels.append(lab[ok])
        things.append(th[ok])
    cls = np.concatenate(labels)
    off = np.asarray(offset, float)
    Es_off = Es.copy()
    Es_off[:, :, 3] = Es[:, :, 3] - np.einsum("sij,j->si", Es[:, :, :3], off)  # the same error on the cameras
    cams = Cameras(Es_off, np.repeat(K[None], len(Es), 0), height, width,
                   stamps=np.full(len(Es), stamp), depth=np.stack(depths) if with_depth else None)
    return RawWindow((np.concatenate(pts) + off).astype(np.float32), cls, np.concatenate(things).astype(np.int64),
                     np.array([COLOURS[VOCAB[c]] for c in cls], np.float32).reshape(-1, 3), cams)


def prototype_space(text=TEXT) -> SemanticSpace:
    """A semantic space whose first columns are the vocabulary prototypes: feature e_k embeds to class k
    (plus 8 weak random columns), for a text space of any dimension."""
    protos = text.prototypes(VOCAB)  # [K, D]
    rest = torch.nn.functional.normalize(torch.randn(protos.shape[1], 8, generator=torch.Generator().manual_seed(0)),
                                         dim=0)
    return SemanticSpace(torch.cat([protos.T, 0.01 * rest], dim=1), torch.zeros(protos.shape[1]))


def class_features(classes: np.ndarray, things: np.ndarray, rng: np.random.Generator, noise: float = 0.05,
                   features: dict[int, dict[str, float]] | None = None) -> np.ndarray:
    """``[N, K + 8]`` semantic features: one-hot class (or a thing's class mix) + noise."""
    sem = np.zeros((len(classes), len(VOCAB) + 8))
    sem[np.arange(len(classes)), classes] = 1.0
    for i, mix in (features or {}).items():
        sel = things == i + 1
        sem[sel] = 0.0
        for c, w in mix.items():
            sem[sel, VOCAB.index(c)] = w
    return (sem + noise * rng.normal(size=sem.shape)).astype(np.float32)


def snapshot_of(scene, cameras: Cameras, stamp: float, frame_id: str = "map", scale_known: bool = True
                ) -> SceneSnapshot:
    align = Alignment(Sim3.identity(), frame_id, scale_known, "tf" if frame_id == "map" else "none", 0.0, 0)
    return SceneSnapshot(scene=scene, frame_id=frame_id, stamp=stamp, scale_known=scale_known, alignment=align,
                         timings=MappingProxyType({}), window_stamps=(stamp,), cameras=cameras)


def make_window(world: World, eyes, targets, stamp: float, height: int = 48, width: int = 64, offset=(0.0, 0.0, 0.0),
                seed: int = 0, frame_id: str = "map", scale_known: bool = True, noise: float = 0.05,
                min_object_points: int = MIN_OBJECT_POINTS, features: dict[int, dict[str, float]] | None = None,
                split: dict[int, tuple[float, str]] | None = None, with_depth: bool = True) -> SceneSnapshot:
    """One window: a camera per (eye, target); Gaussians = the ray hits of all its views (see the module doc).

    ``features``: thing index → class weights: that thing's semantic features are this mix of prototypes
    (a detection whose label and embedding differ from the truth). ``split``: thing index → ``(x, part)``:
    the panoptic stage sees only the part of the thing below (``"low"``) or above (``"high"``) ``x``, or both
    halves as two objects (``"both"``)."""
    raw = cast_window(world, eyes, targets, stamp, height, width, offset, with_depth)
    n = len(raw.means)
    sem = class_features(raw.classes, raw.things, np.random.default_rng(seed), noise, features)
    thing = raw.things.copy()
    for i, (x, part) in (split or {}).items():
        sel = thing == i + 1
        high = sel & (raw.means[:, 0] >= x)
        if part == "low":
            thing[high] = 0
        elif part == "high":
            thing[sel & ~high] = 0
        else:
            thing[high] = 1000 + i  # a second cluster
    cfg = PanopticConfig(vocabulary=list(VOCAB), stuff=list(STUFF), min_object_points=min_object_points,
                         outlier_removal=False,
                         clustering=ClusteringConfig(hdbscan=HdbscanSettings(min_cluster_size=5))).validate()
    scene = assemble_scene(
        means=raw.means, opacities=np.full(n, 0.9, np.float32), colors=raw.colors, weights=np.ones(n, np.float32),
        semantic_features=sem, instance_features=np.zeros((n, 4), np.float32), cluster_ids=thing,
        space=prototype_space(), text_encoder=TEXT, config=cfg, metadata={"frame_id": frame_id, "stamp": stamp})
    return snapshot_of(scene, raw.cameras, stamp, frame_id, scale_known)


def map_config(**kw) -> MapConfig:
    """The map configuration for these windows: the pixel support a detection needs follows their panoptic
    ``min_object_points`` as the defaults do (``min_visible_pixels`` 60 for ``min_object_points`` 30)."""
    return MapConfig(**{"min_visible_pixels": 2.0 * MIN_OBJECT_POINTS, **kw})


def ring(centre, radius: float, height: float, count: int, start_deg: float = 0.0, span_deg: float = 90.0):
    """``count`` eyes on an arc around ``centre`` at ``height``, all looking at ``centre``: (eyes, targets)."""
    c = np.asarray(centre, float)
    angles = np.radians(start_deg + np.linspace(0.0, span_deg, count))
    eyes = [c + [radius * np.cos(a), radius * np.sin(a), height] for a in angles]
    return eyes, [c] * count


def table_world() -> World:
    """Six things near the origin (two mugs, a ball, a box, a bowl, a lamp)."""
    return World([Thing("mug", (0.0, 0.0, 0.08)), Thing("mug", (0.5, 0.1, 0.08)), Thing("ball", (-0.4, 0.3, 0.1), 0.1),
                  Thing("box", (0.2, -0.5, 0.09), 0.09), Thing("bowl", (-0.3, -0.4, 0.07), 0.07),
                  Thing("lamp", (0.6, 0.6, 0.12), 0.12)])


# ---------------------------------------------------------------------------------- the helper's own checks
