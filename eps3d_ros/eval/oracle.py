"""An oracle reconstructor: each window's snapshot from a synthetic sequence's ground truth, not a network.

Same contract as :class:`~eps3d_ros.pipeline.reconstruct.Reconstructor` (``run(frames) -> SceneSnapshot``),
so whatever consumes snapshots (the session, the object map, evaluation) can be measured apart from
the model's quality. For each window frame (found in the sequence by its stamp, also for looped
frames; in a two-camera :class:`~eps3d_ros.data.camera_rig.CameraRigSequence` by its camera and stamp) every
``pixel_stride``-th pixel in each direction that hits a surface becomes one Gaussian:

* centre: the true surface point (depth and camera of the sequence, world = map frame), plus optional
  seeded noise of ``position_noise`` m per axis;
* opacity 1, identity rotation, an isotropic scale of half the sampled cell's footprint
  (``0.5 * stride * depth / fx``, so the "area" pooling weight is the cell's area), SH DC from the
  pixel's colour;
* semantic features whose expansion is exactly the CLIP text embedding of the pixel's class: the
  :class:`~eps3d_ros.panoptic.SemanticSpace` ``W`` is an orthonormal basis of the span of the
  prototypes of the vocabulary and the sequence's class names (``b = 0``), a feature is the
  coordinates of the prototype in that basis;
* instance features: a seeded unit vector per thing (instance id) and per stuff class (any two
  orthogonal or opposite), plus seeded noise of ``feature_noise`` so that HDBSCAN sees clusters with a
  spread.

The window's cameras are brought to one size as the network's window is (the largest, the others covered and
centre-cropped by :func:`~eps3d_ros.frames.intake.fit_frame`; cameras of several sizes in one window).

Then the real :func:`eps3d_ros.panoptic.build_scene` runs with ``config.panoptic``. Note its clustering
sizes: a small thing seen in a window covers tens of Gaussians at stride 2, far below the default
``min_cluster_size`` of 400 (meant for network windows of 4 × 224² Gaussians), so use
:meth:`OracleReconstructor.default_config` (or set ``panoptic.clustering.hdbscan.min_cluster_size`` and
``min_object_points`` likewise) to see small things.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from ..model.outputs import Gaussians
from ..panoptic import SemanticSpace, build_scene
from ..conventions import SH_C0
from ..geometry.similarity import Sim3
from ..geometry.alignment import Alignment
from ..geometry.cameras import Cameras
from ..settings.tree import Eps3dConfig
from ..frames.frame import Frame
from ..frames.intake import fit_frame
from ..pipeline.reconstruct import SceneSnapshot, check_window

__all__ = ["OracleReconstructor", "DEMO_TEXT_ENCODER_DIR"]

# The random-weight tiny CLIP shipped with the demo model: the default text encoder of the oracle.
DEMO_TEXT_ENCODER_DIR = Path(__file__).resolve().parents[2] / "models" / "demo_tiny"


class OracleReconstructor:
    """Builds snapshots of windows of ``sequence``'s frames from its ground truth (see the module docstring).

    Args:
        sequence: a :class:`~eps3d_ros.data.sequence.SyntheticSequence` (the one the frames come from), or a
            :class:`~eps3d_ros.data.camera_rig.CameraRigSequence` (frames of several cameras).
        config: reads ``panoptic`` and ``output.map_frame``; default :meth:`default_config`.
        text_encoder: anything with ``prototypes(names) -> [K, D]`` unit rows (a
            :class:`~eps3d_ros.text.TextEncoder`); default: the tiny CLIP of ``models/demo_tiny``.
        pixel_stride: one Gaussian per ``stride × stride`` pixels, at the cell centre (1 = every pixel; 2
            gives ~12.5k Gaussians for a window of four 112² frames, of which HDBSCAN samples 10k).
        position_noise: standard deviation (m) of seeded Gaussian noise on the centres (robustness tests).
        feature_noise: standard deviation of the noise on instance features (before normalising).
        instance_dim: instance feature width; default (and at least) half the number of things + stuff
            classes, so that any two instance vectors are orthogonal or opposite.
        seed: seeds the instance vectors and the noise (the noise of frame ``i`` is the same in every
            window and loop).
    """

    def __init__(self, sequence: Any, config: Eps3dConfig | None = None, text_encoder: Any = None, *,
                 pixel_stride: int = 2, position_noise: float = 0.0, feature_noise: float = 0.02,
                 instance_dim: int | None = None, seed: int = 0) -> None:
        views = ("class_names", "objects") if hasattr(sequence, "locate") else \
            ("rgb", "depth", "semantic", "instance", "intrinsics", "extrinsics", "class_names", "objects")
        for name in views:
            if not hasattr(sequence, name):
                raise TypeError(f"sequence must be a SyntheticSequence or a CameraRigSequence (it has no {name!r})")
        if isinstance(pixel_stride, bool) or not isinstance(pixel_stride, int) or pixel_stride < 1:
            raise ValueError(f"pixel_stride must be an integer >= 1, got {pixel_stride!r}")
        if not (position_noise >= 0 and np.isfinite(position_noise)):
            raise ValueError(f"position_noise must be a non-negative number of metres, got {position_noise!r}")
        if not (0 <= feature_noise < 0.5):
            raise ValueError(f"feature_noise must be in [0, 0.5) (larger noise merges instances), "
                             f"got {feature_noise!r}")
        self.sequence = sequence
        self.config = config if config is not None else self.default_config()
        self.config.output.validate()
        self.config.panoptic.validate()
        self.text_encoder = text_encoder if text_encoder is not None else _demo_text_encoder()
        self.pixel_stride = int(pixel_stride)
        self.position_noise = float(position_noise)
        self.feature_noise = float(feature_noise)
        self.seed = int(seed)
        self.space, self._class_features = _prototype_space(self.text_encoder, list(sequence.class_names),
                                                            list(self.config.panoptic.vocabulary))
        self._instance_rows, self._instance_vectors = _instance_vectors(sequence, instance_dim, self.seed)

    @staticmethod
    def default_config(**panoptic_changes: Any) -> Eps3dConfig:
        """An :class:`Eps3dConfig` whose clustering suits the oracle's Gaussian counts: ``min_cluster_size`` 20,
        ``min_object_points`` 10 (``panoptic_changes`` set further ``PanopticConfig`` fields)."""
        cfg = Eps3dConfig()
        cfg.panoptic.clustering.hdbscan.min_cluster_size = 20
        cfg.panoptic.min_object_points = 10
        for key, value in panoptic_changes.items():
            if not hasattr(cfg.panoptic, key):
                raise ValueError(f"PanopticConfig has no field {key!r}")
            setattr(cfg.panoptic, key, value)
        return cfg

    # ------------------------------------------------------------------------------------------ run
    def run(self, frames: Sequence[Frame]) -> SceneSnapshot:
        """The snapshot of a window of the sequence's frames (oldest → newest), in the map frame.

        ``timings`` has the Reconstructor's keys; "network" is the time to make the ground-truth Gaussians.
        """
        frames = list(frames)
        check_window(frames)
        cfg = self.config
        t0 = time.perf_counter()
        index = [self._locate(f) for f in frames]
        t1 = time.perf_counter()
        gaussians = self._gaussians(index)
        t2 = time.perf_counter()
        map_frame = cfg.output.map_frame
        newest = max(f.stamp for f in frames)
        align = Alignment(sim3=Sim3.identity(), frame_id=map_frame, scale_known=True, method="oracle",
                          residual_m=0.0, reference_index=len(frames) - 1)
        cameras = self._cameras(frames, index)
        t3 = time.perf_counter()
        scene = build_scene(gaussians, self.space, self.text_encoder, cfg.panoptic, metadata={
            "frame_id": map_frame, "stamp": newest, "alignment": "oracle", "scale_known": True,
            "oracle_frames": tuple(i for _, i in index)})
        t4 = time.perf_counter()
        timings = {"preprocess": t1 - t0, "network": t2 - t1, "alignment": t3 - t2, "panoptic": t4 - t3,
                   "total": t4 - t0}
        return SceneSnapshot(
            scene=scene, frame_id=map_frame, stamp=newest, scale_known=True, alignment=align,
            timings=MappingProxyType(timings), window_stamps=tuple(f.stamp for f in frames), measured_depth=True,
            notes=(), cameras=cameras,
        )

    def _locate(self, frame: Frame) -> tuple[Any, int]:
        """The (one camera's) sequence and frame index a window frame shows."""
        if hasattr(self.sequence, "locate"):
            seq, i = self.sequence.locate(frame.camera, frame.stamp)
        else:
            seq = self.sequence
            i = seq.frame_index(frame.stamp)
        if frame.size != (seq.height, seq.width):
            raise ValueError(f"frame at {frame.stamp:.3f} s is {frame.height}x{frame.width}, the sequence "
                             f"{seq.height}x{seq.width}: the oracle needs the sequence's own frames, not resized")
        if not np.array_equal(frame.rgb, seq.rgb[i]):
            raise ValueError(f"frame at {frame.stamp:.3f} s does not show frame {i} of this sequence: frames of "
                             "another sequence (or of a variant with other removed objects)?")
        return seq, i

    def _gaussians(self, index: list[tuple[Any, int]]) -> Gaussians:
        """Pixel-aligned Gaussians of the strided valid pixels of ``index``'s frames, view-row-col order."""
        s = self.pixel_stride
        means, colours, scales, sem, ins = [], [], [], [], []
        for seq, i in index:
            rows = slice(s // 2, None, s)  # the cell centres, in both directions
            world = seq.world_points(i)[rows, rows]  # [h, w, 3], NaN where nothing is hit
            ok = seq.depth[i][rows, rows] > 0
            cls = seq.semantic[i][rows, rows][ok]
            inst = seq.instance[i][rows, rows][ok]
            fx = float(seq.intrinsics[i][0, 0])
            rng = np.random.default_rng([self.seed, i, *self._camera_number(seq)])  # the same in every window
            p = world[ok]
            if self.position_noise > 0:
                p = p + rng.normal(0.0, self.position_noise, p.shape)
            keys = np.where(inst > 0, inst, -cls)  # things by instance id, stuff by class (negated)
            vec = self._instance_vectors[self._instance_rows(keys)]
            if self.feature_noise > 0:
                vec = vec + rng.normal(0.0, self.feature_noise, vec.shape)
            means.append(p)
            colours.append(seq.rgb[i][rows, rows][ok].astype(np.float64) / 255.0)
            scales.append(0.5 * s * seq.depth[i][rows, rows][ok].astype(np.float64) / fx)
            sem.append(self._class_features[cls])
            ins.append(vec / np.linalg.norm(vec, axis=1, keepdims=True))
        mean = torch.from_numpy(np.concatenate(means)).float()[None]  # [1, N, 3]
        n = mean.shape[1]
        scale = torch.from_numpy(np.concatenate(scales)).float()[:, None].expand(n, 3).contiguous()[None]  # [1, N, 3]
        dc = (torch.from_numpy(np.concatenate(colours)).float() - 0.5) / SH_C0  # [N, 3]
        rotations = torch.zeros(1, n, 4)
        rotations[..., 3] = 1.0  # identity, xyzw
        return Gaussians(
            means=mean, opacities=torch.ones(1, n), scales=scale, rotations=rotations,
            covariances=torch.diag_embed(scale * scale), harmonics=dc[None, :, :, None].contiguous(),
            semantics=torch.from_numpy(np.concatenate(sem)).float()[None],
            instances=torch.from_numpy(np.concatenate(ins)).float()[None],
        )

    def _camera_number(self, seq: Any) -> tuple[int, ...]:
        """``(k,)`` for the k-th camera of a rig, ``()`` for a one-camera sequence (its noise as it always was)."""
        cams = getattr(self.sequence, "cameras", None)
        return (next(k for k, c in enumerate(cams.values()) if c is seq),) if cams else ()

    def _cameras(self, frames: list[Frame], index: list[tuple[Any, int]]) -> Cameras:
        """The true cameras of the window, K in the Frame convention (centres at u, v), brought to one size by the
        intake as a network window is (one camera: its own size)."""
        views = []
        for f, (seq, i) in zip(frames, index):
            K = seq.intrinsics[i].astype(np.float64)
            K[0, 2] -= seq.pixel_offset
            K[1, 2] -= seq.pixel_offset
            depth = seq.depth[i].astype(np.float32)
            depth[depth <= 0] = np.nan
            views.append(Frame(f.stamp, seq.rgb[i], K, f.frame_id, depth=depth, camera=f.camera))
        size = max((v.size for v in views), key=lambda hw: hw[0] * hw[1])  # the intake's rule, at the true sizes
        views = [fit_frame(v, *size) for v in views]
        E = np.stack([seq.extrinsics[i] for seq, i in index]).astype(np.float64)
        return Cameras(E, np.stack([v.K for v in views]), views[0].height, views[0].width,
                       np.asarray([f.stamp for f in frames]), np.stack([v.depth for v in views]))


def _demo_text_encoder() -> Any:
    from ..model.bundle import load_text_encoder  # heavy (open_clip): only when no encoder is given

    if not (DEMO_TEXT_ENCODER_DIR / "text_encoder.json").is_file():
        raise FileNotFoundError(f"no text encoder given and the demo one is not at {DEMO_TEXT_ENCODER_DIR}: "
                                "pass text_encoder= (e.g. eps3d_ros.model.bundle.load_text_encoder(model_dir))")
    return load_text_encoder(DEMO_TEXT_ENCODER_DIR)


def _prototype_space(text_encoder: Any, class_names: list[str],
                     vocabulary: list[str]) -> tuple[SemanticSpace, np.ndarray]:
    """A semantic space spanned by the prototypes of the vocabulary and the sequence's classes, and per class id
    of the sequence the feature ``[C, r]`` (float32) whose expansion is that class's prototype (row 0,
    background, is unused)."""
    names = list(dict.fromkeys([*(v.strip() for v in vocabulary), *class_names[1:]]))
    protos = text_encoder.prototypes(names).detach().double().cpu()  # [M, D] unit rows
    u, sv, _ = torch.linalg.svd(protos.T, full_matrices=False)  # columns of u span the prototypes
    basis = u[:, sv > sv[0] * 1e-6]  # [D, r] orthonormal
    space = SemanticSpace(weight=basis.float().contiguous(), bias=torch.zeros(basis.shape[0]))
    coords = (protos @ basis).float().numpy()  # [M, r]
    features = np.zeros((len(class_names), basis.shape[1]), np.float32)
    for c, name in enumerate(class_names[1:], start=1):
        features[c] = coords[names.index(name)]
    return space, features


def _instance_vectors(sequence: Any, dim: int | None, seed: int):
    """Seeded unit vectors, one per thing (instance id) and one per stuff class, any two of them orthogonal or
    opposite (the rows of ``[Q; -Q]`` for a random rotation ``Q``): far apart, so that HDBSCAN never merges two
    instances and no Gaussian joins another instance's centroid, in half as many dimensions as orthonormal
    rows would need (HDBSCAN's time grows with the dimension). Also a function from keys (instance id > 0, or
    minus the class id for stuff) to their rows."""
    n_things = len(sequence.objects)
    stuff_row = np.full(len(sequence.class_names), -1, np.int64)
    for k, c in enumerate(sequence.stuff):
        stuff_row[c] = n_things + k
    rows = n_things + len(sequence.stuff)
    dim = max(int(dim or 0), (rows + 1) // 2, 2)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    vectors = np.concatenate([q, -q])[:rows]

    def row_of(keys: np.ndarray) -> np.ndarray:
        out = np.where(keys > 0, keys - 1, stuff_row[np.maximum(-keys, 0)])  # things 0..n-1, then stuff classes
        if (out < 0).any():
            raise ValueError("a pixel without an instance is not of a stuff class: the sequence's labels are "
                             "inconsistent")
        return out

    return row_of, vectors
