"""Adding a part without touching the package: a toy text encoder and a toy clusterer, defined here, registered
from outside, chosen by settings alone, each running a whole window through a session."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from eps3d_ros.data.synthetic import generate_scene, generate_sequence
from eps3d_ros.eval.oracle import OracleReconstructor
from eps3d_ros.frames.frame import synthetic_frames
from eps3d_ros.panoptic import register_clusterer
from eps3d_ros.pipeline.loading import load_reconstructor
from eps3d_ros.pipeline.session import Session
from eps3d_ros.settings import Eps3dConfig
from eps3d_ros.text import CachedTextEncoder, TextEncoder, TextEncoderConfig, register_text_encoder


class HashTextEncoder(CachedTextEncoder):
    """A toy text space: each word is a fixed random unit vector (seeded by its hash), a text their mean."""

    built: list["HashTextEncoder"] = []

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__(config, dim=512)
        HashTextEncoder.built.append(self)

    def _embed(self, texts: list[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            words = [torch.randn(self.dim, generator=torch.Generator().manual_seed(
                int.from_bytes(hashlib.sha256(w.encode()).digest()[:7], "little"))) for w in text.lower().split()]
            rows.append(torch.stack(words).mean(0))
        return F.normalize(torch.stack(rows), dim=-1).to(self.device)


class FarthestPointClusterer:
    """A toy clusterer: k centres by farthest-point sampling, each sample to its nearest centre."""

    on_features_device = False

    def __init__(self, k: int) -> None:
        self.k = k
        self.calls = 0

    def labels(self, sample: torch.Tensor, population: int, clock=None) -> np.ndarray:
        self.calls += 1
        x = sample.detach().cpu().double().numpy()
        centres = [0]
        dist = np.linalg.norm(x - x[0], axis=1)
        for _ in range(1, min(self.k, len(x))):
            centres.append(int(dist.argmax()))
            dist = np.minimum(dist, np.linalg.norm(x - x[centres[-1]], axis=1))
        return np.linalg.norm(x[:, None] - x[centres][None], axis=2).argmin(1)


def test_a_text_encoder_registered_from_outside_runs_a_window() -> None:
    register_text_encoder("toy_hash", HashTextEncoder, replace_existing=True)
    cfg = Eps3dConfig()
    cfg.model.allow_random_weights = True  # the tiny preset: its semantic features are 512-d, as the toy's
    cfg.text.encoder = "toy_hash"
    cfg.text.model = "words"
    p = cfg.pipeline
    p.image_height = p.image_width = 56
    p.window_size = p.every_n_frames = 3
    p.keyframe_min_interval = p.keyframe_min_translation = p.keyframe_min_rotation = 0.0
    cfg.panoptic.clustering.max_samples = 1000
    rec = load_reconstructor(cfg)
    assert isinstance(rec.text_encoder, HashTextEncoder) and isinstance(rec.text_encoder, TextEncoder)
    assert rec.config.text.encoder == "toy_hash" and rec.text_encoder.config.model == "words"
    session = Session(rec.config, rec)
    try:
        scene = generate_scene(seed=1, num_views=3, height=56, width=56)
        for f in synthetic_frames(scene, stamps=[10.0, 10.5, 11.0]):
            assert session.offer(f)
        assert session.wait_idle(300) and session.stats()["windows"] == 1, session.stats()
        snap = session.snapshot
        assert snap.scene.objects and {o.label for o in snap.scene.objects} <= set(cfg.panoptic.vocabulary)
        # the scene's prototypes are the toy's embeddings of the vocabulary
        np.testing.assert_allclose(snap.scene.prototypes.numpy(),
                                   rec.text_encoder.encode(list(cfg.panoptic.vocabulary)).numpy(), atol=1e-6)
        matches = session.query("red mug", max_results=2, min_relevance=0.0)  # a toy space: rank them all
        assert matches and rec.text_encoder.cache_info()["hits"] + rec.text_encoder.cache_info()["misses"] > 0
    finally:
        session.close()


def test_a_clusterer_registered_from_outside_runs_a_window() -> None:
    made: list[FarthestPointClusterer] = []

    def factory(clustering_config) -> FarthestPointClusterer:
        made.append(FarthestPointClusterer(k=12))
        return made[-1]

    register_clusterer("toy_farthest_point", factory, replace_existing=True)
    seq = generate_sequence(3, num_frames=4, height=112, width=112)
    cfg = OracleReconstructor.default_config()
    cfg.panoptic.clustering.algorithm = "toy_farthest_point"
    p = cfg.pipeline
    p.image_height = p.image_width = 112
    p.window_size = p.every_n_frames = 4
    p.keyframe_min_interval = p.keyframe_min_translation = p.keyframe_min_rotation = 0.0
    session = Session(cfg, OracleReconstructor(seq, cfg, pixel_stride=2))
    try:
        for f in seq.frames("camera_optical"):
            assert session.offer(f)
        assert session.wait_idle(300) and session.stats()["windows"] == 1, session.stats()
        assert made and sum(c.calls for c in made) >= 1  # the window's instances came from the toy
        things = [o for o in session.snapshot.scene.objects if o.is_thing]
        assert 1 <= len(things) <= 12 and session.map.objects
        assert session.config.panoptic.clustering.algorithm == "toy_farthest_point"
    finally:
        session.close()
