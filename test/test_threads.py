"""model.threads: what each value stands for, applied to torch and the native pools (in a fresh process,
since the settings are process-wide), and the start-up preparation of the panoptic stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eps3d_ros.settings.tree import Eps3dConfig, ModelSourceConfig
from eps3d_ros.process.threads import resolve_threads

ROOT = Path(__file__).resolve().parents[1]


def test_values_resolve() -> None:
    assert resolve_threads(3) == 3
    assert resolve_threads(-1, cores=2) == 1 and resolve_threads(-1, cores=8) == 7 and resolve_threads(-1, cores=1) == 1
    import torch

    assert resolve_threads(0) == torch.get_num_threads()
    for bad in (-2, 1.5, True, "2"):
        with pytest.raises(ValueError, match="model.threads"):
            resolve_threads(bad)
    with pytest.raises(ValueError, match="model.threads"):
        ModelSourceConfig(allow_random_weights=True, threads=-3).validate()
    assert ModelSourceConfig().threads == -1


def run_fresh(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_set_threads_reaches_torch_and_native_pools() -> None:
    got = run_fresh(
        "import json, torch, numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "from eps3d_ros.process.threads import set_threads\n"
        "info = set_threads(1)\n"
        "print(json.dumps({'torch': torch.get_num_threads(), 'interop': torch.get_num_interop_threads(),\n"
        "                  'pools': sorted({p['num_threads'] for p in threadpool_info()}), 'info': info}))\n")
    assert got["torch"] == 1 and got["interop"] == 1 and got["pools"] == [1], got
    assert got["info"]["torch_threads"] == 1


def test_zero_leaves_torch_alone_and_prepare_warms_the_clustering() -> None:
    got = run_fresh(
        "import json, sys, torch\n"
        "before = torch.get_num_threads()\n"
        "from eps3d_ros.settings.tree import Eps3dConfig\n"
        "from eps3d_ros.process.threads import prepare_process\n"
        "cfg = Eps3dConfig(); cfg.model.threads = 0; cfg.model.device = 'cpu'\n"
        "info = prepare_process(cfg)\n"
        "print(json.dumps({'same': torch.get_num_threads() == before, 'hdbscan': 'hdbscan' in sys.modules,\n"
        "                  'warm': info['panoptic_warm_up_s'], 'switch': sys.getswitchinterval(),\n"
        "                  'logged': info['switch_interval_ms']}))\n")
    assert got["same"] and got["hdbscan"] and got["warm"] >= 0
    assert got["switch"] == pytest.approx(0.0005) and got["logged"] == 0.5  # model.switch_interval_ms default


def test_switch_interval_zero_keeps_pythons_and_bad_values_are_refused() -> None:
    got = run_fresh(
        "import json, sys\n"
        "from eps3d_ros.process.threads import set_switch_interval\n"
        "before = sys.getswitchinterval()\n"
        "kept = set_switch_interval(0)\n"
        "two = set_switch_interval(2)\n"
        "print(json.dumps({'before': before, 'kept': kept, 'two': two, 'now': sys.getswitchinterval()}))\n")
    assert got["kept"] == pytest.approx(1000 * got["before"])
    assert got["two"] == 2.0 and got["now"] == pytest.approx(0.002)
    for bad in (-1, 101):
        with pytest.raises(ValueError, match="switch_interval_ms"):
            ModelSourceConfig(allow_random_weights=True, switch_interval_ms=bad).validate()


def test_yaml_default_is_all_cores_but_one() -> None:
    import yaml

    values = yaml.safe_load((ROOT / "config" / "eps3d.yaml").read_text())["eps3d_node"]["ros__parameters"]
    assert values["model"]["threads"] == Eps3dConfig().model.threads == -1
    assert values["model"]["switch_interval_ms"] == Eps3dConfig().model.switch_interval_ms == 0.5
