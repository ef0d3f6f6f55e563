"""The CPU-side logic of the speed benchmarks: the GPU check's plan and its refusal without CUDA, a short
window benchmark run end to end, and the GIL ticker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402
from gil_ticker import GilTicker  # noqa: E402


def test_gpu_check_plans_every_case_of_the_issue() -> None:
    plan = gpu_check.steps(sys.executable, Path("/tmp/out"), windows=4)
    names = [n for n, _ in plan]
    assert names[:2] == ["install_gpu_extra", "render_tests"] and names[-1] == "panoptic_parts_cuda"
    assert "train_eps3d_8x448_bf16" in names  # 3 training steps of the full preset (bench/gpu_train_check.py)
    windows = {n: c for n, c in plan if n.startswith("window_")}
    assert set(windows) == {f"window_{p}_8x{s}_{d}" for p in ("tiny", "eps3d") for s in (224, 448) for d in ("fp32", "bf16")}
    for cmd in windows.values():
        assert Path(cmd[1]).is_file() and cmd[cmd.index("--device") + 1] == "cuda"
    assert "[gpu]" in plan[0][1][-1] and Path(plan[1][1][-1]).is_file()
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--dry-run"], capture_output=True,
                         text=True, check=True)
    assert len(json.loads(out.stdout)) == len(plan)


def test_gpu_train_check_runs_its_steps_in_a_cpu_dry_run(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_train_check.py"), "--dry-run", "--steps", "2", "--out",
                    str(out)], check=True, env=env, capture_output=True, timeout=600)
    r = json.loads(out.read_text())
    assert r["dry_run"] and r["summary"]["precision"] == "bf16" and r["summary"]["gradient_checkpointing"]
    assert len(r["result"]["step_s"]) == 2 and r["result"]["peak_rss_gib"] > 0
    assert set(r["result"]["last_step"]) >= {"total", "rgb", "semantic", "instance", "depth", "camera"}
    assert r["config"]["model"]["preset"] == "tiny" and r["config"]["run"]["device"] == "cpu"
    if not torch.cuda.is_available():  # the real check needs CUDA and says so
        p = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_train_check.py"), "--out", str(tmp_path / "g.json")],
                           env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and "CUDA" in p.stderr and not (tmp_path / "g.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_check_refuses_without_cuda(tmp_path: Path) -> None:
    assert gpu_check.main(["--out", str(tmp_path / "g.json")]) == 2
    assert not (tmp_path / "g.json").exists()


@pytest.mark.slow
def test_window_benchmark_runs_fresh_processes_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench_window.py"), "--threads", "1", "--load", "none", "busy",
                    "--windows", "2", "--views", "2", "--size", "28", "--out", str(out)], check=True, env=env,
                   capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    cases = result["cases"]
    assert [c["load"] for c in cases] == ["none", "busy"] and all("error" not in c for c in cases), cases
    for c in cases:
        assert c["torch_threads"] == 1 and len(c["windows"]) == 2 and c["gil"]["ticks"] > 0
        assert set(c["first"]) >= {"network", "panoptic", "publish", "window"}
    row = result["summary"]["threads=1"]
    assert row["busy_over_none"] == pytest.approx(row["busy_window_s"] / row["none_window_s"], rel=1e-2)


def test_gil_ticker_sees_a_thread_that_keeps_the_gil() -> None:
    with GilTicker() as idle:
        end = time.monotonic() + 30
        while len(idle.waits) <= 5 and time.monotonic() < end:  # a loaded machine schedules the ticker late
            time.sleep(0.01)
    stats = idle.stats()
    assert stats["ticks"] > 5 and set(stats) == {"ticks", "max_wait_ms", "p99_wait_ms", "p50_wait_ms"}

    def hold(seconds: float) -> None:  # pure Python: gives the GIL up only at the switch interval
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.05)  # a long interval: the ticker must wait for it
    try:
        with GilTicker() as busy:
            t = threading.Thread(target=hold, args=(0.3,))
            t.start()
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert busy.stats()["max_wait_ms"] >= 20.0
