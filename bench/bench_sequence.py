"""Benchmark synthetic sequences: generation time, room coverage, and the oracle reconstructor per window.

    python bench/bench_sequence.py [--configs 60x112 60x224] [--seeds 0 1 2 3 4] [--oracle-strides 2 3]
                                   [--window 4] [--out bench/results/sequence.json]

* generation: ``generate_sequence(seed, T, S, S)`` wall time per seed and config (VIEWSxSIZE, square);
* coverage (at the first config): things, tables, the largest fraction of the room's things one frame sees
  (>= 1 and >= 10 pixels), the fewest frames any thing is seen by (>= 10 pixels);
* oracle (first config, first seed): per pixel stride, Gaussians and stage times of windows of
  ``--window`` consecutive frames every ``--window`` frames (default panoptic config of the oracle).

The machine's load average is recorded with the times (other processes share the CPU). Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from eps3d_ros.data.synthetic import generate_sequence


def parse_config(text: str) -> tuple[int, int]:
    try:
        frames, size = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"config must be FRAMESxSIZE (e.g. 60x112), got {text!r}") from None
    return frames, size


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def coverage(seq) -> dict:
    seen10 = [len(seq.frames_seeing(o.instance_id, 10)) for o in seq.objects]
    return {
        "seed": seq.seed, "things": len(seq.objects), "tables": len(seq.layout.tables),
        "max_visible_fraction_1px": round(float(seq.visible_fraction(1).max()), 3),
        "max_visible_fraction_10px": round(float(seq.visible_fraction(10).max()), 3),
        "min_frames_seeing_a_thing_10px": int(min(seen10)),
        "median_frames_seeing_a_thing_10px": float(np.median(seen10)),
        "turn_frame": seq.path.turn_frame,
    }


def time_oracle(seq, stride: int, window: int) -> dict:
    from eps3d_ros.eval.oracle import OracleReconstructor

    t0 = time.perf_counter()
    oracle = OracleReconstructor(seq, pixel_stride=stride)
    init_s = time.perf_counter() - t0
    frames = list(seq.frames())
    runs = []
    for start in range(0, seq.num_frames - window + 1, window):
        snap = oracle.run(frames[start:start + window])
        runs.append({"gaussians": int(snap.scene.means.shape[0]), **{k: float(v) for k, v in snap.timings.items()},
                     "things": sum(o.is_thing for o in snap.scene.objects)})
    return {
        "pixel_stride": stride, "window": window, "windows": len(runs), "init_s": init_s,
        "median_gaussians": statistics.median(r["gaussians"] for r in runs),
        "median_total_s": statistics.median(r["total"] for r in runs),
        "median_panoptic_s": statistics.median(r["panoptic"] for r in runs),
        "max_total_s": max(r["total"] for r in runs), "load_after": load(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", type=parse_config, nargs="+", default=[(60, 112), (60, 224)])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--oracle-strides", type=int, nargs="*", default=[2, 3])
    p.add_argument("--window", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("bench/results/sequence.json"))
    args = p.parse_args()

    generation, cover = [], []
    for i, (frames, size) in enumerate(args.configs):
        times = []
        before = load()
        for seed in args.seeds:
            t0 = time.perf_counter()
            seq = generate_sequence(seed, frames, size, size)
            times.append(time.perf_counter() - t0)
            if i == 0:
                cover.append(coverage(seq))
        generation.append({"frames": frames, "height": size, "width": size, "seeds": args.seeds,
                           "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                           "load_before": before, "load_after": load()})
    frames, size = args.configs[0]
    seq = generate_sequence(args.seeds[0], frames, size, size)
    oracle = [time_oracle(seq, s, args.window) for s in args.oracle_strides]
    result = {
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "processor": platform.processor() or platform.machine()},
        "generation": generation, "coverage": cover, "oracle": oracle,
    }
    text = json.dumps(result, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
