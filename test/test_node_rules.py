"""The rules the node follows, tested without rclpy (they live in the core; ros/ only wires them): depth
liveness, camera intrinsics at the input, Sim(3) moves of query answers, the query's refusals, the session's
input health and counters, unknown setting names."""

from __future__ import annotations

import numpy as np
import pytest

from eps3d_ros.data.synthetic import generate_sequence
from eps3d_ros.eval.oracle import OracleReconstructor
from eps3d_ros.frames.depth_liveness import TRIPLE_DELIVERS, USE, WAITING_FOR_DEPTH, DepthLiveness
from eps3d_ros.frames.frame import Frame, check_intrinsics
from eps3d_ros.geometry.similarity import Sim3
from eps3d_ros.mapping.map_object import moved_object
from eps3d_ros.pipeline.map_query import MAX_QUERY_CHARS, answer_query, printable
from eps3d_ros.pipeline.session import Session
from eps3d_ros.settings.dotted import nearest_name, set_dotted, unknown_names
from eps3d_ros.settings.tree import Eps3dConfig, config_leaves


# ------------------------------------------------------------------------------------------ depth liveness
def test_depth_auto_waits_at_the_start_then_follows_the_depth_stream() -> None:
    d = DepthLiveness("auto", timeout=2.0)
    d.saw("rgb", 10.0)
    assert d.pair(10.0) == WAITING_FOR_DEPTH  # is there depth at all? not known for 2 s of stamps
    assert d.pair(11.9) == WAITING_FOR_DEPTH
    assert d.pair(12.0) == USE  # none came: colour alone
    d.saw("depth", 12.5)
    assert d.pair(12.5) == TRIPLE_DELIVERS and d.live(14.4)  # depth is live: the triple has this frame
    assert d.pair(14.6) == USE and not d.live(14.6)  # depth stopped 2 s of stamps ago: degrade, never stall
    d.saw("depth", 20.0)
    assert d.pair(20.0) == TRIPLE_DELIVERS


def test_depth_true_and_false_never_hold_pairs_back() -> None:
    for use in ("true", "false"):
        d = DepthLiveness(use)
        d.saw("rgb", 0.0)
        assert d.pair(0.0) == USE
    assert DepthLiveness("false").pairs and not DepthLiveness("false").triples
    assert DepthLiveness("true").triples and not DepthLiveness("true").pairs
    assert DepthLiveness("auto").pairs and DepthLiveness("auto").triples
    with pytest.raises(ValueError, match="use_depth"):
        DepthLiveness("maybe")


# ---------------------------------------------------------------------------------------------- intrinsics
def test_intrinsics_are_checked_where_frames_come_in() -> None:
    K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
    assert np.array_equal(check_intrinsics(K.reshape(-1), 96, 128), K)
    bad = K.copy()
    bad[0, 2] = -5.0
    with pytest.raises(ValueError, match=r"camera_info: principal point \(-5, 47.5\) lies outside the 128x96"):
        check_intrinsics(bad, 96, 128, "camera_info")
    with pytest.raises(ValueError, match="non-positive focal"):
        check_intrinsics(np.zeros((3, 3)), 96, 128)
    # a frame made by the intake (a crop) is not held to it
    Frame(stamp=0.0, rgb=np.zeros((4, 4, 3), np.uint8), K=bad, frame_id="cam")


def test_an_image_folder_with_a_principal_point_off_the_image_is_refused(tmp_path) -> None:
    from PIL import Image

    from eps3d_ros.io.image_folder import frames_from_images

    for i in range(2):
        Image.fromarray(np.full((48, 64, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    K = np.array([[50.0, 0, 200.0], [0, 50.0, 24.0], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"intrinsics of 0.png: principal point \(200, 24\)"):
        frames_from_images(tmp_path, box=(28, 28), K=K)


# ----------------------------------------------------------------------------------------- Sim(3) moves
def test_sim3_from_a_matrix_and_back() -> None:
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.linalg.det(q))
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = 2.5 * R, [1.0, -2.0, 0.5]
    s = Sim3.from_matrix(m)
    assert s.scale == pytest.approx(2.5) and np.allclose(s.R, R) and np.allclose(s.matrix, m)
    assert Sim3.from_matrix(np.eye(4)).is_identity
    shear = m.copy()
    shear[0, 1] += 0.3
    with pytest.raises(ValueError, match="shear"):
        Sim3.from_matrix(shear)
    mirror = np.diag([1.0, 1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="reflection"):
        Sim3.from_matrix(mirror)


# --------------------------------------------------------------------------------- a session on the oracle
def _config() -> Eps3dConfig:
    cfg = OracleReconstructor.default_config()
    p = cfg.pipeline
    p.image_height = p.image_width = 112
    p.window_size = p.every_n_frames = 4
    p.keyframe_min_interval = p.keyframe_min_translation = p.keyframe_min_rotation = 0.0
    return cfg


@pytest.fixture(scope="module")
def mapped():
    """A session whose map holds one window of a synthetic walk (oracle reconstructor: ground truth)."""
    seq = generate_sequence(3, num_frames=8, height=112, width=112)
    s = Session(_config(), OracleReconstructor(seq, _config(), pixel_stride=2))
    s.watch_inputs({"camera": {"rgb": "/rgb/image", "info": "/rgb/camera_info", "depth": "/depth/image"}})
    for f in list(seq.frames("camera_optical"))[:4]:
        assert s.offer(f)
    assert s.wait_idle(120) and s.map.objects
    yield s
    s.close()


def test_query_answers_in_the_map_frame_and_in_another(mapped) -> None:
    a = answer_query(mapped, "chair", max_results=3)
    assert a.success and a.frame_id == "map" and a.scale_known and 0 < len(a.matches) <= 3
    assert "object(s) for 'chair'" in a.message
    top = a.matches[0].object
    # the target frame "robot" sits at x = 2 m in the map, turned 90 degrees about z: map points p land at
    # T^-1 p in the robot frame; frame_lookup gives target <- source
    robot = np.eye(4)
    robot[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    robot[:3, 3] = [2.0, 0.0, 0.0]
    lookups = []

    def lookup(target, source, stamp):
        lookups.append((target, source, stamp))
        return np.linalg.inv(robot) if (target, source) == ("robot", "map") else None

    b = answer_query(mapped, "chair", max_results=3, target_frame="/robot", frame_lookup=lookup)
    assert b.success and b.frame_id == "robot" and lookups == [("robot", "map", mapped.map.stamp)]
    moved = b.matches[0].object
    inv = np.linalg.inv(robot)
    assert moved.id == top.id
    np.testing.assert_allclose(moved.centroid, inv[:3, :3] @ top.centroid + inv[:3, 3], atol=1e-9)
    np.testing.assert_allclose(moved.points, top.points @ inv[:3, :3].T + inv[:3, 3], atol=1e-5)
    np.testing.assert_allclose(moved.obb.extent, top.obb.extent)
    assert np.all(moved.aabb_min <= moved.centroid) and np.all(moved.centroid <= moved.aabb_max)
    assert mapped.map.objects[[o.id for o in mapped.map.objects].index(top.id)] is not moved  # the map unchanged


def test_query_refusals_name_the_problem(mapped) -> None:
    assert "empty query text" in answer_query(mapped, "   ").message
    assert "too long" in answer_query(mapped, "x" * (MAX_QUERY_CHARS + 1)).message
    assert "min_score must be in [0, 1]" in answer_query(mapped, "mug", min_score=2.0).message
    r = answer_query(mapped, "mug", target_frame="nowhere\x1b", frame_lookup=lambda *a: None)
    assert not r.success and "no transform from 'map' to 'nowhere\\x1b'" in r.message
    skew = np.eye(4)
    skew[0, 1] = 0.5
    r = answer_query(mapped, "mug", target_frame="odd", frame_lookup=lambda *a: skew)
    assert not r.success and "unusable" in r.message
    assert printable("a\x07b" * 100, limit=12) == "a\\x07ba\\x07b..."


def test_an_empty_map_answers_no_scene_yet() -> None:
    seq = generate_sequence(3, num_frames=4, height=112, width=112)
    s = Session(_config(), OracleReconstructor(seq, _config(), pixel_stride=2))
    try:
        r = answer_query(s, "mug")
        assert not r.success and "no scene yet" in r.message
    finally:
        s.close()


def test_moving_an_object_by_the_identity_returns_it() -> None:
    class Obj:  # only what moved_object reads before it decides nothing moves
        pass

    o = Obj()
    assert moved_object(o, Sim3.identity()) is o


def test_the_session_keeps_the_input_health_and_counters(mapped) -> None:
    stats = mapped.health.stats()
    assert stats["input_used"] == 4 and stats["input_without_pose"] == {}
    before = mapped.stats()["bad_input"]
    mapped.refuse_input("unsupported encoding 'yuv422'")
    s = mapped.stats()
    assert s["bad_input"] == before + 1 and s["last_error"] == "unsupported encoding 'yuv422'"
    assert mapped.health.stats()["input_refused"]["bad_input"] >= 1
    refused = sum(mapped.health.stats()["input_refused"].values())
    old = Frame(stamp=0.0, rgb=np.zeros((112, 112, 3), np.uint8), K=np.diag([50.0, 50.0, 1.0]), frame_id="cam")
    assert not mapped.offer(old)  # not newer than the frames buffered
    assert sum(mapped.health.stats()["input_refused"].values()) == refused + 1
    assert mapped.last_offer.reason in mapped.health.stats()["input_refused"]
    assert mapped.health.stats()["input_without_pose"] == {"cam": 1}
    mapped.record_publish(0.25)
    assert mapped.stats()["publish_s"] == 0.25


# --------------------------------------------------------------------------------------- setting names
def test_unknown_setting_names_get_the_nearest_known_one() -> None:
    known = config_leaves(Eps3dConfig())
    assert nearest_name("model.weigths", known) == "model.weights"
    assert nearest_name("window_size", known) == "pipeline.window_size"  # named without its section
    assert nearest_name("completely.different", known) is None
    assert unknown_names(["model.weights", "pipline.window_size"], known) == {
        "pipline.window_size": "pipeline.window_size"}
    with pytest.raises(ValueError, match=r"unknown setting 'pipeline.windowsize' \(did you mean "
                                         r"'pipeline.window_size'\?\)"):
        set_dotted(Eps3dConfig(), {"pipeline.windowsize": 3})
    with pytest.raises(ValueError, match="pipeline.window_size must be int"):
        set_dotted(Eps3dConfig(), {"pipeline.window_size": "3"})
    cfg = set_dotted(Eps3dConfig(), {"pipeline.max_frame_age": 3, "pipeline.use_depth": True,
                                     "panoptic.vocabulary": (" mug ", "bowl")})
    assert cfg.pipeline.max_frame_age == 3.0 and isinstance(cfg.pipeline.max_frame_age, float)
    assert cfg.pipeline.use_depth == "true" and cfg.panoptic.vocabulary == ["mug", "bowl"]
