"""The losses of one training step: a batch of windows through the network, every term per window.

:class:`StepLosses` is an ``nn.Module`` around the network whose ``forward`` is the whole step's loss
(network + splatting + every term), so that DistributedDataParallel sees each parameter the loss
uses — the semantic expansion applied inside the losses included. Per window (see the trainer's
module docstring for the recipe):

1. geometry terms in the first context camera's frame, scale-normalised by the mean true depth;
2. the Gaussians placed by ``render.cameras`` and splatted into a random subset of the context views
   and into the held-out target views: DC colour, 32-d semantic and instance features;
3. Ins2Sem on the Gaussians and the optional direct (unrendered) terms on the per-pixel maps.

The network runs once for the batch (``[B, S, 3, H, W]``; one size per batch), under bf16 autocast
with ``run.precision: bf16``; the losses run in float32 on each window's slice of the output.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eps3d_ros.conventions import (
    SH_C0,
    intrinsics_for_pixel_centres,
    intrinsics_for_pixel_indices,
    invert_rigid,
    to_homogeneous,
)
from eps3d_ros.model import EPS3D
from eps3d_ros.model.outputs import EPS3DOutput, depth_to_world_points
from eps3d_ros.model.pose_encoding import extrinsics_intrinsics_to_pose_encoding
from eps3d_ros.render import render_gaussians

from .config import TrainConfig
from .datasets import Sample
from .losses import (
    camera_loss,
    depth_loss,
    ins2sem_loss,
    instance_infonce,
    rgb_loss,
    semantic_ce_loss,
    semantic_loss,
    total_loss,
)
from .sample_stream import Draw

__all__ = ["StepLosses", "SampleTerms", "window_of"]

# (terms, statistics) of one window: the loss terms with a non-zero weight and e.g. render time
SampleTerms = tuple[dict[str, Tensor], dict[str, float]]


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


def window_of(pred: EPS3DOutput, b: int) -> EPS3DOutput:
    """Window ``b`` of a batched output, as an output of batch size 1 (views into ``pred``)."""
    if pred.depth.shape[0] == 1:
        return pred
    out = {}
    for f in fields(pred):
        v = getattr(pred, f.name)
        if isinstance(v, list):
            out[f.name] = [t[b:b + 1] for t in v]
        elif isinstance(v, Tensor):
            out[f.name] = v[b:b + 1]
        else:  # the Gaussians
            out[f.name] = replace(v, **{g.name: getattr(v, g.name)[b:b + 1] for g in fields(v)})
    return EPS3DOutput(**out)


class StepLosses(nn.Module):
    """The network and the step's losses as one module: ``forward(draws, step)`` → ``(loss, per window)``.

    ``loss`` is the mean over the batch of each window's ``total_loss``; ``per window`` holds each
    window's unweighted terms and statistics (for the logs).
    """

    def __init__(self, model: EPS3D, config: TrainConfig, teacher) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.teacher = teacher
        self.autocast_dtype = torch.bfloat16 if config.run.precision == "bf16" else None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def forward(self, draws: list[Draw], step: int) -> tuple[Tensor, list[SampleTerms]]:
        pred = self.predict(draws, step)
        per_window = [self.window_terms(window_of(pred, b), d, step) for b, d in enumerate(draws)]
        totals = [total_loss(terms, self.config.loss, step) for terms, _ in per_window]
        return torch.stack(totals).mean(), per_window

    def predict(self, draws: list[Draw], step: int) -> EPS3DOutput:
        """The network on the context views of ``draws`` as one batch ``[B, S, 3, H, W]``."""
        views = {len(d.context) for d in draws}
        sizes = {d.sample.size for d in draws}
        if len(views) > 1 or len(sizes) > 1:
            raise ValueError(f"one batch needs one view count and one image size; got {sorted(views)} views and "
                             f"sizes {sorted(sizes)} (samples with and without cameras mixed?)")
        images = torch.stack([d.sample.images[d.context] for d in draws]).to(self.device)
        dtype = self.autocast_dtype
        ctx = torch.autocast(images.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with ctx:
            pred = self.model(images, global_step=step)
        return pred.to(torch.float32) if dtype is not None else pred

    def compute(self, draw: Draw) -> SampleTerms:
        """One window's terms and statistics, its own forward included (tests, benchmarks)."""
        return self.window_terms(self.predict([draw], draw.step), draw, draw.step)

    def window_terms(self, pred: EPS3DOutput, draw: Draw, step: int) -> SampleTerms:
        """Every loss term with a non-zero weight for one window (``pred`` of batch size 1), and statistics."""
        cfg, L, dev, model = self.config, self.config.loss, self.device, self.model
        sample, context, target, rng, gen = draw.sample, draw.context, draw.target, draw.rng, draw.gen
        w = L.weights(step)
        teach = self.teacher(sample)
        terms: dict[str, Tensor] = {}
        stats: dict[str, float] = {}
        rel, scale = self._geometry_terms(pred, sample, context, w, terms)
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
        self._direct_terms(pred, sample, context, teach, gen, w, terms)
        return terms, stats

    def _geometry_terms(self, pred: EPS3DOutput, sample: Sample, context: list[int], w: dict[str, float],
                        terms: dict[str, Tensor]) -> tuple[Tensor | None, float | None]:
        """Depth and camera terms in the first context camera's frame, scale-normalised; returns
        ``(camera-from-first-context-camera [V, 3, 4] or None, the normalising scale or None)``."""
        L, dev = self.config.loss, self.device
        H, W = sample.size
        ctx = sample.select(context)
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
        return rel, scale

    def _direct_terms(self, pred: EPS3DOutput, sample: Sample, context: list[int], teach, gen: torch.Generator,
                      w: dict[str, float], terms: dict[str, Tensor]) -> None:
        """The optional direct (unrendered) terms on the input views' per-pixel maps."""
        L, dev = self.config.loss, self.device
        H, W = sample.size
        if w["direct_rgb"]:
            if pred.gaussians.means.shape[1] != pred.depth[0].numel():
                raise ValueError("loss.direct_rgb needs pixel-aligned Gaussians: turn voxelize off")
            colours = 0.5 + SH_C0 * pred.gaussians.harmonics[0, :, :, 0]  # [S*H*W, 3] in (view, row, col) order
            colours = colours.reshape(len(context), H, W, 3).permute(0, 3, 1, 2)
            terms["direct_rgb"] = rgb_loss(colours, sample.images[context].to(dev))
        if not (w["direct_semantic"] or w["direct_instance"] or w["direct_semantic_ce"]):
            return
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

