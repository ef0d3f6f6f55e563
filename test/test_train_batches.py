"""Batches, ranks and precision in one process: the sample stream, the learning-rate choice, bf16, the config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eps3d_ros.text.clip import create_random_text_encoder
from eps3d_ros.train import TrainConfig, Trainer
from eps3d_ros.train.distributed import Ranks, needs_unused_parameter_search, rank_device, rank_threads
from eps3d_ros.train.sample_stream import SampleStream, sample_ids
from eps3d_ros.train.schedule import describe_lr, scaled_lr


@pytest.fixture(scope="module")
def text_weights(tmp_path_factory) -> str:
    return str(create_random_text_encoder(tmp_path_factory.mktemp("text") / "text_encoder.safetensors", seed=0))


def config(out_dir, text_weights: str, **sections) -> TrainConfig:
    d = {
        "model": {"preset": "tiny", "overrides": {"gaussians": {"scale_max": 0.02}}},
        "text": {"model": "eps3d-tiny-clip", "pretrained": text_weights},
        "data": {"height": 28, "width": 28, "size_steps": 1, "context_views": 2, "target_views": 1,
                 "num_scenes": 40, "seed_start": 7},
        "render": {"backend": "torch", "context_views": 1},
        "loss": {"rgb": 1.0, "depth": 1.0, "camera": 1.0, "direct_semantic": 1.0, "instance": 0.1,
                 "instance_pixels": 256, "semantic_pixels": 200},
        "optim": {"steps": 10, "lr": 2e-3, "warmup_steps": 0},
        "run": {"out_dir": str(out_dir), "device": "cpu", "num_threads": 1, "log_every": 1, "checkpoint_every": 0,
                "progress": False, "tensorboard": False},
    }
    for k, v in sections.items():
        d[k] = {**d.get(k, {}), **v}
    return TrainConfig.from_dict(d)


def test_every_split_of_a_global_batch_draws_each_sample_once() -> None:
    for ranks, batch, acc in [(1, 4, 1), (2, 2, 1), (4, 1, 1), (2, 1, 2), (1, 1, 4), (3, 2, 2)]:
        ks = [k for m in range(acc) for r in range(ranks) for k in sample_ids(m, r, ranks, batch)]
        assert sorted(ks) == list(range(ranks * batch * acc)), (ranks, batch, acc)


def test_sample_k_of_a_step_is_a_function_of_seed_step_and_k(tmp_path, text_weights) -> None:
    cfg = config(tmp_path, text_weights)
    tr = Trainer(cfg)
    other = SampleStream(tr.dataset, cfg.data, cfg.run.seed)  # another rank's stream: no shared state
    for step in (0, 3, 11):
        sizes = set()
        for k in range(4):
            a, b = tr.stream.draw(step, k), other.draw(step, k)
            assert a.sample.name == b.sample.name and a.target == b.target and a.context == b.context
            assert torch.equal(torch.randperm(50, generator=a.gen), torch.randperm(50, generator=b.gen))
            assert a.rng.integers(1 << 30) == b.rng.integers(1 << 30)
            sizes.add(a.sample.size)
        assert sizes == {tr.stream.size(step)}  # one image size per step
    names = {tr.stream.draw(5, k).sample.name for k in range(8)}
    assert len(names) > 4  # the samples of a step are different windows
    # sample 0 is the window of the one-sample trainer: index, then size from default_rng([seed, step])
    rng = np.random.default_rng([cfg.run.seed, 7])
    index = int(rng.integers(len(tr.dataset)))
    assert tr.batch(7)[0].name == f"synthetic-{cfg.data.seed_start + index}"
    assert tr.stream.size(7) == cfg.data.sizes()[int(rng.integers(3))]


def test_a_batch_step_equals_its_windows_one_by_one(tmp_path, text_weights) -> None:
    """batch_size 2 (each window on its own) is accumulate 2, bit for bit; a joint batch to rounding."""
    runs = {name: Trainer(config(tmp_path / name, text_weights, **sections)) for name, sections in {
        "window": {"data": {"batch_size": 2, "batch_forward": "per_window"}},
        "acc": {"optim": {"accumulate": 2}},
        "joint": {"data": {"batch_size": 2}},
    }.items()}
    rows = {name: [tr.train_step() for _ in range(2)] for name, tr in runs.items()}
    for k in ("total", "grad_norm", "depth", "rgb"):
        assert rows["window"][1][k] == rows["acc"][1][k], k
        assert rows["joint"][0][k] == pytest.approx(rows["acc"][0][k], rel=1e-4), k
    for p, q in zip(runs["window"].model.parameters(), runs["acc"].model.parameters()):
        assert torch.equal(p, q)
    # the logged terms are means over the global batch
    one = Trainer(config(tmp_path / "one", text_weights))
    with torch.no_grad():
        mean = np.mean([one.losses_at(0, k)["depth"] for k in range(2)])
    assert rows["acc"][0]["depth"] == pytest.approx(mean, rel=1e-5)


def test_bf16_autocasts_the_network_and_keeps_float32_weights(tmp_path, text_weights) -> None:
    tr = Trainer(config(tmp_path, text_weights, run={"precision": "bf16"}))
    with torch.no_grad():
        pred = tr.losses.predict([tr.stream.draw(0, 0)], 0)
        assert pred.depth.dtype == torch.float32 and pred.gaussians.semantics.dtype == torch.float32
        tr.losses.autocast_dtype = None
        exact = tr.losses.predict([tr.stream.draw(0, 0)], 0)
        tr.losses.autocast_dtype = torch.bfloat16
    diff = float((pred.depth - exact.depth).abs().max() / exact.depth.abs().max())
    assert 0 < diff < 0.1, diff  # bf16 arithmetic, not a different network
    for _ in range(2):
        assert np.isfinite(tr.train_step()["total"])
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())
    assert all(s["exp_avg"].dtype == torch.float32 for s in tr.optimizer.state.values())


def test_learning_rate_scaling_is_explicit(tmp_path, text_weights) -> None:
    o = config(tmp_path, text_weights, optim={"lr": 1e-3, "lr_scaling": "linear", "reference_batch": 2}).optim
    assert scaled_lr(o, 8) == pytest.approx(4e-3) and "scaled linear by global batch 8" in describe_lr(o, 8)
    o.lr_scaling = "sqrt"
    assert scaled_lr(o, 8) == pytest.approx(2e-3)
    o.lr_scaling = "none"
    assert scaled_lr(o, 8) == 1e-3 and "not scaled" in describe_lr(o, 8)
    tr = Trainer(config(tmp_path, text_weights, data={"batch_size": 4},
                        optim={"lr": 1e-3, "lr_scaling": "linear", "warmup_steps": 0, "min_lr_ratio": 1.0}))
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(4e-3)


def test_a_resume_with_another_global_batch_rescales_the_learning_rate_and_says_so(tmp_path, text_weights,
                                                                                   caplog) -> None:
    sections = {"optim": {"lr_scaling": "linear", "warmup_steps": 0, "min_lr_ratio": 1.0}}
    a = Trainer(config(tmp_path, text_weights, **sections))
    a.train_step()
    a.save_checkpoint()
    with caplog.at_level("INFO", logger="eps3d_ros.train"):
        b = Trainer(config(tmp_path, text_weights, data={"batch_size": 2}, **sections), resume=True)
    assert b.step == 1 and b.optimizer.param_groups[0]["lr"] == pytest.approx(4e-3)
    msg = caplog.text
    assert "written by 1 rank(s) x batch 1 x accumulate 1 (global batch 1)" in msg
    assert "the global batch changed 1 -> 2" in msg and "peak learning rate 0.002 -> 0.004" in msg


def test_unused_parameter_search_only_when_steps_differ(tmp_path, text_weights) -> None:
    same = config(tmp_path, text_weights)
    assert not needs_unused_parameter_search(same)
    assert needs_unused_parameter_search(config(tmp_path, text_weights, render={"every": 3}))
    assert needs_unused_parameter_search(config(tmp_path, text_weights, loss={"start": {"rgb": 5}}))
    assert not needs_unused_parameter_search(config(tmp_path, text_weights, render={"every": 3},
                                                    run={"find_unused_parameters": False}))


def test_one_rank_has_no_process_group(tmp_path, text_weights) -> None:
    ranks = Ranks.from_env(config(tmp_path, text_weights))
    assert (ranks.rank, ranks.world_size, ranks.is_main, ranks.backend) == (0, 1, True, "")
    net = torch.nn.Linear(2, 2)
    assert ranks.wrap(net, True) is net and ranks.all_gather(3) == [3]
    ranks.barrier()
    assert rank_device("cpu", 1, 2) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="run.device.*CUDA"):
            rank_device("cuda")
    with pytest.raises(ValueError, match="run.device must be"):
        rank_device("gpu")
    # run.num_threads -1 (all cores but one) is shared by a node's ranks; 0 and N stay as given
    assert rank_threads(-1, 1) == -1 and rank_threads(0, 4) == 0 and rank_threads(3, 4) == 3
    assert rank_threads(-1, 10_000) == 1


def test_config_errors_name_the_new_keys(tmp_path, text_weights) -> None:
    for sections, match in [({"data": {"batch_size": 0}}, "batch_size"),
                            ({"optim": {"accumulate": 0}}, "accumulate"),
                            ({"data": {"batch_forward": "split"}}, "batch_forward"),
                            ({"optim": {"lr_scaling": "cubic"}}, "lr_scaling"),
                            ({"run": {"precision": "fp16"}}, "precision"),
                            ({"run": {"nproc_per_node": 0}}, "nproc_per_node"),
                            ({"run": {"find_unused_parameters": "maybe"}}, "find_unused_parameters")]:
        with pytest.raises(ValueError, match=match):
            config(tmp_path, text_weights, **sections)


def test_a_bad_config_is_one_error_before_any_rank_starts(tmp_path, capsys) -> None:
    from eps3d_ros.cli import main

    assert main(["train", "--config", str(tmp_path / "missing.yaml"), "--nproc-per-node", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("eps3d: error:") == 1 and "training config not found" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {batch_size: 0}\n")
    assert main(["train", "--config", str(bad), "--nproc-per-node", "2"]) == 2
    assert "data.batch_size" in capsys.readouterr().err
