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
from geometry_msgs.msg import TransformStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from eps3d_ros.data.synthetic import generate_scene
from eps3d_ros.frames.frame import synthetic_frames
from eps3d_ros.panoptic.clouds import CLOUD_DTYPE
from eps3d_ros.ros.messages import frame_from_messages, frame_messages, point_cloud
from eps3d_ros.ros.node import Eps3dNode
from eps3d_ros.ros.scene_publisher import LATCHED
from eps3d_ros.srv import QueryObjects


def wait(predicate, timeout: float, poll: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(poll)
    return True


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

    pubs = {"pose": peer.create_publisher(TransformStamped, "camera_pose", 10),
            "info": peer.create_publisher(CameraInfo, "rgb/camera_info", qos_profile_sensor_data),
            "depth": peer.create_publisher(Image, "depth/image", qos_profile_sensor_data),
            "image": peer.create_publisher(Image, "rgb/image", qos_profile_sensor_data)}
    scene = generate_scene(seed=0, num_views=args.views, height=args.size, width=args.size)
    frames = synthetic_frames(scene, [10.0 + 0.5 * i for i in range(args.views)], frame_id="cam")
    session, convert = node.session, []
    for f in frames:
        msgs = frame_messages(f)
        pubs["pose"].publish(msgs.pose)
        assert wait(lambda: node.pose_source.lookup("cam", f.stamp) is not None, 10), "pose not received"
        for key in ("info", "depth", "image"):
            pubs[key].publish(getattr(msgs, key))
        t0 = time.perf_counter()  # what the node does with a synchronised set before buffering it
        frame_from_messages(msgs.image, msgs.info, msgs.depth, session.config.pipeline, node.pose_source)
        convert.append(time.perf_counter() - t0)
    assert wait(lambda: session.snapshot is not None, 300), "no window"
    assert wait(lambda: session.stats()["publish_s"] > 0, 30), "nothing published"
    snap = session.snapshot
    publish_s = session.stats()["publish_s"]
    result["window"] = {"views": args.views, "size": args.size, "gaussians": snap.scene.num_gaussians,
                        "convert_ms_per_frame": 1e3 * statistics.median(convert),
                        "stages_s": dict(snap.timings), "publish_s": publish_s}
    result["window"]["node_overhead_s"] = (args.views * statistics.median(convert) + publish_s
                                           + snap.timings.get("preprocess", 0.0))

    client = peer.create_client(QueryObjects, "eps3d_node/query_objects")
    client.wait_for_service(timeout_sec=10)
    rt, busy = [], []
    for _ in range(args.queries):
        if not session.stats()["worker_busy"]:
            session.reconstruct_now()
        time.sleep(0.02)  # pacing: a planner asks now and then
        busy.append(bool(session.stats()["worker_busy"]))
        t0 = time.perf_counter()
        fut = client.call_async(QueryObjects.Request(text="mug", max_results=3))
        assert wait(fut.done, 30, poll=0.0005), "no answer"
        rt.append((time.perf_counter() - t0) * 1e3)
    result["query_while_inferring"] = {"calls": len(rt), "p50_ms": statistics.median(rt), "p95_ms": pct(rt, 0.95),
                                      "max_ms": max(rt), "fraction_with_inference_running": sum(busy) / len(busy)}
    node.close()
    ex.shutdown()
    node.destroy_node()
    peer.destroy_node()
    rclpy.try_shutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
