"""Time whole windows (preprocess, network, alignment, panoptic, publish) in fresh processes, with and
without another process keeping one core busy, for several ``model.threads`` settings (JSON).

    python bench/bench_window.py [--threads -1 0] [--load none busy] [--windows 10]
                                 [--preset tiny] [--views 4] [--size 224] [--device cpu] [--dtype fp32]

Every (threads, load) case runs in a fresh process that starts like the node (``load_reconstructor``:
``model.threads`` and the panoptic warm-up, the model's warm-up), then reconstructs the same window of a
synthetic scene (seed 100000) ``--windows`` times; the first window shows what a fresh process pays.
"Publish" is the PointCloud2 payload (``cloud_points`` + ``cloud_to_bytes``) and the object list. The
competing load is a Python busy loop in another process (one core's worth). A 1 ms ticker thread records
how long Python threads (the node's queries) waited during the windows. Without ``--weights`` the network
is the preset with seeded random weights (times only) and the text encoder the demo model's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))


def child(args: argparse.Namespace) -> dict:
    """One case, in this (fresh) process."""
    t_start = time.perf_counter()
    import torch

    from gil_ticker import GilTicker

    from eps3d_ros.data.synthetic import generate_scene
    from eps3d_ros.panoptic.clouds import cloud_points, cloud_to_bytes
    from eps3d_ros.settings.tree import Eps3dConfig
    from eps3d_ros.frames.frame import synthetic_frames
    from eps3d_ros.pipeline.loading import load_reconstructor

    cfg = Eps3dConfig()
    cfg.model.weights = args.weights
    cfg.model.preset = args.preset
    cfg.model.allow_random_weights = not args.weights
    cfg.model.device = args.device
    cfg.model.threads = args.threads
    if not args.weights:  # random network weights: the demo model's text encoder (the folder gives its own)
        cfg.text.model = "eps3d-tiny-clip"
        cfg.text.pretrained = str(ROOT / "models" / "demo_tiny" / "text_encoder.safetensors")
    cfg.pipeline.image_height = cfg.pipeline.image_width = args.size
    cfg.pipeline.window_size = args.views
    cfg.pipeline.buffer_size = max(cfg.pipeline.buffer_size, args.views)
    torch.manual_seed(0)
    imports_s = time.perf_counter() - t_start
    t0 = time.perf_counter()
    rec = load_reconstructor(cfg)
    load_s = time.perf_counter() - t0
    frames = synthetic_frames(generate_scene(seed=100_000, num_views=args.views, height=args.size, width=args.size))
    autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if args.dtype == "bf16"
                else contextlib.nullcontext())
    windows = []
    with GilTicker() as tick:
        for _ in range(args.windows):
            t0 = time.perf_counter()
            with autocast:
                snap = rec.run(frames)
            t1 = time.perf_counter()
            cloud_to_bytes(cloud_points(snap.scene, "semantic", cfg.output.max_cloud_points, cfg.output.min_opacity))
            [o.label for o in snap.scene.objects]
            publish = time.perf_counter() - t1
            windows.append({**{k: round(v, 4) for k, v in snap.timings.items()}, "publish": round(publish, 4),
                            "window": round(time.perf_counter() - t0, 4)})
    rest = windows[1:] or windows
    return {
        "threads_setting": args.threads, "torch_threads": torch.get_num_threads(), "load": args.load,
        "cpu_s": round(time.process_time(), 2),
        "device": args.device, "dtype": args.dtype, "imports_s": round(imports_s, 3), "load_s": round(load_s, 3),
        "gaussians": snap.scene.num_gaussians, "objects": len(snap.scene.objects),
        "first": windows[0], "tenth": windows[min(9, len(windows) - 1)],
        "median_after_first": {k: round(statistics.median(w[k] for w in rest), 4) for k in windows[0]},
        "windows": windows, "gil": tick.stats(), "load_avg": os.getloadavg(),
    }


def run_case(args: argparse.Namespace, threads: int, load: str) -> dict:
    busy = None
    if load == "busy":  # another process keeping one core busy
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
    try:
        cmd = [sys.executable, __file__, "--child", "--threads", str(threads), "--load", load, "--windows", str(args.windows),
               "--preset", args.preset, "--weights", args.weights, "--views", str(args.views), "--size", str(args.size),
               "--device", args.device, "--dtype", args.dtype]
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
        if out.returncode != 0:
            return {"threads_setting": threads, "load": load, "error": out.stderr[-2000:]}
        return json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return {"threads_setting": threads, "load": load, "error": f"timed out after {args.timeout} s"}
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def summary(cases: list[dict]) -> dict:
    """Per threads setting and load: medians over rounds of the window, network and panoptic times (each a
    median over the windows after the first), the first window over the tenth, the longest ticker wait."""
    out = {}
    by: dict[tuple, list[dict]] = {}
    for c in cases:
        if "error" not in c:
            by.setdefault((c["threads_setting"], c["load"]), []).append(c)
    med = lambda xs: round(statistics.median(xs), 4)  # noqa: E731
    for (threads, load), cs in by.items():
        row = out.setdefault(f"threads={threads}", {})
        for part in ("window", "network", "panoptic"):
            row[f"{load}_{part}_s"] = med([c["median_after_first"][part] for c in cs])
        row[f"{load}_first_over_tenth"] = med([c["first"]["window"] / c["tenth"]["window"] for c in cs])
        row[f"{load}_gil_max_wait_ms"] = max(c["gil"]["max_wait_ms"] for c in cs)
        row[f"{load}_load_avg"] = [round(c["load_avg"][0], 2) for c in cs]
    for row in out.values():
        if "busy_window_s" in row and "none_window_s" in row:
            row["busy_over_none"] = round(row["busy_window_s"] / row["none_window_s"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[-1, 0], help="model.threads values to compare")
    p.add_argument("--load", nargs="+", default=["none", "busy"], choices=["none", "busy"])
    p.add_argument("--windows", type=int, default=10)
    p.add_argument("--rounds", type=int, default=1, help="run every case this many times, alternating")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--weights", default="", help="model folder (default: the preset with random weights)")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast on CUDA")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "window.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.threads = args.threads[0]
        args.load = args.load[0]
        print(json.dumps(child(args)))
        return
    cases = []
    for r in range(args.rounds):  # rounds alternate the cases, so that a change of the machine's load hits all
        for threads in args.threads:
            for load in args.load:
                print(f"round {r}: threads={threads} load={load} (load average {os.getloadavg()[0]:.2f}) ...", flush=True)
                cases.append({**run_case(args, threads, load), "round": r})
                c = cases[-1]
                print(json.dumps({k: c.get(k) for k in ("first", "tenth", "median_after_first", "gil", "load_avg", "error")
                                  if k in c}), flush=True)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "config": {k: getattr(args, k) for k in ("preset", "weights", "views", "size", "device", "dtype", "windows", "rounds")},
              "summary": summary(cases), "cases": cases}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
