"""Our ROS interfaces (msg/Object3D, msg/ObjectArray, srv/QueryObjects, srv/SaveMap, srv/LoadMap) as built and installed by
scripts/setup.sh (scripts/build_interfaces.py): fields, serialization, a real service call and a
latched topic, with real rclpy in an isolated context (no mocks)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

try:
    from eps3d_ros.msg import Object3D, ObjectArray
    from eps3d_ros.srv import LoadMap, QueryObjects, SaveMap
except ImportError as exc:  # fail (not skip): the set-up builds them
    raise ImportError(f"{exc}: eps3d_ros's interfaces are not built/installed: run scripts/setup.sh") from exc

ROOT = Path(__file__).resolve().parents[1]

OBJECT3D_FIELDS = {
    "id": "uint32",
    "label": "string",
    "score": "float",
    "is_thing": "boolean",
    "centroid": "geometry_msgs/Point",
    "box_pose": "geometry_msgs/Pose",
    "box_size": "geometry_msgs/Vector3",
    "aabb_min": "geometry_msgs/Point",
    "aabb_max": "geometry_msgs/Point",
    "point_count": "uint32",
    "observations": "uint32",
    "last_seen": "builtin_interfaces/Time",
}
OBJECT_ARRAY_FIELDS = {
    "header": "std_msgs/Header",
    "scale_known": "boolean",
    "objects": "sequence<eps3d_ros/Object3D>",
}
REQUEST_FIELDS = {
    "text": "string",
    "max_results": "uint32",
    "min_score": "float",
    "min_relevance": "float",
    "target_frame": "string",
    "return_clouds": "boolean",
}
RESPONSE_FIELDS = {
    "success": "boolean",
    "message": "string",
    "no_match": "boolean",
    "min_relevance": "float",
    "scene_stamp": "builtin_interfaces/Time",
    "header": "std_msgs/Header",
    "scale_known": "boolean",
    "objects": "sequence<eps3d_ros/Object3D>",
    "scores": "sequence<float>",
    "relevances": "sequence<float>",
    "clouds": "sequence<sensor_msgs/PointCloud2>",
}

# Values exactly representable as float32, so round trips compare equal.
SCENE = [  # (label, score, is_thing, centroid, size)
    ("mug", 0.75, True, (0.5, -0.25, 1.5), (0.125, 0.125, 0.25)),
    ("bowl", 0.5, True, (-0.5, 0.25, 1.25), (0.25, 0.25, 0.125)),
    ("table", 0.875, False, (0.0, 0.5, 2.0), (1.5, 0.75, 0.0625)),
]


def make_object(i: int, label: str, score: float, is_thing: bool, c, size) -> Object3D:
    lo = [c[k] - size[k] / 2 for k in range(3)]
    hi = [c[k] + size[k] / 2 for k in range(3)]
    return Object3D(
        id=i,
        label=label,
        score=score,
        is_thing=is_thing,
        centroid=Point(x=c[0], y=c[1], z=c[2]),
        box_pose=Pose(position=Point(x=c[0], y=c[1], z=c[2]), orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
        box_size=Vector3(x=size[0], y=size[1], z=size[2]),
        aabb_min=Point(x=lo[0], y=lo[1], z=lo[2]),
        aabb_max=Point(x=hi[0], y=hi[1], z=hi[2]),
        point_count=100 * i,
    )


def make_array(stamp_sec: int = 42) -> ObjectArray:
    return ObjectArray(
        header=Header(stamp=Time(sec=stamp_sec, nanosec=500), frame_id="camera_optical_frame"),
        scale_known=False,
        objects=[make_object(i + 1, *row) for i, row in enumerate(SCENE)],
    )


def make_cloud(obj: Object3D, frame_id: str) -> PointCloud2:
    """A one-point xyz float32 cloud at the object's centroid."""
    import numpy as np

    xyz = np.array([[obj.centroid.x, obj.centroid.y, obj.centroid.z]], dtype=np.float32)
    return PointCloud2(
        header=Header(frame_id=frame_id),
        height=1,
        width=len(xyz),
        fields=[PointField(name=n, offset=4 * k, datatype=PointField.FLOAT32, count=1) for k, n in enumerate("xyz")],
        is_bigendian=False,
        point_step=12,
        row_step=12 * len(xyz),
        data=xyz.tobytes(),
        is_dense=True,
    )


@pytest.fixture
def context():
    """An isolated rclpy context (ROS_DOMAIN_ID / LOCALHOST discovery come from scripts/test.sh)."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        rclpy.shutdown(context=ctx)


@pytest.fixture
def executor(context):
    ex = SingleThreadedExecutor(context=context)
    try:
        yield ex
    finally:
        ex.shutdown(timeout_sec=5.0)
        for node in list(ex.get_nodes()):
            ex.remove_node(node)
            node.destroy_node()


def spin_until(executor, predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return predicate()


# --- types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, fields",
    [
        (Object3D, OBJECT3D_FIELDS),
        (ObjectArray, OBJECT_ARRAY_FIELDS),
        (QueryObjects.Request, REQUEST_FIELDS),
        (QueryObjects.Response, RESPONSE_FIELDS),
        (SaveMap.Request, {"path": "string"}),
        (SaveMap.Response, {"success": "boolean", "message": "string"}),
        (LoadMap.Request, {"path": "string"}),
        (LoadMap.Response, {"success": "boolean", "message": "string"}),
    ],
    ids=["Object3D", "ObjectArray", "QueryObjects.Request", "QueryObjects.Response", "SaveMap.Request",
         "SaveMap.Response", "LoadMap.Request", "LoadMap.Response"],
)
def test_fields_and_types(cls, fields):
    assert cls.get_fields_and_field_types() == fields


def test_defaults():
    o = Object3D()
    assert (o.id, o.label, o.score, o.is_thing, o.point_count) == (0, "", 0.0, False, 0)
    assert o.box_pose.orientation.w == 1.0  # geometry_msgs/Quaternion defaults to identity
    req = QueryObjects.Request()
    assert (req.text, req.max_results, req.min_score, req.target_frame, req.return_clouds) == ("", 0, 0.0, "", False)
    assert req.min_relevance == -1.0  # the node's panoptic.min_relevance
    assert list(QueryObjects.Response().objects) == []


def test_interface_modules():
    assert Object3D.__module__ == "eps3d_ros.msg._object3_d"
    assert ObjectArray.__module__ == "eps3d_ros.msg._object_array"
    assert QueryObjects.__module__ == "eps3d_ros.srv._query_objects"


def test_source_package_and_generated_interfaces_coexist():
    """From outside the repository: `eps3d_ros` is the editable sources, eps3d_ros.msg/.srv the
    generated code installed elsewhere, and only one eps3d_ros distribution is visible."""
    probe = (
        "import json, importlib.metadata as md\n"
        "import eps3d_ros, eps3d_ros.model\n"
        "from eps3d_ros.msg import Object3D, ObjectArray\n"
        "from eps3d_ros.srv import QueryObjects\n"
        "import eps3d_ros.msg\n"
        "dists = [d for d in md.distributions() if (d.metadata['Name'] or '').replace('-', '_') == 'eps3d_ros']\n"
        "print(json.dumps({'pkg': eps3d_ros.__file__, 'model': eps3d_ros.model.__file__,\n"
        "                  'msg': eps3d_ros.msg.__file__, 'path': list(eps3d_ros.__path__),\n"
        "                  'dists': [str(getattr(d, '_path', d)) for d in dists]}))\n"
    )
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    src = ROOT / "eps3d_ros"
    assert Path(info["pkg"]).parent == src and Path(info["model"]).parent == src / "model"
    msg_dir = Path(info["msg"]).parent
    assert src not in msg_dir.parents, f"generated eps3d_ros.msg must not live in the sources: {msg_dir}"
    assert info["path"][0] == str(src) and str(msg_dir.parent) in info["path"]
    assert len(info["dists"]) == 1, f"more than one eps3d_ros distribution visible: {info['dists']}"


def test_installed_interfaces_are_current():
    """The interfaces in the venv were built from the current msg/srv/CMake files."""
    spec = importlib.util.spec_from_file_location("_build_interfaces", ROOT / "scripts" / "build_interfaces.py")
    bi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bi)
    prefix = Path(sys.prefix)
    stamp = prefix / "share" / "eps3d_ros" / bi.STAMP_NAME
    assert stamp.is_file(), f"{stamp} missing: run scripts/setup.sh"
    mode, deps = bi._ros_source(prefix)
    assert stamp.read_text().strip() == bi._input_hash(mode, deps), (
        f"{', '.join(d + '/' for d in bi.INPUT_DIRS)} or {', '.join(bi.INPUT_FILES)} changed since the package was built "
        "into the venv (interfaces and installed share files): run scripts/setup.sh"
    )


# --- serialization ----------------------------------------------------------------------------


def test_object_array_round_trip():
    msg = make_array()
    data = serialize_message(msg)
    assert isinstance(data, bytes) and len(data) > 0
    back = deserialize_message(data, ObjectArray)
    assert back == msg
    assert [o.label for o in back.objects] == ["mug", "bowl", "table"]
    assert back.objects[2].box_size.z == 0.0625 and back.objects[1].aabb_max.x == -0.375


def test_query_response_round_trip_with_clouds():
    objects = make_array().objects
    res = QueryObjects.Response(
        success=True,
        message="2 matches",
        scene_stamp=Time(sec=7, nanosec=9),
        header=Header(stamp=Time(sec=7, nanosec=9), frame_id="map"),
        scale_known=True,
        objects=objects[:2],
        scores=[1.0, 0.25],
        clouds=[make_cloud(o, "map") for o in objects[:2]],
    )
    back = deserialize_message(serialize_message(res), QueryObjects.Response)
    assert back == res
    assert list(back.scores) == [1.0, 0.25] and back.clouds[1].width == 1
    req = QueryObjects.Request(text="red mug", max_results=3, min_score=0.5, target_frame="map", return_clouds=True)
    assert deserialize_message(serialize_message(req), QueryObjects.Request) == req


# --- in-process ROS ---------------------------------------------------------------------------


def test_query_objects_service_call(context, executor):
    server = rclpy.create_node("eps3d_test_query_server", context=context)
    client_node = rclpy.create_node("eps3d_test_query_client", context=context)
    executor.add_node(server)
    executor.add_node(client_node)
    scene = make_array()
    relevance = {"mug": 1.0, "bowl": 0.5, "table": 0.0}  # what a text query would score
    seen = []

    def on_query(req: QueryObjects.Request, res: QueryObjects.Response) -> QueryObjects.Response:
        seen.append(req.text)
        ranked = sorted(scene.objects, key=lambda o: -relevance[o.label])
        ranked = [o for o in ranked if relevance[o.label] >= req.min_score]
        if req.max_results:
            ranked = ranked[: req.max_results]
        res.success = True
        res.message = f"{len(ranked)} objects match '{req.text}'"
        res.scene_stamp = scene.header.stamp
        res.header = Header(stamp=scene.header.stamp, frame_id=req.target_frame or scene.header.frame_id)
        res.scale_known = scene.scale_known
        res.objects = ranked
        res.scores = [relevance[o.label] for o in ranked]
        res.clouds = [make_cloud(o, res.header.frame_id) for o in ranked] if req.return_clouds else []
        return res

    server.create_service(QueryObjects, "eps3d_test/query_objects", on_query)
    client = client_node.create_client(QueryObjects, "eps3d_test/query_objects")
    assert client.wait_for_service(timeout_sec=10.0), "QueryObjects service not discovered"
    assert ("/eps3d_test/query_objects", ["eps3d_ros/srv/QueryObjects"]) in client_node.get_service_names_and_types()

    req = QueryObjects.Request(text="red mug", max_results=2, min_score=0.25, target_frame="", return_clouds=True)
    future = client.call_async(req)
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    assert future.done(), "no answer within 10 s"
    res = future.result()
    assert seen == ["red mug"]
    assert res.success and res.message == "2 objects match 'red mug'"
    assert [o.label for o in res.objects] == ["mug", "bowl"]
    assert list(res.scores) == sorted(res.scores, reverse=True) == [1.0, 0.5]
    assert res.header.frame_id == "camera_optical_frame" and res.scene_stamp == Time(sec=42, nanosec=500)
    assert not res.scale_known
    assert len(res.clouds) == 2 and res.clouds[0].header.frame_id == "camera_optical_frame"
    assert res.objects[0] == scene.objects[0]

    # no clouds unless asked; target_frame echoed
    future = client.call_async(QueryObjects.Request(text="anything", target_frame="map"))
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    res = future.result()
    assert res is not None and res.header.frame_id == "map" and len(res.objects) == 3 and list(res.clouds) == []


def test_object_array_latched_for_late_subscriber(context, executor):
    qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    pub_node = rclpy.create_node("eps3d_test_objects_pub", context=context)
    executor.add_node(pub_node)
    publisher = pub_node.create_publisher(ObjectArray, "eps3d_test/objects", qos)
    publisher.publish(make_array(stamp_sec=1))
    sent = make_array(stamp_sec=2)
    publisher.publish(sent)  # depth 1: only this one is kept for late joiners

    # subscribe only after publishing
    sub_node = rclpy.create_node("eps3d_test_objects_sub", context=context)
    executor.add_node(sub_node)
    received: list[ObjectArray] = []
    sub_node.create_subscription(ObjectArray, "eps3d_test/objects", received.append, qos)
    assert spin_until(executor, lambda: len(received) >= 1), "late subscriber got no ObjectArray"
    executor.spin_once(timeout_sec=0.2)  # nothing else should arrive
    assert received == [sent]
    assert ("/eps3d_test/objects", ["eps3d_ros/msg/ObjectArray"]) in sub_node.get_topic_names_and_types()
    assert received[0].header.stamp.sec == 2 and len(received[0].objects) == 3
