"""Teacher files for unlabelled recordings (``eps3d teachers``): dense CLIP features and SAM masks per frame.

The frames of a source (a dataset scene or a recorded folder) go through the feature model (and the mask
model) chunk by chunk; each finished chunk is saved under ``OUT/.teacher_parts/`` at once, so a long
recording that is interrupted continues where it stopped (the same command again). At the end the chunks are
streamed into ``OUT/teacher.npz`` (:mod:`.teacher_store`) with ``teacher.json`` beside it, and the parts are
removed. Memory: one chunk of frames and features.

Every frame's features use the first frame's patch grid and its masks the first frame's mask size (a frame of
another size is resized to them). For a recorded folder (``views.npz``) the masks are stored at the views'
size, as that documented format wants.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .teacher_store import TEACHER_JSON, TEACHER_NPZ, write_npz_streamed, write_teacher_json

log = logging.getLogger(__name__)

__all__ = ["FrameSource", "scene_source", "recording_source", "make_teachers", "PARTS"]

PARTS = ".teacher_parts"


@dataclass
class FrameSource:
    """What the teacher loop needs of its input."""

    frame_ids: list[str]
    rgb: Callable[[int], np.ndarray]  # frame index → [H, W, 3] uint8
    describe: dict[str, Any] = field(default_factory=dict)  # dataset / scene / path, for teacher.json
    mask_size: tuple[int, int] | None = None  # fixed mask size (recordings), else the mask model's


def scene_source(scene: Any) -> FrameSource:
    """A :class:`~eps3d_ros.data.dataset_scene.SceneReader`'s frames."""
    return FrameSource(list(scene.frame_ids), scene.read_rgb,
                       {"dataset": scene.dataset, "scene": scene.scene_id, "root": str(scene.root)})


def recording_source(folder: str | Path) -> FrameSource:
    """A recorded folder's ``views.npz`` frames (the format of :mod:`eps3d_ros.train.teachers`)."""
    folder = Path(folder)
    with np.load(folder / "views.npz") as v:
        rgb = v["rgb"]
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"{folder}/views.npz: 'rgb' must be [S, H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
    return FrameSource([str(i) for i in range(len(rgb))], lambda i: rgb[i], {"recording": str(folder)},
                       mask_size=tuple(rgb.shape[1:3]))


def _resize_nearest(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = a.shape
    if (h, w) == tuple(size):
        return a
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1)
    return a[rows[:, None], cols[None, :]]


def _manifest(source: FrameSource, grid, mask_size, features, masks, chunk: int) -> dict[str, Any]:
    return {"frame_ids": source.frame_ids, "grid": list(grid), "mask_size": list(mask_size), "chunk": chunk,
            "features": {"model": features.arch, "weights": features.checkpoint, "size": features.config.size},
            "masks": None if masks is None else {"model": masks.config.model, "weights": masks.config.checkpoint,
                                                 "size": masks.config.size}}


def _prepare(out: Path, manifest: dict[str, Any], overwrite: bool) -> Path:
    parts = out / PARTS
    if overwrite and parts.exists():
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    mpath = parts / "manifest.json"
    if mpath.is_file():
        old = json.loads(mpath.read_text())
        if old != manifest:
            changed = sorted(k for k in manifest if old.get(k) != manifest[k])
            raise ValueError(f"{parts} holds an unfinished teacher run with other settings ({', '.join(changed)}): "
                             "run the same command to continue it, or pass --overwrite to start again")
    else:
        mpath.write_text(json.dumps(manifest))
    return parts


def make_teachers(source: FrameSource, out: str | Path, features: Any, masks: Any | None = None, chunk: int = 16,
                  progress: bool = False, overwrite: bool = False, text_encoder: dict[str, Any] | None = None
                  ) -> Path:
    """Write ``out/teacher.npz`` + ``teacher.json`` for ``source`` (see the module docstring); returns ``out``.
    ``features``: a :class:`~eps3d_ros.teacher_models.DenseClip`; ``masks``: a
    :class:`~eps3d_ros.teacher_models.SamMasks` or ``None`` (no masks: all zero)."""
    out = Path(out)
    if chunk < 1:
        raise ValueError("chunk must be >= 1")
    n = len(source.frame_ids)
    if n == 0:
        raise ValueError("no frames to make teachers for")
    if (out / TEACHER_NPZ).is_file() and not overwrite:
        raise ValueError(f"{out / TEACHER_NPZ} exists: pass --overwrite to replace it")
    first = source.rgb(0)
    grid = features.grid(*first.shape[:2])
    mask_size = source.mask_size or (masks.size(*first.shape[:2]) if masks is not None else first.shape[:2])
    parts = _prepare(out, _manifest(source, grid, mask_size, features, masks, chunk), overwrite)
    starts = list(range(0, n, chunk))
    done = {k for k, s in enumerate(starts) if (parts / f"part_{k:06d}.npz").is_file()}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=sum(min(chunk, n - starts[k]) for k in done), desc="teachers", unit="frame")
    try:
        for k, s in enumerate(starts):
            if k in done:
                continue
            idx = range(s, min(n, s + chunk))
            feats, labels = [], []
            for i in idx:
                rgb = first if i == 0 else source.rgb(i)
                feats.append(features(rgb, grid).numpy().astype(np.float16))
                m = masks(rgb) if masks is not None else np.zeros(mask_size, np.int32)
                labels.append(_resize_nearest(m, mask_size).astype(np.int32))
                if bar is not None:
                    bar.update(1)
            tmp = parts / f"part_{k:06d}.tmp.npz"
            np.savez(tmp, features=np.stack(feats), masks=np.stack(labels))
            tmp.replace(parts / f"part_{k:06d}.npz")
    finally:
        if bar is not None:
            bar.close()
    _assemble(out, parts, starts, source, grid, mask_size, features, masks, text_encoder)
    return out


def _chunks(parts: Path, starts: Sequence[int], key: str):
    for k in range(len(starts)):
        with np.load(parts / f"part_{k:06d}.npz") as z:
            yield z[key]


def _assemble(out: Path, parts: Path, starts, source: FrameSource, grid, mask_size, features, masks,
              text_encoder: dict[str, Any] | None) -> None:
    n, D = len(source.frame_ids), features.dim
    ids = np.array(source.frame_ids)
    write_npz_streamed(out / TEACHER_NPZ, {
        "features": ((n, *grid, D), np.float16, _chunks(parts, starts, "features")),
        "masks": ((n, *mask_size), np.int32, _chunks(parts, starts, "masks")),
        "frame_ids": (ids.shape, ids.dtype, [ids]),
    })
    meta = {"feature_dim": D, "grid": list(grid), "mask_size": list(mask_size), "frames": n,
            "text_encoder": text_encoder or {"model": features.arch, "pretrained": features.checkpoint,
                                             "quick_gelu": str(features.quick_gelu).lower()},
            "feature_source": f"dense CLIP read-out (MaskCLIP) of open_clip {features.arch} at {features.config.size} px",
            "mask_source": "none" if masks is None else f"segment-anything {masks.config.model} automatic masks",
            **source.describe}
    write_teacher_json(out, meta)
    shutil.rmtree(parts, ignore_errors=True)
    log.info("wrote %s and %s (%d frames)", out / TEACHER_NPZ, out / TEACHER_JSON, n)
