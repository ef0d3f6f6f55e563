"""Training by distillation: the :class:`Trainer` and :func:`train` (``eps3d train --config FILE``).

One step (``B = 1`` window of views):

1. the window of step ``t`` is a pure function of ``(run.seed, t)`` — which scene, which views are
   held-out targets, every random subsample inside the losses — so a resumed run reproduces the
   losses of an uninterrupted one exactly;
2. the context views go through the network; the teacher gives targets for all views;
3. geometry terms (optional, where ground truth exists): the depth head against ground-truth depth
   and the camera head against ground-truth cameras, both in the first context camera's frame with
   the scale normalised by the mean ground-truth depth of the context views (VGGT-style frames);
4. the Gaussians are splatted into a random subset of the context views (predicted cameras) and into
   the held-out target views (their ground-truth pose relative to the first context view, placed in
   the predicted frame and scaled by ``median(predicted depth) / median(true depth)``; without depth
   by the ratio of camera baselines). Rendered: DC colour, the 32-d semantic and instance features;
5. ``total = Σ w · term`` (:mod:`eps3d_ros.train.losses`), AdamW with linear warm-up and cosine decay,
   gradient clipping; parameters of frozen modules get no gradient.

Outputs in ``run.out_dir``: ``train_log.csv`` (every ``log_every`` steps), ``eval_log.csv`` (held-out
metrics every ``eval_every`` steps), ``checkpoint.pt`` (model, optimizer, schedule, step; resumable),
``train_config.yaml``, TensorBoard events when installed, and at the end ``model/`` in the layout
``EPS3D.from_pretrained`` reads, with the text encoder it was trained against beside it.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from eps3d_ros.conventions import (
    SH_C0,
    intrinsics_for_pixel_centres,
    intrinsics_for_pixel_indices,
    invert_rigid,
    to_homogeneous,
)
from eps3d_ros.model import EPS3D, EPS3DConfig
from eps3d_ros.model.outputs import depth_to_world_points
from eps3d_ros.model.pose_encoding import extrinsics_intrinsics_to_pose_encoding
from eps3d_ros.render import render_gaussians

from .config import FREEZE_GROUPS, TrainConfig, load_train_config
from .dataset_from_config import build_dataset
from .datasets import Sample, SyntheticDataset
from .losses import (
    LOSS_NAMES,
    camera_loss,
    depth_loss,
    ins2sem_loss,
    instance_infonce,
    rgb_loss,
    semantic_ce_loss,
    semantic_loss,
    total_loss,
)
from ..devices import resolve_device
from ..process.threads import set_threads
from ..model.bundle import save_text_encoder_files
from ..text import TextEncoderConfig, create_text_encoder
from ..text.clip import create_random_text_encoder
from .teachers import FileTeacher, GroundTruthTeacher

log = logging.getLogger(__name__)

__all__ = ["Trainer", "train", "build_text_encoder", "apply_freeze", "CHECKPOINT_NAME", "SH_C0"]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "eps3d_train_checkpoint"


# ------------------------------------------------------------------------------------ builders
def build_text_encoder(text) -> tuple[Any, str]:
    """``(TextEncoder, local weights file or "")`` for a :class:`~.config.TextSection`."""
    pretrained = text.pretrained
    if text.create_random_seed is not None and pretrained and not Path(pretrained).exists():
        log.warning("text encoder weights %s missing: creating seeded random weights (seed %d)", pretrained,
                    text.create_random_seed)
        create_random_text_encoder(pretrained, text.model, int(text.create_random_seed))
    enc = create_text_encoder(TextEncoderConfig(model=text.model, pretrained=pretrained, templates=list(text.templates)))
    return enc, enc.checkpoint


def apply_freeze(model: torch.nn.Module, freeze: list[str]) -> list[str]:
    """Set ``requires_grad=False`` on parameters matching the groups / prefixes; returns their names."""
    prefixes: list[str] = []
    for name in freeze:
        prefixes += list(FREEZE_GROUPS.get(name, (name,)))
    frozen = []
    for pname, p in model.named_parameters():
        if any(pname.startswith(pre) for pre in prefixes):
            p.requires_grad_(False)
            frozen.append(pname)
    if freeze and not frozen:
        raise ValueError(f"model.freeze {freeze} matches no parameter")
    return frozen


def set_initial_opacity(model: EPS3D, opacity: float) -> None:
    """Start every Gaussian at ``opacity``: the appearance head's opacity-logit bias becomes the logit
    that the adapter maps to it (raw channel 0; the rest of the head is untouched)."""
    last = model.encoder.gaussian_param_head.scratch.output_conv2[-1]
    e = model.encoder.gaussian_adapter.opacity_exponent(0)
    if e != 1.0:
        raise ValueError("model.init_opacity assumes the identity opacity mapping (opacity_mapping initial = final = 0)")
    with torch.no_grad():
        last.bias[0] = math.log(opacity / (1.0 - opacity))


def _relative(extrinsics: Tensor, reference: Tensor) -> Tensor:
    """``E_i ∘ E_ref⁻¹`` ``[V, 3, 4]``: camera-from-(reference camera) transforms."""
    return (to_homogeneous(extrinsics) @ to_homogeneous(invert_rigid(reference))[None])[:, :3]


def _pick_pixels(t: Tensor, pick: Tensor | None) -> Tensor:
    """``[S, D, h, w]`` → ``[1, D, P, 1]`` or ``[S, h, w]`` → ``[1, P, 1]`` at flat pixel indices ``pick``
    (``None``: unchanged)."""
    if pick is None:
        return t
    if t.dim() == 4:
        return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])[pick.to(t.device)].T[None, :, :, None]
    return t.reshape(-1)[pick.to(t.device)][None, :, None]


def _lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# ------------------------------------------------------------------------------------- trainer
class Trainer:
    """Builds model, text encoder, data and teacher from a :class:`TrainConfig`; ``fit()`` trains."""

    def __init__(self, config: TrainConfig, resume: bool | str | Path = False) -> None:
        self.config = cfg = config.validate()
        self.out_dir = Path(cfg.run.out_dir)
        self.device = resolve_device(cfg.run.device, "run.device")
        set_threads(cfg.run.num_threads)  # the meaning of model.threads (process/threads.py)
        torch.manual_seed(cfg.run.seed)  # the fresh model's initialisation

        if cfg.model.init_from:
            from ..model.bundle import ModelBundle

            self.model = ModelBundle.load(cfg.model.init_from).load_network()
            if cfg.model.overrides:
                raise ValueError("model.overrides cannot change a model loaded with model.init_from")
        else:
            mcfg = EPS3DConfig.from_preset(cfg.model.preset)
            if cfg.model.overrides:
                mcfg = mcfg.replace(**cfg.model.overrides)
            self.model = EPS3D(mcfg)
            if cfg.model.init_opacity is not None:
                set_initial_opacity(self.model, cfg.model.init_opacity)
        self.model.to(self.device).train()
        self.model.set_gradient_checkpointing(cfg.model.gradient_checkpointing)
        self.frozen = apply_freeze(self.model, cfg.model.freeze)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("every parameter is frozen: nothing to train")

        self.text_encoder, self.text_weights = build_text_encoder(cfg.text)
        self.dataset: Any = build_dataset(cfg.data, labels=cfg.teacher_kind == "ground_truth")
        if cfg.teacher_kind == "ground_truth":
            if getattr(self.dataset, "class_names", None) is None:
                raise ValueError("teacher.kind 'ground_truth' needs labelled data (synthetic scenes or a dataset with "
                                 "label images)")
            self.teacher: Any = GroundTruthTeacher.from_text_encoder(
                self.text_encoder, self.dataset.class_names, stuff_classes=self.dataset.stuff,
                stuff_masks=cfg.teacher.stuff_masks)
        else:
            self.teacher = FileTeacher()
        expanded = self.model.config.gaussians.semantic_expanded_dim
        if self.text_encoder.dim != expanded:
            raise ValueError(f"text encoder width {self.text_encoder.dim} != the model's semantic_expanded_dim "
                             f"{expanded}: the semantic features could not be compared with the teacher's")

        o = cfg.optim
        # fused (CPU and CUDA kernels): the per-tensor loop of the default Adam costs ~0.25 s per step on 2 cores
        self.optimizer = torch.optim.AdamW(self.params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay,
                                           fused=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: _lr_factor(s, o.warmup_steps, o.steps, o.min_lr_ratio))
        self.step = 0
        self.history: list[dict[str, float]] = []
        self._tb = None
        if resume:
            path = Path(resume) if isinstance(resume, (str, Path)) else self.out_dir / CHECKPOINT_NAME
            if path.is_file():
                self.load_checkpoint(path)
            elif isinstance(resume, (str, Path)):
                raise FileNotFoundError(f"checkpoint to resume from not found: {path}")
            else:
                log.info("no checkpoint in %s: starting from step 0", self.out_dir)

    # ------------------------------------------------------------------------------- batches
    def batch(self, step: int) -> tuple[Sample, list[int], list[int], np.random.Generator, torch.Generator]:
        """The window of ``step``: sample, context / target view indices and the step's generators."""
        rng = np.random.default_rng([self.config.run.seed, step])
        index = int(rng.integers(len(self.dataset)))
        sizes = self.config.data.sizes()
        # one size per step (multi-resolution); no draw for a fixed size keeps older runs' streams unchanged
        height, width = sizes[int(rng.integers(len(sizes)))] if len(sizes) > 1 else sizes[0]
        sample = self.dataset.at_size(index, height, width)
        n_target = self.config.data.target_views if sample.has_cameras else 0
        if sample.num_views > self.config.data.num_views:
            sample = sample.select(list(range(self.config.data.num_views)))
        context, target = sample.split(n_target, rng)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return sample, context, target, rng, gen

    # -------------------------------------------------------------------------------- losses
    def compute_losses(
        self, sample: Sample, context: list[int], target: list[int], rng: np.random.Generator,
        gen: torch.Generator, step: int,
    ) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Every loss term with a non-zero weight for one window, and a few statistics."""
        cfg, L, dev, model = self.config, self.config.loss, self.device, self.model
        w = L.weights(step)
        H, W = sample.size
        ctx = sample.select(context)
        pred = model(ctx.images.to(dev)[None], global_step=step)
        teach = self.teacher(sample)
        terms: dict[str, Tensor] = {}
        stats: dict[str, float] = {}

        # ----- geometry, in the first context camera's frame, scale-normalised
        rel = scale = None
        if sample.has_cameras:
            E = sample.extrinsics.to(dev)
            rel = _relative(E, E[context[0]])  # [V, 3, 4]
            if ctx.depth is not None and bool((ctx.depth > 0).any()):
                scale = float(ctx.depth[ctx.depth > 0].mean())
            else:
                baseline = rel[context, :, 3].norm(dim=-1)
                scale = float(baseline.mean()) if float(baseline.max()) > 1e-6 else 1.0
        if w["depth"] and ctx.depth is not None and scale:
            gt = ctx.depth.to(dev) / scale
            terms["depth"] = depth_loss(pred.depth[0, ..., 0], gt, gt > 0)
        if w["camera"] and rel is not None:
            gt_rel = rel[context].clone()
            gt_rel[..., 3] /= scale
            gt_enc = extrinsics_intrinsics_to_pose_encoding(gt_rel, sample.intrinsics[context].to(dev), H, W)
            terms["camera"] = camera_loss([p[0] for p in pred.pose_enc_list], gt_enc, L.camera_gamma)

        g, ctx_viewmats, ctx_Ks, first, target_scale = self._placement(pred, sample, context, rel)
        # ----- rendered terms
        rendered_any = w["rgb"] or w["semantic"] or w["instance"] or w["semantic_ce"]
        if rendered_any and step >= cfg.render.start_step and (step - cfg.render.start_step) % cfg.render.every == 0:
            k = cfg.render.context_views
            sel = list(range(len(context))) if k < 0 or k >= len(context) else \
                sorted(rng.choice(len(context), size=k, replace=False).tolist())
            viewmats = [ctx_viewmats[sel]] if sel else []
            Ks = [ctx_Ks[sel]] if sel else []
            views = [context[i] for i in sel]
            if cfg.render.target_views and target and rel is not None:
                s = target_scale if target_scale is not None else self._target_scale(pred, sample, context, rel)
                t_rel = rel[target].clone()
                t_rel[..., 3] *= s
                viewmats.append(to_homogeneous(t_rel) @ first[None])
                Ks.append(sample.intrinsics[target].to(dev))
                views += target
            if views:
                terms.update(self._rendered_terms(pred, g, sample, teach, views, torch.cat(viewmats),
                                                  torch.cat(Ks), gen, stats, w))
        # ----- Ins2Sem on the Gaussians
        if w["ins2sem"]:
            terms["ins2sem"] = ins2sem_loss(
                g.instances[0], g.semantics[0], L.ins2sem_anchors, L.ins2sem_neighbors,
                valid=g.opacities[0].detach() > 0.05, generator=gen, expand=model.expand_semantic_features)
        # ----- optional direct (unrendered) terms on the input views' per-pixel maps
        if w["direct_rgb"]:
            if pred.gaussians.means.shape[1] != pred.depth[0].numel():
                raise ValueError("loss.direct_rgb needs pixel-aligned Gaussians: turn voxelize off")
            colours = 0.5 + SH_C0 * pred.gaussians.harmonics[0, :, :, 0]  # [S*H*W, 3] in (view, row, col) order
            colours = colours.reshape(len(context), H, W, 3).permute(0, 3, 1, 2)
            terms["direct_rgb"] = rgb_loss(colours, ctx.images.to(dev))
        if w["direct_semantic"] or w["direct_instance"] or w["direct_semantic_ce"]:
            tctx = teach.select(context)
            pick = None
            if w["direct_semantic"] or w["direct_semantic_ce"]:
                expanded, pick = self._expanded_semantics(pred.semantic_maps[0], gen)  # [S, 512, H/2, W/2]
                size = tuple(pred.semantic_maps.shape[-2:])
                size = (size[0] // 2, size[1] // 2)
            if w["direct_semantic"]:
                tgt, valid = tctx.semantic_target(size)
                tgt, valid = _pick_pixels(tgt, pick), _pick_pixels(valid, pick)
                terms["direct_semantic"] = semantic_loss(expanded, tgt.to(dev), valid.to(dev))
            classes = tctx.semantic_classes(size) if w["direct_semantic_ce"] else None
            if classes is not None:
                classes = _pick_pixels(classes, pick)
                terms["direct_semantic_ce"] = semantic_ce_loss(expanded, classes.to(dev), tctx.prototypes.to(dev),
                                                               L.semantic_ce_scale, L.semantic_ce_balanced)
            if w["direct_instance"]:
                feats, masks = pred.instance_maps[0].permute(0, 2, 3, 1), tctx.masks.to(dev)  # [S, H, W, Ci]
                if L.direct_instance_cross_view:  # the S views as one image: ids must agree across views
                    feats, masks = feats.reshape(1, -1, W, feats.shape[-1]), masks.reshape(1, -1, W)
                n_pix = L.instance_pixels * (len(context) if L.direct_instance_cross_view else 1)
                terms["direct_instance"] = instance_infonce(feats, masks, L.temperature, max_pixels=n_pix,
                                                            generator=gen)
        return terms, stats

    def _expanded_semantics(self, maps: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """The decoder's expansion of per-pixel semantic maps ``[S, Cs, H, W]``: ``[S, 512, H/2, W/2]``, or with
        ``loss.semantic_pixels`` only that many random pixels ``[1, 512, P, 1]`` and their flat indices ``[P]``."""
        n = self.config.loss.semantic_pixels
        small = self.model.decoder.feature_expansion[0](maps)  # the expansion's x0.5 resampling
        total = small.shape[0] * small.shape[2] * small.shape[3]
        if n <= 0 or n >= total:
            return self.model.expand_semantics(maps), None
        pick = torch.randperm(total, generator=gen)[:n].to(maps.device)
        flat = small.permute(0, 2, 3, 1).reshape(total, -1)[pick]  # [P, Cs]
        return self.model.expand_semantic_features(flat).T[None, :, :, None], pick

    def _placement(self, pred, sample: Sample, context: list[int], rel: Tensor | None):
        """The Gaussians to render and the cameras that place them (``render.cameras``).

        Returns ``(gaussians, context viewmats [S, 4, 4], context Ks [S, 3, 3], first [4, 4], scale)``:
        ``first`` maps the first context camera's frame to the Gaussians' world frame (the target
        views are ``rel_target @ first``) and ``scale`` is the true-to-predicted scale when it was
        already computed (else ``None``).
        """
        # Renders use K for pixel centres: the network unprojects pixel (u, v) at (u, v), the renderer samples
        # it at (u + 0.5, v + 0.5) (eps3d_ros.conventions.intrinsics_for_pixel_centres).
        mode = self.config.render.cameras
        g = pred.gaussians
        if not self.config.render.depth_gradients:
            g = replace(g, means=g.means.detach())
        if mode == "predicted":
            E, K = pred.extrinsics[0], pred.intrinsics[0]
            return g, to_homogeneous(E), intrinsics_for_pixel_centres(K), to_homogeneous(E[0]).detach(), None
        if mode == "detached":
            E, K = pred.extrinsics[0].detach(), pred.intrinsics[0].detach()
            K_render, scale = intrinsics_for_pixel_centres(K), None
        else:
            if rel is None:
                raise ValueError("render.cameras 'ground_truth' needs cameras in the training data (intrinsics and "
                                 "extrinsics); use 'predicted' or 'detached'")
            scale = self._target_scale(pred, sample, context, rel)
            E = rel[context].clone()
            E[..., 3] *= scale
            K_render = sample.intrinsics[context].to(E.device)  # the data's K samples pixel centres
            K = intrinsics_for_pixel_indices(K_render)
        if g.means.shape[1] != pred.depth[0].numel():
            raise ValueError(f"render.cameras {mode!r} re-places pixel-aligned Gaussians: turn voxelize off")
        depth = pred.depth if self.config.render.depth_gradients else pred.depth.detach()
        means = depth_to_world_points(depth, E[None], K[None]).reshape(1, -1, 3)
        return replace(g, means=means), to_homogeneous(E), K_render, to_homogeneous(E[0]), scale

    def _target_scale(self, pred, sample: Sample, context: list[int], rel: Tensor) -> float:
        """Predicted-over-true scale: ``median(predicted depth) / median(true depth)`` of the context views,
        or without depth the ratio of camera baselines."""
        with torch.no_grad():
            s = None
            if sample.depth is not None:
                gt_d = sample.depth[context].to(rel.device)
                ok = gt_d > 0
                if bool(ok.any()):
                    s = float(pred.depth[0, ..., 0][ok].median() / gt_d[ok].median())
            if s is None:
                pc = invert_rigid(pred.extrinsics[0])[:, :, 3]  # predicted camera centres
                gc = invert_rigid(rel[context])[:, :, 3]
                gb, pb = (gc - gc[:1]).norm(dim=-1).sum(), (pc - pc[:1]).norm(dim=-1).sum()
                s = float(pb / gb) if float(gb) > 1e-6 else 1.0
            return s

    def _rendered_terms(self, pred, g, sample: Sample, teach, views: list[int], viewmats: Tensor, Ks: Tensor,
                        gen: torch.Generator, stats: dict[str, float], w: dict[str, float]) -> dict[str, Tensor]:
        cfg, L, model = self.config, self.config.loss, self.model
        H, W = sample.size
        cs = g.semantics.shape[-1]
        parts, names = [], []
        if w["rgb"]:
            parts.append(0.5 + SH_C0 * g.harmonics[0, :, :, 0])
            names.append("rgb")
        if w["semantic"] or w["semantic_ce"]:
            parts.append(g.semantics[0])
            names.append("semantic")
        if w["instance"]:
            parts.append(g.instances[0])
            names.append("instance")
        t0 = time.perf_counter()
        out = render_gaussians(g.means[0], g.opacities[0], torch.cat(parts, dim=-1), viewmats, Ks, W, H,
                               covariances=g.covariances[0], backend=cfg.render.backend,
                               near_plane=cfg.render.near_plane)
        stats["render_s"] = time.perf_counter() - t0
        alpha = out.alphas[..., 0]  # [C, H, W]
        stats["alpha"] = float(alpha.detach().mean())
        covered = alpha.detach() >= L.min_alpha
        feats = out.features
        tv = teach.select(views)
        dev = feats.device
        terms: dict[str, Tensor] = {}
        o = 0
        if "rgb" in names:
            rgb = feats[..., 0:3].permute(0, 3, 1, 2)
            terms["rgb"] = rgb_loss(rgb, sample.images[views].to(dev), L.ssim)
            o = 3
        if "semantic" in names:
            sem = model.expand_semantics(feats[..., o:o + cs].permute(0, 3, 1, 2))  # [C, 512, H/2, W/2]
            size = tuple(sem.shape[-2:])
            tgt, valid = tv.semantic_target(size)
            a_small = F.interpolate(alpha.detach()[:, None], size=size, mode="area")[:, 0]
            opaque = a_small >= L.min_alpha
            if w["semantic"]:
                terms["semantic"] = semantic_loss(sem, tgt.to(dev), valid.to(dev) * opaque)
            classes = tv.semantic_classes(size) if w["semantic_ce"] else None
            if classes is not None:
                classes = torch.where(opaque, classes.to(dev), torch.full_like(classes.to(dev), -1))
                terms["semantic_ce"] = semantic_ce_loss(sem, classes, tv.prototypes.to(dev), L.semantic_ce_scale,
                                                       L.semantic_ce_balanced)
            o += cs
        if "instance" in names:
            ins = feats[..., o:]
            terms["instance"] = instance_infonce(ins, tv.masks.to(dev), L.temperature, valid=covered,
                                                 max_pixels=L.instance_pixels, generator=gen)
        return terms

    # ---------------------------------------------------------------------------------- steps
    def train_step(self) -> dict[str, float]:
        """One optimisation step; returns the log row (losses are the unweighted terms)."""
        self.model.train()
        t0 = time.perf_counter()
        sample, context, target, rng, gen = self.batch(self.step)
        terms, stats = self.compute_losses(sample, context, target, rng, gen, self.step)
        total = total_loss(terms, self.config.loss, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        row: dict[str, float] = {"step": self.step, "lr": self.optimizer.param_groups[0]["lr"]}
        if torch.isfinite(total):
            total.backward()
            clip = self.config.optim.grad_clip
            gn = torch.nn.utils.clip_grad_norm_(self.params, clip if clip > 0 else float("inf"))
            row["grad_norm"] = float(gn)
            if torch.isfinite(gn):
                self.optimizer.step()
            else:
                log.warning("step %d: non-finite gradient norm, update skipped", self.step)
        else:
            log.warning("step %d: non-finite loss, update skipped", self.step)
        self.scheduler.step()
        self.step += 1
        row["total"] = float(total.detach())
        row.update({k: float(v.detach()) for k, v in terms.items()})
        row.update(stats)
        row["step_s"] = time.perf_counter() - t0
        return row

    @torch.no_grad()
    def losses_at(self, step: int) -> dict[str, float]:
        """The loss terms of ``step``'s window with the current weights, without updating (for tests)."""
        was = self.model.training
        self.model.train()
        sample, context, target, rng, gen = self.batch(step)
        terms, _ = self.compute_losses(sample, context, target, rng, gen, step)
        self.model.train(was)
        return {k: float(v) for k, v in terms.items()}

    def fit(self, steps: int | None = None) -> dict[str, Any]:
        """Train until ``steps`` (default ``optim.steps``) with logging, checkpoints and evaluation."""
        cfg = self.config
        total = int(steps if steps is not None else cfg.optim.steps)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(self.out_dir / "train_config.yaml")
        self._open_logs()
        bar = None
        if cfg.run.progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.step, desc="train", dynamic_ncols=True)
        t_start = time.perf_counter()
        try:
            while self.step < total:
                row = self.train_step()
                self.history.append(row)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['total']:.4f}", refresh=False)
                if (self.step % cfg.run.log_every == 0) or self.step == total:
                    self._log_row(row)
                if cfg.run.checkpoint_every and self.step % cfg.run.checkpoint_every == 0:
                    self.save_checkpoint()
                if cfg.run.eval_every and self.step % cfg.run.eval_every == 0 and isinstance(
                        self.dataset, SyntheticDataset):
                    self._periodic_eval()
        finally:
            if bar is not None:
                bar.close()
        self.save_checkpoint()
        export = self.export(self.out_dir / "model")
        return {"steps": self.step, "wall_s": time.perf_counter() - t_start, "export": str(export),
                "last": self.history[-1] if self.history else {}}

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
        row = {"step": self.step, **{k: v for k, v in res["summary"].items() if isinstance(v, (int, float))}}
        path = self.out_dir / "eval_log.csv"
        new = not path.is_file()
        with path.open("a", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(row))
            if new:
                wr.writeheader()
            wr.writerow(row)
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, float) and math.isfinite(v):
                    self._tb.add_scalar(f"eval/{k}", v, self.step)
        log.info("step %d held-out: %s", self.step, {k: round(v, 4) for k, v in row.items() if k != "step"})

    # ------------------------------------------------------------------------------ logging
    def _log_columns(self) -> list[str]:
        return ["step", "lr", "total", *LOSS_NAMES, "grad_norm", "alpha", "render_s", "step_s"]

    def _open_logs(self) -> None:
        path = self.out_dir / "train_log.csv"
        cols = self._log_columns()
        rows = []
        if path.is_file():  # resumed: keep rows up to the checkpoint's step
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(float(r.get("step", 0))) < self.step]
        with path.open("w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=cols)
            wr.writeheader()
            for r in rows:
                wr.writerow({k: r.get(k, "") for k in cols})
        if self.config.run.tensorboard and self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
            except Exception:  # noqa: BLE001 - tensorboard not installed: CSV only
                self._tb = None

    def _log_row(self, row: dict[str, float]) -> None:
        cols = self._log_columns()
        with (self.out_dir / "train_log.csv").open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=cols).writerow({k: row.get(k, "") for k in cols})
        if self._tb is not None:
            for k, v in row.items():
                if k != "step":
                    self._tb.add_scalar(f"train/{k}", v, int(row["step"]))

    # --------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Model, optimizer, schedule, step and RNG state; written atomically."""
        path = Path(path) if path is not None else self.out_dir / CHECKPOINT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format": CHECKPOINT_FORMAT, "version": 1, "step": self.step,
            "model": self.model.state_dict(), "model_config": self.model.config.to_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.random.get_rng_state(), "train_config": self.config.to_dict(),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Resume from a run's ``checkpoint.pt`` or from a slim resume state (:mod:`.resume_state`)."""
        from .resume_state import RESUME_FORMAT, load_training_state, read_resume_state

        state = load_training_state(path, map_location=self.device)
        if state.get("format") == RESUME_FORMAT:
            state = read_resume_state(path, map_location=self.device)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not an eps3d training checkpoint")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.random.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        log.info("resumed from %s at step %d", path, self.step)

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


def train(config: TrainConfig | str | Path, resume: bool | str | Path = False, steps: int | None = None,
          overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train from a config (object or YAML path); returns ``fit``'s summary (``export`` = the model folder).

    ``resume``: ``True`` continues from ``run.out_dir/checkpoint.pt`` when it exists; a path continues from
    that checkpoint or slim resume state."""
    if not isinstance(config, TrainConfig):
        config = load_train_config(config, overrides)
    elif overrides:
        raise ValueError("overrides apply to a YAML path; edit the TrainConfig object instead")
    return Trainer(config, resume=resume).fit(steps)
