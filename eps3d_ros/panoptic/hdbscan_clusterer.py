"""HDBSCAN, the instance clustering of the EPS3D reference: the ``"hdbscan"`` clusterer and its settings
(``panoptic.clustering.hdbscan.*``). Every HDBSCAN name of the package lives here (and in :mod:`.mst` /
:mod:`.linkage`, its torch backend).

Two backends give the same clusters:

* ``"torch"`` (default): the exact minimum spanning tree of the mutual reachability graph computed in torch
  on the features' device (:mod:`.mst`), its single-linkage hierarchy (:mod:`.linkage`, the rows of
  hdbscan's ``label``), then hdbscan's own condensed tree and excess-of-mass selection
  (``hdbscan.hdbscan_._tree_to_labels``);
* ``"hdbscan"``: ``hdbscan.HDBSCAN`` itself (boruvka k-d tree, CPU), the reference. Its default approximate
  spanning tree may differ from the exact one in a few noise points.

``min_cluster_size`` counts Gaussians of the whole scene: on a subsample it is scaled by the sampling fraction
(so an object of 400 Gaussians is a cluster whatever the sample size), but never below
``min_subsample_cluster`` samples, under which HDBSCAN clusters are mostly noise.

Note: with ``allow_single_cluster`` (the reference's choice) the excess-of-mass selection may return the root
as one cluster when the instance features are poorly separated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from .linkage import single_linkage
from .mst import mutual_reachability_mst
from .timing import StageClock

__all__ = ["BACKENDS", "REFERENCE_MIN_CLUSTER_SIZE", "HdbscanClusterer", "HdbscanSettings", "sample_labels",
           "weighted_centroids"]

REFERENCE_MIN_CLUSTER_SIZE = 400  # the EPS3D reference's HDBSCAN min_cluster_size
BACKENDS = ("torch", "hdbscan")


@dataclass
class HdbscanSettings:
    # In Gaussians of the whole scene (see the module docstring). 0 = auto: the model bundle's recommendation
    # where one is loaded, else the reference value 400.
    min_cluster_size: int = 0
    min_subsample_cluster: int = 10
    min_samples: int = 1  # reference value
    allow_single_cluster: bool = True  # reference value
    # "torch": exact spanning tree in torch (on the features' device) + hdbscan's condensed tree;
    # "hdbscan": hdbscan.HDBSCAN (the reference, CPU only; ~3-5x slower on 2 CPU cores).
    backend: str = "torch"

    def validate(self) -> "HdbscanSettings":
        if self.backend not in BACKENDS:
            raise ValueError(f"clustering.hdbscan.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.min_cluster_size < 2 and self.min_cluster_size != 0:
            raise ValueError("clustering.hdbscan.min_cluster_size must be >= 2 (or 0: the model's recommendation, "
                             f"else {REFERENCE_MIN_CLUSTER_SIZE})")
        if self.min_samples < 1:
            raise ValueError("clustering.hdbscan.min_samples must be >= 1")
        return self


class HdbscanClusterer:
    """The ``"hdbscan"`` :class:`~eps3d_ros.panoptic.clusterers.Clusterer`."""

    def __init__(self, settings: HdbscanSettings | None = None) -> None:
        self.settings = (settings or HdbscanSettings()).validate()
        self.on_features_device = self.settings.backend == "torch"

    def labels(self, sample: Tensor, population: int, clock: StageClock | None = None) -> np.ndarray:
        s = self.settings
        m = int(sample.shape[0])
        if m < s.min_samples + 1:
            return np.full(m, -1, dtype=np.int64)
        scene_size = s.min_cluster_size or REFERENCE_MIN_CLUSTER_SIZE
        min_size = max(s.min_subsample_cluster, round(scene_size * m / max(int(population), 1)))
        return sample_labels(sample, max(2, min_size), min(s.min_samples, m - 1), s.allow_single_cluster, s.backend,
                             clock)

    def warm_up(self) -> None:
        """Import hdbscan now (1-2 s), not with the first window."""
        _hdbscan_tree()


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


def weighted_centroids(sample: np.ndarray, min_cluster_size: int, min_samples: int,
                       allow_single_cluster: bool = True) -> np.ndarray:
    """The EPS3D release's instance read-out of rendered features: ``hdbscan.HDBSCAN`` on ``sample [M, D]`` (float64)
    and the membership-weighted centroid of each cluster, ``[K, D]`` in label order (K = 0 when all is noise)."""
    import hdbscan

    cl = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                         allow_single_cluster=allow_single_cluster, core_dist_n_jobs=1).fit(sample)
    ids = np.unique(cl.labels_[cl.labels_ >= 0])
    if not len(ids):
        return np.zeros((0, sample.shape[1]), dtype=np.float64)
    return np.stack([cl.weighted_cluster_centroid(int(c)) for c in ids])


def _hdbscan_tree() -> Any:
    """hdbscan's condensed-tree cluster selection (imported on first use: importing hdbscan takes 1-2 s)."""
    from hdbscan.hdbscan_ import _tree_to_labels

    return _tree_to_labels

