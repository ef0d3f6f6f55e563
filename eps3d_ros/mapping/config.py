"""Configuration of the object map (one ROS parameter ``map.<field>`` per field, same names in YAML and the CLI).

Units: metres, counts, fractions. Every field is a plain bool/int/float so that it maps onto a ROS
parameter. The rules these numbers drive are written out in :mod:`eps3d_ros.mapping.object_map`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MapConfig:
    # False: the map is not fused across windows; it holds the latest window only (as without metric poses).
    enabled: bool = True

    # ---- memory bounds
    voxel_size: float = 0.02  # m; a thing's points: one weighted mean per voxel of this size (grown over budget)
    max_points_per_object: int = 2000  # points kept per thing; beyond it the thing's voxel size grows until it fits
    stuff_voxel_size: float = 0.05  # m; the same for stuff (floor, wall, table ...), one voxel set per class
    max_stuff_points: int = 20000  # points kept per stuff class
    max_objects: int = 500  # things kept; beyond it the least observed, then longest unseen, then newest are dropped

    # ---- association (a window's detection ↔ a map thing), see mapping/association.py
    association_voxel_size: float = 0.05  # m; grid on which the overlap of two point sets is counted
    min_overlap: float = 0.2  # overlap a match needs: max of voxel overlap, box IoU (same label: + proximity)
    label_mismatch_overlap: float = 0.6  # a detection with another label than the map thing matches only above this
    min_embedding_similarity: float = 0.5  # cosine of the two pooled embeddings a match needs
    embedding_weight: float = 0.5  # match score = overlap + embedding_weight * cosine + label_weight * [same label]
    label_weight: float = 0.5

    # ---- merging of two map things
    merge_overlap: float = 0.5  # two things with the same label whose overlap reaches this become one (older id)

    # ---- forgetting, see mapping/visibility.py
    remove_after_misses: int = 3  # K: windows in a row that see a thing's place without detecting it → removed
    visibility_max_range: float = 3.0  # m; farther points count as not seen (too far to expect a detection)
    visibility_min_range: float = 0.1  # m; nearer points count as not seen (inside the camera's blind zone)
    occlusion_tolerance: float = 0.05  # m; depth more than this in front of a point = occluded (not seen)
    min_visible_fraction: float = 0.3  # fraction of a thing's sampled points seen for its place to count as seen
    # pixels the seen part of a thing must cover (its silhouette, summed over the window's cameras) for its place
    # to count as seen: smaller in the images, the panoptic stage may miss it (panoptic.min_object_points is 30)
    min_visible_pixels: float = 60.0
    visibility_samples: int = 64  # points per thing tested (evenly spread over its points)

    def validate(self) -> "MapConfig":
        if not (isinstance(self.min_visible_pixels, (int, float)) and self.min_visible_pixels >= 0):
            raise ValueError(f"map.min_visible_pixels must be a number >= 0, got {self.min_visible_pixels!r}")
        for name in ("voxel_size", "stuff_voxel_size", "association_voxel_size", "visibility_max_range",
                     "occlusion_tolerance"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"map.{name} must be a positive number of metres, got {v!r}")
        for name in ("max_points_per_object", "max_stuff_points", "max_objects", "remove_after_misses",
                     "visibility_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"map.{name} must be an integer >= 1, got {v!r}")
        for name in ("min_overlap", "label_mismatch_overlap", "merge_overlap", "min_visible_fraction"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 < v <= 1.0):
                raise ValueError(f"map.{name} is a fraction in (0, 1], got {v!r}")
        if not -1.0 <= self.min_embedding_similarity <= 1.0:
            raise ValueError("map.min_embedding_similarity is a cosine in [-1, 1], "
                             f"got {self.min_embedding_similarity!r}")
        if self.embedding_weight < 0 or self.label_weight < 0:
            raise ValueError("map.embedding_weight and map.label_weight must be >= 0")
        if not 0 <= self.visibility_min_range < self.visibility_max_range:
            raise ValueError(f"map.visibility_min_range ({self.visibility_min_range}) must be >= 0 and below "
                             f"visibility_max_range ({self.visibility_max_range})")
        if self.label_mismatch_overlap < self.min_overlap:
            raise ValueError(f"map.label_mismatch_overlap ({self.label_mismatch_overlap}) must be >= min_overlap "
                             f"({self.min_overlap})")
        if not isinstance(self.enabled, bool):
            raise ValueError(f"map.enabled must be true or false, got {self.enabled!r}")
        return self
