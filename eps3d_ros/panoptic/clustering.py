"""Instance ids from instance features: a clusterer on a seeded subsample, then nearest centroid.

Clustering is super-linear, so the clusterer (``panoptic.clustering.algorithm``, see :mod:`.clusterers`;
HDBSCAN by default) labels at most ``max_samples`` L2-normalised features drawn with a fixed seed (same
input → same ids). Every Gaussian then takes the id of the most similar cluster centroid.

Explicit handling:

* Gaussians below ``min_opacity`` (or with non-finite features) are not clustered and get id 0;
* Gaussians whose best centroid cosine is below ``min_similarity`` stay unassigned (id 0), so noise
  that resembles no object does not inflate one;
* no cluster found → every id is 0. Ids are 1..K, ordered by cluster size (largest first).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .clusterers import check_algorithm, create_clusterer
from .hdbscan_clusterer import HdbscanSettings
from .timing import StageClock

log = logging.getLogger(__name__)

__all__ = ["ClusteringConfig", "InstanceClusters", "clustering_config_from_dict", "cluster_instances", "warm_up"]


@dataclass
class ClusteringConfig:
    algorithm: str = "hdbscan"  # a registered clusterer (eps3d_ros.panoptic.register_clusterer)
    hdbscan: HdbscanSettings = field(default_factory=HdbscanSettings)  # the "hdbscan" clusterer's settings
    # Clusterer input size; the rest is assigned by nearest centroid. HDBSCAN's cost grows fast: on 2 CPU
    # cores 10k samples take ~1-2 s and 50k samples 20-70 s (bench/bench_panoptic.py).
    max_samples: int = 10_000
    min_opacity: float = 0.05  # more transparent Gaussians are left out (id 0)
    min_similarity: float = 0.5  # cosine to the nearest centroid needed to join it
    seed: int = 0

    def validate(self) -> "ClusteringConfig":
        check_algorithm(self.algorithm)
        self.hdbscan.validate()
        if self.max_samples < 2:
            raise ValueError("clustering.max_samples must be >= 2")
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError("clustering.min_similarity must be a cosine in [-1, 1]")
        return self


def clustering_config_from_dict(d: dict[str, Any]) -> ClusteringConfig:
    """A :class:`ClusteringConfig` from its dict (a scene file's header); the HDBSCAN settings of files written
    before they had a section of their own (``min_cluster_size`` ... beside ``max_samples``) are read into it."""
    d = dict(d or {})
    section = dict(d.pop("hdbscan", None) or {})
    own = {f.name for f in fields(HdbscanSettings)}
    section.update({k: d.pop(k) for k in list(d) if k in own and k not in {f.name for f in fields(ClusteringConfig)}})
    known = {f.name for f in fields(ClusteringConfig)}
    unknown = sorted(set(d) - known) + sorted(set(section) - own)
    if unknown:
        log.warning("clustering settings: ignoring unknown fields %s", unknown)
    return ClusteringConfig(**{k: v for k, v in d.items() if k in known},
                            hdbscan=HdbscanSettings(**{k: v for k, v in section.items() if k in own}))


@dataclass(frozen=True)
class InstanceClusters:
    ids: Tensor  # [N] int64, 0 = none
    centroids: Tensor  # [K, D] unit vectors, row k-1 is id k
    sample_size: int  # how many features the clusterer saw

    @property
    def num_instances(self) -> int:
        return int(self.centroids.shape[0])


def cluster_instances(features: Tensor, opacities: Tensor, config: ClusteringConfig | None = None,
                      timings: dict[str, float] | None = None) -> InstanceClusters:
    """features ``[N, D]``, opacities ``[N]`` → :class:`InstanceClusters` (ids and centroids on the CPU).

    A clusterer that works on the features' device gets the sample there (HDBSCAN's torch backend). ``timings``:
    seconds of the steps (``sample``, the clusterer's, ``assign``) are added to it."""
    cfg = (config or ClusteringConfig()).validate()
    clusterer = create_clusterer(cfg)
    dev = features.device if clusterer.on_features_device else torch.device("cpu")
    clock = StageClock(timings, dev)
    if features.dim() != 2 or opacities.shape != features.shape[:1]:
        raise ValueError(f"features must be [N, D] and opacities [N]; got {tuple(features.shape)}, {tuple(opacities.shape)}")
    n, d = features.shape
    ids = torch.zeros(n, dtype=torch.int64)
    feats = features.detach().to(dev, torch.float32)
    norm = feats.norm(dim=-1)
    # a finite sum of norms: every feature is finite (NaN/inf propagate); else test each one
    ok = (norm > 0) & (torch.isfinite(norm) if not bool(torch.isfinite(norm.sum())) else True)
    valid = (opacities.detach().to(dev) >= cfg.min_opacity) & ok
    idx = torch.nonzero(valid).squeeze(1)
    if idx.numel() < 2:
        return InstanceClusters(ids, torch.zeros(0, d), 0)
    unit = torch.nn.functional.normalize(feats[idx], dim=-1)
    rng = np.random.default_rng(cfg.seed)
    take = np.sort(rng.choice(idx.numel(), size=min(cfg.max_samples, idx.numel()), replace=False))
    sample = unit[torch.from_numpy(take).to(dev)]
    clock.stop("sample")
    labels = np.asarray(clusterer.labels(sample, int(idx.numel()), clock)).reshape(-1)
    if labels.shape != (sample.shape[0],):
        raise ValueError(f"clusterer {cfg.algorithm!r} gave {labels.shape[0]} labels for {sample.shape[0]} samples")
    found = sorted(set(labels.tolist()) - {-1}, key=lambda k: -(labels == k).sum())
    if not found:
        log.info("%s found no instance cluster among %d samples", cfg.algorithm, sample.shape[0])
        return InstanceClusters(ids, torch.zeros(0, d), sample.shape[0])
    lab = torch.from_numpy(labels.astype(np.int64)).to(dev)
    centroids = torch.stack([sample[lab == k].mean(0) for k in found])
    centroids = torch.nn.functional.normalize(centroids, dim=-1)
    best_sim = torch.zeros(unit.shape[0], device=dev)
    best = torch.zeros(unit.shape[0], dtype=torch.int64, device=dev)
    for i in range(0, unit.shape[0], 262144):  # chunks bound the [n, K] similarity matrix
        s = unit[i:i + 262144] @ centroids.T
        best_sim[i:i + 262144], best[i:i + 262144] = s.max(dim=1)
    assigned = torch.where(best_sim >= cfg.min_similarity, best + 1, torch.zeros_like(best))
    # Number ids by final size (largest first); clusters that won no Gaussian disappear.
    counts = torch.bincount(assigned, minlength=len(found) + 1)[1:].cpu()
    order = [int(k) for k in torch.argsort(counts, descending=True, stable=True) if counts[k] > 0]
    remap = torch.zeros(len(found) + 1, dtype=torch.int64)
    remap[torch.tensor(order, dtype=torch.int64) + 1] = torch.arange(1, len(order) + 1)
    ids[idx.cpu()] = remap[assigned.cpu()]
    out = InstanceClusters(ids, centroids[order].cpu(), sample.shape[0])
    clock.stop("assign")
    return out


def warm_up(config: ClusteringConfig | None = None, device: str | torch.device = "cpu") -> None:
    """Pay the one-off costs of the first clustering (imports, first kernel calls) now: a small clustering of
    seeded random features with ``config``'s algorithm (~0.1-0.3 s, plus 1-2 s to import hdbscan)."""
    cfg = config or ClusteringConfig()
    clusterer = create_clusterer(cfg)
    if hasattr(clusterer, "warm_up"):
        clusterer.warm_up()
    g = torch.Generator().manual_seed(0)
    n = 3000  # large enough for the spanning tree's cell partition (its code paths of a real window)
    codes = torch.randn(6, 32, generator=g)
    x = (codes[torch.arange(n) % 6] + 0.3 * torch.randn(n, 32, generator=g)).to(device)
    small = ClusteringConfig(algorithm=cfg.algorithm, max_samples=n, hdbscan=HdbscanSettings(
        min_cluster_size=100, min_samples=cfg.hdbscan.min_samples, backend=cfg.hdbscan.backend))
    cluster_instances(x, torch.ones(n, device=device), small)
