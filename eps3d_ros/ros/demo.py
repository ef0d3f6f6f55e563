"""In-process node demo (``eps3d demo --ros``): eps3d_node plus a peer that acts as camera and grasp planner.

The peer publishes the frames over the node's real topics (``rgb/image`` rgb8, ``depth/image`` 32FC1,
``rgb/camera_info`` and the camera poses: ``camera_pose`` ``TransformStamped``, or ``/tf`` when tf2_ros
is installed), waits for the node's first scene and calls ``~/query_objects`` as a grasp planner
would. ROS traffic is kept on this host (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) unless the
caller set that variable.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["run_node_demo"]


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
    """Run the node on ``frames`` (:class:`~eps3d_ros.pipeline.Frame`, all of one size) with ROS parameter
    ``parameters`` (dotted names, as ``config/eps3d.yaml``); return the query response as a dict."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy
    from geometry_msgs.msg import TransformStamped
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from eps3d_ros.srv import QueryObjects

    from ..conventions import matrix_to_quat_xyzw
    from .messages import seconds_to_stamp
    from .node import Eps3dNode

    if not frames:
        raise ValueError("the node demo needs at least one frame")
    import logging

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = peer = executor = thread = None
    timings: dict[str, float] = {}
    core = logging.getLogger("eps3d_ros")
    core_state = (core.level, core.propagate)
    core.propagate = False  # the node forwards the core's log records to its ROS logger: print them once
    try:
        t0 = time.perf_counter()
        node = Eps3dNode(context=ctx, namespace=namespace,
                         parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()])
        peer = Node("grasp_planner", context=ctx, namespace=namespace)
        rgb_pub = peer.create_publisher(Image, "rgb/image", qos_profile_sensor_data)
        depth_pub = peer.create_publisher(Image, "depth/image", qos_profile_sensor_data)
        info_pub = peer.create_publisher(CameraInfo, "rgb/camera_info", qos_profile_sensor_data)
        client = peer.create_client(QueryObjects, "eps3d_node/query_objects")
        executor = MultiThreadedExecutor(num_threads=4, context=ctx)
        executor.add_node(node)
        executor.add_node(peer)
        node.autostart()
        session = node.session
        if session is None:
            raise RuntimeError("eps3d_node did not configure (its log above says why: model or text encoder)")
        timings["node_start"] = time.perf_counter() - t0
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        if node._poses is not None and node._poses.kind == "tf2":
            import tf2_ros

            broadcaster = tf2_ros.TransformBroadcaster(peer)
            send_pose = broadcaster.sendTransform
        else:
            pose_pub = peer.create_publisher(TransformStamped, "camera_pose", 10)
            send_pose = pose_pub.publish
        say(f"[ros] eps3d_node active in /{namespace} (poses from {node._poses.kind if node._poses else 'none'}); "
            f"publishing {len(frames)} frames")

        t0 = time.perf_counter()
        base = time.time()
        for f in frames:
            stamp = seconds_to_stamp(base + float(f.stamp) - float(frames[0].stamp))
            if f.pose is not None:
                t = TransformStamped()
                t.header.stamp, t.header.frame_id, t.child_frame_id = stamp, map_frame, f.frame_id
                tr = t.transform.translation
                tr.x, tr.y, tr.z = (float(v) for v in f.pose[:3, 3])
                import torch

                q = matrix_to_quat_xyzw(torch.from_numpy(np.array(f.pose[:3, :3]))).tolist()
                r = t.transform.rotation
                r.x, r.y, r.z, r.w = q
                send_pose(t)
                time.sleep(0.05)  # the pose is in the history before the image arrives
            H, W = f.size
            img = Image(height=H, width=W, encoding="rgb8", step=3 * W, data=np.ascontiguousarray(f.rgb).tobytes())
            img.header.stamp, img.header.frame_id = stamp, f.frame_id
            info = CameraInfo(height=H, width=W)
            info.k = np.asarray(f.K, np.float64).reshape(-1).tolist()
            info.header = img.header
            info_pub.publish(info)
            if f.depth is not None:
                d = np.ascontiguousarray(np.nan_to_num(f.depth, nan=0.0).astype(np.float32))
                dm = Image(height=H, width=W, encoding="32FC1", step=4 * W, data=d.tobytes())
                dm.header = img.header
                depth_pub.publish(dm)
            rgb_pub.publish(img)
            time.sleep(0.1)
        end = time.monotonic() + timeout
        while session.snapshot is None and time.monotonic() < end:
            if session.stats()["failures"]:
                raise RuntimeError(f"the node's reconstruction failed: {session.stats()['last_error']}")
            time.sleep(0.05)
        if session.snapshot is None:
            raise TimeoutError(f"no scene from eps3d_node within {timeout:.0f} s (buffered {len(session.buffer)} "
                               f"frames; last error: {session.stats()['last_error'] or 'none'})")
        timings["first_scene"] = time.perf_counter() - t0

        if not client.wait_for_service(timeout_sec=10.0):
            raise TimeoutError("~/query_objects is not available")
        t0 = time.perf_counter()
        future = client.call_async(QueryObjects.Request(text=query, max_results=max_results, min_score=0.0,
                                                        target_frame="", return_clouds=False))
        end = time.monotonic() + 30.0
        while not future.done() and time.monotonic() < end:
            time.sleep(0.01)
        if not future.done():
            raise TimeoutError("~/query_objects did not answer within 30 s")
        timings["query"] = time.perf_counter() - t0
        r = future.result()
        return {
            "service": f"/{namespace}/eps3d_node/query_objects",
            "request": {"text": query, "max_results": max_results},
            "success": bool(r.success), "message": r.message, "frame_id": r.header.frame_id,
            "scale_known": bool(r.scale_known),
            "objects": [{"id": int(o.id), "label": o.label, "relevance": round(float(s), 4),
                         "class_score": round(float(o.score), 4), "is_thing": bool(o.is_thing),
                         "centroid": [round(o.centroid.x, 4), round(o.centroid.y, 4), round(o.centroid.z, 4)],
                         "box_size": [round(o.box_size.x, 4), round(o.box_size.y, 4), round(o.box_size.z, 4)],
                         "point_count": int(o.point_count)}
                        for o, s in zip(r.objects, r.scores)],
            "scene_objects": len(session.snapshot.scene.objects),
            "map_objects": len(session.map.objects),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
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
