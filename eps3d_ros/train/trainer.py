"""Training by distillation: the :class:`Trainer` and :func:`train` (``eps3d train --config FILE``, alone or
under ``torchrun``).

One optimizer step, on every rank (one rank = the same code without a process group):

1. the rank's samples: ``optim.accumulate`` micro-steps of ``data.batch_size`` windows each; sample
   ``k`` of the step is a pure function of ``(run.seed, step, k)`` — its scene, its held-out target
   views and every random subsample inside the losses (:mod:`.sample_stream`) — so runs with one
   global batch see the same data however it is split, and a resumed run goes on with the same stream;
2. per micro-step the context views go through the network as one batch (one image size per step),
   and every loss term is computed per window (:mod:`.step_losses`): geometry (depth, cameras) in the
   first context camera's frame, splatted renders into context and held-out views, Ins2Sem, the
   optional direct terms; ``loss`` = the mean over the windows of ``Σ w · term``;
3. backward; DistributedDataParallel averages the gradients over ranks on the last micro-step only
   (:mod:`.distributed`), so the step's gradient is the global batch's mean;
4. gradient clipping, AdamW with linear warm-up and cosine decay (:mod:`.schedule`); a non-finite
   gradient norm skips the update on every rank alike. Frozen modules get no gradient.

Rank 0 alone writes (``run.out_dir``): ``train_log.csv`` (global-batch means every ``log_every`` steps),
``eval_log.csv`` (held-out metrics every ``eval_every`` steps), ``checkpoint.pt`` (:mod:`.checkpoints`;
resumable on any number of ranks), ``train_config.yaml``, TensorBoard events when installed, and at
the end ``model/`` in the layout ``EPS3D.from_pretrained`` reads, with the text encoder beside it. The
other ranks wait for it at barriers.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..conventions import SH_C0
from ..model.bundle import save_text_encoder_files
from ..process.threads import set_threads
from .builders import apply_freeze, build_data, build_model, build_text_encoder
from .checkpoints import (
    CHECKPOINT_NAME,
    describe_resume,
    read_checkpoint,
    topology,
    write_checkpoint,
)
from .config import TrainConfig, load_train_config
from .datasets import Sample, SyntheticDataset
from .distributed import Ranks, needs_unused_parameter_search, rank_threads
from .losses import LOSS_NAMES, total_loss
from .run_log import RunLog
from .run_usage import RunUsage
from .sample_stream import Draw, SampleStream, sample_ids
from .schedule import build_optimizer, describe_lr, lr_factor, scaled_lr
from .step_losses import StepLosses

log = logging.getLogger(__name__)

__all__ = ["Trainer", "train", "build_text_encoder", "apply_freeze", "CHECKPOINT_NAME", "SH_C0"]

_STATS = ("alpha", "render_s")  # per-window statistics averaged into the log row


class Trainer:
    """Builds model, text encoder, data, teacher and optimizer from a :class:`TrainConfig`; ``fit()`` trains.

    ``ranks``: this process's place in a job (default: from the launcher's environment, see
    :class:`~.distributed.Ranks`; one rank without a launcher)."""

    def __init__(self, config: TrainConfig, resume: bool | str | Path = False, ranks: Ranks | None = None) -> None:
        self.config = cfg = config.validate()
        self.out_dir = Path(cfg.run.out_dir)
        self._owns_ranks = ranks is None
        self.ranks = ranks if ranks is not None else Ranks.from_env(cfg)
        self.device = self.ranks.device
        set_threads(rank_threads(cfg.run.num_threads, self.ranks.local_world_size))  # model.threads' meaning
        torch.manual_seed(cfg.run.seed)  # the fresh model's initialisation, the same on every rank
        self.model = build_model(cfg)
        self.model.to(self.device).train()
        self.model.set_gradient_checkpointing(cfg.model.gradient_checkpointing)
        self.frozen = apply_freeze(self.model, cfg.model.freeze)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("every parameter is frozen: nothing to train")
        self.text_encoder, self.text_weights = self._text_encoder()
        expanded = self.model.config.gaussians.semantic_expanded_dim
        if self.text_encoder.dim != expanded:
            raise ValueError(f"text encoder width {self.text_encoder.dim} != the model's semantic_expanded_dim "
                             f"{expanded}: the semantic features could not be compared with the teacher's")
        self.dataset, self.teacher = build_data(cfg, self.text_encoder)
        self.stream = SampleStream(self.dataset, cfg.data, cfg.run.seed)
        self.losses = StepLosses(self.model, cfg, self.teacher)
        self.topology = topology(self.ranks.world_size, cfg.data.batch_size, cfg.optim.accumulate)
        self.optimizer, self.scheduler = build_optimizer(self.params, cfg.optim, self.topology["global_batch"])
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.usage = RunUsage()
        self.run_log = RunLog(self.out_dir, enabled=self.ranks.is_main, tensorboard=cfg.run.tensorboard)
        if resume:
            self._resume(resume)
        self.find_unused_parameters = needs_unused_parameter_search(cfg)
        self.net = self.ranks.wrap(self.losses, self.find_unused_parameters)
        self._gradients_checked = False

    def _text_encoder(self) -> tuple[Any, str]:
        """Rank 0 first when the encoder may write its seeded weights file, so no two ranks write it at once."""
        first = self.config.text.create_random_seed is not None and self.ranks.distributed
        if first and not self.ranks.is_main:
            self.ranks.barrier()
        out = build_text_encoder(self.config.text)
        if first and self.ranks.is_main:
            self.ranks.barrier()
        return out

    # ------------------------------------------------------------------------------- batches
    def batch(self, step: int, k: int = 0) -> tuple[Sample, list[int], list[int], np.random.Generator, torch.Generator]:
        """Sample ``k`` of ``step``: the window, context / target view indices and its generators."""
        d = self.stream.draw(step, k)
        return d.sample, d.context, d.target, d.rng, d.gen

    def compute_losses(
        self, sample: Sample, context: list[int], target: list[int], rng: np.random.Generator,
        gen: torch.Generator, step: int,
    ) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Every loss term with a non-zero weight for one window (its own forward), and a few statistics."""
        return self.losses.compute(Draw(sample, context, target, rng, gen, step, 0))

    # ---------------------------------------------------------------------------------- steps
    def train_step(self) -> dict[str, float]:
        """One optimizer step over this rank's share of the global batch; returns the log row (global-batch
        means of the unweighted terms, the same on every rank)."""
        cfg, ranks = self.config, self.ranks
        self.net.train()
        t0 = time.perf_counter()
        acc, bs = cfg.optim.accumulate, cfg.data.batch_size
        self.optimizer.zero_grad(set_to_none=True)
        windows: list[tuple[dict[str, Tensor], dict[str, float]]] = []
        for micro in range(acc):
            draws = [self.stream.draw(self.step, k) for k in sample_ids(micro, ranks.rank, ranks.world_size, bs)]
            groups = [[d] for d in draws] if cfg.data.batch_forward == "per_window" else [draws]
            for i, group in enumerate(groups):
                with Ranks.sync(self.net, micro == acc - 1 and i == len(groups) - 1):  # one all-reduce per step
                    loss, per_window = self.net(group, self.step)
                    # non-finite losses go through backward too: every rank must join the all-reduce; the
                    # non-finite gradient norm then skips the update on all ranks alike
                    (loss * (len(group) / (bs * acc))).backward()
                windows += per_window
        if not self._gradients_checked:
            self._check_gradients()
        row: dict[str, float] = {"step": self.step, "lr": self.optimizer.param_groups[0]["lr"]}
        clip = cfg.optim.grad_clip
        gn = torch.nn.utils.clip_grad_norm_(self.params, clip if clip > 0 else float("inf"))
        if torch.isfinite(gn):
            self.optimizer.step()
        else:
            log.warning("step %d: non-finite loss or gradient norm, update skipped", self.step)
        row["grad_norm"] = float(gn)
        row.update(self._reduce_rows(windows, self.step))
        self.scheduler.step()
        self.step += 1
        row["step_s"] = time.perf_counter() - t0
        return row

    def _check_gradients(self) -> None:
        """After this process's first backward: trainable parameters without a gradient never train, and
        DDP without ``find_unused_parameters`` would wait for them at the next step; name them."""
        self._gradients_checked = True
        missing = [n for n, p in self.model.named_parameters() if p.requires_grad and p.grad is None]
        if not missing:
            return
        names = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        if self.ranks.distributed and not self.find_unused_parameters:
            raise ValueError(f"{len(missing)} trainable parameters got no gradient at step {self.step} ({names}): "
                             "DistributedDataParallel would wait for them; freeze them (model.freeze) or set "
                             "run.find_unused_parameters: true")
        if self.ranks.is_main and not self.find_unused_parameters:
            log.warning("%d trainable parameters got no gradient at step %d (%s): they do not train; freeze them "
                        "(model.freeze)", len(missing), self.step, names)

    def _reduce_rows(self, windows: list[tuple[dict[str, Tensor], dict[str, float]]], step: int) -> dict[str, float]:
        """Means over the global batch: each term over the windows that computed it, ``total`` over all."""
        names = ["total", *LOSS_NAMES, *_STATS]
        sums = torch.zeros(2 * len(names), dtype=torch.float64)
        for terms, stats in windows:
            values = {k: float(v.detach()) for k, v in terms.items()}
            values["total"] = float(total_loss(terms, self.config.loss, step).detach())
            values.update({k: stats[k] for k in _STATS if k in stats})
            for i, name in enumerate(names):
                if name in values:
                    sums[2 * i] += values[name]
                    sums[2 * i + 1] += 1
        sums = self.ranks.all_reduce_sum(sums)
        return {name: float(sums[2 * i] / sums[2 * i + 1]) for i, name in enumerate(names) if sums[2 * i + 1] > 0}

    @torch.no_grad()
    def losses_at(self, step: int, k: int = 0) -> dict[str, float]:
        """The loss terms of sample ``k`` of ``step`` with the current weights, without updating (for tests)."""
        was = self.model.training
        self.model.train()
        terms, _ = self.losses.compute(self.stream.draw(step, k))
        self.model.train(was)
        return {name: float(v) for name, v in terms.items()}

    # ------------------------------------------------------------------------------------ fit
    def fit(self, steps: int | None = None) -> dict[str, Any]:
        """Train until ``steps`` (default ``optim.steps``) with logging, checkpoints and evaluation."""
        cfg, main = self.config, self.ranks.is_main
        total = int(steps if steps is not None else cfg.optim.steps)
        self._announce(total)
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            cfg.to_yaml(self.out_dir / "train_config.yaml")
        self.run_log.open(self.step, total, cfg.run.progress and main)
        self.usage.start()
        t_start = time.perf_counter()
        try:
            while self.step < total and not self._out_of_time(t_start):
                row = self.train_step()
                self.history.append(row)
                self.run_log.progress(row)
                if (self.step % cfg.run.log_every == 0) or self.step == total:
                    self.run_log.train_row(row)
                save = cfg.run.checkpoint_every and self.step % cfg.run.checkpoint_every == 0
                evaluate = cfg.run.eval_every and self.step % cfg.run.eval_every == 0 and isinstance(
                    self.dataset, SyntheticDataset)
                if save or evaluate:
                    self.usage.sync(self.ranks)  # a collective: every rank, before rank 0 works alone
                if save:
                    self._on_main(self.save_checkpoint)
                if evaluate:
                    self._on_main(self._periodic_eval)
        finally:
            self.run_log.close()
        self.usage.sync(self.ranks)
        self._on_main(self.save_checkpoint)
        export = self.out_dir / "model"
        self._on_main(lambda: self.export(export))
        return {"steps": self.step, "wall_s": time.perf_counter() - t_start, "export": str(export),
                "last": self.history[-1] if self.history else {}}

    def _out_of_time(self, t_start: float) -> bool:
        """``run.max_minutes`` spent (rank 0's clock decides, so every rank stops after the same step)."""
        limit = self.config.run.max_minutes
        if not limit:
            return False
        over = torch.tensor([float(self.ranks.is_main and time.perf_counter() - t_start >= 60.0 * limit)],
                            dtype=torch.float64)
        if self.ranks.all_reduce_sum(over).item() == 0:
            return False
        if self.ranks.is_main:
            log.info("run.max_minutes %g reached at step %d: writing the checkpoint and the model folder", limit,
                     self.step)
        return True

    def _on_main(self, work) -> None:
        """``work`` on rank 0 while the others wait at a barrier (``run.dist_timeout_s``)."""
        if self.ranks.is_main:
            work()
        self.ranks.barrier()

    def _announce(self, total: int) -> None:
        if not self.ranks.is_main:
            return
        t, cfg = self.topology, self.config
        log.info("training steps %d..%d on %d rank(s) (%s, %s): global batch %d = batch_size %d x %d rank(s) x "
                 "accumulate %d; %s; precision %s", self.step, total, t["world_size"], self.ranks.backend or
                 "no process group", self.device, t["global_batch"], t["batch_size"], t["world_size"],
                 t["accumulate"], describe_lr(cfg.optim, t["global_batch"]), cfg.run.precision)
        if self.ranks.distributed:
            why = ("on: steps differ in the loss terms they compute (render.every / render.start_step / "
                   "loss.start), so some parameters get no gradient on some steps" if self.find_unused_parameters
                   else "off: every step computes the same terms")
            log.info("DistributedDataParallel find_unused_parameters %s (run.find_unused_parameters %s)", why,
                     cfg.run.find_unused_parameters)

    # --------------------------------------------------------------------------- evaluation
    def _periodic_eval(self) -> None:
        from ..eval.model_eval import EvalConfig, evaluate_model

        d, r = self.config.data, self.config.run
        ecfg = EvalConfig(seed_start=r.eval_seed_start, num_scenes=r.eval_scenes, num_views=r.eval_views,
                          height=d.height, width=d.width, scene_options=dict(d.scene_options), path_2d=False,
                          measured_queries=False)  # a second clustering per scene: the full evaluation has it
        self.model.eval()
        try:
            res = evaluate_model(self.model, self.text_encoder, ecfg)
        finally:
            self.model.train()
        row = {"step": self.step, **self.usage.hours(),
               **{k: v for k, v in res["summary"].items() if isinstance(v, (int, float))}}
        self.run_log.eval_row(row)
        log.info("step %d held-out: %s", self.step, {k: round(v, 4) for k, v in row.items() if k != "step"})

    # --------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Model, optimizer, schedule, step, RNG state and the ranks / batches that wrote it; written
        atomically, by rank 0 only (every rank holds the same state)."""
        path = Path(path) if path is not None else self.out_dir / CHECKPOINT_NAME
        if not self.ranks.is_main:
            return path
        return write_checkpoint(path, {
            "step": self.step, "model": self.model.state_dict(), "model_config": self.model.config.to_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.random.get_rng_state(), "train_config": self.config.to_dict(),
            "topology": dict(self.topology), "usage": self.usage.state(),
        })

    def load_checkpoint(self, path: str | Path) -> None:
        """Resume from a run's ``checkpoint.pt`` (of any number of ranks; the older one-sample format too)
        or from a slim resume state (:mod:`.resume_state`); logs what differs from the run that wrote it."""
        state = read_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.random.set_rng_state(state["torch_rng"].cpu())
        self.step = int(state["step"])
        self.usage.load(state.get("usage"))
        saved_lr = float(self.scheduler.base_lrs[0])
        new_lr = scaled_lr(self.config.optim, self.topology["global_batch"])
        if new_lr != saved_lr:  # the peak learning rate follows this run's config (optim.lr / lr_scaling)
            o = self.config.optim
            self.scheduler.base_lrs = [new_lr] * len(self.optimizer.param_groups)
            for g in self.optimizer.param_groups:
                g["initial_lr"] = new_lr
                g["lr"] = new_lr * lr_factor(self.step, o.warmup_steps, o.steps, o.min_lr_ratio)
        if self.ranks.is_main:
            log.info(describe_resume(path, self.step, state["topology"], self.topology, saved_lr, new_lr))

    def _resume(self, resume: bool | str | Path) -> None:
        path = Path(resume) if isinstance(resume, (str, Path)) else self.out_dir / CHECKPOINT_NAME
        found = self.ranks.all_gather(path.is_file())
        if any(found) and not all(found):
            missing = [r for r, f in enumerate(found) if not f]
            raise FileNotFoundError(f"ranks {missing} cannot see {path} (rank 0 can): run.out_dir must be on a "
                                    "filesystem every node shares")
        if found[0]:
            self.load_checkpoint(path)
        elif isinstance(resume, (str, Path)):
            raise FileNotFoundError(f"checkpoint to resume from not found: {path}")
        elif self.ranks.is_main:
            log.info("no checkpoint in %s: starting from step 0", self.out_dir)

    def export(self, directory: str | Path) -> Path:
        """A model folder in ``directory``: ``save_pretrained``, the text encoder files with the text space's
        fingerprint, ``bundle.json`` (the training size as the native input size; the HDBSCAN setting the
        held-out evaluation uses) and the training config."""
        from ..model.bundle import write_bundle_files
        from ..eval.model_eval import RECOMMENDED_SETTINGS

        d = Path(directory)
        meta = {"trained_steps": str(self.step), "train_seed": str(self.config.run.seed),
                "data": self.config.data.kind}
        self.model.save_pretrained(d, metadata=meta)
        if self.text_weights:
            save_text_encoder_files(d, self.text_weights, self.config.text.model, list(self.config.text.templates))
        else:
            log.warning("the text encoder has no local weights file (random): not exported with the model")
        data = self.config.data
        write_bundle_files(d, (data.height, data.width), dict(RECOMMENDED_SETTINGS),
                           self.text_encoder if self.text_weights else None)
        self.config.to_yaml(d / "train_config.yaml")
        return d

    def close(self) -> None:
        """Leave the process group this trainer joined (nothing with one rank or ``ranks`` given)."""
        if self._owns_ranks:
            self.ranks.close()


def train(config: TrainConfig | str | Path, resume: bool | str | Path = False, steps: int | None = None,
          overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train from a config (object or YAML path); returns ``fit``'s summary (``export`` = the model folder).

    ``resume``: ``True`` continues from ``run.out_dir/checkpoint.pt`` when it exists; a path continues from
    that checkpoint or slim resume state. Under ``torchrun`` every rank calls this; a rank that fails
    tells the others (which then stop, naming it) and raises."""
    if not isinstance(config, TrainConfig):
        config = load_train_config(config, overrides)
    elif overrides:
        raise ValueError("overrides apply to a YAML path; edit the TrainConfig object instead")
    ranks = Ranks.from_env(config)
    try:
        summary = Trainer(config, resume=resume, ranks=ranks).fit(steps)
    except BaseException as e:
        err = ranks.fail(e)
        ranks.close(done=False)
        if err is e:
            raise
        raise err from e
    ranks.close()
    return summary
