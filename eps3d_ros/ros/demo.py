"""In-process node demo (``eps3d demo --ros``): eps3d_node plus a peer that acts as camera and grasp planner.

The peer publishes the frames over the node's real topics (``rgb/image`` rgb8, ``depth/image`` 32FC1,
``rgb/camera_info`` and the camera poses: ``camera_pose`` ``TransformStamped``, or ``/tf`` when tf2_ros
is installed), waits for the node's first scene and calls ``~/query_objects`` as a grasp planner
would. ROS traffic is kept on this host (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) unless the
caller set that variable.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

__all__ = ["run_node_demo"]

FRAME_INTERVAL_S = 0.1  # the demo camera's frame rate: 10 Hz


def run_node_demo(
    frames: Sequence[Any],
    parameters: Mapping[str, Any],
    query: str,
    max_results: int = 5,
    namespace: str = "eps3d_demo",
    map_frame: str = "map",
    timeout: float = 300.0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the node on ``frames`` (:class:`~eps3d_ros.frames.Frame`, all of one size) with ROS parameter
    ``parameters`` (dotted names, as ``config/eps3d.yaml``); return the query response as a dict."""
    if not frames:
        raise ValueError("the node demo needs at least one frame")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    timings: dict[str, float] = {}
    with _running_node(parameters, namespace) as (node, peer, started_s):
        timings["node_start"] = started_s
        t0 = time.perf_counter()
        _publish_frames(node, peer, frames, map_frame, say, namespace)
        _wait_for_scene(node.session, timeout, len(frames))
        timings["first_scene"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        response = _ask(peer, query, max_results)
        timings["query"] = time.perf_counter() - t0
        return _response_dict(response, node.session, namespace, query, max_results, timings)


@contextmanager
def _running_node(parameters: Mapping[str, Any], namespace: str) -> Iterator[tuple[Any, Any, float]]:
    """eps3d_node (configured and active), a peer node in a context of their own, spun by a thread, and the
    seconds the node took to start."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from .node import Eps3dNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = peer = executor = thread = None
    core = logging.getLogger("eps3d_ros")
    core_state = (core.level, core.propagate)
    core.propagate = False  # the node forwards the core's log records to its ROS logger: print them once
    try:
        t0 = time.perf_counter()
        node = Eps3dNode(context=ctx, namespace=namespace,
                         parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()])
        peer = Node("grasp_planner", context=ctx, namespace=namespace)
        executor = MultiThreadedExecutor(num_threads=4, context=ctx)
        executor.add_node(node)
        executor.add_node(peer)
        node.autostart()
        if node.session is None:
            raise RuntimeError("eps3d_node did not configure (its log above says why: model or text encoder)")
        started_s = time.perf_counter() - t0
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        yield node, peer, started_s
    finally:
        if node is not None:
            node.close()
        if executor is not None:
            executor.shutdown()
        for n in (node, peer):
            if n is not None:
                n.destroy_node()
        rclpy.try_shutdown(context=ctx)
        if thread is not None:
            thread.join(timeout=10)
        core.setLevel(core_state[0])
        core.propagate = core_state[1]


def _publish_frames(node: Any, peer: Any, frames: Sequence[Any], map_frame: str, say: Callable[[str], None],
                    namespace: str) -> None:
    """The frames as a camera and TF would publish them, 10 per second; each pose is in the node's pose source
    before its image is sent (the node looks the pose up when the image arrives)."""
    from geometry_msgs.msg import TransformStamped
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from .messages import frame_messages

    rgb_pub = peer.create_publisher(Image, "rgb/image", qos_profile_sensor_data)
    depth_pub = peer.create_publisher(Image, "depth/image", qos_profile_sensor_data)
    info_pub = peer.create_publisher(CameraInfo, "rgb/camera_info", qos_profile_sensor_data)
    poses = node.pose_source
    if poses is not None and poses.kind == "tf2":
        import tf2_ros

        send_pose = tf2_ros.TransformBroadcaster(peer).sendTransform
    else:
        send_pose = peer.create_publisher(TransformStamped, "camera_pose", 10).publish
    say(f"[ros] eps3d_node active in /{namespace} (poses from {poses.kind if poses else 'none'}); "
        f"publishing {len(frames)} frames")
    base = time.time()
    for f in frames:
        stamp = base + float(f.stamp) - float(frames[0].stamp)
        msgs = frame_messages(replace(f, stamp=stamp), map_frame=map_frame)
        if msgs.pose is not None:
            send_pose(msgs.pose)
            if poses is not None:
                _wait(lambda: poses.lookup(f.frame_id, stamp) is not None, 5.0)
        info_pub.publish(msgs.info)
        if msgs.depth is not None:
            depth_pub.publish(msgs.depth)
        rgb_pub.publish(msgs.image)
        time.sleep(FRAME_INTERVAL_S)


def _wait_for_scene(session: Any, timeout: float, sent: int) -> None:
    end = time.monotonic() + timeout
    while session.snapshot is None and time.monotonic() < end:
        if session.stats()["failures"]:
            raise RuntimeError(f"the node's reconstruction failed: {session.stats()['last_error']}")
        time.sleep(0.05)
    if session.snapshot is None:
        raise TimeoutError(f"no scene from eps3d_node within {timeout:.0f} s (sent {sent} frames, buffered "
                           f"{len(session.buffer)}; last error: {session.stats()['last_error'] or 'none'})")


def _ask(peer: Any, query: str, max_results: int) -> Any:
    from eps3d_ros.srv import QueryObjects

    client = peer.create_client(QueryObjects, "eps3d_node/query_objects")
    if not client.wait_for_service(timeout_sec=10.0):
        raise TimeoutError("~/query_objects is not available")
    future = client.call_async(QueryObjects.Request(text=query, max_results=max_results, min_score=0.0,
                                                    target_frame="", return_clouds=False))
    if not _wait(future.done, 30.0):
        raise TimeoutError("~/query_objects did not answer within 30 s")
    return future.result()


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def _response_dict(r: Any, session: Any, namespace: str, query: str, max_results: int,
                   timings: Mapping[str, float]) -> dict[str, Any]:
    return {
        "service": f"/{namespace}/eps3d_node/query_objects",
        "request": {"text": query, "max_results": max_results},
        "success": bool(r.success), "message": r.message, "frame_id": r.header.frame_id,
        "scale_known": bool(r.scale_known), "no_match": bool(r.no_match), "min_relevance": float(r.min_relevance),
        "objects": [{"id": int(o.id), "label": o.label, "score": round(float(s), 4), "relevance": round(float(v), 4),
                     "class_score": round(float(o.score), 4), "is_thing": bool(o.is_thing),
                     "centroid": [round(o.centroid.x, 4), round(o.centroid.y, 4), round(o.centroid.z, 4)],
                     "box_size": [round(o.box_size.x, 4), round(o.box_size.y, 4), round(o.box_size.z, 4)],
                     "point_count": int(o.point_count)}
                    for o, s, v in zip(r.objects, r.scores, r.relevances)],
        "scene_objects": len(session.snapshot.scene.objects),
        "map_objects": len(session.map.objects),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
