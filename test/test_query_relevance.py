"""A query may find nothing: the calibrated relevance, "no object matches" in every answer (scene, map, session,
``eps3d query``), and how well it tells present classes from absent phrases on held-out synthetic scenes."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO
from helpers.synthetic import oracle_session
from eps3d_ros.cli import main
from eps3d_ros.eval.query_calibration import ABSENT_PHRASES, evaluate_query_calibration
from eps3d_ros.panoptic.relevance import (CANONICAL_NEGATIVES, named_classes, negative_texts, no_match_message,
                                          relevance)

DEMO = REPO / "models" / "demo_tiny"
# everyday things a tabletop scene of the synthetic world never holds
EVERYDAY_ABSENT = ABSENT_PHRASES[:15]


def call(argv: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------------------------- the formula
def test_named_classes_are_whole_words_singular_or_plural() -> None:
    vocab = ["mug", "table", "chair", "potted plant"]
    assert named_classes("red mug", vocab) == [0]
    assert named_classes("Mugs on the TABLE", vocab) == [0, 1]
    assert named_classes("armchair", vocab) == [] and named_classes("something to sit on", vocab) == []
    assert named_classes("a potted  plant", vocab) == [3] and named_classes("plant", vocab) == []
    # a query competes with the canonical phrases and every class it does not name
    assert negative_texts("red mug", vocab) == [*CANONICAL_NEGATIVES, "table", "chair", "potted plant"]
    assert negative_texts("an object", vocab)[:3] == ["things", "stuff", "texture"]
    assert negative_texts(None, vocab) == [*CANONICAL_NEGATIVES, *vocab]


def test_relevance_is_the_sigmoid_of_the_margin_over_the_best_alternative() -> None:
    q = np.array([1.0, 0.0, 0.0])
    neg = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    e = np.array([[0.8, 0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    r = relevance(e, q, neg, logit_scale=10.0)
    expected = 1 / (1 + np.exp(-10.0 * np.array([0.8 - 0.6, 0.6 - 0.8, 0.0 - 1.0])))
    np.testing.assert_allclose(r, expected)
    assert r[0] > 0.5 > r[1] > r[2]
    # LERF's pairwise form: the minimum over negatives of exp(s cq) / (exp(s cq) + exp(s cn))
    pair = np.min([np.exp(10 * e @ q) / (np.exp(10 * e @ q) + np.exp(10 * e @ n)) for n in neg], axis=0)
    np.testing.assert_allclose(r, pair)
    # a negative that is the query itself is left out; no negative left: nothing to compare with
    np.testing.assert_allclose(relevance(e, q, np.array([q, neg[0]]), 10.0), relevance(e, q, neg[:1], 10.0))
    assert relevance(e, q, np.zeros((0, 3)), 10.0).tolist() == [1.0, 1.0, 1.0]


def test_no_match_message_names_the_closest_object() -> None:
    class O:
        id, label = 7, "mug"

    class M:
        object, relevance = O(), 0.31

    assert no_match_message("a toaster", 0.5) == "no object matches 'a toaster'"
    assert no_match_message("a toaster", 0.5, M()).startswith("no object matches 'a toaster' (closest: #7 'mug', "
                                                               "relevance 0.31 < 0.5")


# ------------------------------------------------------------------------- held-out scenes, ideal features
@pytest.mark.slow
def test_ideal_features_find_present_classes_and_refuse_absent_phrases() -> None:
    """Held-out synthetic scenes (seeds 100 000+), the ground truth through the real panoptic stage with ideal
    features in the demo model's text space: deterministic."""
    r = evaluate_query_calibration("ideal", seed_start=100_000, num_scenes=4, min_relevance=0.5, thresholds=(0.0,))
    assert r["present_queries"] >= 25 and r["absent_queries"] == 4 * len(ABSENT_PHRASES) == 80
    assert r["present_right_rate"] >= 0.95, r
    assert r["absent_no_match_rate"] >= 0.90, r
    # what the min-max score alone gives (every scene has a best object): every absent phrase "matches"
    assert r["by_threshold"]["0"]["absent_no_match_rate"] == 0.0


# ------------------------------------------------------------------------------- the demo model, its scene
@pytest.fixture(scope="module")
def demo_scene(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    code, text, err = call(["demo", "--out", out, "--device", "cpu", "--render-scale", "0.5", "--query", "a toaster"])
    assert code == 0, err
    assert "no object matches 'a toaster'" in text  # the demo prints the answer as it is
    return out / "scene.eps3d"


@pytest.mark.slow
def test_demo_scene_answers_no_match_for_absent_things_and_matches_the_classes_in_view(demo_scene: Path) -> None:
    """The demo model on its own scene (seed 100 000: chairs, a book, bottles, a bowl, a lamp on a table): the
    classes it segments match, everyday things that are not there answer "no match" with exit code 1. Its text
    tower has random weights, so its relevance threshold (0.65, its bundle.json) was chosen on seeds 90 000+."""
    for name in ("chair", "table", "floor", "wall"):
        code, text, _ = call(["query", demo_scene, name, "--json"])
        answer = json.loads(text)
        assert code == 0 and not answer["no_match"], (name, answer["closest"])
        assert answer["matches"][0]["label"] == name and answer["min_relevance"] == 0.65
        assert all(m["relevance"] >= 0.65 for m in answer["matches"])
    for phrase in EVERYDAY_ABSENT:
        code, text, _ = call(["query", demo_scene, phrase])
        assert code == 1 and text.startswith(f"no object matches '{phrase}' (closest: #"), (phrase, text)
    code, text, _ = call(["query", demo_scene, "a toaster", "--json"])
    answer = json.loads(text)
    assert code == 1 and answer["no_match"] and answer["matches"] == [] and answer["closest"]["relevance"] < 0.65
    # 0 lists the ranking anyway (the min-max score: the best object always scores 1)
    code, text, _ = call(["query", demo_scene, "a toaster", "--min-relevance", "0", "--json"])
    answer = json.loads(text)
    assert code == 0 and answer["matches"][0]["score"] == 1.0 and not answer["no_match"]
    code, _, err = call(["query", demo_scene, "chair", "--min-relevance", "1.5"])
    assert code == 2 and "--min-relevance must be in [0, 1]" in err


def test_session_answers_no_match_and_the_threshold_changes_at_runtime() -> None:
    """The node's rules without ROS: answer_query on a session's map (the oracle: ground truth, ideal features)."""
    import dataclasses

    from eps3d_ros.data.synthetic import generate_sequence
    from eps3d_ros.eval.oracle import OracleReconstructor
    from eps3d_ros.pipeline.map_query import answer_query

    seq = generate_sequence(seed=5, num_frames=4, height=84, width=84)
    cfg = OracleReconstructor.default_config(vocabulary=list(seq.class_names[1:]),
                                             stuff=[seq.class_names[i] for i in seq.stuff])
    session = oracle_session(seq, cfg)
    try:
        a = answer_query(session, "a flying saucer", max_results=3)
        assert a.success and a.no_match and a.matches == () and a.min_relevance == 0.5
        assert a.message.startswith("no object matches 'a flying saucer' (closest: #")
        assert a.closest is not None and a.closest.relevance < 0.5
        present = session.map.objects[0].label
        b = answer_query(session, present, max_results=0)
        assert b.success and not b.no_match and all(m.relevance >= 0.5 for m in b.matches)
        assert {m.object.label for m in b.matches} == {present}
        assert answer_query(session, "a flying saucer", min_relevance=0.0).matches  # the ranking, on request
        new = dataclasses.replace(session.config, panoptic=dataclasses.replace(session.config.panoptic,
                                                                               min_relevance=0.0))
        assert "panoptic.min_relevance" in session.update(new).applied
        assert not answer_query(session, "a flying saucer").no_match
        assert not answer_query(session, "x", min_relevance=2.0).success
    finally:
        session.close()


def test_old_scene_files_and_unset_thresholds_mean_half() -> None:
    from eps3d_ros.panoptic.config import PanopticConfig

    assert PanopticConfig().min_relevance == -1.0 and PanopticConfig().relevance_threshold == 0.5
    assert PanopticConfig(min_relevance=0.65).relevance_threshold == 0.65
    with pytest.raises(ValueError, match="panoptic.min_relevance"):
        PanopticConfig(min_relevance=1.5).validate()
    assert math.isclose(PanopticConfig(min_relevance=0.0).validate().relevance_threshold, 0.0)
