"""Evaluate a model on dataset scenes with the EPS3D release's protocol (``eps3d evaluate --dataset ...``).

Windows come from :func:`~eps3d_ros.eval.dataset_protocol.view_plan`; their frames are prepared once
(:class:`ProtocolWindow`: protocol input images, protocol class ids, instance ids), from a dataset reader
(:func:`dataset_windows`) or from synthetic scenes (:func:`synthetic_windows`, the truth-known check), and
:func:`evaluate_windows` runs the model and scores them:

* **2D, as the release reports it** (:mod:`.reference_metrics`): the Gaussians rendered into the target
  (novel) or context views; semantic mIoU / accuracy, instance P/R/F and mean IoU, PQ / SQ / RQ;
* **3D** (ours): ``build_scene`` on the context views' pixel-aligned Gaussians, each scored against the label of
  its pixel, one window = one sample (mIoU, PQ with instance ids that must agree across views).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .dataset_protocol import EvalProtocol, class_lut, reference_input, reference_labels, view_plan
from .reference_metrics import SemanticAccumulator, instance_scene_scores, reference_panoptic_quality

log = logging.getLogger(__name__)

__all__ = ["ProtocolWindow", "dataset_windows", "synthetic_windows", "evaluate_windows", "panoptic_config",
           "predict_cameras"]


@dataclass
class ProtocolWindow:
    name: str
    images: np.ndarray  # [V, S, S, 3] uint8, context views first, then targets
    semantic: np.ndarray  # [V, S, S] int64 protocol class ids, 0 = ignored
    instance: np.ndarray  # [V, S, S] int64, 0 = none
    num_context: int


def _window(name: str, rgb: list[np.ndarray], sem: list[np.ndarray], ins: list[np.ndarray], n_ctx: int,
            size: int) -> ProtocolWindow:
    return ProtocolWindow(name, np.stack([reference_input(x, size) for x in rgb]),
                          np.stack([reference_labels(x, size) for x in sem]),
                          np.stack([reference_labels(x, size) for x in ins]), n_ctx)


def dataset_windows(dataset: Any, scene_ids: Iterable[str], protocol: EvalProtocol,
                    frame_lists: dict[str, list[str]] | None = None) -> Iterator[ProtocolWindow]:
    """The protocol's windows of ``scene_ids`` (read one window at a time)."""
    for sid in scene_ids:
        scene = dataset.scene(sid)
        if scene.label_set is None:
            raise ValueError(f"{dataset.name} scene {sid} has no label images: nothing to evaluate against")
        lut = class_lut(scene.label_set.names, protocol)
        frames = list(range(len(scene)))
        if frame_lists is not None and sid in frame_lists:
            index = {f: i for i, f in enumerate(scene.frame_ids)}
            missing = [f for f in frame_lists[sid] if f not in index]
            if missing:
                raise ValueError(f"{sid}: frames {missing[:5]} of the frame list are not in the scene")
            frames = [index[f] for f in frame_lists[sid]]
        for w in view_plan(len(frames), protocol):
            order = [frames[i] for i in w.context + w.target]
            data = [scene.frame(i) for i in order]
            ins = [f.instance if f.instance is not None else np.zeros(f.size, np.int64) for f in data]
            yield _window(f"{sid}[{','.join(f.frame_id for f in data)}]", [f.rgb for f in data],
                          [lut[f.semantic] for f in data], ins, len(w.context), protocol.input_size)


def synthetic_windows(scenes: Iterable[Any], protocol: EvalProtocol, rgb: list[np.ndarray] | None = None
                      ) -> Iterator[ProtocolWindow]:
    """The same windows of :class:`~eps3d_ros.data.synthetic.SyntheticScene` s (``rgb``: images to use instead of
    the scenes' own, e.g. as their JPEGs decode)."""
    for n, s in enumerate(scenes):
        lut = class_lut(["unlabelled", *s.class_names[1:]], protocol)
        images = s.rgb if rgb is None else rgb[n]
        for w in view_plan(s.num_views, protocol):
            order = list(w.context + w.target)
            yield _window(f"synthetic-{s.seed}[{','.join(map(str, order))}]", [images[i] for i in order],
                          [lut[s.semantic[i]] for i in order], [s.instance[i] for i in order], len(w.context),
                          protocol.input_size)


# ------------------------------------------------------------------------------------------ model
@torch.inference_mode()
def predict_cameras(model: Any, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera head only: ``images [1, V, 3, H, W]`` → camera-from-world ``[V, 3, 4]`` and pixel ``K [V, 3, 3]``."""
    from eps3d_ros.model.pose_encoding import pose_encoding_to_extrinsics_intrinsics

    enc = model.encoder
    layers, _ = enc.aggregator(images, model.config.dpt.layers)
    last = layers[max(layers)].float()
    pose_enc = enc.camera_head(last[:, :, 0])[-1]
    E, K = pose_encoding_to_extrinsics_intrinsics(pose_enc, images.shape[-2], images.shape[-1])
    return E[0].float().cpu(), K[0].float().cpu()


def _target_cameras(model, pred, images: torch.Tensor, n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The release's novel-view cameras: joint camera pass, target translations rescaled to the context pass."""
    from eps3d_ros.conventions import extrinsics_to_poses, poses_to_extrinsics

    E_all, K_all = predict_cameras(model, images)
    c2w_all = extrinsics_to_poses(E_all.double())
    c2w_ctx = extrinsics_to_poses(pred.extrinsics[0].double())
    scale = c2w_ctx[:, :3, 3].mean() / c2w_all[:n_ctx, :3, 3].mean()
    c2w_t = c2w_all[n_ctx:].clone()
    c2w_t[:, :3, 3] *= scale
    return poses_to_extrinsics(c2w_t).float(), K_all[n_ctx:]


def _render(model, pred, E: torch.Tensor, K: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Semantic (32) and instance (32) feature maps ``[V, S, S, C]`` of the prediction's Gaussians."""
    from eps3d_ros.conventions import intrinsics_for_pixel_centres
    from eps3d_ros.render import render_gaussians

    g = pred.gaussians
    feats = torch.cat([g.semantics[0], g.instances[0]], -1).float()
    out = render_gaussians(g.means[0].float(), g.opacities[0].float(), feats, E.to(feats.device),
                           intrinsics_for_pixel_centres(K).to(feats.device), size, size,
                           covariances=g.covariances[0].float())
    cs = g.semantics.shape[-1]
    return out.features[..., :cs].cpu(), out.features[..., cs:].cpu()


def _semantic_maps(model, sem: torch.Tensor, prototypes: torch.Tensor, protocol: EvalProtocol) -> np.ndarray:
    """Rendered 32-d maps → the model's CLIP-space expansion → cosine with the class prototypes → logits resized
    (bilinear, antialiased) to the metric size → class ids 1..K ``[V, M, M]``."""
    dev = next(model.parameters()).device
    with torch.inference_mode():
        x = model.expand_semantics(sem.permute(0, 3, 1, 2).to(dev)).float()  # [V, 512, S/2, S/2]
        logits = torch.einsum("vchw,kc->vkhw", F.normalize(x, dim=1), F.normalize(prototypes.to(dev).float(), dim=1))
        m = protocol.metric_size
        logits = F.interpolate(logits, size=(m, m), mode="bilinear", align_corners=False, antialias=True)
    return (logits.argmax(1) + 1).cpu().numpy()


def _clusters(ins: torch.Tensor, protocol: EvalProtocol) -> np.ndarray | None:
    """The release's instance clustering of rendered features ``[V, S, S, C]`` → cluster ids ``[V, S, S]``."""
    from eps3d_ros.panoptic.hdbscan_clusterer import weighted_centroids

    x = ins.reshape(-1, ins.shape[-1]).double()
    x = (x / (x.norm(dim=-1, keepdim=True) + 1e-6)).numpy()
    rng = np.random.default_rng(protocol.seed)
    pick = rng.choice(len(x), size=min(protocol.max_samples, len(x)), replace=False)
    found = weighted_centroids(x[pick], protocol.min_cluster_size, protocol.min_samples)
    if not len(found):
        return None
    centroids = torch.from_numpy(found)
    labels = torch.cat([torch.cdist(torch.from_numpy(x[i:i + (1 << 18)]), centroids).argmin(1)
                        for i in range(0, len(x), 1 << 18)])
    return labels.numpy().reshape(ins.shape[:-1])


def _crop(a: np.ndarray, protocol: EvalProtocol) -> np.ndarray:
    b = protocol.border
    return a[..., b:protocol.metric_size - b, b:protocol.metric_size - b]


class _Scores:
    """Everything accumulated over windows."""

    def __init__(self, protocol: EvalProtocol) -> None:
        self.p = protocol
        self.semantic = SemanticAccumulator(len(protocol.classes))
        self.instance: list[dict[str, float]] = []
        self.pq: list[dict[str, Any]] = []
        self.pq_skipped = 0
        self.cm3d = None
        self.pq3d: dict[int, list[float]] = {}
        self.ins3d = [0, 0, 0]
        self.rows: list[dict[str, Any]] = []

    def add_2d(self, sem_m: np.ndarray, gt_sem: np.ndarray, clusters: np.ndarray | None, gt_ins: np.ndarray,
               row: dict[str, Any]) -> None:
        from .protocol import resize_nearest

        p, M = self.p, self.p.metric_size
        gt_m = resize_nearest(gt_sem, M)
        sem_m = np.where(gt_m != 0, sem_m, 0)
        for v in range(len(sem_m)):
            self.semantic.update(_crop(sem_m[v], p), _crop(gt_m[v], p))
        if clusters is None:
            self.pq_skipped += 1
            row["instances"] = "no cluster"
            return
        scores = instance_scene_scores(clusters, gt_ins)
        if scores is not None:
            self.instance.append(scores)
            row.update({f"instance_{k}": v for k, v in scores.items()})
        pi, gi = resize_nearest(clusters, M), resize_nearest(gt_ins, M)
        V = len(sem_m)
        order = [V - 1 - k for k in range(V)] if p.pq_pairing == "release" else list(range(V))
        ps, gs = _crop(sem_m[order], p), _crop(gt_m[order], p)
        pi, gi = _crop(pi, p), _crop(gi, p)
        valid = gs > 0
        pq = reference_panoptic_quality(ps[valid], pi[valid], gs[valid], gi[valid], p.thing_ids, p.stuff_ids, p.robust)
        self.pq.append(pq)
        row.update({"pq": pq["pq"], "sq": pq["sq"], "rq": pq["rq"]})

    def add_3d(self, built, gt_sem: np.ndarray, gt_ins: np.ndarray) -> None:
        from . import confusion_matrix, instance_prf, panoptic_counts

        p = self.p
        sem, ins = built.panoptic_labels()
        ps = np.where(sem >= 0, sem + 1, 0)
        gs, gi = gt_sem.reshape(-1), gt_ins.reshape(-1)
        cm = confusion_matrix(ps, gs, len(p.classes) + 1, ignore_index=0)
        self.cm3d = cm if self.cm3d is None else self.cm3d + cm
        things = sorted(p.thing_ids)
        gi_things = np.where(np.isin(gs, things), gi, 0)
        for c, v in panoptic_counts(ps, ins, gs, gi_things, things, sorted(p.stuff_ids), ignore_index=0,
                                    per_view=False).items():
            acc = self.pq3d.setdefault(c, [0, 0, 0, 0.0])
            for i in range(4):
                acc[i] += v[i]
        r = instance_prf(np.where(np.isin(ps, things), ins, 0), gi_things)
        for i, k in enumerate(("tp", "num_pred", "num_gt")):
            self.ins3d[i] += r[k]

    def summary(self) -> dict[str, Any]:
        from . import prf_from_counts, summarize_panoptic

        p = self.p
        out: dict[str, Any] = {"windows": len(self.rows), "mode": p.mode, "context_views": p.context_views,
                               "input_size": p.input_size, "classes": list(p.classes)}
        out["miou_2d"] = self.semantic.miou
        out["accuracy_2d"] = self.semantic.accuracy
        out["per_class_iou_2d"] = dict(zip(p.classes, map(float, self.semantic.per_class())))
        if self.instance:
            for k in ("precision", "recall", "f_score", "mean_iou"):
                out[f"instance_{k}_2d"] = float(np.mean([s[k] for s in self.instance]))
        out["instance_windows"] = len(self.instance)
        for k in ("pq", "sq", "rq"):
            out[f"{k}_2d"] = float(np.mean([q[k] for q in self.pq])) if self.pq else float("nan")
        out["pq_windows"], out["pq_windows_skipped"] = len(self.pq), self.pq_skipped
        if self.cm3d is not None:
            cm = self.cm3d
            inter = np.diag(cm).astype(np.float64)
            union = cm.sum(0) + cm.sum(1) - np.diag(cm)
            present = union > 0
            present[0] = False
            out["miou_3d"] = float(np.mean(inter[present] / union[present])) if present.any() else float("nan")
            pq = summarize_panoptic({c: tuple(v) for c, v in self.pq3d.items()}, sorted(p.thing_ids), sorted(p.stuff_ids))
            for k in ("pq", "sq", "rq", "pq_things", "pq_stuff"):
                out[f"{k}_3d"] = pq[k]
            prec, rec, f = prf_from_counts(*self.ins3d)
            out["instance_precision_3d"], out["instance_recall_3d"], out["instance_f_3d"] = prec, rec, f
        out["forward_s"] = float(np.mean([r["forward_s"] for r in self.rows])) if self.rows else float("nan")
        return out


def panoptic_config(protocol: EvalProtocol, settings: dict[str, Any] | None = None) -> Any:
    """The :class:`~eps3d_ros.panoptic.PanopticConfig` of the 3D path: the protocol's classes (things and stuff)
    and HDBSCAN's ``min_cluster_size`` / ``min_samples``, then ``settings`` (panoptic settings by dotted name,
    as ``eps3d evaluate --set``); an unknown or non-panoptic name is a ``ValueError``."""
    from eps3d_ros.settings import Eps3dConfig
    from eps3d_ros.settings.dotted import set_dotted

    settings = dict(settings or {})
    outside = [k for k in settings if not k.startswith("panoptic.")]
    if outside:
        raise ValueError(f"the evaluation takes panoptic settings only, got {outside}")
    run = Eps3dConfig()
    p = run.panoptic
    p.vocabulary, p.stuff = list(protocol.classes), [c for c in protocol.classes if c not in protocol.things]
    p.clustering.hdbscan.min_cluster_size = protocol.min_cluster_size
    p.clustering.hdbscan.min_samples = protocol.min_samples
    return set_dotted(run, settings).panoptic.validate()


def evaluate_windows(model: Any, text_encoder: Any, windows: Iterable[ProtocolWindow], protocol: EvalProtocol,
                     path_3d: bool = True, progress: Any = None, panoptic: Any = None) -> dict[str, Any]:
    """Score ``windows`` (see the module docstring); ``{"summary", "per_window", "protocol"}``. ``panoptic``: the
    3D path's :class:`~eps3d_ros.panoptic.PanopticConfig` (default :func:`panoptic_config` of the protocol)."""
    from eps3d_ros.panoptic import SemanticSpace, build_scene

    p = protocol.validate()
    model.eval()
    dev = next(model.parameters()).device
    prototypes = text_encoder.prototypes(list(p.classes)).float().cpu()
    space = SemanticSpace.from_model(model)
    pcfg = panoptic if panoptic is not None else panoptic_config(p)
    scores = _Scores(p)
    for w in windows:
        images = torch.from_numpy(w.images).permute(0, 3, 1, 2).float().div(255.0)[None].to(dev)
        n = w.num_context
        t0 = time.perf_counter()
        with torch.inference_mode():
            pred = model(images[:, :n]).to("cpu")
        row: dict[str, Any] = {"window": w.name, "forward_s": time.perf_counter() - t0}
        if p.mode == "novel":
            if w.images.shape[0] == n:
                raise ValueError(f"{w.name}: novel-view evaluation needs target views")
            E, K = _target_cameras(model, pred, images, n)
            views = slice(n, None)
        else:
            E, K, views = pred.extrinsics[0], pred.intrinsics[0], slice(0, n)
        sem, ins = _render(model, pred, E, K, p.input_size)
        sem_m = _semantic_maps(model, sem, prototypes, p)
        scores.add_2d(sem_m, w.semantic[views], _clusters(ins, p), w.instance[views], row)
        if path_3d:
            built = build_scene(pred, space, text_encoder, pcfg)
            scores.add_3d(built, w.semantic[:n], w.instance[:n])
        scores.rows.append(row)
        if progress is not None:
            progress(1)
    return {"summary": scores.summary(), "per_window": scores.rows, "protocol": p.to_dict()}
