"""Training on several ranks: real processes (gloo, one thread each) started by torchrun or by `eps3d train`.

* 2 ranks x batch 1 == 1 rank x batch 2 == 1 rank x accumulate 2 over 20 optimizer steps (bit for bit with
  ``data.batch_forward: per_window``; a joint batch sees the same samples and the same first gradient);
* a rank killed mid-run ends the job within 60 s naming it, and the last checkpoint resumes on 1 rank;
* a checkpoint of the trainer before batches (format version 1) resumes on 1 and on 2 ranks.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from eps3d_ros.text.clip import create_random_text_encoder
from eps3d_ros.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TERMS = ("rgb", "semantic", "instance", "ins2sem", "depth", "camera", "direct_semantic", "direct_instance",
         "semantic_ce", "direct_semantic_ce", "direct_rgb")


@pytest.fixture(scope="module")
def text_weights(tmp_path_factory) -> str:
    return str(create_random_text_encoder(tmp_path_factory.mktemp("text") / "text_encoder.safetensors", seed=0))


def write_config(path: Path, out_dir: Path, text_weights: str, **sections) -> Path:
    """The tiny preset at 28 px (one 14-px step either way), 2 context + 1 target view, every loss term,
    renders on every 2nd step (so steps differ in the parameters they reach), one thread per rank."""
    d = {
        "model": {"preset": "tiny", "overrides": {"gaussians": {"scale_max": 0.02}}, "gradient_checkpointing": True,
                  "freeze": ["appearance"]},
        "text": {"model": "eps3d-tiny-clip", "pretrained": text_weights},
        "data": {"height": 28, "width": 28, "size_steps": 1, "context_views": 2, "target_views": 1,
                 "num_scenes": 50, "seed_start": 7},
        "render": {"backend": "torch", "context_views": 1, "every": 2},
        "loss": {**{name: 1.0 for name in TERMS}, "semantic_ce": 0.2, "direct_semantic_ce": 0.2,
                 "instance_pixels": 256, "semantic_pixels": 200},
        "optim": {"steps": 20, "lr": 2e-3, "warmup_steps": 2, "min_lr_ratio": 0.5},
        "run": {"out_dir": str(out_dir), "device": "cpu", "num_threads": 1, "log_every": 1, "checkpoint_every": 0,
                "progress": False, "tensorboard": False},
    }
    for k, v in sections.items():
        d[k] = {**d.get(k, {}), **v}
    path.write_text(yaml.safe_dump(TrainConfig.from_dict(d).to_dict()))
    return path


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def torchrun(nproc: int, config: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "eps3d_ros.train", "--config", str(config), *extra]
    out = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


def one_rank(config: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "eps3d_ros.train", "--config", str(config), *extra], env=env(),
                         capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


def weights(out_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(out_dir / "checkpoint.pt", weights_only=True)["model"]


def rel_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest per-tensor ``|a - b| / |b|`` over the floating-point tensors of ``a``."""
    return max(float((a[k] - b[k]).norm() / b[k].norm().clamp_min(1e-30)) for k in a if a[k].is_floating_point())


def log_rows(out_dir: Path) -> dict[int, dict[str, str]]:
    with (out_dir / "train_log.csv").open(newline="") as f:
        return {int(r["step"]): r for r in csv.DictReader(f)}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_ranks_equal_one_rank_with_their_batch_or_accumulation(tmp_path, text_weights) -> None:
    runs = {
        "2x1": ({}, 2),
        "1x2": ({"data": {"batch_size": 2, "batch_forward": "per_window"}}, 1),
        "acc2": ({"optim": {"accumulate": 2}}, 1),
        "1x2joint": ({"data": {"batch_size": 2}}, 1),
    }
    outs = {}
    for name, (sections, nproc) in runs.items():
        cfg = write_config(tmp_path / f"{name}.yaml", tmp_path / name, text_weights, **sections)
        extra = ("--steps", "1") if name == "1x2joint" else ()  # only its first step is compared
        outs[name] = torchrun(nproc, cfg, *extra) if nproc > 1 else one_rank(cfg, *extra)
    assert "global batch 2 = batch_size 1 x 2 rank(s) x accumulate 1" in outs["2x1"].stderr
    assert "find_unused_parameters on" in outs["2x1"].stderr  # renders on every 2nd step only
    assert "global batch 2 = batch_size 1 x 1 rank(s) x accumulate 2" in outs["acc2"].stderr
    ref = weights(tmp_path / "2x1")
    assert rel_diff(weights(tmp_path / "1x2"), ref) <= 1e-5
    assert rel_diff(weights(tmp_path / "acc2"), ref) <= 1e-5
    # the comparison is not vacuous: 20 steps moved the trained weights well beyond that
    from eps3d_ros.train import Trainer, load_train_config

    init = Trainer(load_train_config(tmp_path / "2x1.yaml")).model.state_dict()
    trained = {k: v for k, v in ref.items() if "gaussian_param_head" not in k}  # model.freeze: appearance
    assert rel_diff(trained, init) > 1e-2
    assert all(torch.equal(ref[k], init[k]) for k in ref if "gaussian_param_head" in k)
    rows = {name: log_rows(tmp_path / name) for name in runs}
    assert sorted(rows["2x1"]) == list(range(20))
    for step in range(20):
        for name in ("1x2", "acc2"):
            assert float(rows[name][step]["total"]) == pytest.approx(float(rows["2x1"][step]["total"]), rel=1e-6)
    # A joint batch of 2 sees the same samples: the same first losses and gradient, up to rounding (the batch
    # rounds the camera head ~1e-7 differently, which moves a few rendered pixels across the coverage
    # threshold); its later steps drift (see data.batch_forward in eps3d_ros/train/config.py).
    for key in ("total", "depth", "rgb", "camera", "direct_semantic"):
        assert float(rows["1x2joint"][0][key]) == pytest.approx(float(rows["2x1"][0][key]), rel=1e-5), key
    assert float(rows["1x2joint"][0]["grad_norm"]) == pytest.approx(float(rows["2x1"][0]["grad_norm"]), rel=1e-4)


def rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_killed_rank_ends_the_job_and_its_checkpoint_resumes_on_one_rank(tmp_path, text_weights) -> None:
    out = tmp_path / "run"
    # every step computes the same terms: DDP runs without find_unused_parameters here
    two = write_config(tmp_path / "two.yaml", out, text_weights, optim={"steps": 16},
                       render={"every": 1}, run={"checkpoint_every": 4})
    proc = subprocess.Popen([sys.executable, "-m", "eps3d_ros.cli", "train", "--config", str(two),
                             "--nproc-per-node", "2"], env=env(), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "train_log.csv").is_file() or max(log_rows(out), default=-1) < 5:
            assert proc.poll() is None and time.monotonic() < deadline, "the 2-rank run did not get going"
            time.sleep(0.05)
        victim = next(p for p in descendants(proc.pid) if rank_of(p) == 1)
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)
        ended = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and ended < 60, (proc.returncode, ended)
    assert "training failed: rank 1" in stderr and "SIGKILL" in stderr, stderr[-3000:]
    assert "find_unused_parameters off" in stderr
    killed = log_rows(out)
    last = torch.load(out / "checkpoint.pt", weights_only=True)
    assert last["topology"] == {"world_size": 2, "batch_size": 1, "accumulate": 1, "global_batch": 2}
    step = int(last["step"])
    assert step % 4 == 0 and max(killed) >= step, (step, max(killed))  # the curve went past the checkpoint

    # the same global batch on one rank: 1 x batch 2, each window on its own (the 2 ranks' computation)
    one = write_config(tmp_path / "one.yaml", out, text_weights, optim={"steps": 16}, render={"every": 1},
                       run={"checkpoint_every": 4}, data={"batch_size": 2, "batch_forward": "per_window"})
    res = one_rank(one, "--resume")
    assert f"resumed from {out / 'checkpoint.pt'} at step {step}" in res.stderr
    assert "the global batch is the same" in res.stderr
    rows = log_rows(out)
    assert sorted(rows) == list(range(16))  # the configured step count, one curve
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 16
    for key in ("total", "depth", "rgb", "grad_norm"):  # the first logged loss after the resume continues it
        assert float(rows[step][key]) == pytest.approx(float(killed[step][key]), rel=1e-5), key


def version1_checkpoint(trainer, path: Path) -> Path:
    """A checkpoint in the format of the trainer before batches and ranks (version 1, no topology)."""
    state = torch.load(trainer.save_checkpoint(path), weights_only=True)
    del state["topology"]
    state["version"] = 1
    torch.save(state, path)
    return path


def test_a_version1_checkpoint_resumes_exactly_on_one_rank(tmp_path, text_weights) -> None:
    from eps3d_ros.train import Trainer, load_train_config

    cfg = load_train_config(write_config(tmp_path / "c.yaml", tmp_path / "run", text_weights,
                                         model={"gradient_checkpointing": False}))
    a = Trainer(cfg)
    for _ in range(2):
        a.train_step()
    old = version1_checkpoint(a, tmp_path / "v1.pt")
    expected = a.train_step()
    b = Trainer(cfg, resume=old)
    assert b.step == 2
    got = b.train_step()
    for k in ("total", "lr", *TERMS):
        if k in expected:
            assert got[k] == expected[k], (k, got[k], expected[k])
    # sample 0 of a step is the window the one-sample trainer drew: default_rng([seed, step])
    import numpy as np

    rng = np.random.default_rng([cfg.run.seed, 5])
    index = int(rng.integers(len(b.dataset)))
    size = cfg.data.sizes()[int(rng.integers(len(cfg.data.sizes())))]
    sample, *_ = b.batch(5)
    assert sample.name == f"synthetic-{cfg.data.seed_start + index}" and sample.size == size


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_version1_checkpoint_resumes_on_two_ranks(tmp_path, text_weights) -> None:
    from eps3d_ros.train import Trainer, load_train_config

    cfg_path = write_config(tmp_path / "c.yaml", tmp_path / "a", text_weights, optim={"steps": 5})
    a = Trainer(load_train_config(cfg_path))
    for _ in range(3):
        a.train_step()
    old = version1_checkpoint(a, tmp_path / "v1.pt")
    out = torchrun(2, cfg_path, "--resume", str(old))
    assert "written by 1 rank(s) x batch 1 x accumulate 1 (global batch 1)" in out.stderr
    assert "now 2 rank(s) x batch 1 x accumulate 1 (global batch 2)" in out.stderr
    assert "the global batch changed 1 -> 2" in out.stderr
    assert sorted(log_rows(tmp_path / "a")) == [3, 4]
    # the same as one rank with both samples
    one = write_config(tmp_path / "one.yaml", tmp_path / "b", text_weights, optim={"steps": 5},
                       data={"batch_size": 2, "batch_forward": "per_window"})
    one_rank(one, "--resume", str(old))
    assert rel_diff(weights(tmp_path / "b"), weights(tmp_path / "a")) <= 1e-5


WATCH = """
import logging, sys, time
import torch.distributed as dist
from datetime import timedelta
from eps3d_ros.train.rank_watch import RankWatch
logging.basicConfig(level=logging.INFO, format="%(message)s")
rank, port, action = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
store = dist.TCPStore("127.0.0.1", port, is_master=rank == 0, wait_for_workers=False, timeout=timedelta(seconds=30))
watch = RankWatch(store, rank, 2, timeout_s=3.0, interval_s=0.2).start()
print("started", flush=True)
if action == "fail":
    time.sleep(1.0)
    watch.report_failure("rank 1 (test) failed: ValueError: boom")
    sys.exit(1)
time.sleep(60)
print("still running", flush=True)
"""


@pytest.mark.parametrize("how", ["fail", "killed"])
def test_rank_watch_stops_a_rank_when_another_fails_or_dies(tmp_path, how) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "watch.py"
    script.write_text(WATCH)
    run = lambda rank, action: subprocess.Popen(  # noqa: E731
        [sys.executable, str(script), str(rank), str(port), action], env=env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    zero = run(0, "wait")
    try:
        assert zero.stdout.readline().strip() == "started"
        one = run(1, "fail" if how == "fail" else "wait")
        assert one.stdout.readline().strip() == "started"
        t0 = time.monotonic()
        if how == "killed":
            one.kill()
        _, err = zero.communicate(timeout=30)
        ended = time.monotonic() - t0
    finally:
        for p in (zero, one):
            if p.poll() is None:
                p.kill()
    assert zero.returncode == 1, err
    if how == "fail":
        assert "rank 0 stops: rank 1 (test) failed: ValueError: boom" in err and ended < 3, (err, ended)
    else:
        assert re.search(r"rank 0 stops: rank 1 has been silent for \d+ s", err) and ended < 6, (err, ended)


@pytest.mark.slow
def test_parameters_that_never_get_a_gradient_are_named_instead_of_a_ddp_hang(tmp_path, text_weights) -> None:
    """No camera term and renders placed by the true cameras: the camera head gets no gradient."""
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", text_weights, optim={"steps": 3},
                       loss={"camera": 0.0}, render={"cameras": "ground_truth", "every": 1})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
           "eps3d_ros.train", "--config", str(cfg)]
    out = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode != 0
    assert "trainable parameters got no gradient at step 0 (encoder.camera_head." in out.stderr
    assert "run.find_unused_parameters: true" in out.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_max_minutes_stops_every_rank_after_one_step_and_writes_checkpoint_and_model(tmp_path, text_weights) -> None:
    """A lent GPU's hours: run.max_minutes (--max-minutes) ends 2 ranks after the same step, then the checkpoint and
    the model folder are written as at the end of optim.steps, and the run resumes from there."""
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "a", text_weights, optim={"steps": 200})
    out = torchrun(2, cfg, "--max-minutes", "0.0001")  # 6 ms: the first step crosses it
    assert "run.max_minutes 0.0001 reached at step 1" in out.stderr
    assert json.loads(out.stdout[out.stdout.index("{"):])["steps"] == 1
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 1 and (tmp_path / "a" / "model" / "model.safetensors").is_file()
    out = torchrun(2, cfg, "--resume", "--steps", "3")  # no limit now: on to step 3
    assert torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["step"] == 3
    with pytest.raises(ValueError, match="run.max_minutes must be >= 0"):
        TrainConfig.from_dict({"run": {"max_minutes": -1}}).validate()
