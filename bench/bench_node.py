"""Benchmark the ROS node: overhead per window vs model time, PointCloud2 of 200k points, query round trips.

    python bench/bench_node.py [--views 4] [--size 224] [--out bench/results/node.json]

* cloud: build a 200k-point ``PointCloud2`` (x, y, z, rgb, label, instance, score) and publish it to an
  in-process subscriber (target <= 10 ms);
* window: synthetic frames (rgb8 + 32FC1 depth + camera_info + camera_pose) into ``eps3d_node``
  (tiny preset, random weights); per-frame conversion, per-window stage times and publishing time;
* query: ``~/query_objects`` round trips from a client node while back-to-back reconstructions run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
import torch
from geometry_msgs.msg import TransformStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from eps3d_ros.conventions import matrix_to_quat_xyzw
from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.panoptic.clouds import CLOUD_DTYPE
from eps3d_ros.ros.messages import point_cloud, seconds_to_stamp
from eps3d_ros.ros.node import Eps3dNode
from eps3d_ros.ros.scene_publisher import LATCHED
from eps3d_ros.srv import QueryObjects


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[int(q * (len(xs) - 1))]


def bench_cloud(peer: Node, n: int = 200_000, repeats: int = 30) -> dict:
    rng = np.random.default_rng(0)
    pts = np.zeros(n, dtype=CLOUD_DTYPE)
    for f in ("x", "y", "z", "rgb", "score"):
        pts[f] = rng.random(n, dtype=np.float32)
    pts["label"] = rng.integers(0, 20, n)
    pts["instance"] = rng.integers(0, 50, n)
    got = []
    pub = peer.create_publisher(PointCloud2, "bench_cloud", LATCHED)
    peer.create_subscription(PointCloud2, "bench_cloud", got.append, LATCHED)
    build, publish = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        msg = point_cloud(pts, Header(frame_id="map"))
        t1 = time.perf_counter()
        pub.publish(msg)
        t2 = time.perf_counter()
        build.append((t1 - t0) * 1e3)
        publish.append((t2 - t1) * 1e3)
    time.sleep(0.5)
    total = [a + b for a, b in zip(build, publish)]
    return {"points": n, "bytes": len(msg.data), "build_ms_median": statistics.median(build),
            "publish_ms_median": statistics.median(publish), "build_plus_publish_ms_p50": statistics.median(total),
            "build_plus_publish_ms_p95": pct(total, 0.95), "received": len(got), "target_ms": 10.0}


def frame_messages(scene, view: int, stamp: float):
    H, W = scene.depth.shape[1:]
    header_stamp = seconds_to_stamp(stamp)
    t = TransformStamped()
    t.header.stamp, t.header.frame_id, t.child_frame_id = header_stamp, "map", "cam"
    P = scene.poses[view]
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (float(v) for v in P[:3, 3])
    q = matrix_to_quat_xyzw(torch.from_numpy(P[:3, :3].astype(np.float64))).tolist()
    t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z, t.transform.rotation.w = q
    img = Image(height=H, width=W, encoding="rgb8", step=3 * W, data=np.ascontiguousarray(scene.rgb[view]).tobytes())
    img.header.stamp, img.header.frame_id = header_stamp, "cam"
    K = scene.intrinsics[view].astype(np.float64).copy()
    K[:2, 2] -= 0.5
    info = CameraInfo(height=H, width=W, header=img.header)
    info.k = K.reshape(-1).tolist()
    d = np.ascontiguousarray(scene.depth[view].astype(np.float32))
    depth = Image(height=H, width=W, encoding="32FC1", step=4 * W, data=d.tobytes(), header=img.header)
    return t, info, depth, img


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--queries", type=int, default=40)
    p.add_argument("--out", type=Path, default=Path("bench/results/node.json"))
    args = p.parse_args()
    rclpy.init()
    params = {"model.allow_random_weights": True, "text.model": "eps3d-tiny-clip", "text.pretrained": "",
              "pipeline.image_height": args.size, "pipeline.image_width": args.size,
              "pipeline.window_size": args.views, "pipeline.every_n_frames": args.views,
              "pipeline.keyframe_min_interval": 0.0, "pipeline.keyframe_min_translation": 0.0,
              "pipeline.keyframe_min_rotation": 0.0}
    node = Eps3dNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    peer = Node("eps3d_bench_peer")
    ex = MultiThreadedExecutor(num_threads=4)
    ex.add_node(node)
    ex.add_node(peer)
    node.autostart()
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    result = {"cloud_200k": bench_cloud(peer)}

    pubs = [peer.create_publisher(TransformStamped, "camera_pose", 10),
            peer.create_publisher(CameraInfo, "rgb/camera_info", qos_profile_sensor_data),
            peer.create_publisher(Image, "depth/image", qos_profile_sensor_data),
            peer.create_publisher(Image, "rgb/image", qos_profile_sensor_data)]
    scene = generate_scene(seed=0, num_views=args.views, height=args.size, width=args.size)
    convert = []
    for i in range(args.views):
        for pub, msg in zip(pubs, frame_messages(scene, i, 10.0 + 0.5 * i)):
            pub.publish(msg)
            time.sleep(0.02)
        time.sleep(0.2)
        convert.append(node._stats["convert_s"])
    end = time.monotonic() + 300
    while node.snapshot is None and time.monotonic() < end:
        time.sleep(0.1)
    snap = node.snapshot
    time.sleep(0.5)
    result["window"] = {"views": args.views, "size": args.size, "gaussians": snap.scene.num_gaussians,
                        "convert_ms_per_frame": 1e3 * statistics.median(convert),
                        "stages_s": dict(snap.timings), "publish_s": node._stats["publish_s"]}
    result["window"]["node_overhead_s"] = (args.views * statistics.median(convert) + node._stats["publish_s"]
                                           + snap.timings.get("preprocess", 0.0))

    client = peer.create_client(QueryObjects, "eps3d_node/query_objects")
    client.wait_for_service(timeout_sec=10)
    rt, busy = [], []
    for _ in range(args.queries):
        if not node.worker.busy:
            node.worker.submit(node.buffer.select_window())
        time.sleep(0.02)
        busy.append(node.worker.busy)
        t0 = time.perf_counter()
        fut = client.call_async(QueryObjects.Request(text="mug", max_results=3))
        while not fut.done():
            time.sleep(0.0005)
        rt.append((time.perf_counter() - t0) * 1e3)
    result["query_while_inferring"] = {"calls": len(rt), "p50_ms": statistics.median(rt), "p95_ms": pct(rt, 0.95),
                                      "max_ms": max(rt), "fraction_with_inference_running": sum(busy) / len(busy)}
    ex.shutdown()
    node._release_inputs()
    node._teardown()
    rclpy.try_shutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
