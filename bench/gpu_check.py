"""The GPU check of issue 13, in one script for a CUDA machine (writes one JSON).

    .venv/bin/python bench/gpu_check.py [--out bench/results/gpu_check.json] [--dry-run]

Steps (each one's command, return code, duration and output tail go into the JSON):

1. ``pip install -e .[gpu]`` (gsplat) with the environment's ``constraints.txt`` when it has one, so that
   torch never changes;
2. the gsplat-vs-torch renderer tests (``test/test_render.py``; those that need CUDA and gsplat skip without them);
3. whole windows (network + panoptic + publish, ``bench/bench_window.py``: a fresh process each, 1 warm-up
   window then medians) on CUDA for the ``tiny`` and the full ``eps3d`` preset (random weights) at 8x224
   and 8x448, in fp32 and bf16 (autocast);
4. 3 training steps of the full ``eps3d`` preset, 8 views of 448², bf16 + gradient checkpointing, peak memory and
   seconds per step (``bench/gpu_train_check.py``);
5. the panoptic stage by part on CUDA tensors (``bench/bench_panoptic_parts.py --device cuda``).

``--dry-run`` lists the steps without running them (what the tests check on a CPU-only machine). Without
CUDA the script stops with exit code 2 and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("tiny", "eps3d")
SIZES = (224, 448)
DTYPES = ("fp32", "bf16")
VIEWS = 8


def steps(python: str, out_dir: Path, windows: int) -> list[tuple[str, list[str]]]:
    """``(name, command)`` of every step, in order."""
    constraints = Path(python).resolve().parents[1] / "constraints.txt"
    pip = [python, "-m", "pip", "install", "-e", f"{ROOT}[gpu]"]
    if constraints.is_file():
        pip[4:4] = ["-c", str(constraints)]
    out = [("install_gpu_extra", pip),
           ("render_tests", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "test" / "test_render.py")])]
    for preset in PRESETS:
        for size in SIZES:
            for dtype in DTYPES:
                name = f"window_{preset}_{VIEWS}x{size}_{dtype}"
                out.append((name, [python, str(ROOT / "bench" / "bench_window.py"), "--device", "cuda", "--preset", preset,
                                   "--views", str(VIEWS), "--size", str(size), "--dtype", dtype, "--threads", "0",
                                   "--load", "none", "--windows", str(windows), "--out", str(out_dir / f"{name}.json")]))
    out.append(("train_eps3d_8x448_bf16", [python, str(ROOT / "bench" / "gpu_train_check.py"), "--steps", "3",
                                           "--out", str(out_dir / "train_eps3d_8x448_bf16.json")]))
    out.append(("panoptic_parts_cuda", [python, str(ROOT / "bench" / "bench_panoptic_parts.py"), "--device", "cuda",
                                        "--no-reference", "--out", str(out_dir / "panoptic_parts_cuda.json")]))
    return out


def run_step(name: str, cmd: list[str], timeout: float) -> dict:
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)
        rc, tail = p.returncode, (p.stdout + p.stderr)[-3000:]
    except subprocess.TimeoutExpired:
        rc, tail = 124, f"timed out after {timeout} s"
    return {"step": name, "command": cmd, "returncode": rc, "seconds": round(time.perf_counter() - t0, 1), "output_tail": tail}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu_check.json")
    p.add_argument("--windows", type=int, default=6, help="windows per case (the first is the warm-up)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per step")
    p.add_argument("--dry-run", action="store_true", help="list the steps, run nothing")
    args = p.parse_args(argv)
    out_dir = args.out.parent / "gpu"
    plan = steps(sys.executable, out_dir, args.windows)
    if args.dry_run:
        print(json.dumps([{"step": n, "command": c} for n, c in plan], indent=2))
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: torch.cuda.is_available() is False: run this on a CUDA machine", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
                                "python": platform.python_version(), "cpus": os.cpu_count()}, "steps": []}
    for name, cmd in plan:
        print(f"gpu_check: {name} ...", flush=True)
        r = run_step(name, cmd, args.timeout)
        report = Path(cmd[cmd.index("--out") + 1]) if "--out" in cmd else None
        if report is not None and report.is_file():
            r["result"] = json.loads(report.read_text()).get("summary") or json.loads(report.read_text())
        result["steps"].append(r)
        args.out.write_text(json.dumps(result, indent=2) + "\n")  # partial results survive a later failure
    failed = [r["step"] for r in result["steps"] if r["returncode"] != 0]
    print(f"gpu_check: wrote {args.out}" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
