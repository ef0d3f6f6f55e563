"""A small hand-made scene with known labels and geometry (scene files, PLY, figures), and the deterministic text
stand-ins of the panoptic and mapping tests (no CLIP needed)."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from eps3d_ros.conventions import SH_C0
from eps3d_ros.io.scene_file import Cameras, SceneFile
from eps3d_ros.panoptic import PanopticConfig, SemanticSpace, SplatParams
from eps3d_ros.panoptic.build import assemble_scene
from eps3d_ros.panoptic.clustering import ClusteringConfig
from eps3d_ros.panoptic.hdbscan_clusterer import HdbscanSettings
from eps3d_ros.text import TextEncoderConfig

VOCAB = ["floor", "mug", "bowl"]
STUFF = ["floor"]
DIM = 16
COLORS = {"mug": (0.9, 0.1, 0.1), "bowl": (0.1, 0.2, 0.9), "floor": (0.5, 0.5, 0.5)}


class FakeText:
    """A deterministic text embedder: one seeded unit vector per text (no CLIP needed)."""

    config = TextEncoderConfig(model="fake", pretrained="")

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim

    def encode(self, texts):
        texts = [texts] if isinstance(texts, str) else list(texts)
        rows = [np.random.default_rng(zlib.crc32(t.strip().encode())).normal(size=self.dim) for t in texts]
        return torch.nn.functional.normalize(torch.tensor(np.stack(rows), dtype=torch.float32), dim=-1)

    def prototypes(self, names):
        return self.encode(list(names))


def make_scene(splats: bool = True, depth: float = 2.0, spacing: float = 0.05, seed: int = 0, dim: int = DIM):
    """A mug (x < 0) and a bowl (x > 0) above a floor strip, on the plane z = ``depth``: things 1 and 2,
    the floor a stuff region. Semantic features = the class prototype + noise (identity semantic space)."""
    rng = np.random.default_rng(seed)
    text = FakeText(dim)
    protos = text.prototypes(VOCAB).numpy()

    def grid(x0, x1, y0, y1):
        xs, ys = np.meshgrid(np.arange(x0, x1 + 1e-9, spacing), np.arange(y0, y1 + 1e-9, spacing))
        return np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, depth)], 1)

    parts = [("mug", grid(-1.0, -0.2, -1.0, 0.2)), ("bowl", grid(0.2, 1.0, -1.0, 0.2)),
             ("floor", grid(-1.2, 1.2, 0.5, 1.2))]
    means = np.concatenate([p for _, p in parts]).astype(np.float32)
    cls = np.concatenate([np.full(len(p), VOCAB.index(n)) for n, p in parts])
    cluster = np.concatenate([np.full(len(p), k + 1) for k, (_, p) in enumerate(parts)]).astype(np.int64)
    n = len(means)
    sem = (protos[cls] + 0.05 * rng.normal(size=(n, dim))).astype(np.float32)
    ins = rng.normal(size=(n, 8)).astype(np.float32)
    colors = np.array([COLORS[VOCAB[c]] for c in cls], np.float32)
    harm = (0.1 * rng.normal(size=(n, 3, 25))).astype(np.float32)
    harm[:, :, 0] = (colors - 0.5) / SH_C0
    q = rng.normal(size=(n, 4))
    sp = SplatParams(scales=np.full((n, 3), 0.03, np.float32) * rng.uniform(0.8, 1.2, (n, 3)).astype(np.float32),
                     rotations=(q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32), harmonics=harm)
    space = SemanticSpace(torch.eye(dim), torch.zeros(dim))
    cfg = PanopticConfig(vocabulary=list(VOCAB), stuff=list(STUFF), min_object_points=5, outlier_removal=False,
                         clustering=ClusteringConfig(hdbscan=HdbscanSettings(min_cluster_size=20))).validate()
    return assemble_scene(
        means=means, opacities=np.full(n, 0.9, np.float32), colors=colors, weights=np.ones(n, np.float32),
        semantic_features=sem, instance_features=ins, cluster_ids=cluster, space=space, text_encoder=text,
        config=cfg, metadata={"frame_id": "map", "note": "test"}, splats=sp if splats else None)


def make_cameras(n: int = 2, size: tuple[int, int] = (64, 64)) -> Cameras:
    E = np.tile(np.eye(4)[:3], (n, 1, 1))
    E[:, 0, 3] = np.linspace(0.0, 0.1, n)
    K = np.tile(np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 31.5], [0.0, 0.0, 1.0]]), (n, 1, 1))
    return Cameras(E, K, *size, stamps=np.arange(n) * 0.5)


def make_file(scene=None, cameras="default", **kw) -> SceneFile:
    base = dict(scene=scene if scene is not None else make_scene(), frame_id="map", scale_known=True, stamp=12.5,
                text_encoder=TextEncoderConfig(model="fake", pretrained=""), info={"source": "test"})
    base["cameras"] = make_cameras() if cameras == "default" else cameras
    base.update(kw)
    return SceneFile(**base)


class FixedPrototypes:
    """A text encoder stand-in with fixed class embeddings (the scene only asks for prototypes)."""

    def __init__(self, vocab: list[str], dim: int = 512) -> None:
        g = torch.Generator().manual_seed(3)
        self.table = {v: torch.nn.functional.normalize(torch.randn(dim, generator=g), dim=0) for v in vocab}

    def prototypes(self, names):
        return torch.stack([self.table[n] for n in names])

    def encode(self, texts):
        raise NotImplementedError
