"""Benchmark the node's input path with several cameras: N cameras x RATE Hz of HxW colour (+ depth) + camera_info
+ their poses, published from this process into ``eps3d_node`` running in its own process (the demo model,
windows every 8 frames as by default, so inference competes with the input as on a robot).

    python bench/bench_camera_input.py [--cameras 2] [--hz 30] [--size 640x480] [--seconds 30] [--depth]
                                       [--qos sensor_data|reliable] [--out bench/results/camera_input.json]

Reports, from the node's ``/diagnostics`` and what was sent: the message callback time (p50 / p95 / max over the
last 2000 messages, including the frame a message completed: decoding, the intake, the buffer), per camera the
frames sent, received, synchronised and used, and every frame not used by reason (lost on the way, never
synchronised, the rate limit, no transform, the buffer's reasons), the windows and their views per camera, and the
machine's load. With best-effort QoS (the default ``input_qos``) large images lose fragments on the way when the
machine is busy; ``--qos reliable`` shows the node's own path.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test"))

from eps3d_ros.data.synthetic import generate_scene  # noqa: E402
from eps3d_ros.frames.frame import Frame  # noqa: E402
from eps3d_ros.ros.messages import frame_messages, seconds_to_stamp  # noqa: E402
from helpers.node_client import NodeClient, start_node, stop_node  # noqa: E402


def camera_frames(seed: int, name: str, height: int, width: int, depth: bool) -> Frame:
    """One synthetic view enlarged to ``height x width`` (pixel replication), posed 1 m above the map origin."""
    s = generate_scene(seed=seed, num_views=1, height=height // 4, width=width // 4)
    rgb = np.ascontiguousarray(np.repeat(np.repeat(s.rgb[0], 4, 0), 4, 1))
    K = s.intrinsics[0].astype(np.float64).copy()
    K[:2] *= 4.0
    K[:2, 2] -= 0.5
    d = np.repeat(np.repeat(s.depth[0], 4, 0), 4, 1).astype(np.float32) if depth else None
    pose = np.eye(4)
    pose[:3, 3] = [0.2 * seed, 0.0, 1.0]
    return Frame(0.0, rgb, K, f"{name}_optical", depth=d, pose=pose, camera=name)


def diagnostic(values: dict, key: str):
    v = values.get(key)
    try:
        return ast.literal_eval(v) if v is not None else None
    except (ValueError, SyntaxError):
        return v


def run(args: argparse.Namespace) -> dict:
    height, width = (int(v) for v in args.size.lower().split("x")[::-1])  # WxH on the command line
    names = ["head", "wrist", "left", "right"][:args.cameras]
    params = {"model.weights": str(ROOT / "models" / "demo_tiny"), "input_qos": args.qos}
    params_file = Path(tempfile.mkdtemp()) / "cameras.yaml"
    params_file.write_text("/**:\n  ros__parameters:\n    input:\n      cameras: [" + ", ".join(names) + "]\n")
    log = Path(tempfile.mkdtemp()) / "node.log"
    node = start_node(log, params, params_file=params_file)
    client = NodeClient(cameras={n: (f"{n}/image", f"{n}/camera_info", f"{n}/depth") for n in names})
    try:
        assert client.query.wait_for_service(timeout_sec=180), log.read_text()[-3000:]
        assert client.wait_until_heard(depth=args.depth, cameras=True), "the node never subscribed"
        frames = {n: camera_frames(i + 1, n, height, width, args.depth) for i, n in enumerate(names)}
        msgs = {n: frame_messages(f, 0.0) for n, f in frames.items()}
        sent = {n: 0 for n in names}
        period, t0 = 1.0 / args.hz, time.monotonic()
        stamp0 = 1000.0
        k = 0
        while time.monotonic() - t0 < args.seconds:
            target = t0 + k * period
            while time.monotonic() < target:
                client.spin(min(0.002, max(0.0, target - time.monotonic())))
            for i, n in enumerate(names):
                stamp = seconds_to_stamp(stamp0 + k * period + 0.003 * i)  # cameras not in step
                m = msgs[n]
                for part in (m.image, m.info, m.depth, m.pose):
                    if part is not None:
                        part.header.stamp = stamp
                rgb, info, depth = client.cameras[n]
                client.pose.publish(m.pose)
                info.publish(m.info)
                if args.depth:
                    depth.publish(m.depth)
                rgb.publish(m.image)
                sent[n] += 1
            k += 1
        publish_hz = k / (time.monotonic() - t0)
        client.spin(5.0)  # the last diagnostics (1 Hz)
        d = client.diagnostics[-1]
    finally:
        client.close()
        code = stop_node(node)
    per = {}
    for n in names:
        received, synced, used = (diagnostic(d, f"input_{n}_{k}") for k in ("rgb_received", "synced", "used"))
        per[n] = {"sent": sent[n], "received": received, "synchronised": synced, "used": used,
                  "lost_on_the_way": sent[n] - (received or 0), "never_synchronised": (received or 0) - (synced or 0),
                  "refused": diagnostic(d, f"input_{n}_refused")}
    return {
        "cameras": args.cameras, "hz": args.hz, "size": [height, width], "depth": args.depth, "qos": args.qos,
        "seconds": args.seconds, "publish_hz_achieved": round(publish_hz, 2),
        "callback_ms": {"p50": diagnostic(d, "input_callback_ms_p50"), "p95": diagnostic(d, "input_callback_ms_p95")},
        "per_camera": per,
        "dropped_by_reason": {
            "lost_on_the_way": sum(c["lost_on_the_way"] for c in per.values()),
            "never_synchronised": sum(c["never_synchronised"] for c in per.values()),
            **diagnostic(d, "input_dropped"),
            # frames that were buffered, then left: overflow (newer frames came) and aged_out are the normal course
            **{f"buffer_{r}": n for r, n in (diagnostic(d, "buffer_dropped") or {}).items() if n}},
        # messages (not frames) the synchronisers let go: with use_depth auto and no depth, the colour + info + depth
        # synchroniser's queues overflow by design
        "sync_queue_messages_dropped": diagnostic(d, "sync_dropped"),
        "windows": diagnostic(d, "windows"), "last_window_views": d.get("last_window_views"),
        "node_exit_code": code, "traceback_in_log": "Traceback" in log.read_text(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--hz", type=float, default=30.0)
    ap.add_argument("--size", default="640x480", help="WxH")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--depth", action="store_true", help="also a 32FC1 depth image per frame")
    ap.add_argument("--qos", choices=("sensor_data", "reliable"), default="sensor_data")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "camera_input.json"))
    args = ap.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
