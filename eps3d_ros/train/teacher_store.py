"""``teacher.npz`` written chunk by chunk and read lazily.

Arrays (see :mod:`eps3d_ros.train.teachers` for the format; ``eps3d teachers`` adds ``frame_ids``)::

    features   [S, h, w, D] float16   unit text-aligned features on the teacher's patch grid
    masks      [S, hm, wm]  int32     mask ids per frame, 0 = none (any size: resized nearest when used)
    frame_ids  [S]          str       the scene's frame ids the rows belong to

The file is an uncompressed ``.npz`` written by streaming each array's rows (memory bounded by one chunk),
so :class:`TeacherFile` can memory-map its members and read only the frames a window needs. A compressed
``.npz`` (``write_recording``'s) is read whole instead.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .teachers import TEACHER_FORMAT, TEACHER_VERSION, read_teacher_json

__all__ = ["write_npz_streamed", "npz_member", "TeacherFile", "write_teacher_json", "TEACHER_NPZ", "TEACHER_JSON"]

TEACHER_NPZ = "teacher.npz"
TEACHER_JSON = "teacher.json"


def write_npz_streamed(path: str | Path, arrays: dict[str, tuple[tuple[int, ...], np.dtype, Iterable[np.ndarray]]]) -> Path:
    """Write an uncompressed ``.npz`` whose arrays come as ``(shape, dtype, row chunks)``; written to a temporary
    name and renamed, so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, (shape, dtype, chunks) in arrays.items():
            dtype = np.dtype(dtype)
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
            rows = 0
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_2_0(f, header)
                for chunk in chunks:
                    chunk = np.ascontiguousarray(chunk, dtype=dtype)
                    if chunk.shape[1:] != tuple(shape[1:]):
                        raise ValueError(f"{name}: chunk rows of shape {chunk.shape[1:]}, expected {tuple(shape[1:])}")
                    f.write(chunk.tobytes())
                    rows += chunk.shape[0]
            if rows != shape[0]:
                raise ValueError(f"{name}: {rows} rows written, {shape[0]} declared")
    tmp.replace(path)
    return path


def npz_member(path: str | Path, name: str) -> np.ndarray:
    """Array ``name`` of an ``.npz``: memory-mapped (read-only) when stored uncompressed, else loaded."""
    path = Path(path)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{name}.npy")
        stored = info.compress_type == zipfile.ZIP_STORED
        offset = info.header_offset
    if not stored:
        with np.load(path) as z:
            return z[name]
    with path.open("rb") as f:
        f.seek(offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"{path}: broken zip member {name}")
        n, e = struct.unpack("<HH", local[26:30])
        f.seek(offset + 30 + n + e)
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                 else np.lib.format.read_array_header_2_0(f))
        data_offset = f.tell()
    if fortran or dtype.hasobject:
        with np.load(path) as z:
            return z[name]
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=data_offset, shape=shape)


class TeacherFile:
    """A teacher folder (``teacher.npz`` + ``teacher.json``) opened lazily."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.meta: dict[str, Any] = read_teacher_json(self.folder)
        npz = self.folder / TEACHER_NPZ
        if not npz.is_file():
            raise FileNotFoundError(f"{npz} not found (write it with `eps3d teachers`)")
        self.features = npz_member(npz, "features")
        self.masks = npz_member(npz, "masks")
        with zipfile.ZipFile(npz) as zf:
            has_ids = "frame_ids.npy" in zf.namelist()
        self.frame_ids = [str(s) for s in np.load(npz)["frame_ids"]] if has_ids else None
        S = self.features.shape[0]
        if self.features.ndim != 4 or self.masks.ndim != 3 or self.masks.shape[0] != S:
            raise ValueError(f"{npz}: features [S, h, w, D] and masks [S, h, w] expected, got "
                             f"{self.features.shape} and {self.masks.shape}")
        if self.features.shape[-1] != int(self.meta.get("feature_dim", self.features.shape[-1])):
            raise ValueError(f"{npz}: features of width {self.features.shape[-1]}, teacher.json says "
                             f"{self.meta['feature_dim']}")
        self._row = {f: i for i, f in enumerate(self.frame_ids or [])}

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def rows(self, frame_ids: list[str]) -> list[int]:
        """Rows of ``frame_ids`` (an error naming the first frame the file lacks)."""
        if self.frame_ids is None:
            raise ValueError(f"{self.folder}: teacher.npz has no frame_ids (write it with `eps3d teachers`)")
        missing = [f for f in frame_ids if f not in self._row]
        if missing:
            raise ValueError(f"{self.folder}: no teacher rows for frame(s) {missing[:5]} (run `eps3d teachers` again "
                             "on this scene)")
        return [self._row[f] for f in frame_ids]

    def read(self, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(features [n, h, w, D] float32, masks [n, hm, wm] int64)`` of ``rows``."""
        return (np.asarray(self.features[rows], dtype=np.float32), np.asarray(self.masks[rows], dtype=np.int64))


def write_teacher_json(folder: Path, meta: dict[str, Any]) -> Path:
    out = {"format": TEACHER_FORMAT, "version": TEACHER_VERSION, **meta}
    p = folder / TEACHER_JSON
    p.write_text(json.dumps(out, indent=2) + "\n")
    return p
