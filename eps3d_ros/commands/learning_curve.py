"""``eps3d learning-curve RUN_DIR [--out DIR] [--title TEXT] [--json]``: a training run's held-out metrics against
the CPU-hours spent, as ``learning_curve.csv`` and ``learning_curve.png`` (:mod:`eps3d_ros.train.learning_curve`).

It reads only ``RUN_DIR/eval_log.csv``, so it runs beside a training job (rank 0 appends a row every
``run.eval_every`` steps) and on a copied log. It prints, per metric, the first and the last value, the best one
and the step where it was reached, and whether the last value meets the demo model's aim: the numbers a model card
quotes and a decision to stop rests on.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .guard import EXIT_OK, UserError, guarded

HELP = "write a training run's learning curve (held-out metrics against CPU-hours) as CSV and PNG"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("learning-curve", help=HELP, description=HELP + "; the plot needs matplotlib "
                              "(pip install 'eps3d_ros[plots]')")
    p.add_argument("run_dir", help="the training run's folder (run.out_dir), holding eval_log.csv")
    p.add_argument("--out", help="folder for learning_curve.csv / .png (default: RUN_DIR), e.g. a model folder")
    p.add_argument("--title", default="", help="the plot's title")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.set_defaults(func=run)
    return p


def curve_summary(rows: list[dict[str, float]]) -> list[dict]:
    """Per metric of :data:`CURVE_METRICS`: first, last and best value (with its step and CPU-hours) and whether
    the last value meets the aim (None without an aim or without values)."""
    from ..train.learning_curve import CURVE_METRICS

    out = []
    for m in CURVE_METRICS:
        pts = [r for r in rows if math.isfinite(r[m.column])]
        entry: dict = {"metric": m.column, "title": m.title, "aim": m.aim, "higher_is_better": m.higher_is_better,
                       "points": len(pts)}
        if pts:
            best = (max if m.higher_is_better else min)(pts, key=lambda r: r[m.column])
            last = pts[-1][m.column]
            entry.update(first=pts[0][m.column], last=last, last_step=int(pts[-1]["step"]), best=best[m.column],
                         best_step=int(best["step"]),
                         best_cpu_hours=best["cpu_hours"] if math.isfinite(best["cpu_hours"]) else None,
                         meets_aim=None if m.aim is None else bool(last >= m.aim if m.higher_is_better
                                                                    else last <= m.aim))
        out.append(entry)
    return out


def _table(rows: list[dict[str, float]], summary: list[dict]) -> str:
    hours = rows[-1]["cpu_hours"]
    lines = [f"{len(rows)} evaluations, steps {int(rows[0]['step'])}..{int(rows[-1]['step'])}"
             + (f", {hours:.2f} CPU-hours" if math.isfinite(hours) else " (no CPU-hours logged)"),
             f"{'metric':38s} {'first':>8s} {'last':>8s} {'best':>8s} {'at step':>8s} {'aim':>8s}  meets aim"]
    for e in summary:
        if not e["points"]:
            lines.append(f"{e['title']:38s} {'(never logged)':>8s}")
            continue
        aim = "" if e["aim"] is None else f"{'>=' if e['higher_is_better'] else '<='}{e['aim']:g}"
        meets = {None: "", True: "yes", False: "no"}[e["meets_aim"]]
        lines.append(f"{e['title']:38s} {e['first']:8.3f} {e['last']:8.3f} {e['best']:8.3f} {e['best_step']:8d} "
                     f"{aim:>8s}  {meets}")
    return "\n".join(lines)


@guarded
def run(args: argparse.Namespace) -> int:
    from ..train.learning_curve import read_learning_curve, write_learning_curve

    run_dir = Path(args.run_dir).expanduser()
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder: give a training run's folder (run.out_dir)")
    try:
        rows = read_learning_curve(run_dir)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from e
    try:
        csv_path, png_path = write_learning_curve(run_dir, args.out, title=args.title)
    except ImportError as e:  # matplotlib is an extra
        raise UserError(str(e)) from e
    summary = curve_summary(rows)
    if args.json:
        print(json.dumps({"csv": str(csv_path), "png": str(png_path), "evaluations": len(rows),
                          "metrics": summary}, indent=2))
    else:
        print(_table(rows, summary))
        print(f"wrote {csv_path} and {png_path}")
    return EXIT_OK
