"""Which algorithm turns instance features into clusters: a registry of :class:`Clusterer` s, chosen by
``panoptic.clustering.algorithm``. ``"hdbscan"`` (the EPS3D reference's) is built in
(:mod:`.hdbscan_clusterer`, settings ``panoptic.clustering.hdbscan.*``); another is added from anywhere::

    from eps3d_ros.panoptic import register_clusterer
    register_clusterer("kmeans", lambda clustering_config: KMeans(k=8))   # then panoptic.clustering.algorithm: kmeans

The rest of the instance step is the same for every algorithm (:func:`~eps3d_ros.panoptic.clustering.cluster_instances`):
a seeded subsample of the L2-normalised features is labelled by the clusterer, every Gaussian then joins
the nearest cluster centroid.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import Tensor

from .hdbscan_clusterer import HdbscanClusterer
from .timing import StageClock

__all__ = ["Clusterer", "ClustererFactory", "clusterer_names", "create_clusterer", "register_clusterer"]


@runtime_checkable
class Clusterer(Protocol):
    """Labels a sample of unit instance features; :func:`~eps3d_ros.panoptic.clustering.cluster_instances` does
    the rest."""

    # True: ``labels`` gets the sample on the features' device (e.g. CUDA); False: on the CPU
    on_features_device: bool

    def labels(self, sample: Tensor, population: int, clock: StageClock | None = None) -> np.ndarray:
        """Cluster labels ``[M]`` int (-1 = noise) of the rows of ``sample [M, D]`` (unit vectors), a seeded
        subsample of ``population`` features; ``clock.stop(step)`` may time its steps."""
        ...


ClustererFactory = Callable[[Any], Clusterer]  # ClusteringConfig -> Clusterer

_FACTORIES: dict[str, ClustererFactory] = {"hdbscan": lambda config: HdbscanClusterer(config.hdbscan)}
_LOCK = threading.Lock()


def register_clusterer(name: str, factory: ClustererFactory, replace_existing: bool = False) -> None:
    """Make ``factory(clustering_config) -> Clusterer`` available as ``panoptic.clustering.algorithm: name``."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"a clusterer name must be a non-empty string without surrounding spaces, got {name!r}")
    if not callable(factory):
        raise TypeError(f"the factory of clusterer {name!r} must be callable, got {type(factory).__name__}")
    with _LOCK:
        if name in _FACTORIES and not replace_existing and _FACTORIES[name] is not factory:
            raise ValueError(f"clusterer {name!r} is already registered (replace_existing=True replaces it)")
        _FACTORIES[name] = factory


def clusterer_names() -> tuple[str, ...]:
    with _LOCK:
        return tuple(sorted(_FACTORIES))


def check_algorithm(name: str) -> str:
    """``name`` when a clusterer of that name is registered; else a ``ValueError`` naming the known ones."""
    known = clusterer_names()
    if name not in known:
        near = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"unknown clustering algorithm {name!r}{hint}: registered are {', '.join(known)} "
                         "(eps3d_ros.panoptic.register_clusterer adds one)")
    return name


def create_clusterer(config: Any) -> Clusterer:
    """The clusterer ``config.algorithm`` (a :class:`~eps3d_ros.panoptic.ClusteringConfig`) names."""
    check_algorithm(config.algorithm)
    with _LOCK:
        factory = _FACTORIES[config.algorithm]
    clusterer = factory(config)
    if not callable(getattr(clusterer, "labels", None)) or not hasattr(clusterer, "on_features_device"):
        raise TypeError(f"clusterer {config.algorithm!r} built a {type(clusterer).__name__} without labels() and "
                        "on_features_device (see eps3d_ros.panoptic.clusterers.Clusterer)")
    return clusterer
