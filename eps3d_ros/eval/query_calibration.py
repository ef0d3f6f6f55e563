"""Does "no object matches" mean what it says? The calibrated relevance (:mod:`eps3d_ros.panoptic.relevance`)
judged on held-out synthetic tabletop scenes.

Per scene (seeds ``seed_start ..``; the demo model was trained on 0-19 999 and its settings chosen on 90 000+):

* **present**: every class with at least ``min_pixels`` visible pixels (things and stuff) is queried by its
  name; the answer is *right* when it is not "no match" and its best object has that label and lies within
  ``radius`` m of the visible surface of a true object of that class (for stuff: the label);
* **absent**: the :data:`ABSENT_PHRASES` (15 everyday things the synthetic world never holds, and 5 nonsense
  strings) must be answered "no match".

Scenes: ``ideal`` builds them from the ground truth through the real panoptic stage (the oracle's features:
each Gaussian's semantic feature is exactly its class's text embedding, see :mod:`eps3d_ros.eval.oracle`), so
the calibration is measured apart from any model, deterministically; ``model`` runs a model folder on the
views and places its Gaussians at the true surface points (the node's ``use_measured_depth``), so only the
model's semantics and instances are judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["ABSENT_PHRASES", "QueryOutcome", "judge_scene", "ideal_scene", "model_scene", "summarize",
           "evaluate_query_calibration"]

ABSENT_PHRASES = (
    "a toaster", "a refrigerator", "a laptop", "a television", "a bicycle", "a car", "a cat", "a dog", "a banana",
    "a pair of shoes", "a telephone", "a pillow", "a guitar", "an umbrella", "a toothbrush",
    "a flying saucer", "xqzv blorp", "the colour of silence", "zzzz", "asdf jkl",
)


@dataclass(frozen=True)
class QueryOutcome:
    seed: int
    query: str
    present: bool  # the class is in view (else: an absent phrase)
    matched: bool  # at least one object reached min_relevance
    right: bool  # present: the best match is an object of that class where one is; absent: "no match"
    relevance: float  # the best object's relevance (over all objects)
    label: str  # label of the best match ("" when none)


def truth_of(synthetic: Any, min_pixels: int = 30) -> dict[str, list[np.ndarray]]:
    """Per visible class name: centroids of its visible things, or ``[]`` for a visible stuff class."""
    out = {k: list(v) for k, v in synthetic.visible_centroids(min_pixels).items()}
    for c in synthetic.stuff:
        if int((synthetic.semantic == c).sum()) >= min_pixels:
            out.setdefault(synthetic.class_names[c], [])
    return out


def judge_scene(scene: Any, seed: int, truth: dict[str, list[np.ndarray]], absent: Sequence[str] = ABSENT_PHRASES,
                min_relevance: float = 0.5, radius: float = 0.25) -> list[QueryOutcome]:
    """The outcome of every present-class and absent-phrase query on ``scene`` (a panoptic Scene in the
    ground truth's frame)."""
    rows = []
    for name in [*sorted(truth), *absent]:
        present = name in truth
        ranked = scene.query(name, max_results=max(1, len(scene.objects)), min_relevance=0.0)
        best = max((m.relevance for m in ranked), default=0.0)
        kept = [m for m in ranked if m.relevance >= min_relevance]
        top = kept[0] if kept else None
        if present:
            right = top is not None and top.object.label == name and (
                not truth[name] or min(float(np.linalg.norm(np.asarray(top.object.centroid) - c))
                                       for c in truth[name]) <= radius)
        else:
            right = top is None
        rows.append(QueryOutcome(seed, name, present, top is not None, bool(right), float(best),
                                 top.object.label if top is not None else ""))
    return rows


def _frames_adapter(synthetic: Any) -> Any:
    """A synthetic scene seen as the oracle's sequence: frame ``i`` at stamp ``0.5 i`` (:func:`synthetic_frames`)."""

    class _Views:
        def __getattr__(self, name: str) -> Any:
            return getattr(synthetic, name)

        def frame_index(self, stamp: float) -> int:
            return int(round(stamp / 0.5))

    return _Views()


def ideal_scene(synthetic: Any, text_encoder: Any, config: Any) -> Any:
    """The panoptic scene of ``synthetic``'s ground truth with ideal features (``config``: an Eps3dConfig whose
    ``panoptic`` is used, e.g. the oracle's :meth:`~eps3d_ros.eval.oracle.OracleReconstructor.default_config`)."""
    from ..frames.frame import synthetic_frames
    from .oracle import OracleReconstructor

    oracle = OracleReconstructor(_frames_adapter(synthetic), config, text_encoder, pixel_stride=1)
    return oracle.run(synthetic_frames(synthetic)).scene


def model_scene(model: Any, text_encoder: Any, synthetic: Any, panoptic: Any) -> Any:
    """``model``'s panoptic scene of ``synthetic``'s views, its pixel-aligned Gaussians at the true surface points."""
    import dataclasses

    import torch

    from ..geometry.similarity import AlignmentError, umeyama_sim3
    from ..panoptic import SemanticSpace, build_scene

    images = torch.from_numpy(synthetic.rgb).permute(0, 3, 1, 2).float().div(255.0)[None]
    with torch.inference_mode():
        pred = model(images.to(next(model.parameters()).device)).to("cpu")
    g = pred.gaussians
    truth = np.stack([synthetic.world_points(v) for v in range(synthetic.num_views)]).reshape(-1, 3)
    means = g.means[0].double().numpy()
    ok = np.isfinite(truth).all(-1)
    try:  # the Gaussians of pixels that hit nothing follow the fit of the others
        means = umeyama_sim3(means[ok], truth[ok]).apply(means)
    except AlignmentError:
        pass
    means[ok] = truth[ok]
    g = dataclasses.replace(g, means=torch.from_numpy(means).to(g.means)[None])
    return build_scene(g, SemanticSpace.from_model(model), text_encoder, panoptic)


def summarize(outcomes: Iterable[QueryOutcome], thresholds: Sequence[float] = ()) -> dict[str, Any]:
    """Rates of the outcomes, and for each of ``thresholds`` the rates that threshold would give."""
    rows = list(outcomes)
    present = [r for r in rows if r.present]
    absent = [r for r in rows if not r.present]
    out: dict[str, Any] = {
        "present_queries": len(present), "present_right": sum(r.right for r in present),
        "present_right_rate": _rate(sum(r.right for r in present), len(present)),
        "present_no_match": sum(not r.matched for r in present),
        "absent_queries": len(absent), "absent_no_match": sum(r.right for r in absent),
        "absent_no_match_rate": _rate(sum(r.right for r in absent), len(absent)),
        "absent_matched": sorted({r.query for r in absent if r.matched}),
    }
    if thresholds:
        out["by_threshold"] = {f"{t:g}": {
            "present_matched_rate": _rate(sum(r.relevance >= t for r in present), len(present)),
            "absent_no_match_rate": _rate(sum(r.relevance < t for r in absent), len(absent))} for t in thresholds}
    return out


def _rate(k: int, n: int) -> float:
    return round(k / n, 4) if n else float("nan")


def evaluate_query_calibration(kind: str = "ideal", model_dir: str | None = None, seed_start: int = 100_000,
                               num_scenes: int = 20, num_views: int = 4, size: int = 112,
                               min_relevance: float = 0.5, radius: float = 0.25,
                               thresholds: Sequence[float] = ()) -> dict[str, Any]:
    """Outcomes and rates on ``num_scenes`` scenes (see the module docstring). ``kind``: ``ideal`` (the model
    folder's text encoder, default the demo one's) or ``model`` (the model folder's network and text encoder)."""
    from ..data.synthetic import generate_scene
    from .model_eval import EvalConfig, load_model_dir, panoptic_config
    from .oracle import DEMO_TEXT_ENCODER_DIR, OracleReconstructor

    if kind not in ("ideal", "model"):
        raise ValueError(f"kind must be 'ideal' or 'model', got {kind!r}")
    folder = model_dir or str(DEMO_TEXT_ENCODER_DIR)
    model, text = load_model_dir(folder, device="cpu")
    rows: list[QueryOutcome] = []
    for seed in range(seed_start, seed_start + num_scenes):
        synthetic = generate_scene(seed, num_views, size, size)
        names, stuff = synthetic.class_names, synthetic.stuff
        if kind == "ideal":
            cfg = OracleReconstructor.default_config(vocabulary=list(names[1:]), stuff=[names[i] for i in stuff])
            scene = ideal_scene(synthetic, text, cfg)
        else:
            scene = model_scene(model, text, synthetic, panoptic_config(names, stuff, EvalConfig(
                settings=_model_settings(folder))))
        rows += judge_scene(scene, seed, truth_of(synthetic), min_relevance=min_relevance, radius=radius)
    return {"kind": kind, "model": folder, "seed_start": seed_start, "scenes": num_scenes, "views": num_views,
            "size": size, "min_relevance": min_relevance, "radius_m": radius,
            **summarize(rows, thresholds), "outcomes": [asdict(r) for r in rows]}


def _model_settings(folder: str) -> dict[str, Any]:
    from ..model.bundle import ModelBundle
    from .model_eval import RECOMMENDED_SETTINGS

    settings = dict(ModelBundle.load(folder).settings or RECOMMENDED_SETTINGS)
    return {k: v for k, v in settings.items() if k.startswith("panoptic.")}
