"""Benchmark one training step of a config: loss forward (of which splatting) and backward + update.

    python bench/bench_train.py [--config config/train_demo.yaml] [--steps 10] [--start 200]
                                [--out bench/results/train.json]

Steps ``start .. start + steps - 1`` of the config's own schedule are timed (``start`` past
``render.start_step`` includes the splatting); the model is the config's fresh initialisation, so
early renders of untrained geometry can be slower than a trained model's. Writes JSON (and prints it):
median and per-step seconds, and the estimated wall time of ``optim.steps`` steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from eps3d_ros.train import Trainer, load_train_config
from eps3d_ros.train.losses import total_loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/train_demo.yaml")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--start", type=int, default=200, help="first step index timed (its window and schedule)")
    p.add_argument("--out", default="bench/results/train.json")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_train_config(args.config, {"run": {"out_dir": tmp, "progress": False, "tensorboard": False}})
        tr = Trainer(cfg)
        rows = []
        for i in range(args.steps + 1):
            step = args.start + i
            t0 = time.perf_counter()
            sample, context, target, rng, gen = tr.batch(step)
            terms, stats = tr.compute_losses(sample, context, target, rng, gen, step)
            loss = total_loss(terms, cfg.loss)
            t1 = time.perf_counter()
            tr.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            tr.optimizer.step()
            t2 = time.perf_counter()
            if i:  # the first is the warm-up
                rows.append({"forward_s": t1 - t0, "render_s": stats.get("render_s", 0.0), "backward_s": t2 - t1,
                             "step_s": t2 - t0})
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    out = {
        "machine": {"cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version(), "load_avg": list(os.getloadavg())},
        "config": args.config, "image": [cfg.data.height, cfg.data.width], "context_views": cfg.data.context_views,
        "target_views": cfg.data.target_views, "rendered_context_views": cfg.render.context_views,
        "median": med, "steps": rows,
        "estimated_total_min": med["step_s"] * cfg.optim.steps / 60.0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "steps"}, indent=2))


if __name__ == "__main__":
    main()
