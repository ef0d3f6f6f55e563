"""A run's learning curve: held-out metrics against the CPU-hours spent, as CSV and as a plot.

The rows come from the run's ``eval_log.csv`` (one per ``run.eval_every`` steps, written by rank 0;
``cpu_hours`` / ``wall_hours`` from :mod:`.run_usage`). :func:`write_learning_curve` writes
``learning_curve.csv`` (the columns of :data:`CURVE_METRICS`) and ``learning_curve.png`` (one panel per
metric, CPU-hours on the x axis, the demo model's aims as dashed lines) — the evidence for decisions
about a model, stopping included: ``write_learning_curve(RUN_DIR, MODEL_DIR)`` (the plot needs matplotlib,
the ``plots`` extra).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CurveMetric", "CURVE_METRICS", "read_learning_curve", "write_learning_curve", "plot_learning_curve"]


@dataclass(frozen=True)
class CurveMetric:
    column: str  # in eval_log.csv
    title: str
    aim: float | None = None  # the demo model's target (dashed line), if any
    higher_is_better: bool = True


CURVE_METRICS: tuple[CurveMetric, ...] = (
    CurveMetric("camera_rotation_error_median_deg", "camera rotation error, median (deg)", 10.0, False),
    CurveMetric("depth_abs_rel", "depth AbsRel (native size)", 0.10, False),
    CurveMetric("depth_abs_rel_off_size_max", "depth AbsRel, one 14-px step off", 0.12, False),
    CurveMetric("render_psnr_median_db", "render PSNR, median (dB)", 20.0),
    CurveMetric("miou_3d", "semantic mIoU (3D)", 0.5),
    CurveMetric("pq_3d", "PQ (3D)"),
    CurveMetric("pq_things_3d", "PQ things (3D)", 0.2),
    CurveMetric("query_label_accuracy", "query label accuracy", 0.5),
)
_AXES = ("step", "cpu_hours", "wall_hours")


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_learning_curve(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of ``run_dir/eval_log.csv`` (step order; a step logged twice keeps its last row), reduced
    to the step, the hours and :data:`CURVE_METRICS` (NaN where a row lacks a column)."""
    path = Path(run_dir) / "eval_log.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no eval_log.csv in {run_dir}: the run has not evaluated yet (run.eval_every)")
    by_step: dict[int, dict[str, float]] = {}
    with path.open(newline="") as f:
        for raw in csv.DictReader(f):
            row = {k: _number(raw.get(k)) for k in (*_AXES, *(m.column for m in CURVE_METRICS))}
            if math.isfinite(row["step"]):
                by_step[int(row["step"])] = row
    if not by_step:
        raise ValueError(f"{path} holds no evaluation rows")
    return [by_step[s] for s in sorted(by_step)]


def plot_learning_curve(rows: list[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """One panel per metric against CPU-hours (steps where no row has hours), aims dashed."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError as e:  # an optional dependency: say how to get it
        raise ImportError("plotting the learning curve needs matplotlib: pip install 'eps3d_ros[plots]'") from e
    x_key = "cpu_hours" if any(math.isfinite(r["cpu_hours"]) for r in rows) else "step"
    cols = 4
    n = len(CURVE_METRICS)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(4 * cols, 3.2 * ((n + cols - 1) // cols)))
    for ax, metric in zip(axes.flat, CURVE_METRICS):
        pts = [(r[x_key], r[metric.column]) for r in rows if math.isfinite(r[x_key]) and math.isfinite(r[metric.column])]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3)
        if metric.aim is not None:
            ax.axhline(metric.aim, linestyle="--", color="tab:green", linewidth=1,
                       label=f"aim {'≥' if metric.higher_is_better else '≤'} {metric.aim:g}")
            ax.legend(loc="best", fontsize=8)
        ax.set_title(metric.title, fontsize=9)
        ax.set_xlabel("CPU-hours" if x_key == "cpu_hours" else "step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_learning_curve(run_dir: str | Path, out_dir: str | Path | None = None,
                         title: str = "") -> tuple[Path, Path]:
    """``learning_curve.csv`` and ``learning_curve.png`` of the run in ``run_dir`` into ``out_dir``
    (default ``run_dir``); returns both paths."""
    rows = read_learning_curve(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "learning_curve.csv"
    columns = [*_AXES, *(m.column for m in CURVE_METRICS)]
    with csv_path.open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(columns)
        for r in rows:
            wr.writerow(["" if not math.isfinite(r[c]) else (int(r[c]) if c == "step" else f"{r[c]:.6g}")
                         for c in columns])
    return csv_path, plot_learning_curve(rows, out / "learning_curve.png", title)
