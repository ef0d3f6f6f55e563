"""Training throughput on 1 and on 2 CPU ranks (one thread each) at the same global batch.

    python bench/bench_train_ranks.py [--config config/train_demo.yaml] [--steps 12] [--warmup 3] [--rounds 3]
                                      [--global-batch 2] [--out bench/results/train_ranks.json]

Cases, each a fresh ``python -m eps3d_ros.train`` run of ``warmup + steps`` optimizer steps (renders from
step 0 on, at the config's ``render.every``; no checkpoints or evaluation in between):

* ``1rank_joint`` — 1 rank, ``batch_size = G`` through the network as one batch;
* ``1rank_per_window`` — 1 rank, ``batch_size = G``, each window its own forward and backward;
* ``2ranks`` — 2 gloo ranks (torchrun), ``batch_size = G / 2`` each.

Samples per second = ``G × steps / Σ step_s`` over the timed steps (rank 0's step times, which include
waiting for the other rank). The cases alternate over ``--rounds`` rounds; the machine's load average is
recorded before and after every case (the cores are shared: a ratio measured under load understates what
2 idle cores give, and a round whose load rose during the 2-rank case shows it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def case_config(base: dict, out_dir: Path, batch_size: int, batch_forward: str) -> dict:
    cfg = json.loads(json.dumps(base))
    cfg.setdefault("data", {}).update(batch_size=batch_size, batch_forward=batch_forward)
    cfg.setdefault("render", {})["start_step"] = 0
    cfg.setdefault("run", {}).update(out_dir=str(out_dir), num_threads=1, log_every=1, checkpoint_every=0, eval_every=0,
                                     progress=False, tensorboard=False, nproc_per_node=1)
    return cfg


def run_case(name: str, cfg: dict, nproc: int, steps: int, work: Path, timeout: float) -> dict:
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "eps3d_ros.train"]
    else:
        cmd = [sys.executable, "-m", "eps3d_ros.train"]
    cmd += ["--config", str(path), "--steps", str(steps)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{p.stderr[-3000:]}")
    with (Path(cfg["run"]["out_dir"]) / "train_log.csv").open(newline="") as f:
        step_s = [float(r["step_s"]) for r in csv.DictReader(f)]
    return {"ranks": nproc, "batch_size": cfg["data"]["batch_size"], "batch_forward": cfg["data"]["batch_forward"],
            "step_s": step_s, "wall_s": round(wall, 1), "load_avg_before": list(load_before),
            "load_avg_after": list(os.getloadavg())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/train_demo.yaml")
    p.add_argument("--steps", type=int, default=12, help="timed optimizer steps per case")
    p.add_argument("--warmup", type=int, default=3, help="untimed first steps per case")
    p.add_argument("--global-batch", type=int, default=2, help="samples per optimizer step (even)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the three cases, alternating")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--out", default="bench/results/train_ranks.json")
    args = p.parse_args()
    if args.global_batch % 2:
        raise SystemExit("--global-batch must be even (2 ranks share it)")

    base = yaml.safe_load((ROOT / args.config).read_text()) if not Path(args.config).is_absolute() else \
        yaml.safe_load(Path(args.config).read_text())
    G, total = args.global_batch, args.warmup + args.steps
    plan = [("1rank_joint", 1, G, "joint"), ("1rank_per_window", 1, G, "per_window"), ("2ranks", 2, G // 2, "joint")]
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i in range(args.rounds):  # the cases alternate, so a burst of load hits one round, not one case
            cases = {}
            for name, nproc, bs, mode in plan:
                print(f"bench_train_ranks: round {i + 1}/{args.rounds} {name} ...", flush=True)
                cfg = case_config(base, work / f"{name}_{i}", bs, mode)
                r = run_case(name, cfg, nproc, total, work, args.timeout)
                timed = r["step_s"][args.warmup:]
                r["samples_per_s"] = G * len(timed) / sum(timed)
                cases[name] = r
            best_one = max(cases["1rank_joint"]["samples_per_s"], cases["1rank_per_window"]["samples_per_s"])
            loads = [x for c in cases.values() for x in (c["load_avg_before"][0], c["load_avg_after"][0])]
            rounds.append({"cases": cases, "load_avg_1min": [min(loads), max(loads)],
                           "speedup_2ranks_over_best_1rank": cases["2ranks"]["samples_per_s"] / best_one})
    summary = {f"{name}_samples_per_s": [round(r["cases"][name]["samples_per_s"], 3) for r in rounds] for name, *_ in plan}
    summary["speedup_2ranks_over_best_1rank"] = [round(r["speedup_2ranks_over_best_1rank"], 3) for r in rounds]
    summary["speedup_median"] = round(statistics.median(summary["speedup_2ranks_over_best_1rank"]), 3)
    summary["load_avg_1min_per_round"] = [[round(x, 2) for x in r["load_avg_1min"]] for r in rounds]
    out = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": __import__("torch").__version__, "threads_per_rank": 1},
        "config": args.config, "global_batch": G, "timed_steps": args.steps, "warmup_steps": args.warmup,
        "rounds": rounds, "summary": summary,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["summary"], indent=2))


if __name__ == "__main__":
    main()
