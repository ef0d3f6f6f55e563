"""The trainer tests' tiny training configuration (tiny preset, 42x42, one synthetic scene of 3 views)."""

from __future__ import annotations

from eps3d_ros.train.config import TrainConfig

__all__ = ["ALL_TERMS", "small_config"]

ALL_TERMS = ("rgb", "semantic", "instance", "ins2sem", "depth", "camera", "direct_semantic", "direct_instance",
             "semantic_ce", "direct_semantic_ce", "direct_rgb")


def small_config(out_dir, text_weights: str, **sections) -> TrainConfig:
    """Tiny model, 42x42, one synthetic scene of 3 views (2 context + the middle one as target), every loss term on;
    ``sections`` update the config's sections key by key.

    Small Gaussians (``scale_max``) keep the renders of the untrained geometry cheap.
    """
    d = {
        "model": {"preset": "tiny", "overrides": {"gaussians": {"scale_max": 0.02}}},
        "text": {"model": "eps3d-tiny-clip", "pretrained": text_weights},
        "data": {"height": 42, "width": 42, "context_views": 2, "target_views": 1, "num_scenes": 1, "seed_start": 7},
        "render": {"backend": "torch", "context_views": -1},
        "loss": {**{name: 1.0 for name in ALL_TERMS}, "semantic_ce": 0.2, "direct_semantic_ce": 0.2},
        "optim": {"steps": 100, "lr": 2e-3, "warmup_steps": 0, "min_lr_ratio": 1.0},
        "run": {"out_dir": str(out_dir), "device": "cpu", "log_every": 1, "checkpoint_every": 0, "progress": False,
                "tensorboard": False},
    }
    for k, v in sections.items():
        d[k] = {**d.get(k, {}), **v}
    return TrainConfig.from_dict(d)
