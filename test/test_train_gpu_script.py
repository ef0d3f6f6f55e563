"""scripts/train_demo_gpu.sh, the demo run's resume on a lent GPU, as a dry run on CPU: it trains until its minutes
are spent, exports, evaluates and writes the learning curve; a second call goes on from the first one's checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eps3d_ros.text.clip import create_random_text_encoder
from helpers.train_configs import small_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def text_weights(tmp_path_factory) -> str:
    return str(create_random_text_encoder(tmp_path_factory.mktemp("text") / "text_encoder.safetensors", seed=0))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_gpu_script_dry_run_on_cpu_trains_exports_evaluates_and_plots(tmp_path, text_weights) -> None:
    out = tmp_path / "run"
    cfg = small_config(out, text_weights, optim={"steps": 50},
                       run={"eval_every": 1, "eval_scenes": 1, "eval_views": 3, "num_threads": 1})
    cfg.to_yaml(tmp_path / "c.yaml")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CONFIG": str(tmp_path / "c.yaml"),
           "RESUME": "", "DEVICE": "cpu", "OUT": str(out), "EVAL_SCENES": "1",
           "EPS3D": str(Path(sys.executable).parent / "eps3d")}
    for minutes, step in (("0.0001", 1), ("0.0001", 2)):  # the second call resumes from the first's checkpoint
        r = subprocess.run(["bash", str(ROOT / "scripts" / "train_demo_gpu.sh"), minutes], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == step
    assert f"--resume {out / 'checkpoint.pt'}" in r.stderr
    summary = json.loads((out / "evaluation.json").read_text())["summary"]
    assert summary["scenes"] == 1 and 0.0 <= summary["miou_3d"] <= 1.0
    assert "| Metric | Value |" in (out / "evaluation.md").read_text()
    assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "learning_curve.png").is_file()
