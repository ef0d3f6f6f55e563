"""Configuration of panoptic scene construction (vocabulary, things/stuff, clustering, pooling)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .clustering import ClusteringConfig

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
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    min_object_points: int = 30  # smaller instances are dropped (their Gaussians get instance 0)
    outlier_removal: bool = True  # PE3R-style: drop points far from their same-instance neighbours
    outlier_neighbors: int = 16
    outlier_std_ratio: float = 3.0
    # Object embedding: "slerp" (PE3R area-weighted spherical interpolation) or "mean" (normalised mean).
    pooling: str = "slerp"
    # Weight of a Gaussian in pooling and label votes: "area" (opacity x footprint), "opacity", "uniform".
    pooling_weight: str = "area"
    pooling_chunk: int = 65536  # Gaussians expanded to the text space at once (memory bound)

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
        if self.min_object_points < 1 or self.outlier_neighbors < 1 or self.pooling_chunk < 1:
            raise ValueError("min_object_points, outlier_neighbors and pooling_chunk must be positive")
        self.clustering.validate()
        return self
