"""Held-out evaluation on synthetic scenes: the numbers of the demo model's table (``eps3d evaluate``).

Per scene (seeds ``seed_start ..``, never used for training), the model sees ``num_views`` views and:

* **3D path** (default, the table's semantic / instance / panoptic numbers): ``build_scene`` on the
  prediction gives per-Gaussian panoptic labels; the network's Gaussians are pixel-aligned (view,
  row, col), so each is scored against the ground-truth labels of the pixel it came from. One scene
  is one sample: a thing segment spans views (multi-view-consistent ids are required), a stuff class
  is one segment per scene. Semantic mIoU from one confusion matrix over all scenes (background
  ignored), instance P/R/F at IoU 0.5 (class-agnostic, things only) and PQ/SQ/RQ from per-class
  counts summed over scenes;
* **2D path** (``path_2d``; the reference protocol): ``render_panoptic_views`` renders the labels into
  the input views with the predicted cameras; nearest resize to 256², 25-px border crop, PQ and
  instance F per view;
* **depth**: AbsRel and δ<1.25 after scaling the prediction by ``median(gt) / median(pred)`` per scene
  (the network is up to scale); also AbsRel of the same seeds rendered at other sizes
  (``depth_size_offsets``, default one 14-px step below and above: does the model work off its size?);
* **cameras**: per view ``i >= 1`` the rotation error and the translation direction error (degrees)
  of the predicted pose relative to the first view against the true one
  (:func:`eps3d_ros.eval.camera.relative_pose_errors`); medians over all views of all scenes;
* **renders**: the Gaussians splatted (DC colour, torch renderer) into every input view with that
  view's *predicted* camera (its ``K`` moved to the renderer's pixel centres,
  :func:`eps3d_ros.conventions.intrinsics_for_pixel_centres`), PSNR against the input image (all
  pixels); median over views;
* **queries**: for each thing class visible in the scene (>= ``min_query_pixels`` pixels), query its
  class name, take the top object, map its centroid into the ground-truth frame with the Sim(3) that
  aligns the predicted to the true camera centres (Umeyama), and measure the distance to the nearest
  visible ground-truth object of that class (centroid of its visible surface points, metres). Also
  reported: the same with a Sim(3) fitted on all pixel points, and how often the top object's label is
  the queried class;
* **measured queries** (``measured_queries``): the same queries on a scene whose pixel-aligned centres
  are the true surface points — what the node does with depth + TF and ``use_measured_depth`` — so
  only labels and instances are judged: how often the answer is the scene object nearest the true
  centroid, and its distance to it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eps3d_ros.conventions import SH_C0, intrinsics_for_pixel_centres, invert_rigid
from eps3d_ros.eval import confusion_matrix, instance_prf, panoptic_counts, prf_from_counts, summarize_panoptic
from eps3d_ros.eval.camera import relative_pose_errors
from eps3d_ros.eval.protocol import reference_protocol
from eps3d_ros.geometry.similarity import AlignmentError, umeyama_sim3

log = logging.getLogger(__name__)


__all__ = ["EvalConfig", "evaluate_model", "evaluate_model_dir", "load_model_dir",
           "markdown_table", "panoptic_config"]


# What a model trained here recommends for 4 views of 112x112 (~50k Gaussians): training writes it into the model's
# bundle.json; a model evaluated without a bundle (during training) is evaluated with it.
RECOMMENDED_SETTINGS = {"panoptic.clustering.hdbscan.min_cluster_size": 100}


@dataclass
class EvalConfig:
    seed_start: int = 100_000
    num_scenes: int = 20
    num_views: int = 4
    height: int = 112  # evaluate_model_dir: 0 = the model's native size
    width: int = 112
    scene_options: dict[str, Any] = field(default_factory=dict)
    # panoptic settings by dotted name over the model's recommendation (its bundle's, else RECOMMENDED_SETTINGS)
    settings: dict[str, Any] = field(default_factory=dict)
    path_3d: bool = True
    path_2d: bool = True
    queries: bool = True
    # also query a scene whose Gaussian centres come from the true depth and poses (the node's
    # use_measured_depth path): isolates labels and instances from the predicted geometry
    measured_queries: bool = True
    min_query_pixels: int = 30  # a ground-truth object smaller than this (all views) is not queried
    cameras: bool = True  # relative rotation / translation direction errors
    renders: bool = True  # PSNR of the input views rendered with their predicted cameras
    # depth AbsRel also at (height + o) x (width + o) for each offset (multiples of 14; () = off)
    depth_size_offsets: tuple[int, ...] = (-14, 14)
    device: str = "auto"  # where the network runs: auto, cpu, cuda, cuda:N

    def validate(self) -> "EvalConfig":
        if self.num_scenes < 1:
            raise ValueError("num_scenes must be >= 1")
        for o in self.depth_size_offsets:
            if o % 14 or o == 0 or min(self.height, self.width) + o < 14:
                raise ValueError(f"depth_size_offsets must be non-zero multiples of 14 leaving sizes >= 14, got {o}")
        return self


def panoptic_config(class_names: list[str], stuff: list[int], cfg: EvalConfig):
    """The :class:`~eps3d_ros.panoptic.PanopticConfig` used for the synthetic vocabulary, with ``cfg.settings``."""
    from eps3d_ros.settings import Eps3dConfig
    from eps3d_ros.settings.dotted import set_dotted

    run = Eps3dConfig()
    run.panoptic.vocabulary, run.panoptic.stuff = list(class_names[1:]), [class_names[i] for i in stuff]
    unknown = [k for k in cfg.settings if not k.startswith("panoptic.")]
    if unknown:
        raise ValueError(f"the evaluation takes panoptic settings only, got {unknown}")
    return set_dotted(run, cfg.settings).panoptic.validate()


def load_model_dir(path: str | Path, device: str = "auto"):
    """``(EPS3D, TextEncoder)`` of a model folder that ships its text encoder (``text_encoder.json``), through
    its :class:`~eps3d_ros.model.bundle.ModelBundle` (the text space is checked against the folder's)."""
    from ..devices import resolve_device
    from ..model.bundle import ModelBundle, load_text_encoder

    model = ModelBundle.load(path).load_network(device=resolve_device(device)).eval()
    text = load_text_encoder(path)
    if text.dim != model.config.gaussians.semantic_expanded_dim:
        raise ValueError(f"{path}: text encoder width {text.dim} != the model's semantic width "
                         f"{model.config.gaussians.semantic_expanded_dim}")
    return model, text


def _depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    ok = (gt > 0) & np.isfinite(pred) & (pred > 0)
    if not ok.any():
        return {"abs_rel": float("nan"), "delta1": float("nan")}
    p, g = pred[ok].astype(np.float64), gt[ok].astype(np.float64)
    p = p * (np.median(g) / np.median(p))
    ratio = np.maximum(p / g, g / p)
    return {"abs_rel": float(np.mean(np.abs(p - g) / g)), "delta1": float(np.mean(ratio < 1.25))}


def evaluate_scene(model, text_encoder, scene, cfg: EvalConfig, space=None) -> dict[str, Any]:
    """All metrics' raw counts for one :class:`~eps3d_ros.data.synthetic.SyntheticScene`."""
    from eps3d_ros.panoptic import SemanticSpace, build_scene, render_panoptic_views

    space = space or SemanticSpace.from_model(model)
    names, things, stuff = scene.class_names, scene.things, scene.stuff
    n_cls = len(names)
    dev = next(model.parameters()).device
    images = torch.from_numpy(scene.rgb).permute(0, 3, 1, 2).float().div(255.0)[None].to(dev)
    t0 = time.perf_counter()
    with torch.inference_mode():
        pred = model(images).to("cpu")
    out: dict[str, Any] = {"seed": scene.seed, "forward_s": time.perf_counter() - t0}
    S, H, W = scene.semantic.shape
    pcfg = panoptic_config(names, stuff, cfg)
    built = None
    if cfg.path_3d or cfg.queries:
        t0 = time.perf_counter()
        built = build_scene(pred, space, text_encoder, pcfg)
        out["build_s"] = time.perf_counter() - t0
    if cfg.path_3d:
        sem, ins = built.panoptic_labels()
        pred_sem = np.where(sem >= 0, sem + 1, 0)  # vocabulary index → class id (vocabulary = names[1:])
        gt_sem, gt_ins = scene.semantic.reshape(-1), scene.instance.reshape(-1)
        out["cm3d"] = confusion_matrix(pred_sem, gt_sem, n_cls, ignore_index=0)
        out["pq3d"] = panoptic_counts(pred_sem, ins, gt_sem, gt_ins, things, stuff, ignore_index=0, per_view=False)
        r = instance_prf(ins, gt_ins)
        out["ins3d"] = (r["tp"], r["num_pred"], r["num_gt"])
    if cfg.path_2d:
        prototypes = text_encoder.prototypes(list(names[1:])).float().cpu()
        views = render_panoptic_views(
            pred.gaussians, pred.extrinsics[0], pred.intrinsics[0], H, W, space, prototypes,
            clustering=dataclasses.replace(pcfg.clustering, min_opacity=0.5), backend="torch")
        ps = np.where(views.semantic >= 0, views.semantic + 1, 0)
        pi = np.where(np.isin(ps, things), views.instance, 0)  # stuff is not an instance
        ps, pi = reference_protocol(ps), reference_protocol(pi)
        gs, gi = reference_protocol(scene.semantic), reference_protocol(scene.instance)
        out["cm2d"] = confusion_matrix(ps, gs, n_cls, ignore_index=0)
        out["pq2d"] = panoptic_counts(ps, pi, gs, gi, things, stuff, ignore_index=0, per_view=True)
        r = instance_prf(pi, gi, per_view=True)
        out["ins2d"] = (r["tp"], r["num_pred"], r["num_gt"])
    out.update(_depth_metrics(pred.depth[0, ..., 0].numpy(), scene.depth))
    if cfg.cameras and S >= 2:
        out["rotation_errors"], out["translation_errors"] = relative_pose_errors(pred.extrinsics[0], scene.extrinsics)
    if cfg.renders:
        out["psnr"] = _render_psnr(pred, scene.rgb)
    if cfg.queries or cfg.measured_queries:
        gt_pts = np.stack([scene.world_points(v) for v in range(scene.num_views)])  # [S, H, W, 3], NaN = no hit
        visible = scene.visible_centroids(cfg.min_query_pixels)
    if cfg.queries:
        out["queries"] = _query_errors(pred, built, scene, gt_pts, visible)
    if cfg.measured_queries:
        out["measured_queries"] = _measured_queries(pred, space, text_encoder, pcfg, gt_pts, visible)
    return out


def _render_psnr(pred, rgb: np.ndarray) -> np.ndarray:
    """PSNR ``[S]`` of every input view rendered from all Gaussians with its predicted camera (DC colour)."""
    from eps3d_ros.eval.image import psnr
    from eps3d_ros.render import render_gaussians

    g = pred.gaussians
    S, H, W = rgb.shape[:3]
    colours = (0.5 + SH_C0 * g.harmonics[0, :, :, 0]).clamp(0.0, 1.0)
    # near plane relative to the scene: the prediction is up to scale
    near = 0.05 * float(pred.depth[0].median())
    K = intrinsics_for_pixel_centres(pred.intrinsics[0])  # the renderer samples pixel centres
    out = render_gaussians(g.means[0], g.opacities[0], colours, pred.extrinsics[0], K, W, H,
                           covariances=g.covariances[0], near_plane=max(near, 1e-6), backend="torch")
    return psnr(out.features.clamp(0.0, 1.0), torch.from_numpy(rgb).double() / 255.0)


def _size_depth(model, cfg: EvalConfig, seed: int, offset: int) -> float:
    """Depth AbsRel of scene ``seed`` rendered at ``(height + offset) x (width + offset)``."""
    from eps3d_ros.data.synthetic import generate_scene

    scene = generate_scene(seed, cfg.num_views, cfg.height + offset, cfg.width + offset, **cfg.scene_options)
    dev = next(model.parameters()).device
    images = torch.from_numpy(scene.rgb).permute(0, 3, 1, 2).float().div(255.0)[None].to(dev)
    with torch.inference_mode():
        depth = model(images).depth[0, ..., 0].cpu().numpy()
    return _depth_metrics(depth, scene.depth)["abs_rel"]


def _measured_queries(pred, space, text_encoder, pcfg, gt_pts: np.ndarray,
                      visible: dict[str, list[np.ndarray]]) -> list[dict[str, Any]]:
    """Class-name queries on a scene whose centres are the true surface points (pixel-aligned Gaussians; the
    rest follow a Sim(3) fitted on those points), scored as a grasp planner would see it: is the answer the
    object nearest the true centroid, and how far is it?"""
    from eps3d_ros.panoptic import build_scene

    g = pred.gaussians
    truth = gt_pts.reshape(-1, 3)
    if g.means.shape[1] != len(truth):
        return []  # voxelized: no pixel-aligned Gaussians
    means = g.means[0].double().numpy()
    ok = np.isfinite(truth).all(-1)
    if ok.sum() < 3:
        return []
    try:
        sim = umeyama_sim3(means[ok], truth[ok])
        means = sim.apply(means)
    except AlignmentError:
        pass
    means[ok] = truth[ok]
    built = build_scene(dataclasses.replace(g, means=torch.from_numpy(means).to(g.means)[None]), space, text_encoder, pcfg)
    centres = np.array([o.centroid for o in built.objects]).reshape(-1, 3)
    ids = [o.id for o in built.objects]
    rows = []
    for name, centroids in sorted(visible.items()):
        matches = built.query(name, max_results=1)
        row: dict[str, Any] = {"query": name, "found": bool(matches)}
        if matches:
            top = matches[0].object
            c = np.asarray(top.centroid, np.float64)
            target = min(centroids, key=lambda x: float(np.linalg.norm(x - c)))
            row["error"] = float(np.linalg.norm(c - target))
            row["nearest"] = ids[int(np.argmin(np.linalg.norm(centres - target, axis=1)))] == top.id
        rows.append(row)
    return rows


def _query_errors(pred, built, scene, gt_pts: np.ndarray, visible: dict[str, list[np.ndarray]]) -> list[dict[str, Any]]:
    S = scene.num_views
    aligns = {}
    pc = invert_rigid(pred.extrinsics[0].double())[:, :, 3].numpy()
    gc = scene.poses[:, :3, 3].astype(np.float64)
    if S >= 3:
        try:
            aligns["cameras"] = umeyama_sim3(pc, gc)
        except AlignmentError:  # collinear or coincident camera centres: no unique similarity
            pass
    ok = np.isfinite(gt_pts).all(-1)
    pp = pred.world_points[0].double().numpy()[ok]
    gp = gt_pts[ok]
    if len(gp) >= 3:
        pick = np.random.default_rng(0).choice(len(gp), size=min(20000, len(gp)), replace=False)
        try:
            aligns["points"] = umeyama_sim3(pp[pick], gp[pick])
        except AlignmentError:
            pass
    rows = []
    for name, centroids in sorted(visible.items()):
        matches = built.query(name, max_results=1)
        row: dict[str, Any] = {"query": name, "found": bool(matches)}
        if matches:
            top = matches[0].object
            row["label_ok"] = top.label == name
            for kind, sim in aligns.items():
                x = sim.apply(np.asarray(top.centroid, np.float64))
                row[f"error_{kind}"] = float(min(np.linalg.norm(x - c) for c in centroids))
        rows.append(row)
    return rows


def _summarize(per_scene: list[dict[str, Any]], names: list[str], things: list[int], stuff: list[int],
               cfg: EvalConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"scenes": len(per_scene), "views": cfg.num_views, "height": cfg.height,
                           "width": cfg.width, "seed_start": cfg.seed_start}
    for tag in ("3d", "2d"):
        if f"cm{tag}" not in per_scene[0]:
            continue
        cm = sum(r[f"cm{tag}"] for r in per_scene)
        inter = np.diag(cm).astype(np.float64)
        union = cm.sum(0) + cm.sum(1) - np.diag(cm)
        present = union > 0
        present[0] = False
        iou = np.where(present, inter / np.maximum(union, 1), np.nan)
        out[f"miou_{tag}"] = float(np.nanmean(iou[present])) if present.any() else float("nan")
        out[f"accuracy_{tag}"] = float(inter[1:].sum() / max(cm[1:].sum(), 1))
        out[f"per_class_iou_{tag}"] = {names[c]: float(iou[c]) for c in range(len(names)) if present[c]}
        counts: dict[int, list[float]] = {}
        for r in per_scene:
            for c, v in r[f"pq{tag}"].items():
                acc = counts.setdefault(c, [0, 0, 0, 0.0])
                for i in range(4):
                    acc[i] += v[i]
        pq = summarize_panoptic({c: tuple(v) for c, v in counts.items()}, things, stuff)
        for k in ("pq", "sq", "rq", "pq_things", "pq_stuff"):
            out[f"{k}_{tag}"] = pq[k]
        tp, npred, ngt = (sum(r[f"ins{tag}"][i] for r in per_scene) for i in range(3))
        p, rc, f = prf_from_counts(tp, npred, ngt)
        out[f"instance_precision_{tag}"], out[f"instance_recall_{tag}"], out[f"instance_f_{tag}"] = p, rc, f
    out["depth_abs_rel"] = float(np.nanmean([r["abs_rel"] for r in per_scene]))
    out["depth_delta1"] = float(np.nanmean([r["delta1"] for r in per_scene]))
    off = []
    for o in cfg.depth_size_offsets:
        if f"abs_rel_{o:+d}" not in per_scene[0]:  # rows of evaluate_scene alone (no off-size pass)
            continue
        key = f"depth_abs_rel_{cfg.height + o}x{cfg.width + o}"
        out[key] = float(np.nanmean([r[f"abs_rel_{o:+d}"] for r in per_scene]))
        off.append(out[key])
    if off:
        out["depth_abs_rel_off_size_max"] = float(max(off))
    if "rotation_errors" in per_scene[0]:
        rot = np.concatenate([r["rotation_errors"] for r in per_scene])
        tr = np.concatenate([r["translation_errors"] for r in per_scene])
        out["camera_rotation_error_median_deg"] = float(np.median(rot))
        out["camera_rotation_within_5deg"] = float(np.mean(rot <= 5.0))
        out["camera_translation_error_median_deg"] = float(np.nanmedian(tr)) if np.isfinite(tr).any() else float("nan")
        out["camera_translation_within_10deg"] = float(np.mean(tr[np.isfinite(tr)] <= 10.0)) if np.isfinite(tr).any() \
            else float("nan")
    if "psnr" in per_scene[0]:
        ps = np.concatenate([r["psnr"] for r in per_scene])
        out["render_psnr_median_db"] = float(np.median(ps))
        out["render_psnr_mean_db"] = float(np.mean(ps[np.isfinite(ps)]))
    qs = [q for r in per_scene for q in r.get("queries", [])]
    if qs:
        out["queries"] = len(qs)
        out["query_label_accuracy"] = float(np.mean([q.get("label_ok", False) for q in qs]))
        for kind in ("cameras", "points"):
            errs = np.array([q.get(f"error_{kind}", np.inf) for q in qs])
            out[f"centroid_error_median_{kind}"] = float(np.median(errs))
            out[f"centroid_within_10cm_{kind}"] = float(np.mean(errs < 0.10))
    mq = [q for r in per_scene for q in r.get("measured_queries", [])]
    if mq:
        errs = np.array([q.get("error", np.inf) for q in mq])
        out["measured_queries"] = len(mq)
        out["measured_query_nearest_rate"] = float(np.mean([q.get("nearest", False) for q in mq]))
        out["measured_centroid_error_median"] = float(np.median(errs))
        out["measured_centroid_within_25cm"] = float(np.mean(errs < 0.25))
    out["forward_s"] = float(np.mean([r["forward_s"] for r in per_scene]))
    return out


def evaluate_model(model, text_encoder, config: EvalConfig | None = None, progress: bool = False,
                   model_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate on ``config.num_scenes`` held-out synthetic scenes; ``{"summary": ..., "per_scene": ...}``.
    ``model_settings``: what the model recommends (its bundle's settings; default :data:`RECOMMENDED_SETTINGS`),
    under ``config.settings``."""
    from eps3d_ros.data.synthetic import generate_scene
    from eps3d_ros.panoptic import SemanticSpace

    cfg = (config or EvalConfig()).validate()
    base = RECOMMENDED_SETTINGS if model_settings is None else model_settings
    cfg = dataclasses.replace(cfg, settings={**base, **cfg.settings})
    was = model.training
    model.eval()
    space = SemanticSpace.from_model(model)
    per_scene = []
    seeds = range(cfg.seed_start, cfg.seed_start + cfg.num_scenes)
    it = seeds
    if progress:
        from tqdm import tqdm

        it = tqdm(seeds, desc="evaluate", dynamic_ncols=True)
    try:
        for seed in it:
            scene = generate_scene(seed, cfg.num_views, cfg.height, cfg.width, **cfg.scene_options)
            row = evaluate_scene(model, text_encoder, scene, cfg, space)
            for o in cfg.depth_size_offsets:
                row[f"abs_rel_{o:+d}"] = _size_depth(model, cfg, seed, o)
            per_scene.append(row)
    finally:
        model.train(was)
    summary = _summarize(per_scene, scene.class_names, scene.things, scene.stuff, cfg)
    slim = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()
             if not k.startswith(("cm", "pq", "ins"))} for r in per_scene]
    return {"summary": summary, "per_scene": slim}


def evaluate_model_dir(path: str | Path, config: EvalConfig | None = None, progress: bool = False) -> dict[str, Any]:
    """Load a model folder (with its text encoder) and :func:`evaluate_model` it; ``height``/``width`` 0 = the
    model's native size; the panoptic settings are the folder's recommendation (its bundle) under ``settings``."""
    from eps3d_ros.model.bundle import ModelBundle
    from eps3d_ros.settings import RENAMED

    cfg = dataclasses.replace(config or EvalConfig())
    bundle = ModelBundle.load(path)
    if not cfg.height or not cfg.width:
        cfg.height, cfg.width = bundle.input_size
    recommended = {RENAMED.get(k, k): v for k, v in bundle.settings.items() if k.startswith("panoptic.")}
    model, text = load_model_dir(path, device=cfg.device)
    return evaluate_model(model, text, cfg, progress=progress, model_settings=recommended)


def markdown_table(summary: dict[str, Any]) -> str:
    """The README / model-card table of a summary."""
    def f(key: str, digits: int = 3) -> str:
        v = summary.get(key)
        return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"

    rows = [
        ("Semantic mIoU (3D, per Gaussian)", f("miou_3d")),
        ("Instance F@0.5 (3D)", f("instance_f_3d")),
        ("PQ (3D) — things / stuff", f"{f('pq_3d')} — {f('pq_things_3d')} / {f('pq_stuff_3d')}"),
        ("Semantic mIoU (2D, reference protocol)", f("miou_2d")),
        ("Instance F@0.5 (2D, per view)", f("instance_f_2d")),
        ("PQ (2D, per view)", f("pq_2d")),
        ("Depth AbsRel (median-scaled) / δ<1.25", f"{f('depth_abs_rel')} / {f('depth_delta1')}"),
        *[(f"Depth AbsRel at {k[len('depth_abs_rel_'):]}", f(k)) for k in summary
          if k.startswith("depth_abs_rel_") and k[len("depth_abs_rel_"):][:1].isdigit()],
        ("Camera rotation error, median (°, relative to the first view) / within 5°",
         f"{f('camera_rotation_error_median_deg', 2)} / {f('camera_rotation_within_5deg')}"),
        ("Camera translation direction error, median (°) / within 10°",
         f"{f('camera_translation_error_median_deg', 2)} / {f('camera_translation_within_10deg')}"),
        ("RGB render PSNR of the input views (predicted cameras), median (dB)", f("render_psnr_median_db", 2)),
        ("Query top-1 label accuracy", f("query_label_accuracy")),
        ("Centroid error of queried objects, median (m), Sim(3) on cameras",
         f("centroid_error_median_cameras")),
        ("  … within 10 cm", f("centroid_within_10cm_cameras")),
        ("Centroid error, median (m), Sim(3) on all points", f("centroid_error_median_points")),
        ("Measured depth + poses: query answer is the object nearest the true centroid",
         f("measured_query_nearest_rate")),
        ("Measured depth + poses: centroid error, median (m) / within 25 cm",
         f"{f('measured_centroid_error_median')} / {f('measured_centroid_within_25cm')}"),
    ]
    lines = ["| Metric | Value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)
