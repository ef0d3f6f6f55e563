"""The trainer: losses fall on a fixed batch, resume is exact, recordings with teacher files, CLI, config."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from eps3d_ros.train import (
    TrainConfig,
    Trainer,
    read_recording,
    write_recording,
)
from eps3d_ros.eval.model_eval import load_model_dir
from eps3d_ros.text.clip import create_random_text_encoder
from eps3d_ros.train.config import load_train_config
from helpers.train_configs import ALL_TERMS, small_config


@pytest.fixture(scope="module")
def text_weights(tmp_path_factory) -> str:
    return str(create_random_text_encoder(tmp_path_factory.mktemp("text") / "text_encoder.safetensors", seed=0))


@pytest.mark.parametrize("term", ALL_TERMS)
def test_training_steps_reduce_each_loss_on_a_fixed_batch(tmp_path, text_weights, term) -> None:
    """Six steps on one term alone (the others weighted 0) lower that term on the fixed window.

    One term at a time: with every term weighted 1 the small ones (Ins2Sem ~1e-3) are swamped and drift,
    and a few steps of the sum are not monotone for every term.
    """
    tr = Trainer(small_config(tmp_path, text_weights, loss={name: float(name == term) for name in ALL_TERMS}))
    before = tr.losses_at(0)  # every step sees this window (one scene, one possible target view)
    assert set(before) == {term}
    for _ in range(6):
        assert np.isfinite(tr.train_step()["total"])
    after = tr.losses_at(0)[term]
    assert after < 0.95 * before[term], (term, before[term], after)


def test_training_steps_reduce_the_total_with_every_term(tmp_path, text_weights) -> None:
    tr = Trainer(small_config(tmp_path, text_weights))
    before = tr.losses_at(0)
    assert set(before) == set(ALL_TERMS)
    total = lambda losses: sum(v * tr.config.loss.weights()[k] for k, v in losses.items())  # noqa: E731
    seen = []
    for step in range(1, 11):
        assert np.isfinite(tr.train_step()["total"])
        if step in (6, 8, 10):
            seen.append(total(tr.losses_at(0)))
    # a few steps of the sum are not monotone, and CPU kernels sum in a thread-count-dependent order
    assert np.median(seen) < 0.9 * total(before), (total(before), seen)


def test_save_and_resume_give_identical_next_step_losses(tmp_path, text_weights) -> None:
    cfg = small_config(tmp_path, text_weights, data={"num_scenes": 3, "context_views": 2, "target_views": 1},
                       render={"context_views": 1})
    a = Trainer(cfg)
    for _ in range(2):
        a.train_step()
    a.save_checkpoint()
    expected = a.train_step()
    b = Trainer(cfg, resume=True)
    assert b.step == 2
    got = b.train_step()
    for k in (*ALL_TERMS, "total", "lr"):
        assert got[k] == expected[k], (k, got[k], expected[k])
    # CPU backward kernels may sum in another order: the gradient norm agrees to float precision.
    assert got["grad_norm"] == pytest.approx(expected["grad_norm"], rel=1e-5)
    with pytest.raises(FileNotFoundError):
        Trainer(cfg, resume=tmp_path / "nope.pt")


def test_slim_resume_state_resumes_exactly_without_storing_the_weights_twice(tmp_path, text_weights) -> None:
    from eps3d_ros.train import write_resume_state

    cfg = small_config(tmp_path / "run", text_weights, data={"num_scenes": 3}, render={"context_views": 1})
    a = Trainer(cfg)
    for _ in range(2):
        a.train_step()
    full = a.save_checkpoint()
    model_dir = a.export(tmp_path / "model")
    slim = write_resume_state(full, model_dir, tmp_path / "ship" / "resume.pt")
    assert slim.stat().st_size < 0.8 * full.stat().st_size  # the weights are not in it
    expected = a.train_step()
    b = Trainer(cfg, resume=slim)
    assert b.step == 2
    got = b.train_step()
    for k in (*ALL_TERMS, "total", "lr"):
        assert got[k] == expected[k], (k, got[k], expected[k])
    # other weights beside it: refused, by name
    a.export(model_dir)  # the model of step 3
    with pytest.raises(ValueError, match="SHA-256"):
        Trainer(cfg, resume=slim)
    with pytest.raises(ValueError, match="does not hold the weights"):
        write_resume_state(full, model_dir, tmp_path / "ship" / "again.pt")


class _RunsCode:
    """Unpickling this calls ``os.system``: what a malicious shared checkpoint carries."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_training_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path, text_weights) -> None:
    """Training checkpoints and resume states are read with weights_only=True: a real one loads, one carrying a
    payload is refused by name before the payload runs."""
    from eps3d_ros.model.checkpoint import CheckpointError
    from eps3d_ros.train.resume_state import load_training_state

    cfg = small_config(tmp_path / "run", text_weights)
    path = Trainer(cfg).save_checkpoint()
    state = load_training_state(path)
    assert state["format"] == "eps3d_train_checkpoint" and state["step"] == 0
    assert {"model", "optimizer", "scheduler", "torch_rng", "train_config"} <= set(state)
    marker = tmp_path / "ran"
    torch.save({**state, "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match=r"checkpoint.pt: refused: .*'posix.system'"):
        Trainer(cfg, resume=True)
    with pytest.raises(CheckpointError, match="refused"):
        load_training_state(path)
    assert not marker.exists()


def test_direct_semantic_terms_on_a_pixel_subset_estimate_the_full_terms(tmp_path, text_weights) -> None:
    terms = {"direct_semantic": 1.0, "direct_semantic_ce": 1.0}
    full = Trainer(small_config(tmp_path, text_weights, loss={n: terms.get(n, 0.0) for n in ALL_TERMS}))
    part = Trainer(small_config(tmp_path, text_weights, loss={**{n: terms.get(n, 0.0) for n in ALL_TERMS},
                                                              "semantic_pixels": 600}))
    a, b = full.losses_at(0), part.losses_at(0)  # the same fresh weights (seeded), 600 of 3 x 21 x 21 pixels
    for k in terms:
        assert b[k] == pytest.approx(a[k], rel=0.15), (k, a[k], b[k])
    assert part.losses_at(0) == b  # the subset is a function of the step: resumable
    for _ in range(4):
        assert np.isfinite(part.train_step()["total"])


def test_fit_writes_logs_checkpoint_and_a_loadable_model(tmp_path, text_weights) -> None:
    cfg = small_config(tmp_path / "run", text_weights, optim={"steps": 2},
                       run={"checkpoint_every": 1, "eval_every": 2, "eval_scenes": 1, "eval_views": 3})
    summary = Trainer(cfg).fit()
    out = tmp_path / "run"
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 1] and float(rows[-1]["total"]) > 0
    ev = list(csv.DictReader((out / "eval_log.csv").open()))
    assert len(ev) == 1 and 0.0 <= float(ev[0]["miou_3d"]) <= 1.0
    assert (out / "checkpoint.pt").is_file() and (out / "train_config.yaml").is_file()
    model, text = load_model_dir(summary["export"])
    assert model.config.preset == "tiny" and text.dim == 512
    # The exported text encoder embeds exactly as the one trained against.
    ref = Trainer(cfg).text_encoder.encode(["mug", "red mug"])
    assert torch.allclose(text.encode(["mug", "red mug"]), ref, atol=1e-6)  # CPU kernels: ~1e-8
    # The config written beside the run reads back.
    assert load_train_config(out / "train_config.yaml").data.height == 42
    # The folder is a complete bundle: its native size is the training size, its text space fingerprinted.
    from eps3d_ros.model.bundle import ModelBundle

    bundle = ModelBundle.load(summary["export"])
    assert bundle.input_size == (42, 42) and bundle.notes == () and bundle.text.fingerprint is not None
    assert bundle.settings == {"panoptic.clustering.hdbscan.min_cluster_size": 100}
    bundle.check_text_encoder(text, model.config.gaussians.semantic_expanded_dim)


def test_frozen_modules_do_not_change(tmp_path, text_weights) -> None:
    cfg = small_config(tmp_path, text_weights, model={"freeze": ["geometry", "appearance"]})
    tr = Trainer(cfg)
    frozen = {n: p.detach().clone() for n, p in tr.model.named_parameters()
              if n.startswith(("encoder.aggregator.", "encoder.depth_head.", "encoder.gaussian_param_head."))}
    head = tr.model.encoder.gaussian_feature_param_head.scratch.output_conv2[2].weight.detach().clone()
    tr.train_step()
    for n, p in tr.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert not torch.equal(tr.model.encoder.gaussian_feature_param_head.scratch.output_conv2[2].weight, head)
    with pytest.raises(ValueError, match="freeze"):
        small_config(tmp_path, text_weights, model={"freeze": ["nonsense"]})


def test_recorded_views_with_teacher_files(tmp_path, text_weights) -> None:
    from eps3d_ros.data.synthetic import generate_scene
    from eps3d_ros.model.bundle import load_text_encoder  # noqa: F401  (public API)

    s = generate_scene(5, num_views=4, height=48, width=48)  # resized to 42x42 by the dataset
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(4, 15, 15, 512)).astype(np.float16)
    rec = write_recording(tmp_path / "rec", s.rgb, feats, s.instance.astype(np.int32), depth=s.depth,
                          intrinsics=s.intrinsics, extrinsics=s.extrinsics,
                          metadata={"feature_source": "random (test)", "mask_source": "ground-truth ids"})
    back = read_recording(rec)
    assert back["teacher_features"].dtype == np.float16 and back["metadata"]["feature_dim"] == 512
    cfg = small_config(tmp_path / "run", text_weights,
                       data={"kind": "recorded", "recordings": [str(rec)], "context_views": 2, "target_views": 1})
    tr = Trainer(cfg)
    assert type(tr.teacher).__name__ == "FileTeacher" and len(tr.dataset) == 2  # windows of 3 of 4 frames
    sample = tr.dataset[0]
    assert sample.size == (42, 42) and sample.teacher_features.shape == (3, 512, 15, 15)
    assert torch.allclose(sample.intrinsics[0, 0, 0], torch.tensor(float(s.intrinsics[0, 0, 0]) * 42 / 48))
    row = tr.train_step()
    dense = [k for k in ALL_TERMS if "_ce" not in k]  # the cross-entropy terms need class ids
    assert all(np.isfinite(row[k]) for k in dense) and "semantic_ce" not in row
    with pytest.raises(ValueError, match="teacher.npz|masks"):
        write_recording(tmp_path / "bad", s.rgb, feats, s.instance[:, :10].astype(np.int32))


def test_rendered_terms_start_late_and_come_every_kth_step(tmp_path, text_weights) -> None:
    rendered = {"rgb", "semantic", "instance", "semantic_ce"}
    tr = Trainer(small_config(tmp_path, text_weights, render={"start_step": 2, "every": 3}))
    with_render = [step for step in range(9) if rendered <= set(tr.losses_at(step))]
    assert with_render == [2, 5, 8]
    for step in (0, 1, 3):
        terms = tr.losses_at(step)
        assert not rendered & set(terms) and {"depth", "direct_semantic", "ins2sem"} <= set(terms)
    with pytest.raises(ValueError, match="render.every"):
        small_config(tmp_path, text_weights, render={"every": 0})


@pytest.mark.parametrize("cameras", ["predicted", "detached", "ground_truth"])
def test_render_cameras_decide_whether_renders_train_the_camera_head(tmp_path, text_weights, cameras) -> None:
    """Only with 'predicted' cameras do the rendered terms reach the camera head (the collapse of issue 12)."""
    rendered = {"rgb": 1.0, "semantic": 1.0, "instance": 1.0, "semantic_ce": 1.0}
    tr = Trainer(small_config(tmp_path, text_weights, render={"cameras": cameras},
                              loss={name: rendered.get(name, 0.0) for name in ALL_TERMS}))
    sample, context, target, rng, gen = tr.batch(0)
    terms, _ = tr.compute_losses(sample, context, target, rng, gen, 0)
    assert set(terms) == set(rendered)
    sum(terms.values()).backward()
    head = [p.grad for n, p in tr.model.named_parameters() if n.startswith("encoder.camera_head.")]
    depth = [p.grad for n, p in tr.model.named_parameters() if n.startswith("encoder.depth_head.")]
    head_norm = sum(float(g.norm()) for g in head if g is not None)
    assert sum(float(g.norm()) for g in depth if g is not None) > 0  # the renders still train the depth
    assert (head_norm > 0) == (cameras == "predicted"), head_norm


def test_renders_without_depth_gradients_leave_the_geometry_to_the_depth_loss(tmp_path, text_weights) -> None:
    rendered = {"rgb": 1.0, "semantic": 1.0, "instance": 1.0, "semantic_ce": 1.0}
    tr = Trainer(small_config(tmp_path, text_weights, render={"cameras": "ground_truth", "depth_gradients": False},
                              loss={name: rendered.get(name, 0.0) for name in ALL_TERMS}))
    sample, context, target, rng, gen = tr.batch(0)
    terms, _ = tr.compute_losses(sample, context, target, rng, gen, 0)
    sum(terms.values()).backward()
    grads = {n: p.grad for n, p in tr.model.named_parameters()}
    assert all(grads[n] is None or not grads[n].any() for n in grads if n.startswith("encoder.depth_head."))
    appearance = [g for n, g in grads.items() if n.startswith("encoder.gaussian_param_head.") and g is not None]
    assert sum(float(g.norm()) for g in appearance) > 0  # opacity, size and colour still learn from the renders


def test_ground_truth_render_cameras_place_gaussians_on_the_true_surface(tmp_path, text_weights) -> None:
    """With the true cameras the Gaussians of every view land where that view's true depth puts them."""
    tr = Trainer(small_config(tmp_path, text_weights, render={"cameras": "ground_truth"}))
    sample, context, target, rng, gen = tr.batch(0)
    with torch.no_grad():
        pred = tr.model(sample.select(context).images[None])
        pred.depth[...] = sample.depth[context][None, ..., None] * 2.0  # a perfect depth, at another scale
        from eps3d_ros.train.step_losses import _relative

        rel = _relative(sample.extrinsics, sample.extrinsics[context[0]])
        g, viewmats, Ks, first, scale = tr.losses._placement(pred, sample, context, rel)
    assert scale == pytest.approx(2.0) and torch.allclose(first, torch.eye(4), atol=1e-5)
    # one world point seen by two views: unproject pixel p of view 0, project into view 1 with the true cameras
    means = g.means[0].reshape(len(context), 42, 42, 3)
    world = torch.cat([means[1].reshape(-1, 3), torch.ones(42 * 42, 1)], 1)
    cam0 = (viewmats[0] @ world.T).T[:, :3]  # view 1's points in view 0's camera
    z = cam0[:, 2]
    ok = z > 0
    uv = (Ks[0] @ cam0[ok].T).T
    uv = uv[:, :2] / uv[:, 2:]
    inside = (uv > 0).all(1) & (uv < 42).all(1)
    u, v = uv[inside].floor().long().unbind(1)  # Ks render pixel centres: pixel u spans [u, u + 1)
    seen = sample.depth[context[0]][v, u] * 2.0
    # where the surface is not occluded, view 1's points sit at view 0's depth (to pixel rounding)
    rel_err = ((z[ok][inside] - seen).abs() / seen).median()
    assert float(rel_err) < 0.05, float(rel_err)


def test_multi_resolution_draws_sizes_around_the_native_one(tmp_path, text_weights) -> None:
    cfg = small_config(tmp_path, text_weights, data={"size_steps": 1, "num_scenes": 3})
    assert cfg.data.sizes() == [(28, 28), (42, 42), (56, 56)]
    tr = Trainer(cfg)
    sizes = {tr.batch(step)[0].size for step in range(12)}
    assert sizes == {(28, 28), (42, 42), (56, 56)}
    assert np.isfinite(tr.train_step()["total"])
    # the same scene at two sizes: the same cameras, intrinsics scaled with the image
    a, b = tr.dataset.at_size(0, 28, 28), tr.dataset.at_size(0, 56, 56)
    assert torch.equal(a.extrinsics, b.extrinsics) and torch.allclose(2 * a.intrinsics[:, :2], b.intrinsics[:, :2])
    with pytest.raises(ValueError, match="size_steps"):
        small_config(tmp_path, text_weights, data={"size_steps": 3})
    with pytest.raises(ValueError, match="render.cameras"):
        small_config(tmp_path, text_weights, render={"cameras": "true"})


def test_terms_start_at_their_own_step(tmp_path, text_weights) -> None:
    """Geometry first: the other terms are neither computed nor weighted before their start step."""
    late = {"semantic": 3, "direct_semantic": 3, "direct_instance": 2}
    tr = Trainer(small_config(tmp_path, text_weights, loss={"start": late}))
    assert set(tr.losses_at(0)) == set(ALL_TERMS) - set(late)
    assert set(tr.losses_at(2)) == set(ALL_TERMS) - {"semantic", "direct_semantic"}
    assert set(tr.losses_at(3)) == set(ALL_TERMS)
    assert tr.config.loss.weights(0)["semantic"] == 0.0 and tr.config.loss.weights()["semantic"] == 1.0
    with pytest.raises(ValueError, match="loss.start"):
        small_config(tmp_path, text_weights, loss={"start": {"colour": 5}})


def test_initial_opacity_of_a_fresh_model(tmp_path, text_weights) -> None:
    tr = Trainer(small_config(tmp_path, text_weights, model={"init_opacity": 0.95}))
    sample, context, *_ = tr.batch(0)
    with torch.no_grad():
        pred = tr.model(sample.select(context).images[None])
    op = pred.gaussians.opacities
    assert abs(float(op.median()) - 0.95) < 0.03, float(op.median())
    with pytest.raises(ValueError, match="init_opacity"):
        small_config(tmp_path, text_weights, model={"init_opacity": 1.0})


def test_config_errors_name_the_problem(tmp_path, text_weights) -> None:
    with pytest.raises(ValueError, match="unknown keys in optim"):
        small_config(tmp_path, text_weights, optim={"learning_rate": 1.0})
    with pytest.raises(ValueError, match="held-out"):
        small_config(tmp_path, text_weights, data={"seed_start": 99_990, "num_scenes": 100})
    with pytest.raises(ValueError, match="multiple of 14"):
        small_config(tmp_path, text_weights, data={"height": 50})
    with pytest.raises(ValueError, match="unknown training config sections"):
        TrainConfig.from_dict({"optimizer": {}})


def test_demo_config_reads() -> None:
    cfg = load_train_config("config/train_demo.yaml")
    assert cfg.model.preset == "tiny" and cfg.data.height % 14 == 0 and cfg.run.eval_seed_start >= 100_000
    assert cfg.data.seed_start + cfg.data.num_scenes <= cfg.run.eval_seed_start


@pytest.mark.slow
def test_cli_train_and_evaluate(tmp_path, text_weights, capsys) -> None:
    import yaml

    from eps3d_ros.cli import main

    cfg = small_config(tmp_path / "cli", text_weights, optim={"steps": 1}).to_dict()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 1
    assert main(["evaluate", out["export"], "--scenes", "1", "--views", "3", "--size", "42x42", "--no-2d",
                 "--no-progress", "--markdown", "--json", str(tmp_path / "r.json")]) == 0
    assert "Semantic mIoU" in capsys.readouterr().out
    assert "miou_3d" in json.loads((tmp_path / "r.json").read_text())["summary"]
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
