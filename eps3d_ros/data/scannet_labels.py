"""ScanNet label ids → class names through ``scannetv2-labels.combined.tsv`` (NYU40 or ScanNet200).

The ScanNet 2D export's ``label-filt/*.png`` hold raw ScanNet label ids: the ``id`` column of
``scannetv2-labels.combined.tsv`` (1..1191; 0 = unannotated). Two label sets map them to classes:

* ``nyu40``: the TSV's ``nyu40id`` / ``nyu40class`` columns; class ``k`` of the label set is the k-th
  NYU40 id present in the TSV (the real file has all 40: wall = 1, floor = 2, ..., otherprop = 40);
* ``scannet200``: the ScanNet200 benchmark's 200 raw ids (:data:`SCANNET200_IDS`, from ScanNet's
  ``BenchmarkScripts/ScanNet200/scannet200_constants.py``), named by the TSV's ``category`` column; raw
  ids outside the 200 become unlabelled (0), as in the benchmark.

A label image value that is neither 0 nor an ``id`` of the TSV is an error naming the file. Stuff (region)
classes: wall, floor and ceiling.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .dataset_scene import DatasetError, LabelSet

__all__ = ["LABEL_SETS", "SCANNET200_IDS", "STUFF_NAMES", "ScanNetLabelMap", "read_label_tsv"]

LABEL_SETS = ("nyu40", "scannet200")
STUFF_NAMES = ("wall", "floor", "ceiling")
TSV_NAME = "scannetv2-labels.combined.tsv"

# The ScanNet200 benchmark's valid raw label ids, in its class order.
SCANNET200_IDS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24, 26, 27, 28, 29, 31, 32, 33, 34,
    35, 36, 38, 39, 40, 41, 42, 44, 45, 46, 47, 48, 49, 50, 51, 52, 54, 55, 56, 57, 58, 59, 62, 63, 64, 65, 66, 67,
    68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 82, 84, 86, 87, 88, 89, 90, 93, 95, 96, 97, 98, 99, 100,
    101, 102, 103, 104, 105, 106, 107, 110, 112, 115, 116, 118, 120, 121, 122, 125, 128, 130, 131, 132, 134, 136,
    138, 139, 140, 141, 145, 148, 154, 155, 156, 157, 159, 161, 163, 165, 166, 168, 169, 170, 177, 180, 185, 188,
    191, 193, 195, 202, 208, 213, 214, 221, 229, 230, 232, 233, 242, 250, 261, 264, 276, 283, 286, 300, 304, 312,
    323, 325, 331, 342, 356, 370, 392, 395, 399, 408, 417, 488, 540, 562, 570, 572, 581, 609, 748, 776, 1156, 1163,
    1164, 1165, 1166, 1167, 1168, 1169, 1170, 1171, 1172, 1173, 1174, 1175, 1176, 1178, 1179, 1180, 1181, 1182,
    1183, 1184, 1185, 1186, 1187, 1188, 1189, 1190, 1191,
)


def read_label_tsv(path: str | Path) -> list[dict[str, str]]:
    """Rows of ``scannetv2-labels.combined.tsv`` (tab-separated, with a header)."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(p, f"missing label table ({TSV_NAME}, from the ScanNet download: put it in the dataset "
                              "root)")
    with p.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    need = {"id", "category", "nyu40id", "nyu40class"}
    if not rows or not need <= set(rows[0]):
        raise DatasetError(p, f"not a ScanNet label table: needs the columns {sorted(need)}")
    return rows


class ScanNetLabelMap:
    """Raw ScanNet label ids → ids of a :class:`LabelSet` (``"nyu40"`` or ``"scannet200"``)."""

    def __init__(self, tsv: str | Path, label_set: str = "nyu40") -> None:
        if label_set not in LABEL_SETS:
            raise ValueError(f"ScanNet label set must be one of {LABEL_SETS}, got {label_set!r}")
        self.tsv = Path(tsv)
        rows = read_label_tsv(self.tsv)
        try:
            raw = {int(r["id"]): r for r in rows}
        except ValueError as e:
            raise DatasetError(self.tsv, f"non-integer id ({e})") from None
        if label_set == "nyu40":
            by_nyu = {}
            for r in rows:
                if r["nyu40id"].strip():
                    by_nyu[int(r["nyu40id"])] = r["nyu40class"].strip()
            nyu_ids = sorted(i for i in by_nyu if i > 0)
            names = ["unlabelled"] + [by_nyu[i] for i in nyu_ids]
            to_class = {n: k + 1 for k, n in enumerate(nyu_ids)}
            table = {rid: to_class.get(int(r["nyu40id"] or 0), 0) for rid, r in raw.items()}
        else:
            names = ["unlabelled"] + [raw[i]["category"].strip() if i in raw else f"class {i}" for i in SCANNET200_IDS]
            to_class = {rid: k + 1 for k, rid in enumerate(SCANNET200_IDS)}
            table = {rid: to_class.get(rid, 0) for rid in raw}
        stuff = tuple(i for i, n in enumerate(names) if n in STUFF_NAMES)
        self.label_set = LabelSet(label_set, tuple(names), stuff)
        self.known = np.array(sorted(raw), dtype=np.int64)
        size = int(max(raw, default=0)) + 1
        self._lut = np.zeros(size, np.int64)
        for rid, c in table.items():
            self._lut[rid] = c

    def __call__(self, raw: np.ndarray, path: str | Path) -> np.ndarray:
        """``[H, W]`` raw ids → label-set ids; an id the TSV does not list is an error naming ``path``."""
        ids = np.unique(raw)
        bad = ids[(ids != 0) & ~np.isin(ids, self.known)]
        if bad.size:
            raise DatasetError(path, f"unknown label id(s) {bad[:8].tolist()} (not in {self.tsv.name})")
        return self._lut[raw]
