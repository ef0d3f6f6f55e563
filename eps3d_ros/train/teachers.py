"""Teachers: where the semantic and instance supervision of a training view comes from.

EPS3D distils 2D foundation models: a per-pixel text-aligned feature map (LSeg in the paper) for
semantics and class-agnostic masks (SAM) for instances. A teacher turns one training sample into
:class:`TeacherTargets`; the losses only see those. Two teachers ship:

**GroundTruthTeacher** (synthetic scenes). Semantic target of a pixel = the text encoder's prototype
of its class name (``TextEncoder.prototypes``, bare names, so labelling with the same prototypes is
consistent with training). Stored as per-view class ids plus one prototype table ``[K, D]`` instead of
``[S, H, W, D]`` maps. Choices:

* class 0 ("background", nothing hit) gets **no** semantic target: it is excluded from the loss, just
  as the metrics ignore it (a "background" prototype would teach a class nobody queries);
* instance masks = ground-truth instance ids (0 = none, excluded);
* with ``stuff_masks`` (default) each stuff class (floor, wall, table) present in a view is one more
  mask, so stuff regions are grouped too and pushed away from the objects on them. Without it stuff
  pixels take no part in the instance loss.

**FileTeacher** (your own recordings): precomputed teacher outputs stored beside the views, in this
format (one folder per recording; written by :func:`write_recording`, read by
:func:`read_recording` and :class:`eps3d_ros.train.datasets.RecordedDataset`)::

    RECORDING/
      views.npz     rgb         [S, H, W, 3] uint8                      (required)
                    depth       [S, H, W]    float32 metres, 0 = none   (optional)
                    intrinsics  [S, 3, 3]    float32 pixels             (optional, with extrinsics)
                    extrinsics  [S, 3, 4]    float32 camera-from-world, OpenCV axes (optional)
      teacher.npz   features    [S, h, w, D] float16 text-aligned per-pixel features (e.g. LSeg; any
                                              h, w: resized bilinearly; an all-zero vector = no target)
                    masks       [S, H, W]    int32 mask ids per view (e.g. SAM; 0 = no mask; ids need
                                              not agree across views)
      teacher.json  {"format": "eps3d_teacher", "version": 1, "feature_dim": D,
                     "text_encoder": {"model": ..., "pretrained": ...},   # the space of the features
                     "feature_source": "...", "mask_source": "..."}      # free text, for people

``D`` must equal the model's ``gaussians.semantic_expanded_dim`` (512 for CLIP ViT-B-32), and the
features must live in the space of the text encoder used at run time (record it in the JSON).

For a dataset scene or a capture (``data.kind`` scannet / scannetpp / replica / transforms with
``data.teachers``), ``eps3d teachers`` writes ``teacher.npz`` + ``teacher.json`` only (the frames stay in the
dataset), with ``frame_ids [S]`` (str: the scene's frame ids the rows belong to) and ``masks [S, h, w]`` of
any size (resized nearest when used); the file is an uncompressed ``.npz`` read lazily
(:mod:`eps3d_ros.train.teacher_store`). ``teacher.json`` adds ``grid``, ``mask_size``, ``frames`` and the
``dataset`` / ``scene`` / ``root`` (or ``recording``) the rows came from.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)

__all__ = [
    "TeacherTargets",
    "Teacher",
    "GroundTruthTeacher",
    "FileTeacher",
    "STUFF_MASK_OFFSET",
    "TEACHER_FORMAT",
    "write_recording",
    "read_recording",
    "read_teacher_json",
]

TEACHER_FORMAT = "eps3d_teacher"
TEACHER_VERSION = 1
STUFF_MASK_OFFSET = 1 << 20  # mask id of stuff class c is STUFF_MASK_OFFSET + c (never an instance id)


@dataclass
class TeacherTargets:
    """Supervision of the S views of one sample (any subset of views can be taken with :meth:`select`).

    Semantic targets come either as ``class_ids`` + ``prototypes`` or as dense ``features``.
    """

    masks: Tensor  # [S, H, W] int64 instance-mask ids, 0 = no mask
    class_ids: Tensor | None = None  # [S, H, W] int64 row of ``prototypes``, -1 = no target
    prototypes: Tensor | None = None  # [K, D] unit text embeddings
    features: Tensor | None = None  # [S, D, h, w] float32 dense teacher features (zero vector = none)

    def __post_init__(self) -> None:
        if (self.class_ids is None) == (self.features is None):
            raise ValueError("TeacherTargets needs exactly one of class_ids (+ prototypes) or features")
        if self.class_ids is not None and self.prototypes is None:
            raise ValueError("class_ids need a prototype table")

    @property
    def num_views(self) -> int:
        return int(self.masks.shape[0])

    def select(self, views: Tensor | list[int]) -> "TeacherTargets":
        v = torch.as_tensor(views, dtype=torch.long)
        return TeacherTargets(
            masks=self.masks[v],
            class_ids=None if self.class_ids is None else self.class_ids[v],
            prototypes=self.prototypes,
            features=None if self.features is None else self.features[v],
        )

    def semantic_classes(self, size: tuple[int, int]) -> Tensor | None:
        """Class ids ``[S, h, w]`` at ``size`` (majority of the covered pixels; ``-1`` where under half of
        the area is labelled), or ``None`` for dense-feature teachers."""
        if self.class_ids is None:
            return None
        k = self.prototypes.shape[0]
        ids = self.class_ids
        onehot = (F.one_hot(ids.clamp(min=0), k).float() * (ids >= 0)[..., None].float()).permute(0, 3, 1, 2)
        if onehot.shape[-2:] != tuple(size):
            onehot = F.interpolate(onehot, size=tuple(size), mode="area")
        best = onehot.argmax(dim=1)
        return torch.where(onehot.sum(1) >= 0.5, best, torch.full_like(best, -1))

    def semantic_target(self, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Targets ``[S, D, h, w]`` and validity ``[S, h, w]`` (float weight in [0, 1]) at ``size = (h, w)``.

        Class ids are area-averaged as one-hot maps (so a target pixel covering two classes gets the
        normalised mean of their prototypes, weighted by the labelled fraction): this matches the
        expansion's x0.5 bilinear step, which averages 2x2 blocks. Dense features are resized
        bilinearly; valid where the resized vector is non-zero.
        """
        h, w = size
        if self.class_ids is not None:
            protos = self.prototypes.float()
            k = protos.shape[0]
            ids = self.class_ids
            onehot = F.one_hot(ids.clamp(min=0), k).to(protos.dtype) * (ids >= 0)[..., None].to(protos.dtype)
            onehot = onehot.permute(0, 3, 1, 2)  # [S, K, H, W]
            if onehot.shape[-2:] != (h, w):
                onehot = F.interpolate(onehot, size=(h, w), mode="area")
            labelled = onehot.sum(1)  # [S, h, w]
            target = torch.einsum("skhw,kd->sdhw", onehot, protos)
            target = F.normalize(target, dim=1)
            valid = (labelled >= 0.5).to(protos.dtype)
            return target, valid
        feats = self.features.float()
        if feats.shape[-2:] != (h, w):
            feats = F.interpolate(feats, size=(h, w), mode="bilinear", align_corners=False)
        valid = (feats.norm(dim=1) > 1e-6).to(feats.dtype)
        return F.normalize(feats, dim=1), valid


class Teacher(Protocol):
    """Turns a training sample (:class:`eps3d_ros.train.datasets.Sample`) into :class:`TeacherTargets`."""

    def __call__(self, sample: Any) -> TeacherTargets: ...


class GroundTruthTeacher:
    """Synthetic ground truth as a teacher (see the module docstring for the choices)."""

    def __init__(
        self,
        prototypes: Tensor,
        class_names: list[str],
        stuff_classes: list[int] | tuple[int, ...] = (),
        ignore_class: int = 0,
        stuff_masks: bool = True,
    ) -> None:
        if prototypes.dim() != 2 or prototypes.shape[0] != len(class_names):
            raise ValueError(f"prototypes must be [K, D] with K = {len(class_names)} class names, "
                             f"got {tuple(prototypes.shape)}")
        self.prototypes = F.normalize(prototypes.detach().float().cpu(), dim=-1)
        self.class_names = list(class_names)
        self.stuff_classes = [int(c) for c in stuff_classes]
        self.ignore_class = ignore_class
        self.stuff_masks = stuff_masks

    @classmethod
    def from_text_encoder(cls, text_encoder, class_names: list[str], **kwargs) -> "GroundTruthTeacher":
        """Prototypes of ``class_names`` (bare names) from a :class:`~eps3d_ros.text.TextEncoder`."""
        return cls(text_encoder.prototypes(list(class_names)).float().cpu(), class_names, **kwargs)

    def __call__(self, sample: Any) -> TeacherTargets:
        sem, ins = sample.semantic, sample.instance
        if sem is None or ins is None:
            raise ValueError("GroundTruthTeacher needs samples with semantic and instance labels (synthetic scenes)")
        class_ids = torch.where(sem == self.ignore_class, torch.full_like(sem, -1), sem)
        masks = torch.where(ins > 0, ins, torch.zeros_like(ins))
        if self.stuff_masks and self.stuff_classes:
            is_stuff = torch.isin(sem, torch.tensor(self.stuff_classes, dtype=sem.dtype)) & (ins == 0)
            masks = torch.where(is_stuff, STUFF_MASK_OFFSET + sem, masks)
        return TeacherTargets(masks=masks.long(), class_ids=class_ids.long(), prototypes=self.prototypes)


class FileTeacher:
    """Precomputed teacher features and masks that came with the sample (``teacher_features``/``teacher_masks``)."""

    def __call__(self, sample: Any) -> TeacherTargets:
        feats, masks = sample.teacher_features, sample.teacher_masks
        if feats is None or masks is None:
            raise ValueError("FileTeacher needs samples with teacher_features and teacher_masks "
                             "(a recording with teacher.npz; see eps3d_ros.train.teachers)")
        return TeacherTargets(masks=masks.long(), features=feats.float())


# --------------------------------------------------------------------------- recording files
def write_recording(
    directory: str | Path,
    rgb: np.ndarray,
    teacher_features: np.ndarray,
    teacher_masks: np.ndarray,
    depth: np.ndarray | None = None,
    intrinsics: np.ndarray | None = None,
    extrinsics: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write one recording in the documented format (see the module docstring); returns the folder."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be [S, H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
    S, H, W = rgb.shape[:3]
    feats = np.asarray(teacher_features)
    masks = np.asarray(teacher_masks)
    if feats.ndim != 4 or feats.shape[0] != S:
        raise ValueError(f"teacher_features must be [S={S}, h, w, D], got {feats.shape}")
    if masks.shape != (S, H, W):
        raise ValueError(f"teacher_masks must be [S, H, W] = {(S, H, W)}, got {masks.shape}")
    views: dict[str, np.ndarray] = {"rgb": rgb}
    if depth is not None:
        depth = np.asarray(depth, np.float32)
        if depth.shape != (S, H, W):
            raise ValueError(f"depth must be [S, H, W] = {(S, H, W)}, got {depth.shape}")
        views["depth"] = depth
    if (intrinsics is None) != (extrinsics is None):
        raise ValueError("give both intrinsics and extrinsics, or neither")
    if intrinsics is not None:
        intrinsics = np.asarray(intrinsics, np.float32)
        extrinsics = np.asarray(extrinsics, np.float32)
        if intrinsics.shape != (S, 3, 3) or extrinsics.shape != (S, 3, 4):
            raise ValueError(f"intrinsics must be [S, 3, 3] and extrinsics [S, 3, 4], got {intrinsics.shape}, "
                             f"{extrinsics.shape}")
        views["intrinsics"], views["extrinsics"] = intrinsics, extrinsics
    np.savez_compressed(d / "views.npz", **views)
    np.savez_compressed(d / "teacher.npz", features=feats.astype(np.float16), masks=masks.astype(np.int32))
    meta = {"format": TEACHER_FORMAT, "version": TEACHER_VERSION, "feature_dim": int(feats.shape[-1]),
            **(metadata or {})}
    (d / "teacher.json").write_text(json.dumps(meta, indent=2) + "\n")
    return d


def read_teacher_json(directory: str | Path) -> dict[str, Any]:
    p = Path(directory) / "teacher.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: a recording needs teacher.json (see eps3d_ros.train.teachers)")
    meta = json.loads(p.read_text())
    if meta.get("format") != TEACHER_FORMAT:
        raise ValueError(f"{p}: format must be {TEACHER_FORMAT!r}, got {meta.get('format')!r}")
    if int(meta.get("version", 1)) > TEACHER_VERSION:
        raise ValueError(f"{p}: version {meta['version']} is newer than this eps3d_ros ({TEACHER_VERSION})")
    return meta


def read_recording(directory: str | Path) -> dict[str, Any]:
    """All arrays of a recording (numpy) plus ``metadata``; checks shapes against each other."""
    d = Path(directory)
    meta = read_teacher_json(d)
    for name in ("views.npz", "teacher.npz"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name} not found (see eps3d_ros.train.teachers for the format)")
    with np.load(d / "views.npz") as v:
        out: dict[str, Any] = {k: v[k] for k in v.files}
    with np.load(d / "teacher.npz") as t:
        out["teacher_features"] = t["features"]
        out["teacher_masks"] = t["masks"]
    rgb = out.get("rgb")
    if rgb is None or rgb.ndim != 4:
        raise ValueError(f"{d}/views.npz: 'rgb' [S, H, W, 3] uint8 is required")
    S, H, W = rgb.shape[:3]
    if out["teacher_masks"].shape != (S, H, W):
        raise ValueError(f"{d}/teacher.npz: masks {out['teacher_masks'].shape} do not match rgb {(S, H, W)}")
    if out["teacher_features"].shape[0] != S or out["teacher_features"].shape[-1] != meta["feature_dim"]:
        raise ValueError(f"{d}/teacher.npz: features {out['teacher_features'].shape} do not match S={S}, "
                         f"feature_dim={meta['feature_dim']}")
    out["metadata"] = meta
    return out
