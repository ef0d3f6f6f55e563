"""Training steps of the full ``eps3d`` preset on one GPU: 8 views of 448², bf16 autocast, gradient checkpointing.

    .venv/bin/python bench/gpu_train_check.py [--steps 3] [--out bench/results/gpu/train_eps3d_8x448_bf16.json]
    .venv/bin/python bench/gpu_train_check.py --dry-run        # the same code on the CPU, tiny preset, 28²

One warm-up step, then ``--steps`` timed optimizer steps of the trainer itself (``Trainer.train_step``:
the network under bf16 autocast, every loss term of the demo recipes, splatting into two of the input
views on every step, AdamW on float32 weights), fresh random weights, synthetic scenes. Reports the peak
GPU memory (``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` over the timed steps), the
seconds per step (CUDA-synchronised) and the per-term losses of the last step. Without CUDA (and
without ``--dry-run``) it stops with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TERMS = {"rgb": 1.0, "semantic": 1.0, "instance": 0.2, "ins2sem": 0.05, "depth": 1.0, "camera": 1.0,
         "direct_semantic": 1.0, "direct_instance": 0.2, "semantic_ce": 1.0, "direct_rgb": 1.0}


def check_config(out_dir: str, text_weights: str, dry_run: bool, preset: str, views: int, size: int,
                 precision: str, checkpointing: bool) -> dict:
    """The training config of the check (``--dry-run``: the tiny preset, 2 views of 28², on the CPU)."""
    if dry_run:
        preset, views, size = "tiny", 2, 28
    return {
        "model": {"preset": preset, "gradient_checkpointing": checkpointing, "init_opacity": 0.9},
        "text": {"model": "eps3d-tiny-clip", "pretrained": text_weights, "create_random_seed": 0},
        "data": {"height": size, "width": size, "context_views": views, "target_views": 0, "num_scenes": 16,
                 "batch_size": 1},
        "render": {"backend": "auto", "context_views": 2, "cameras": "ground_truth", "near_plane": 0.05},
        "loss": {**TERMS, "direct_instance_cross_view": True, "semantic_ce_balanced": True, "semantic_pixels": 4096},
        "optim": {"steps": 1000, "lr": 2e-4, "warmup_steps": 10},
        "run": {"out_dir": out_dir, "device": "cpu" if dry_run else "cuda", "precision": precision,
                "checkpoint_every": 0, "progress": False, "tensorboard": False},
    }


def measure(config: dict, steps: int) -> dict:
    import torch

    from eps3d_ros.train import TrainConfig, Trainer

    tr = Trainer(TrainConfig.from_dict(config))
    cuda = tr.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    tr.train_step()  # warm-up: kernels, allocator, the first scene
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, row = [], {}
    for _ in range(steps):
        t0 = time.perf_counter()
        row = tr.train_step()
        sync()
        times.append(time.perf_counter() - t0)
    out = {"step_s": times, "median_step_s": statistics.median(times), "last_step": row,
           "parameters": tr.model.num_parameters, "trainable": sum(p.numel() for p in tr.params)}
    if cuda:
        out["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        out["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    else:
        out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    p.add_argument("--preset", default="eps3d")
    p.add_argument("--views", type=int, default=8)
    p.add_argument("--size", type=int, default=448)
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--no-checkpointing", action="store_true", help="without gradient checkpointing")
    p.add_argument("--dry-run", action="store_true", help="tiny preset, 2 views of 28² on the CPU: checks the script")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu" / "train_eps3d_8x448_bf16.json")
    args = p.parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_train_check: torch.cuda.is_available() is False: run this on a CUDA machine (or --dry-run)",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        cfg = check_config(tmp, str(Path(tmp) / "text_encoder.safetensors"), args.dry_run, args.preset, args.views,
                           args.size, args.precision, not args.no_checkpointing)
        result = measure(cfg, args.steps)
    d = cfg["data"]
    summary = {"preset": cfg["model"]["preset"], "views": d["context_views"], "size": [d["height"], d["width"]],
               "precision": args.precision, "gradient_checkpointing": cfg["model"]["gradient_checkpointing"],
               "median_step_s": round(result["median_step_s"], 3),
               **{k: round(v, 2) for k, v in result.items() if k.startswith("peak_")}}
    out = {"machine": {"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() and not args.dry_run else None,
                       "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
                       "cpus": os.cpu_count(), "load_avg": list(os.getloadavg())},
           "dry_run": args.dry_run, "summary": summary, "result": result, "config": cfg}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
