"""A new vocabulary for the map without any network: labels from the fused embeddings.

Each object's class distribution over the new vocabulary is ``softmax(logit_scale * cos(embedding,
prototypes))`` (the panoptic stage's rule, applied to the object's pooled embedding); its class
evidence becomes that distribution times its accumulated weight, and its label the argmax (ties keep
the old label). Whether it is a thing follows the new label (``label in stuff`` → stuff). Objects that
end up as stuff of the same class become one (stuff is one object per class): the one that was
already stuff of that class survives, else the oldest; the others are merged into it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .config import MapConfig
from .fusion import merge_objects, refit
from .map_object import MapObject, make_map_object, voxels_of


def class_distribution(embeddings: np.ndarray, prototypes: torch.Tensor, logit_scale: float) -> np.ndarray:
    """``[M, K]`` softmax over the classes of the cosines of unit ``embeddings [M, D]`` with ``prototypes [K, D]``."""
    e = torch.nn.functional.normalize(torch.from_numpy(np.asarray(embeddings, np.float32)), dim=-1)
    p = torch.nn.functional.normalize(prototypes.float(), dim=-1)
    return torch.softmax(float(logit_scale) * (e @ p.T), dim=-1).double().numpy()


def relabel_objects(objects: Mapping[int, MapObject], vocabulary: Sequence[str], stuff: frozenset[str],
                    prototypes: torch.Tensor, logit_scale: float, config: MapConfig
                    ) -> tuple[dict[int, MapObject], dict[int, int], list[int]]:
    """``(objects by id, merged {absorbed: survivor}, changed ids)`` under the new vocabulary."""
    objs = [objects[k] for k in sorted(objects)]
    if not objs:
        return {}, {}, []
    prob = class_distribution(np.stack([o.embedding for o in objs]), prototypes, logit_scale)  # [M, K]
    out: dict[int, MapObject] = {}
    changed = []
    for o, p in zip(objs, prob):
        evidence = {name: float(v) * o.evidence_weight for name, v in zip(vocabulary, p)}
        current = o.label if o.label in evidence else None
        best = max(evidence.values())
        label = current if current is not None and evidence[current] >= best else \
            next(n for n in vocabulary if evidence[n] >= best)
        is_thing = label not in stuff
        new = make_map_object(id=o.id, is_thing=is_thing, voxels=voxels_of(o), voxel_size=o.voxel_size,
                              embedding=o.embedding, class_evidence=evidence, evidence_weight=o.evidence_weight,
                              observations=o.observations, first_seen=o.first_seen, last_seen=o.last_seen,
                              misses=o.misses if is_thing else 0, label=label)
        out[o.id] = refit(new, config) if is_thing != o.is_thing else new
        if (new.label, new.is_thing) != (o.label, o.is_thing):
            changed.append(o.id)
    merged: dict[int, int] = {}
    by_class: dict[str, list[MapObject]] = {}
    for o in out.values():
        if not o.is_thing:
            by_class.setdefault(o.label, []).append(o)
    for label, group in by_class.items():
        if len(group) < 2:
            continue
        # the object that was already this stuff class survives, else the oldest
        was_this_stuff = {o.id: not objects[o.id].is_thing and objects[o.id].label == label for o in group}
        group.sort(key=lambda o: (not was_this_stuff[o.id], o.first_seen, o.id))
        survivor = group[0]
        for other in group[1:]:
            survivor = merge_objects(survivor, other, config)
            merged[other.id] = survivor.id
            del out[other.id]
        out[survivor.id] = survivor
        changed.append(survivor.id)
    return out, merged, sorted(set(changed) - set(merged))

