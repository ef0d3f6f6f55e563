"""3D Gaussian splatting PLY files (the layout of the original 3DGS code, which splat viewers read).

One ``vertex`` element, binary little-endian, one row per Gaussian, float32 properties in this order::

    x y z                      centre (scene frame, scene units)
    nx ny nz                   zeros (the original layout carries them; viewers ignore them)
    f_dc_0 f_dc_1 f_dc_2       SH DC coefficient per colour channel (colour = 0.5 + 0.28209479 * f_dc)
    f_rest_0 ... f_rest_{3(K-1)-1}   the higher SH coefficients, channel-major: all of R's K-1
                               coefficients, then G's, then B's (K = (degree+1)^2; 45 values for degree 3)
    opacity                    logit of the opacity (viewers apply a sigmoid)
    scale_0 scale_1 scale_2    log of the per-axis standard deviations (viewers apply exp)
    rot_0 rot_1 rot_2 rot_3    unit quaternion w x y z (scalar first)

then two uint32 properties of ours, which viewers skip::

    label                      class index into the scene vocabulary (panoptic: a thing's Gaussians carry
                               their object's class); 4294967295 = unknown. The header's comments list
                               the vocabulary (``comment label 0 floor`` ...).
    instance                   object id of things; 0 = stuff / none

Written with numpy (no PLY library needed); :func:`read_ply` reads any binary little-endian or ASCII
PLY with one element of scalar properties (used by the tests, and handy to check a file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..conventions import SH_C0

__all__ = ["SH_C0", "PlyGaussians", "write_gaussian_ply", "read_ply", "read_gaussian_ply", "UNKNOWN_LABEL"]

UNKNOWN_LABEL = 0xFFFFFFFF
_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
          "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
          "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


@dataclass(frozen=True, eq=False)
class PlyGaussians:
    """Gaussians decoded from a 3DGS PLY, in the project's conventions (see :mod:`eps3d_ros.conventions`)."""

    means: np.ndarray  # [N, 3]
    opacities: np.ndarray  # [N] in (0, 1)
    scales: np.ndarray  # [N, 3] standard deviations
    rotations: np.ndarray  # [N, 4] unit xyzw
    harmonics: np.ndarray  # [N, 3, K]
    labels: np.ndarray | None  # [N] int64, -1 unknown
    instances: np.ndarray | None  # [N] int64
    comments: list[str]

    @property
    def colors(self) -> np.ndarray:
        return np.clip(0.5 + SH_C0 * self.harmonics[:, :, 0], 0.0, 1.0)


def write_gaussian_ply(path: str | Path, scene: Any, sh_degree: int = 3, min_opacity: float = 0.0) -> dict[str, Any]:
    """Write a :class:`~eps3d_ros.panoptic.Scene` as a 3DGS PLY; returns ``{"path", "gaussians", "sh_degree"}``.

    ``sh_degree``: SH bands to write (0-4); 3 (45 ``f_rest``) is what most viewers expect. Bands the scene
    does not have (a map's points, a scene built from bare points: DC colour only) are written as zeros, so
    the file always has the degree asked (``"scene_sh_degree"`` in the result says what the scene had).
    ``min_opacity``: more transparent Gaussians are left out (a filter that leaves none is an error). A
    scene built from bare points gets isotropic scales from its nearest-neighbour spacing and identity
    rotations.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory: give a file name such as {path / 'scene.ply'}")
    if not path.parent.exists():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    if not 0 <= int(sh_degree) <= 4:
        raise ValueError(f"sh_degree must be in 0..4, got {sh_degree}")
    keep = np.nonzero(np.asarray(scene.opacities) >= min_opacity)[0]
    n = len(keep)
    if n == 0 and scene.num_gaussians:
        o = np.asarray(scene.opacities)
        raise ValueError(f"min_opacity {min_opacity:g} leaves no Gaussian to write (the scene's opacities are "
                         f"{o.min():.3f} to {o.max():.3f}): lower it")
    means = np.asarray(scene.means, np.float32)[keep]
    opac = np.asarray(scene.opacities, np.float64)[keep]
    if scene.splats is not None:
        scales = np.asarray(scene.splats.scales, np.float64)[keep]
        rot_xyzw = np.asarray(scene.splats.rotations, np.float64)[keep]
        harm = np.asarray(scene.splats.harmonics, np.float32)[keep]
    else:
        scales = np.repeat(_spacing(np.asarray(scene.means, np.float64))[keep, None], 3, axis=1)
        rot_xyzw = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
        harm = ((np.asarray(scene.colors, np.float32)[keep] - 0.5) / SH_C0)[:, :, None]
    k_have = harm.shape[2]
    k_out = (int(sh_degree) + 1) ** 2
    degree, scene_degree = int(sh_degree), int(round(k_have ** 0.5)) - 1
    if k_have < k_out:  # the bands the scene lacks are zero (view-independent colour), not left out
        harm = np.concatenate([harm, np.zeros((n, 3, k_out - k_have), harm.dtype)], axis=2)

    norm = np.linalg.norm(rot_xyzw, axis=1, keepdims=True)
    rot_xyzw = np.where(norm > 1e-12, rot_xyzw / np.maximum(norm, 1e-12), [0.0, 0.0, 0.0, 1.0])
    rot_wxyz = np.concatenate([rot_xyzw[:, 3:4], rot_xyzw[:, :3]], axis=1)
    o = np.clip(opac, 1e-6, 1 - 1e-6)
    sem, ins = scene.panoptic_labels()

    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * (k_out - 1))]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    dtype = np.dtype([(nm, "<f4") for nm in names] + [("label", "<u4"), ("instance", "<u4")])
    v = np.empty(n, dtype=dtype)
    for i, a in enumerate("xyz"):
        v[a] = means[:, i]
        v[f"n{a}"] = 0.0
    for c in range(3):
        v[f"f_dc_{c}"] = harm[:, c, 0]
    rest = harm[:, :, 1:k_out].reshape(n, -1)  # [N, 3 (K-1)] channel-major, as the 3DGS code flattens [N, 3, K-1]
    for i in range(rest.shape[1]):
        v[f"f_rest_{i}"] = rest[:, i]
    v["opacity"] = np.log(o / (1 - o))
    log_s = np.log(np.maximum(scales, 1e-12))
    for i in range(3):
        v[f"scale_{i}"] = log_s[:, i]
    for i in range(4):
        v[f"rot_{i}"] = rot_wxyz[:, i]
    v["label"] = np.asarray(sem, np.int64)[keep] & 0xFFFFFFFF
    v["instance"] = np.maximum(np.asarray(ins, np.int64)[keep], 0)

    comments = ["generated by eps3d_ros (3D Gaussian splatting layout + label/instance)",
                f"sh_degree {degree}", f"frame {scene.metadata.get('frame_id', '')}".rstrip(),
                "label 4294967295 unknown"]
    comments += [f"label {i} {name}" for i, name in enumerate(scene.vocabulary)]
    header = ["ply", "format binary_little_endian 1.0"]
    header += [f"comment {c}" for c in comments if "\n" not in c]
    header += [f"element vertex {n}"]
    header += [f"property {'float' if dtype[nm].kind == 'f' else 'uint'} {nm}" for nm in dtype.names]
    header += ["end_header"]
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii", errors="replace"))
        f.write(v.tobytes())
    return {"path": str(path), "gaussians": n, "sh_degree": degree, "scene_sh_degree": scene_degree}


def _spacing(points: np.ndarray) -> np.ndarray:
    """Per point, half the distance to its nearest neighbour (a size for bare points)."""
    if len(points) < 2:
        return np.full(len(points), 0.01)
    from scipy.spatial import cKDTree

    d, _ = cKDTree(points).query(points, k=2)
    return np.maximum(d[:, 1] * 0.5, 1e-6)


def read_ply(path: str | Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """``({property: [N] array}, comments)`` of a PLY's single ``vertex`` element (binary LE or ASCII)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PLY file not found: {path}")
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise ValueError(f"{path} is not a PLY file (no 'ply' magic / 'end_header')")
    nl = data.find(b"\n", end)
    lines = data[:end].decode("ascii", errors="replace").splitlines()
    body = data[nl + 1:]
    fmt, count, props, comments, element = None, 0, [], [], None
    for line in lines[1:]:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "comment":
            comments.append(line[len("comment "):])
        elif parts[0] == "element":
            if element is not None:
                raise ValueError(f"{path}: only PLY files with one element are supported")
            element, count = parts[1], int(parts[2])
        elif parts[0] == "property":
            if parts[1] == "list":
                raise ValueError(f"{path}: list properties are not supported")
            if parts[1] not in _TYPES:
                raise ValueError(f"{path}: unknown property type {parts[1]!r}")
            props.append((parts[2], _TYPES[parts[1]]))
    if element != "vertex":
        raise ValueError(f"{path}: expected a 'vertex' element, got {element!r}")
    if fmt == "binary_little_endian":
        dtype = np.dtype([(n, "<" + t) for n, t in props])
        if len(body) < count * dtype.itemsize:
            raise ValueError(f"{path}: truncated ({len(body)} bytes of data for {count} x {dtype.itemsize})")
        arr = np.frombuffer(body, dtype=dtype, count=count)
        return {n: np.array(arr[n]) for n, _ in props}, comments
    if fmt == "ascii":
        rows = np.loadtxt(body.decode().splitlines()[:count], ndmin=2) if count else np.zeros((0, len(props)))
        return {n: rows[:, i].astype(t) for i, (n, t) in enumerate(props)}, comments
    raise ValueError(f"{path}: unsupported PLY format {fmt!r}")


def read_gaussian_ply(path: str | Path) -> PlyGaussians:
    """A 3DGS PLY back to Gaussians (sigmoid opacity, exp scales, xyzw rotations, [N, 3, K] SH)."""
    p, comments = read_ply(path)
    need = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [k for k in need if k not in p]
    if missing:
        raise ValueError(f"{path} is not a 3D Gaussian splatting PLY: missing properties {missing}")
    n = len(p["x"])
    rest_names = sorted((k for k in p if re.fullmatch(r"f_rest_\d+", k)), key=lambda k: int(k[7:]))
    if len(rest_names) % 3:
        raise ValueError(f"{path}: {len(rest_names)} f_rest properties is not a multiple of 3")
    k = 1 + len(rest_names) // 3
    harm = np.empty((n, 3, k), np.float32)
    harm[:, :, 0] = np.stack([p[f"f_dc_{c}"] for c in range(3)], 1)
    if k > 1:
        harm[:, :, 1:] = np.stack([p[r] for r in rest_names], 1).reshape(n, 3, k - 1)
    wxyz = np.stack([p[f"rot_{i}"] for i in range(4)], 1).astype(np.float64)
    wxyz /= np.maximum(np.linalg.norm(wxyz, axis=1, keepdims=True), 1e-12)
    labels = p.get("label")
    return PlyGaussians(
        means=np.stack([p["x"], p["y"], p["z"]], 1),
        opacities=1.0 / (1.0 + np.exp(-p["opacity"].astype(np.float64))),
        scales=np.exp(np.stack([p[f"scale_{i}"] for i in range(3)], 1).astype(np.float64)),
        rotations=np.concatenate([wxyz[:, 1:], wxyz[:, :1]], 1),
        harmonics=harm,
        labels=None if labels is None else np.where(labels == UNKNOWN_LABEL, -1, labels.astype(np.int64)),
        instances=None if "instance" not in p else p["instance"].astype(np.int64),
        comments=comments,
    )
