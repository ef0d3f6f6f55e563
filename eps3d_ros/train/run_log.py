"""What a run writes as it goes (rank 0 only): ``train_log.csv``, ``eval_log.csv``, TensorBoard, the progress bar.

Rows of ``train_log.csv`` are the global batch's means (every rank's samples), one per
``run.log_every`` optimizer steps. A resumed run keeps the rows before its checkpoint's step and
appends from there, so the file reads as one curve.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from .losses import LOSS_NAMES

__all__ = ["RunLog", "LOG_COLUMNS"]

LOG_COLUMNS = ["step", "lr", "total", *LOSS_NAMES, "grad_norm", "alpha", "render_s", "step_s"]


class RunLog:
    """CSV (+ TensorBoard when installed, + a tqdm bar) in ``out_dir``; ``enabled=False`` writes nothing."""

    def __init__(self, out_dir: str | Path, enabled: bool = True, tensorboard: bool = False) -> None:
        self.out_dir, self.enabled, self.want_tb = Path(out_dir), enabled, tensorboard
        self._tb: Any = None
        self._bar: Any = None

    def open(self, step: int, total: int, progress: bool) -> None:
        """Start (or continue at ``step``) the logs of a run of ``total`` steps."""
        if not self.enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / "train_log.csv"
        rows = []
        if path.is_file():  # resumed: keep rows up to the checkpoint's step
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(float(r.get("step", 0))) < step]
        with path.open("w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
            wr.writeheader()
            for r in rows:
                wr.writerow({k: r.get(k, "") for k in LOG_COLUMNS})
        if self.want_tb and self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
            except Exception:  # noqa: BLE001 - tensorboard not installed: CSV only
                self._tb = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=step, desc="train", dynamic_ncols=True)

    def progress(self, row: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{row['total']:.4f}", refresh=False)

    def train_row(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        with (self.out_dir / "train_log.csv").open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_COLUMNS).writerow({k: row.get(k, "") for k in LOG_COLUMNS})
        if self._tb is not None:
            for k, v in row.items():
                if k != "step":
                    self._tb.add_scalar(f"train/{k}", v, int(row["step"]))

    def eval_row(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        _append_row(self.out_dir / "eval_log.csv", row)
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, float) and math.isfinite(v):
                    self._tb.add_scalar(f"eval/{k}", v, int(row["step"]))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.flush()


def _append_row(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` under the file's own header (a resumed run may order or extend the columns
    differently); new columns rewrite the file with them added, older rows left empty there."""
    columns: list[str] = []
    if path.is_file():
        with path.open(newline="") as f:
            columns = next(csv.reader(f), [])
    if columns and set(row) <= set(columns):
        with path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=columns).writerow(row)
        return
    rows = list(csv.DictReader(path.open(newline=""))) if columns else []
    columns = columns + [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=columns)
        wr.writeheader()
        wr.writerows([*rows, row])

