"""The scene file: one reconstructed panoptic scene on disk, readable without running any network.

Format (version :data:`FORMAT_VERSION`): ONE safetensors file (any name; ``scene.eps3d`` by
convention) whose header metadata holds three strings::

    format           "eps3d_scene"
    format_version   "1"
    scene            JSON: vocabulary, stuff, panoptic config, text encoder config, frame_id,
                     stamp, scale_known, camera image size, per-object scalars (id, label, ...),
                     scene metadata, free "info" (source, alignment, timings, creation time)
    sha256           hex digest of every tensor's bytes (sorted by name): detects corrupt data

and these tensors (N Gaussians, M objects, S cameras, K classes, D text dim, Cs/Ci feature dims)::

    gaussians/means [N,3] f32          gaussians/opacities [N] f32      gaussians/colors [N,3] f32
    gaussians/weights [N] f32          gaussians/semantic_features [N,Cs] f32
    gaussians/instance_features [N,Ci] f32                 gaussians/cluster_ids [N] i64
    gaussians/labels [N] i64 (-1 unknown)                  gaussians/label_scores [N] f32
    gaussians/instance_ids [N] i64 (0 none)
    splats/scales [N,3] f32  splats/rotations [N,4] f32 xyzw  splats/harmonics [N,3,(d+1)^2] f32  (optional)
    space/weight [D,Cs] f32  space/bias [D] f32                prototypes [K,D] f32
    objects/centroid, aabb_min, aabb_max, obb_center, obb_extent [M,3] f64   objects/obb_rotation [M,3,3] f64
    objects/embedding [M,D] f32   objects/indices [sum of sizes] i64   objects/offsets [M+1] i64
    cameras/extrinsics [S,3,4] f64 camera-from-world in the scene frame (OpenCV axes, scene units)
    cameras/intrinsics [S,3,3] f64 pixels of the network image (pixel (u, v)'s centre at (u, v),
                                   as ``Frame.K`` / CameraInfo)                cameras/stamps [S] f64
    cameras/predicted_intrinsics [S,3,3] f64 the network's own guess (optional)
    extra/<name>  any shape/dtype (optional): state of a writer that builds on scenes (an object map's
                  per-point weights ...), described by that writer in ``info``; readers that do not
                  know it ignore it, and a scene file without it is a complete scene

Everything is in the scene's frame ``frame_id`` (the map frame with TF poses, else the newest
camera's optical frame), in metres when ``scale_known``. Loading rebuilds the :class:`Scene`
(arrays, objects, semantic space, prototypes, panoptic config) as it was saved; queries need a text
encoder, which :func:`load_scene` builds from the stored :class:`TextEncoderConfig` when asked.

Errors: a missing file raises ``FileNotFoundError``; anything else wrong with the file (not
safetensors, not a scene file, another format version, truncated or corrupt data, inconsistent
shapes) raises :class:`SceneFileError` (a ``ValueError``) whose message names the file and the problem.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry.cameras import Cameras, cameras_from_prediction

log = logging.getLogger(__name__)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Cameras",
    "SceneFile",
    "SceneFileError",
    "save_scene",
    "load_scene",
    "read_scene_header",
    "cameras_from_prediction",
    "reconstruct_scene_file",
    "scene_file_from_snapshot",
]

FORMAT = "eps3d_scene"
FORMAT_VERSION = 1

_GAUSSIAN_FIELDS = {  # Scene attribute -> dtype
    "means": np.float32, "opacities": np.float32, "colors": np.float32, "weights": np.float32,
    "semantic_features": np.float32, "instance_features": np.float32, "cluster_ids": np.int64,
    "labels": np.int64, "label_scores": np.float32, "instance_ids": np.int64,
}
_OBJECT_VECTORS = ("centroid", "aabb_min", "aabb_max", "obb_center", "obb_extent")


class SceneFileError(ValueError):
    """A scene file that cannot be read: not one, another version, corrupt or inconsistent."""


@dataclass(frozen=True, eq=False)
class SceneFile:
    """A scene with what is needed to use it again: cameras, frame, scale status, text encoder."""

    scene: Any  # eps3d_ros.panoptic.Scene
    cameras: Cameras | None
    frame_id: str
    scale_known: bool
    stamp: float
    text_encoder: Any  # eps3d_ros.text.TextEncoderConfig: the encoder whose space the prototypes live in
    info: dict[str, Any] = field(default_factory=dict)  # source, alignment, timings, creation time (JSON)
    version: int = FORMAT_VERSION
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # "extra/<name>" tensors (e.g. an object map's state)


# ------------------------------------------------------------------------------------ writing
def save_scene(path: str | Path, scene_file: SceneFile, replaceable: Callable[[dict], bool] | None = None) -> Path:
    """Write ``scene_file`` to ``path`` (atomically: a temporary file beside it, then renamed); an existing file
    only when :func:`check_replaceable` allows."""
    from safetensors.numpy import save_file

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory: give a file name such as {path / 'scene.eps3d'}")
    if not path.parent.exists():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    check_replaceable(path, replaceable)
    tensors, header = _encode(scene_file)
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "scene": json.dumps(header, default=_json_default), "sha256": _digest(tensors)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a written file follows the user's umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_replaceable(path: str | Path, replaceable: Callable[[dict], bool] | None = None) -> None:
    """Refuse (:class:`SceneFileError`) to replace an existing ``path`` that is not an eps3d scene file, or whose
    header ``replaceable`` rejects (a scene where only a map may go): a writer never destroys a file it did not write."""
    p = Path(path)
    if p.exists() or p.is_symlink():
        try:
            header = read_scene_header(p)
        except (SceneFileError, OSError):
            header = None
        if header is None or (replaceable is not None and not replaceable(header)):
            kind = "an eps3d scene file but not a map" if header is not None else "not an eps3d file"
            raise SceneFileError(f"{p} exists and is {kind}: it is never overwritten (choose another name, or "
                                 "remove the file yourself)")


def _umask() -> int:
    """The process's umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _encode(sf: SceneFile) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    s = sf.scene
    t: dict[str, np.ndarray] = {}
    for name, dt in _GAUSSIAN_FIELDS.items():
        t[f"gaussians/{name}"] = np.ascontiguousarray(getattr(s, name), dtype=dt)
    if s.splats is not None:
        t["splats/scales"] = np.ascontiguousarray(s.splats.scales, dtype=np.float32)
        t["splats/rotations"] = np.ascontiguousarray(s.splats.rotations, dtype=np.float32)
        t["splats/harmonics"] = np.ascontiguousarray(s.splats.harmonics, dtype=np.float32)
    t["space/weight"] = s.space.weight.detach().float().cpu().numpy()
    t["space/bias"] = s.space.bias.detach().float().cpu().numpy()
    t["prototypes"] = s.prototypes.detach().float().cpu().numpy()
    objs = s.objects
    D = s.space.dim
    t["objects/centroid"] = _rows([o.centroid for o in objs], (3,))
    t["objects/aabb_min"] = _rows([o.aabb_min for o in objs], (3,))
    t["objects/aabb_max"] = _rows([o.aabb_max for o in objs], (3,))
    t["objects/obb_center"] = _rows([o.obb.center for o in objs], (3,))
    t["objects/obb_extent"] = _rows([o.obb.extent for o in objs], (3,))
    t["objects/obb_rotation"] = _rows([o.obb.rotation for o in objs], (3, 3))
    t["objects/embedding"] = _rows([o.embedding for o in objs], (D,), np.float32)
    sizes = [len(o.indices) for o in objs]
    t["objects/offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    t["objects/indices"] = (np.concatenate([np.asarray(o.indices, np.int64) for o in objs]) if objs
                            else np.zeros(0, np.int64))
    cams = sf.cameras
    if cams is not None:
        t["cameras/extrinsics"] = np.ascontiguousarray(cams.extrinsics, dtype=np.float64)
        t["cameras/intrinsics"] = np.ascontiguousarray(cams.intrinsics, dtype=np.float64)
        if cams.stamps is not None:
            t["cameras/stamps"] = np.ascontiguousarray(cams.stamps, dtype=np.float64)
        if cams.predicted_intrinsics is not None:
            t["cameras/predicted_intrinsics"] = np.ascontiguousarray(cams.predicted_intrinsics, dtype=np.float64)
    for name, a in (sf.extra or {}).items():
        if not name or "/" in name:
            raise ValueError(f"extra tensor names must be non-empty and without '/', got {name!r}")
        t[f"extra/{name}"] = np.ascontiguousarray(a)
    header = {
        "frame_id": sf.frame_id,
        "scale_known": bool(sf.scale_known),
        "stamp": float(sf.stamp),
        "num_gaussians": int(s.num_gaussians),
        "vocabulary": list(s.vocabulary),
        "stuff": sorted(s.stuff),
        "panoptic_config": dataclasses.asdict(s.config),
        "text_encoder": _text_config_dict(sf.text_encoder),
        "cameras": None if cams is None else {"num_views": cams.num_views, "height": cams.height,
                                              "width": cams.width},
        "objects": [{"id": int(o.id), "label": o.label, "label_id": int(o.label_id), "is_thing": bool(o.is_thing),
                     "score": float(o.score), "num_points": int(o.num_points)} for o in objs],
        "scene_metadata": dict(s.metadata),
        "info": dict(sf.info),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "writer": f"eps3d_ros {_package_version()}",
    }
    return t, header


def _rows(items: Sequence[Any], shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    if not items:
        return np.zeros((0, *shape), dtype=dtype)
    return np.ascontiguousarray(np.stack([np.asarray(i, dtype=dtype) for i in items]))


def _text_config_dict(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {}
    d = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    # A local weights file is stored as an absolute path, so the scene can be queried from any folder.
    pretrained = str(d.get("pretrained", ""))
    if pretrained and Path(pretrained).expanduser().is_file():
        d["pretrained"] = str(Path(pretrained).expanduser().resolve())
    return d


def _digest(tensors: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes() if a.size == 0 else memoryview(a.reshape(-1)).cast("B"))
    return h.hexdigest()


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    return str(x)


def _package_version() -> str:
    from eps3d_ros import __version__

    return __version__


# ------------------------------------------------------------------------------------ reading
def read_scene_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a scene file (format checked, tensors not read): cheap inspection."""
    path = _existing(path)
    meta = _open_metadata(path)
    return _check_header(path, meta)


def load_scene(path: str | Path, text_encoder: Any = None) -> SceneFile:
    """Read a scene file. ``text_encoder``: ``None`` (no encoder: the scene can be inspected, rendered
    and exported, queries need one), ``True`` (build the stored :class:`TextEncoderConfig`'s
    encoder), a ``TextEncoderConfig`` (build that one) or an encoder object (attached as it is)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = _existing(path)
    meta = _open_metadata(path)
    header = _check_header(path, meta)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise SceneFileError(f"{path}: corrupt scene file, its data cannot be read ({e})") from None
    if meta.get("sha256") and _digest(tensors) != meta["sha256"]:
        raise SceneFileError(f"{path}: corrupt scene file: the data does not match its checksum "
                             "(damaged in transfer or edited); write it again with `eps3d run`")
    try:
        sf = _decode(header, tensors)
    except SceneFileError as e:
        raise SceneFileError(f"{path}: {e}") from None
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise SceneFileError(f"{path}: inconsistent scene file ({type(e).__name__}: {e})") from None
    if text_encoder is not None and text_encoder is not False:
        sf = attach_text_encoder(sf, text_encoder)
    return sf


def attach_text_encoder(sf: SceneFile, text_encoder: Any = True) -> SceneFile:
    """``sf`` with a text encoder on its scene (see :func:`load_scene`); warns when the encoder's
    prototypes of the scene vocabulary differ from the stored ones (another text space)."""
    import torch

    from ..text import TextEncoderConfig, create_text_encoder

    if text_encoder is True:
        encoder = create_text_encoder(_text_config(sf.text_encoder))
    elif isinstance(text_encoder, TextEncoderConfig):
        encoder = create_text_encoder(text_encoder)
    else:
        encoder = text_encoder
    scene = sf.scene
    if scene.vocabulary:
        protos = encoder.prototypes(list(scene.vocabulary)).float().cpu()
        if protos.shape != scene.prototypes.shape:
            raise ValueError(f"the text encoder embeds into {protos.shape[1]} dimensions but this scene's text space "
                             f"has {scene.prototypes.shape[1]}: use the text encoder the scene was built with")
        cos = torch.nn.functional.cosine_similarity(protos, scene.prototypes.float(), dim=-1)
        if float(cos.min()) < 0.99:
            log.warning("the text encoder's class prototypes differ from the ones stored with the scene (min cosine "
                        "%.3f): queries use another text space than the scene was labelled in", float(cos.min()))
    return dataclasses.replace(sf, scene=dataclasses.replace(scene, text_encoder=encoder))


def _existing(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"scene file not found: {p}")
    if p.is_dir():
        raise SceneFileError(f"{p} is a directory, not a scene file (written by `eps3d run --out FILE`)")
    return p


def _open_metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, UnicodeDecodeError) as e:
        raise SceneFileError(f"{path} is not a scene file: it is not a readable safetensors file "
                             f"(corrupt, truncated or another kind of file: {e})") from None


def _check_header(path: Path, meta: Mapping[str, str]) -> dict[str, Any]:
    if meta.get("format") != FORMAT:
        what = f"format {meta['format']!r}" if meta.get("format") else "no 'format' entry"
        raise SceneFileError(f"{path} is not an eps3d scene file (safetensors with {what}; model weights are read "
                             "with --model, scenes are written by `eps3d run --out FILE`)")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise SceneFileError(f"{path}: scene file without a valid format_version "
                             f"({meta.get('format_version')!r})") from None
    if version != FORMAT_VERSION:
        newer = "newer" if version > FORMAT_VERSION else "older"
        raise SceneFileError(f"{path} is a scene file of format version {version} ({newer}); this eps3d_ros "
                             f"({_package_version()}) reads version {FORMAT_VERSION} only: "
                             + ("update eps3d_ros" if version > FORMAT_VERSION else "re-create it with `eps3d run`"))
    try:
        header = json.loads(meta["scene"])
    except (KeyError, json.JSONDecodeError) as e:
        raise SceneFileError(f"{path}: corrupt scene file, its JSON header cannot be read ({e})") from None
    if not isinstance(header, dict):
        raise SceneFileError(f"{path}: corrupt scene file, its header is not a JSON object")
    header["format_version"] = version
    return header


def _decode(h: dict[str, Any], t: dict[str, np.ndarray]) -> SceneFile:
    import torch

    from ..panoptic.clustering import clustering_config_from_dict
    from ..panoptic.config import PanopticConfig
    from ..panoptic.scene import Scene, SplatParams
    from ..panoptic.semantic_space import SemanticSpace

    def need(name: str) -> np.ndarray:
        if name not in t:
            raise SceneFileError(f"corrupt scene file: tensor {name!r} is missing")
        return t[name]

    g = {name: np.array(need(f"gaussians/{name}"), dtype=dt) for name, dt in _GAUSSIAN_FIELDS.items()}
    n = g["means"].shape[0]
    for name, a in g.items():
        if a.shape[:1] != (n,):
            raise SceneFileError(f"corrupt scene file: gaussians/{name} has {a.shape[0] if a.ndim else 0} rows, "
                                 f"means has {n}")
    if g["means"].shape != (n, 3) or n != int(h.get("num_gaussians", n)):
        raise SceneFileError(f"corrupt scene file: means {g['means'].shape} but header says {h.get('num_gaussians')} "
                             "Gaussians")
    splats = None
    if "splats/scales" in t:
        splats = SplatParams(scales=np.array(t["splats/scales"], np.float32),
                             rotations=np.array(need("splats/rotations"), np.float32),
                             harmonics=np.array(need("splats/harmonics"), np.float32))
        if splats.scales.shape != (n, 3) or splats.rotations.shape != (n, 4) or splats.harmonics.shape[:2] != (n, 3):
            raise SceneFileError("corrupt scene file: splat arrays do not have one row per Gaussian")
    space = SemanticSpace(torch.from_numpy(np.array(need("space/weight"), np.float32)),
                          torch.from_numpy(np.array(need("space/bias"), np.float32)))
    if g["semantic_features"].shape[1:] != (space.feature_dim,):
        raise SceneFileError(f"corrupt scene file: semantic features {g['semantic_features'].shape} do not fit the "
                             f"semantic space [{space.dim}, {space.feature_dim}]")
    vocab = tuple(h["vocabulary"])
    prototypes = torch.from_numpy(np.array(need("prototypes"), np.float32))
    if prototypes.shape != (len(vocab), space.dim):
        raise SceneFileError(f"corrupt scene file: prototypes {tuple(prototypes.shape)} for {len(vocab)} classes "
                             f"in a {space.dim}-d text space")
    if len(g["labels"]) and (g["labels"].min() < -1 or g["labels"].max() >= len(vocab)):
        raise SceneFileError("corrupt scene file: labels outside the vocabulary")

    pc = dict(h.get("panoptic_config") or {})
    clustering = clustering_config_from_dict(pc.pop("clustering", {}) or {})
    config = _known(PanopticConfig, pc)
    config.clustering = clustering

    objects = _decode_objects(h.get("objects") or [], need, n)

    scene = Scene(**g, objects=tuple(objects), vocabulary=vocab, stuff=frozenset(h.get("stuff") or ()),
                  prototypes=prototypes, space=space, config=config, text_encoder=None,
                  metadata=dict(h.get("scene_metadata") or {}), splats=splats)

    cameras = None
    ch = h.get("cameras")
    if ch:
        cameras = Cameras(extrinsics=need("cameras/extrinsics"), intrinsics=need("cameras/intrinsics"),
                          height=int(ch["height"]), width=int(ch["width"]), stamps=t.get("cameras/stamps"),
                          predicted_intrinsics=t.get("cameras/predicted_intrinsics"))
    stamp = float(h.get("stamp", math.nan))
    info = dict(h.get("info") or {})
    info.setdefault("created", h.get("created"))
    info.setdefault("writer", h.get("writer"))
    return SceneFile(scene=scene, cameras=cameras, frame_id=str(h.get("frame_id", "")),
                     scale_known=bool(h.get("scale_known", False)), stamp=stamp,
                     text_encoder=_text_config(h.get("text_encoder") or {}), info=info,
                     version=int(h["format_version"]),
                     extra={k[len("extra/"):]: np.array(a) for k, a in t.items() if k.startswith("extra/")})


def _decode_objects(meta_objs: list[dict[str, Any]], need: Any, n: int) -> list[Any]:
    """The scene's objects from their header entries and tensors (``need(name)`` reads a tensor); ``n`` Gaussians."""
    from ..panoptic.geometry import OrientedBox
    from ..panoptic.scene import SceneObject

    m = len(meta_objs)
    offsets = need("objects/offsets")
    indices = need("objects/indices")
    if offsets.shape != (m + 1,) or offsets[-1] != len(indices) or (m and (np.diff(offsets) < 0).any()):
        raise SceneFileError(f"corrupt scene file: object offsets do not fit {m} objects and {len(indices)} indices")
    if len(indices) and (indices.min() < 0 or indices.max() >= n):
        raise SceneFileError("corrupt scene file: object indices outside the Gaussians")
    vec = {k: need(f"objects/{k}") for k in _OBJECT_VECTORS}
    rot, emb = need("objects/obb_rotation"), need("objects/embedding")
    for k, a in [*vec.items(), ("obb_rotation", rot), ("embedding", emb)]:
        if a.shape[:1] != (m,):
            raise SceneFileError(f"corrupt scene file: objects/{k} has {a.shape[0]} rows for {m} objects")
    objects = []
    for i, o in enumerate(meta_objs):
        objects.append(SceneObject(
            id=int(o["id"]), label=str(o["label"]), label_id=int(o["label_id"]), is_thing=bool(o["is_thing"]),
            score=float(o["score"]), centroid=np.array(vec["centroid"][i]), aabb_min=np.array(vec["aabb_min"][i]),
            aabb_max=np.array(vec["aabb_max"][i]),
            obb=OrientedBox(center=np.array(vec["obb_center"][i]), rotation=np.array(rot[i]),
                            extent=np.array(vec["obb_extent"][i])),
            num_points=int(o["num_points"]), embedding=np.array(emb[i], np.float32),
            indices=np.array(indices[offsets[i]:offsets[i + 1]], np.int64)))
    return objects


def _known(cls: type, values: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        log.warning("scene file: ignoring unknown %s fields %s", cls.__name__, unknown)
    return cls(**{k: v for k, v in values.items() if k in names})


def _text_config(d: Any) -> Any:
    from ..text import TextEncoderConfig

    if isinstance(d, TextEncoderConfig):
        return d
    return _known(TextEncoderConfig, dict(d or {}))


# ------------------------------------------------------------------------------ from a run
def reconstruct_scene_file(reconstructor: Any, frames: Sequence[Any], info: dict[str, Any] | None = None
                           ) -> tuple[SceneFile, Any]:
    """Run ``reconstructor`` (anything with ``run(frames) -> SceneSnapshot``) on ``frames``:
    ``(SceneFile, SceneSnapshot)``."""
    snap = reconstructor.run(frames)
    return scene_file_from_snapshot(snap, getattr(getattr(reconstructor, "text_encoder", None), "config", None),
                                    info), snap


def scene_file_from_snapshot(snap: Any, text_encoder: Any = None, info: dict[str, Any] | None = None) -> SceneFile:
    """A :class:`SceneFile` of a :class:`~eps3d_ros.pipeline.SceneSnapshot` (its cameras, alignment and timings)."""
    a = snap.alignment
    run_info = {"alignment": a.method, "alignment_residual_m": None if math.isnan(a.residual_m) else a.residual_m,
                "depth_scale": a.depth_scale, "notes": list(snap.notes),
                "timings_s": {k: round(float(v), 4) for k, v in snap.timings.items()},
                "measured_depth": snap.measured_depth, **(info or {})}
    return SceneFile(scene=snap.scene, cameras=snap.cameras, frame_id=snap.frame_id, scale_known=snap.scale_known,
                     stamp=snap.stamp, text_encoder=text_encoder, info=run_info)
