"""A grasp planner's side of the soak: its own process, asking ``~/query_objects`` at a fixed rate.

    python bench/query_process.py SERVICE HZ

One JSON line per call on stdout (``t``: wall time at the answer, ``s``: round trip in seconds, ``done``,
``success``) until SIGTERM / SIGINT. A process of its own, so that the round trips measure the node and
the transport, not the GIL of whoever sends the frames.
"""

from __future__ import annotations

import json
import signal
import sys
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from eps3d_ros.srv import QueryObjects


def main() -> None:
    service, hz = sys.argv[1], float(sys.argv[2])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = Node("soak_queries")
    client = node.create_client(QueryObjects, service)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    period = 1.0 / hz
    try:
        while not stop:
            if not client.service_is_ready():
                client.wait_for_service(timeout_sec=1.0)
                continue
            t0 = time.perf_counter()
            future = client.call_async(QueryObjects.Request(text="chair", max_results=3))
            ex.spin_until_future_complete(future, timeout_sec=10.0)
            dt = time.perf_counter() - t0
            r = future.result() if future.done() else None
            print(json.dumps({"t": time.time(), "s": dt, "done": future.done(), "success": bool(r and r.success)}),
                  flush=True)
            time.sleep(max(0.0, period - dt))
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
