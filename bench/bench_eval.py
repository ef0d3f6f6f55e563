"""Benchmark the evaluation metrics on synthetic label maps and point labels (CPU, numpy).

    python bench/bench_eval.py [--views 8] [--height 480] [--width 640] [--points 1000000] [--repeats 5]
                               [--out bench/results/eval.json]

Writes JSON (and prints it). Times are the median of ``--repeats`` runs after one warm-up run.
The maps are blocky (stuff cells plus rectangular thing instances) so segment counts are realistic
(~40 instances per view), not one segment per pixel.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from eps3d_ros.eval import evaluate_panoptic_2d, evaluate_panoptic_3d, instance_prf, panoptic_quality, semantic_miou

THINGS, STUFF = list(range(1, 21)), list(range(21, 31))


def synthetic(rng: np.random.Generator, shape: tuple[int, ...], n_inst: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """``(sem, ins)`` of ``shape`` (last two axes spatial): stuff cells, then rectangular instances."""
    *lead, h, w = shape
    sem = np.repeat(np.repeat(rng.choice([0, *STUFF], size=(*lead, 6, 8)), -(-h // 6), -2), -(-w // 8), -1)
    sem = np.ascontiguousarray(sem[..., :h, :w])
    ins = np.zeros(shape, dtype=np.int64)
    for idx in np.ndindex(*lead):
        for k in range(1, n_inst + 1):
            y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
            dy, dx = rng.integers(10, h // 4), rng.integers(10, w // 4)
            sem[idx][y : y + dy, x : x + dx] = rng.choice(THINGS)
            ins[idx][y : y + dy, x : x + dx] = k
    return sem, ins


def timed(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        fn()
        if i:  # the first run is the warm-up
            times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": repeats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--views", type=int, default=8)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("bench/results/eval.json"))
    args = p.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.views, args.height, args.width)
    gs, gi = synthetic(rng, shape)
    ps, pi = np.roll(gs, 3, axis=-1), np.roll(gi, 3, axis=-1)  # a slightly shifted prediction
    n = args.points
    order = rng.permutation(gs.size)[:n] if n <= gs.size else rng.integers(0, gs.size, n)
    pts = [a.ravel()[order] for a in (ps, pi, gs, gi)]
    ncls = max(STUFF) + 1
    result = {
        "machine": {"python": platform.python_version(), "numpy": np.__version__},
        "maps": {"shape": list(shape), "points": n},
        "semantic_miou": timed(lambda: semantic_miou(ps, gs, ncls), args.repeats),
        "instance_prf_per_view": timed(lambda: instance_prf(pi, gi, per_view=True), args.repeats),
        "panoptic_quality_per_view": timed(lambda: panoptic_quality(ps, pi, gs, gi, THINGS, STUFF), args.repeats),
        "evaluate_panoptic_2d_protocol": timed(
            lambda: evaluate_panoptic_2d(ps, pi, gs, gi, THINGS, STUFF), args.repeats
        ),
        "evaluate_panoptic_2d_full_res": timed(
            lambda: evaluate_panoptic_2d(ps, pi, gs, gi, THINGS, STUFF, protocol=False), args.repeats
        ),
        "evaluate_panoptic_3d": timed(lambda: evaluate_panoptic_3d(*pts, THINGS, STUFF), args.repeats),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
