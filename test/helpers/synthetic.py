"""Ideal network outputs for a synthetic scene: what the panoptic stage gets when the features are perfect."""

from __future__ import annotations

import numpy as np
import torch

from eps3d_ros.conventions import covariance_from_scale_rotation
from eps3d_ros.model.outputs import Gaussians


def oracle_gaussians(scene, space_dim: int = 32, seed: int = 0) -> tuple[Gaussians, np.ndarray, np.ndarray]:
    """Pixel-aligned Gaussians of every hit pixel, with ideal semantic and instance features."""
    rng = np.random.default_rng(seed)
    pts, sem_id, ins_id = [], [], []
    for v in range(scene.depth.shape[0]):
        wp = scene.world_points(v)
        hit = scene.depth[v] > 0
        pts.append(wp[hit])
        sem_id.append(scene.semantic[v][hit])
        ins_id.append(scene.instance[v][hit])
    pts, sem_id, ins_id = np.concatenate(pts), np.concatenate(sem_id), np.concatenate(ins_id)
    n = len(pts)
    sem = np.zeros((n, space_dim), np.float32)
    sem[np.arange(n), sem_id - 1] = 1.0  # vocabulary = class_names[1:]
    sem += 0.05 * rng.normal(size=sem.shape).astype(np.float32)
    # One code per object; stuff regions get a code per class (offset so they never collide).
    key = np.where(ins_id > 0, ins_id, 1000 + sem_id)
    codes = {k: rng.normal(size=space_dim) for k in np.unique(key)}
    ins = np.stack([codes[k] for k in key]).astype(np.float32)
    ins /= np.linalg.norm(ins, axis=1, keepdims=True)
    ins += 0.05 * rng.normal(size=ins.shape).astype(np.float32)
    scales = torch.full((n, 3), 0.005)
    rot = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(n, 4)
    g = Gaussians(
        means=torch.from_numpy(pts).float()[None], opacities=torch.full((1, n), 0.9), scales=scales[None],
        rotations=rot[None], covariances=covariance_from_scale_rotation(scales, rot)[None],
        harmonics=torch.zeros(1, n, 3, 25), semantics=torch.from_numpy(sem)[None], instances=torch.from_numpy(ins)[None],
    )
    return g, sem_id, ins_id


def oracle_session(seq, cfg):
    """A Session fed every frame of the synthetic sequence ``seq`` through the oracle reconstructor: windows of
    4 frames, every frame a keyframe, the network box the sequence's size; idle and with a map when returned
    (the caller closes it)."""
    from eps3d_ros.eval.oracle import OracleReconstructor
    from eps3d_ros.pipeline.session import Session

    cfg.pipeline.window_size = cfg.pipeline.every_n_frames = 4
    cfg.pipeline.keyframe_min_interval = cfg.pipeline.keyframe_min_translation = 0.0
    cfg.pipeline.keyframe_min_rotation = 0.0
    cfg.pipeline.image_height, cfg.pipeline.image_width = seq.height, seq.width
    session = Session(cfg, OracleReconstructor(seq, cfg))
    try:
        for f in seq.frames():
            session.offer(f)
        assert session.wait_idle(120) and session.map.objects
    except BaseException:
        session.close()
        raise
    return session
