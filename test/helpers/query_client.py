"""A separate process that calls ``~/query_objects`` repeatedly and prints the round-trip times (JSON).

    python test/query_client.py SERVICE COUNT INTERVAL_S
"""

from __future__ import annotations

import json
import sys
import time

import rclpy
from rclpy.node import Node

from eps3d_ros.srv import QueryObjects


def main() -> None:
    service, count, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rclpy.init()
    node = Node("eps3d_query_client")
    client = node.create_client(QueryObjects, service)
    if not client.wait_for_service(timeout_sec=30.0):
        print(json.dumps({"error": f"service {service} not available"}))
        sys.exit(2)
    calls = []
    for _ in range(count):
        t0 = time.perf_counter()
        future = client.call_async(QueryObjects.Request(text="mug", max_results=3))
        rclpy.spin_until_future_complete(node, future, timeout_sec=10.0)
        dt = time.perf_counter() - t0
        r = future.result()
        calls.append({"seconds": dt, "done": future.done(), "success": bool(r and r.success),
                      "message": r.message if r else "", "wall": time.time()})
        time.sleep(interval)
    print(json.dumps({"calls": calls}))
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
