"""Configuration of panoptic scene construction (vocabulary, things/stuff, clustering, pooling)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .clustering import ClusteringConfig
from .relevance import DEFAULT_MIN_RELEVANCE

AUTO_MIN_RELEVANCE = -1.0  # min_relevance: the model folder's recommendation, else DEFAULT_MIN_RELEVANCE

# Bare class names, as the reference prompts CLIP. Stuff classes are regions, not split into instances.
DEFAULT_VOCABULARY = [
    "floor", "wall", "table", "chair", "mug", "bowl", "box", "bottle", "ball", "book", "lamp", "can", "plant",
]
DEFAULT_STUFF = ["floor", "wall", "ceiling", "table"]


@dataclass
class PanopticConfig:
    vocabulary: list[str] = field(default_factory=lambda: list(DEFAULT_VOCABULARY))
    stuff: list[str] = field(default_factory=lambda: list(DEFAULT_STUFF))
    # A Gaussian whose best class probability is below this is "unknown" (label -1).
    unknown_threshold: float = 0.0
    # A query matches an object when its calibrated relevance reaches this (panoptic/relevance.py: 0.5 = the text
    # fits the object at least as well as LERF's generic phrases and every class name it does not name); a query
    # no object reaches is answered "no object matches". 0 ranks every object; -1 = the model folder's
    # recommendation (its bundle.json), else 0.5 (see relevance_threshold).
    min_relevance: float = AUTO_MIN_RELEVANCE
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    min_object_points: int = 30  # smaller instances are dropped (their Gaussians get instance 0)
    outlier_removal: bool = True  # PE3R-style: drop points far from their same-instance neighbours
    outlier_neighbors: int = 16
    outlier_std_ratio: float = 3.0
    # An object's centroid and boxes come from its densest cluster: the largest set of its points linked to
    # k-NN neighbours (k = outlier_neighbors) no further than this x its typical point spacing. 0 = all points.
    core_link_factor: float = 2.0
    # Over-split instances (one chair in several HDBSCAN clusters) become one object when they have the same
    # class, instance-feature centroids with a cosine >= merge_min_similarity, and touch in 3D: at least
    # merge_min_contact of the smaller one's core points lie within merge_contact_factor x point spacing of the other.
    merge_instances: bool = True
    merge_min_similarity: float = 0.6
    merge_contact_factor: float = 1.0
    merge_min_contact: float = 0.02
    # Object embedding: "slerp" (PE3R area-weighted spherical interpolation) or "mean" (normalised mean).
    pooling: str = "slerp"
    # Weight of a Gaussian in pooling and label votes: "area" (opacity x footprint), "opacity", "uniform".
    pooling_weight: str = "area"
    pooling_chunk: int = 65536  # Gaussians expanded to the text space at once (memory bound)

    @property
    def relevance_threshold(self) -> float:
        """The ``min_relevance`` in force: the setting, or 0.5 where it was left to a model that recommends none."""
        return DEFAULT_MIN_RELEVANCE if self.min_relevance < 0 else float(self.min_relevance)

    def validate(self) -> "PanopticConfig":
        vocab = [v.strip() for v in self.vocabulary]
        if not vocab or any(not v for v in vocab):
            raise ValueError("vocabulary must be a non-empty list of non-empty class names")
        if len(set(vocab)) != len(vocab):
            dupes = sorted({v for v in vocab if vocab.count(v) > 1})
            raise ValueError(f"vocabulary has duplicate class names: {dupes}")
        if self.pooling not in ("slerp", "mean"):
            raise ValueError(f"unknown pooling {self.pooling!r}: use 'slerp' or 'mean'")
        if self.pooling_weight not in ("area", "opacity", "uniform"):
            raise ValueError(f"unknown pooling_weight {self.pooling_weight!r}: use 'area', 'opacity' or 'uniform'")
        if not 0.0 <= self.unknown_threshold <= 1.0:
            raise ValueError("unknown_threshold is a probability in [0, 1]")
        if not (0.0 <= self.min_relevance <= 1.0 or self.min_relevance == AUTO_MIN_RELEVANCE):
            raise ValueError(f"panoptic.min_relevance is a relevance in [0, 1] (or -1: the model's recommendation, "
                             f"else {DEFAULT_MIN_RELEVANCE}), got {self.min_relevance}")
        if self.min_object_points < 1 or self.outlier_neighbors < 1 or self.pooling_chunk < 1:
            raise ValueError("min_object_points, outlier_neighbors and pooling_chunk must be positive")
        if not (self.core_link_factor >= 0 and self.merge_contact_factor >= 0):
            raise ValueError("core_link_factor and merge_contact_factor must be >= 0")
        if not -1.0 <= self.merge_min_similarity <= 1.0:
            raise ValueError("merge_min_similarity is a cosine in [-1, 1]")
        if not 0.0 <= self.merge_min_contact <= 1.0:
            raise ValueError("merge_min_contact is a fraction in [0, 1]")
        self.clustering.validate()
        return self
