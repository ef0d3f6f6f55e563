"""The EPS3D release's ScanNet evaluation protocol: which views, what input, which classes.

From the released ``scripts/run_eps3d_scannet{,_2view}.sh``, ``scripts/data_utils/testdata.py`` and
``scripts/test_eps3d_panoptic.py`` (facts only):

* **classes**: wall, floor, ceiling, chair, table, sofa, bed, other; every other NYU40 class of
  ``scannetv2-labels.combined.tsv`` becomes "other", unannotated pixels are ignored. Things: chair, table,
  sofa, bed; stuff: wall, floor, ceiling, other. Decoded against the CLIP (ViT-B/32) embeddings of the bare
  class names;
* **views**, on each scene's frames sorted by name: 8 (16, 32) context views = frames 0, 2, ..., 14 and the
  7 frames between them as novel (target) views; 2 context views: from ``selected_seqs_test.json`` (per
  scene, its frame list), every frame ``t`` with ``t mod 8`` in {1, 4} is a target between context frames
  ``t - 1`` and ``t + 1``. Scenes scene0696_02, scene0692_00 and scene0693_00 are left out;
* **input**: each frame resized (bicubic) so its short side is 448, centre-cropped to 448x448; labels the same
  way with nearest neighbours;
* **novel views**: the camera head runs on context + target frames together; the targets' poses are scaled by
  ``mean(context translations of the context-only pass) / mean(those of the joint pass)`` and the Gaussians
  of the context-only pass are rendered into them (``context`` mode renders the context views with their
  predicted cameras);
* **metrics**: see :mod:`eps3d_ros.eval.reference_metrics` (semantic maps and PQ at 256x256 with a 25-pixel
  border crop; instances at the rendered size; HDBSCAN min_cluster_size 400, min_samples 1, on a random
  subsample of 50 000 rendered pixels, every pixel then taking the nearest weighted cluster centroid).

One known quirk of the release: its PQ script pairs the semantic map of rendered view ``V - 1 - k`` with the
instance map of view ``k`` (the semantic maps are saved in reverse order). ``pq_pairing="same-view"`` (default)
scores each view's own maps; ``"release"`` reproduces the release's pairing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eps3d_ros.data.windows import Window, WindowConfig, sample_windows

from .protocol import resize_nearest

__all__ = ["EvalProtocol", "SCANNET_CLASSES", "view_plan", "reference_input", "reference_labels", "class_lut",
           "selected_frames"]

SCANNET_CLASSES = ("wall", "floor", "ceiling", "chair", "table", "sofa", "bed", "other")
SCANNET_THINGS = ("chair", "table", "sofa", "bed")
EXCLUDED_SCENES = ("scene0696_02", "scene0692_00", "scene0693_00")


@dataclass
class EvalProtocol:
    classes: tuple[str, ...] = SCANNET_CLASSES
    things: tuple[str, ...] = SCANNET_THINGS
    other: str | None = "other"  # a name outside `classes` becomes this class (None: ignored)
    context_views: int = 8
    mode: str = "novel"  # "novel" (render the target views) or "context"
    input_size: int = 448  # short side resize + centre crop to input_size²
    metric_size: int = 256
    border: int = 25
    min_cluster_size: int = 400
    min_samples: int = 1
    max_samples: int = 50_000
    robust: float = 0.005
    pq_pairing: str = "same-view"  # or "release"
    llff_hold: int = 8  # 2-view plan: targets are frames t with t % llff_hold in test_ids
    test_ids: tuple[int, ...] = (1, 4)
    excluded_scenes: tuple[str, ...] = EXCLUDED_SCENES
    seed: int = 0  # the HDBSCAN subsample (the release draws it unseeded)
    notes: list[str] = field(default_factory=list)

    def validate(self) -> "EvalProtocol":
        if self.mode not in ("novel", "context"):
            raise ValueError(f"protocol mode must be 'novel' or 'context', got {self.mode!r}")
        if self.pq_pairing not in ("same-view", "release"):
            raise ValueError(f"pq_pairing must be 'same-view' or 'release', got {self.pq_pairing!r}")
        if self.context_views < 1 or self.input_size % 14 or self.input_size < 14:
            raise ValueError("context views must be >= 1 and the input size a positive multiple of 14")
        if len(set(self.classes)) != len(self.classes) or not self.classes:
            raise ValueError(f"protocol classes must be distinct names, got {self.classes}")
        unknown = [t for t in self.things if t not in self.classes]
        if unknown or (self.other is not None and self.other not in self.classes):
            raise ValueError(f"things {unknown} / other {self.other!r} must be among the classes {self.classes}")
        if not 2 * self.border < self.metric_size:
            raise ValueError("border leaves nothing of the metric size")
        return self

    @property
    def thing_ids(self) -> set[int]:
        return {self.classes.index(t) + 1 for t in self.things}

    @property
    def stuff_ids(self) -> set[int]:
        return {i + 1 for i, c in enumerate(self.classes) if c not in self.things}

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def view_plan(num_frames: int, protocol: EvalProtocol) -> list[Window]:
    """The windows of a scene of ``num_frames`` (already the protocol's frame list): 2 context views → one
    window per target ``t`` with ``t % llff_hold`` in ``test_ids``; V > 2 → the first ``2V - 1`` frames,
    context the even ones, targets the odd ones (fewer frames: as many as there are)."""
    V = protocol.context_views
    if V == 2:
        out = []
        for t in range(num_frames):
            if t % protocol.llff_hold in protocol.test_ids:
                out.append(Window((max(t - 1, 0), min(t + 1, num_frames - 1)), (t,)))
        return out
    n = min(num_frames, 2 * V - 1)
    if n < 1:
        return []
    return sample_windows(n, WindowConfig(num_views=n, split="alternate", max_windows=1))


def selected_frames(root: Path, split: str = "test", path: str | Path | None = None) -> dict[str, list[str]] | None:
    """``selected_seqs_<split>.json`` ({scene: [frame names]}, sorted) of the 2-view protocol, when present."""
    p = Path(path) if path else Path(root) / f"selected_seqs_{split}.json"
    if not p.is_file():
        return None
    d = json.loads(p.read_text())
    return {k: sorted(str(x) for x in v) for k, v in d.items() if v}


def _resized_size(H: int, W: int, size: int) -> tuple[int, int]:
    if W > H:
        return size, int(W * (size / H))
    return int(H * (size / W)), size


def reference_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """``[H, W, 3] uint8`` → ``[size, size, 3]``: short side to ``size`` (bicubic), centre crop."""
    from PIL import Image

    H, W = rgb.shape[:2]
    nh, nw = _resized_size(H, W, size)
    img = rgb if (nh, nw) == (H, W) else np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BICUBIC))
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(img[top:top + size, left:left + size])


def reference_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """``[H, W]`` labels through the same resize (nearest: ``src = floor(dst * in / out)``) and crop."""
    H, W = labels.shape
    nh, nw = _resized_size(H, W, size)
    out = resize_nearest(labels, (nh, nw), mode="nearest")
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(out[top:top + size, left:left + size])


def class_lut(names: tuple[str, ...] | list[str], protocol: EvalProtocol) -> np.ndarray:
    """Label-set id → protocol id (``names[0]`` is unlabelled → 0; names outside the protocol → ``other``)."""
    lower = [c.lower() for c in protocol.classes]
    other = lower.index(protocol.other.lower()) + 1 if protocol.other is not None else 0
    lut = np.zeros(len(names), np.int64)
    for i, n in enumerate(names[1:], 1):
        n = n.lower()
        lut[i] = lower.index(n) + 1 if n in lower else other
    return lut
