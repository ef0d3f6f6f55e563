"""Instance ids from instance features: HDBSCAN on a seeded subsample, then nearest centroid.

HDBSCAN is super-linear, so it runs on at most ``max_samples`` L2-normalised features drawn with a
fixed seed (same input → same ids). Every Gaussian then takes the id of the most similar cluster
centroid. Two backends give the same clusters:

* ``"torch"`` (default): the exact minimum spanning tree of the mutual reachability graph computed in
  torch on the features' device (:mod:`.mst`), its single-linkage hierarchy (:mod:`.linkage`, the rows
  of hdbscan's ``label``), then hdbscan's own condensed tree and excess-of-mass selection
  (``hdbscan.hdbscan_._tree_to_labels``);
* ``"hdbscan"``: ``hdbscan.HDBSCAN`` itself (boruvka k-d tree, CPU), the reference. Its default
  approximate spanning tree may differ from the exact one in a few noise points.

Explicit handling:

* Gaussians below ``min_opacity`` (or with non-finite features) are not clustered and get id 0;
* Gaussians whose best centroid cosine is below ``min_similarity`` stay unassigned (id 0), so noise
  that resembles no object does not inflate one;
* no cluster found → every id is 0. Ids are 1..K, ordered by cluster size (largest first).

Note: with ``allow_single_cluster`` (the reference's choice) HDBSCAN's excess-of-mass selection may
return the root as one cluster when the instance features are poorly separated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .linkage import single_linkage
from .mst import mutual_reachability_mst
from .timing import StageClock

log = logging.getLogger(__name__)

REFERENCE_MIN_CLUSTER_SIZE = 400  # the EPS3D reference's HDBSCAN min_cluster_size
BACKENDS = ("torch", "hdbscan")


@dataclass
class ClusteringConfig:
    # Counted in Gaussians of the whole scene: on a subsample it is scaled by the sampling fraction (so an
    # object of 400 Gaussians is a cluster whatever max_samples is), but never below
    # ``min_subsample_cluster`` samples, under which HDBSCAN clusters are mostly noise. 0 = auto: the
    # model bundle's recommendation where one is loaded, else the reference value 400.
    min_cluster_size: int = 0
    min_subsample_cluster: int = 10
    min_samples: int = 1  # reference value
    allow_single_cluster: bool = True  # reference value
    # HDBSCAN input size; the rest is assigned by nearest centroid. HDBSCAN's cost grows fast: on 2 CPU
    # cores 10k samples take ~1-2 s and 50k samples 20-70 s (bench/bench_panoptic.py).
    max_samples: int = 10_000
    min_opacity: float = 0.05  # more transparent Gaussians are left out (id 0)
    min_similarity: float = 0.5  # cosine to the nearest centroid needed to join it
    seed: int = 0
    # "torch": exact spanning tree in torch (on the features' device) + hdbscan's condensed tree;
    # "hdbscan": hdbscan.HDBSCAN (the reference, CPU only; ~3-5x slower on 2 CPU cores).
    backend: str = "torch"

    def validate(self) -> "ClusteringConfig":
        if self.backend not in BACKENDS:
            raise ValueError(f"clustering.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.min_cluster_size < 2 and self.min_cluster_size != 0:
            raise ValueError("clustering.min_cluster_size must be >= 2 (or 0: the model's recommendation, else "
                             f"{REFERENCE_MIN_CLUSTER_SIZE})")
        if self.min_samples < 1:
            raise ValueError("clustering.min_samples must be >= 1")
        if self.max_samples < 2:
            raise ValueError("clustering.max_samples must be >= 2")
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError("clustering.min_similarity must be a cosine in [-1, 1]")
        return self


@dataclass(frozen=True)
class InstanceClusters:
    ids: Tensor  # [N] int64, 0 = none
    centroids: Tensor  # [K, D] unit vectors, row k-1 is id k
    sample_size: int  # how many features HDBSCAN saw

    @property
    def num_instances(self) -> int:
        return int(self.centroids.shape[0])


def cluster_instances(features: Tensor, opacities: Tensor, config: ClusteringConfig | None = None,
                      timings: dict[str, float] | None = None) -> InstanceClusters:
    """features ``[N, D]``, opacities ``[N]`` → :class:`InstanceClusters` (ids and centroids on the CPU).

    With the ``"torch"`` backend the work runs on ``features.device``. ``timings``: seconds of the steps
    (``sample``, ``spanning_tree``, ``condensed_tree`` or ``hdbscan``, ``assign``) are added to it."""
    cfg = (config or ClusteringConfig()).validate()
    clock = StageClock(timings, features.device if cfg.backend == "torch" else None)
    if features.dim() != 2 or opacities.shape != features.shape[:1]:
        raise ValueError(f"features must be [N, D] and opacities [N]; got {tuple(features.shape)}, {tuple(opacities.shape)}")
    n, d = features.shape
    dev = features.device if cfg.backend == "torch" else torch.device("cpu")
    ids = torch.zeros(n, dtype=torch.int64)
    feats = features.detach().to(dev, torch.float32)
    norm = feats.norm(dim=-1)
    # a finite sum of norms: every feature is finite (NaN/inf propagate); else test each one
    ok = (norm > 0) & (torch.isfinite(norm) if not bool(torch.isfinite(norm.sum())) else True)
    valid = (opacities.detach().to(dev) >= cfg.min_opacity) & ok
    idx = torch.nonzero(valid).squeeze(1)
    empty = InstanceClusters(ids, torch.zeros(0, d), 0)
    if idx.numel() < max(2, cfg.min_samples + 1):
        return empty
    unit = torch.nn.functional.normalize(feats[idx], dim=-1)
    rng = np.random.default_rng(cfg.seed)
    take = np.sort(rng.choice(idx.numel(), size=min(cfg.max_samples, idx.numel()), replace=False))
    sample = unit[torch.from_numpy(take).to(dev)]
    scene_size = cfg.min_cluster_size or REFERENCE_MIN_CLUSTER_SIZE
    min_size = max(cfg.min_subsample_cluster, round(scene_size * sample.shape[0] / idx.numel()))
    clock.stop("sample")
    labels = sample_labels(sample, max(2, min_size), min(cfg.min_samples, sample.shape[0] - 1),
                           cfg.allow_single_cluster, cfg.backend, clock)
    found = sorted(set(labels.tolist()) - {-1}, key=lambda k: -(labels == k).sum())
    if not found:
        log.info("HDBSCAN found no instance cluster among %d samples", sample.shape[0])
        return InstanceClusters(ids, torch.zeros(0, d), sample.shape[0])
    lab = torch.from_numpy(labels).to(dev)
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


def sample_labels(sample: Tensor, min_cluster_size: int, min_samples: int, allow_single_cluster: bool,
                  backend: str = "torch", clock: StageClock | None = None) -> np.ndarray:
    """HDBSCAN labels ``[M]`` (-1 = noise) of the rows of ``sample [M, D]``, excess-of-mass selection."""
    clock = clock or StageClock(None)
    if backend == "hdbscan":
        import hdbscan

        labels = hdbscan.HDBSCAN(
            min_cluster_size=min_cluster_size, min_samples=min_samples, allow_single_cluster=allow_single_cluster,
            core_dist_n_jobs=1,
        ).fit_predict(sample.detach().cpu().double().numpy())
        clock.stop("hdbscan")
        return labels
    if backend != "torch":
        raise ValueError(f"clustering backend must be one of {BACKENDS}, got {backend!r}")
    tree_to_labels = _hdbscan_tree()
    min_samples = max(1, min(min_samples, sample.shape[0] - 1))  # as hdbscan.hdbscan() clamps it
    tree = mutual_reachability_mst(sample, min_samples)
    clock.stop("spanning_tree")
    labels = tree_to_labels(None, single_linkage(tree.numpy()), min_cluster_size=min_cluster_size,
                            cluster_selection_method="eom", allow_single_cluster=allow_single_cluster)[0]
    clock.stop("condensed_tree")
    return labels


def _hdbscan_tree() -> Any:
    """hdbscan's condensed-tree cluster selection (imported on first use: importing hdbscan takes 1-2 s,
    see :func:`warm_up`)."""
    from hdbscan.hdbscan_ import _tree_to_labels

    return _tree_to_labels


def warm_up(config: ClusteringConfig | None = None, device: str | torch.device = "cpu") -> None:
    """Pay the one-off costs of the first clustering (imports, first kernel calls) now: a small clustering
    of seeded random features with ``config``'s backend (~0.1-0.3 s, plus 1-2 s to import hdbscan)."""
    cfg = config or ClusteringConfig()
    g = torch.Generator().manual_seed(0)
    n = 3000  # large enough for the spanning tree's cell partition (its code paths of a real window)
    codes = torch.randn(6, 32, generator=g)
    x = (codes[torch.arange(n) % 6] + 0.3 * torch.randn(n, 32, generator=g)).to(device)
    cluster_instances(x, torch.ones(n, device=device), ClusteringConfig(
        min_cluster_size=100, max_samples=n, min_samples=cfg.min_samples, backend=cfg.backend))
