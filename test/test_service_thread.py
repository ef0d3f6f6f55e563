"""A service answered from a thread of its own: it needs no executor of the node it belongs to, keeps the name
that node gives it, and is gone after destroy()."""

from __future__ import annotations

import threading

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_srvs.srv import Trigger

from eps3d_ros.ros.service_thread import ServiceThread
from helpers.node_harness import wait_for


def test_answers_without_the_nodes_executor_and_goes_away_on_destroy() -> None:
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = Node("owner", namespace="svc_thread", context=ctx)  # spun by no executor at all
    peer = Node("asker", namespace="svc_thread", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(peer)
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    threads = []

    def answer(request, response):
        threads.append(threading.current_thread().name)
        response.success, response.message = True, "answered"
        return response

    service = ServiceThread(node, Trigger, "~/ping", answer, thread_name="ping-thread")
    try:
        assert service.name == "/svc_thread/owner/ping" and service.alive
        client = peer.create_client(Trigger, "/svc_thread/owner/ping")
        assert client.wait_for_service(timeout_sec=10.0)
        for _ in range(3):
            future = client.call_async(Trigger.Request())
            assert wait_for(future.done, 10.0), "no answer"
            assert future.result().success and future.result().message == "answered"
        assert threads == ["ping-thread"] * 3  # answered in its own thread, not in an executor of the node
        assert peer.count_services("/svc_thread/owner/ping") == 1
        assert [s for s in dict(peer.get_service_names_and_types()) if "owner_ping" in s] == []  # a bare helper
        assert service.destroy() and not service.alive
        assert wait_for(lambda: peer.count_services("/svc_thread/owner/ping") == 0, 10.0)
        assert ("owner_ping", "/svc_thread") not in peer.get_node_names_and_namespaces()
    finally:
        ex.shutdown()
        node.destroy_node()
        peer.destroy_node()
        rclpy.shutdown(context=ctx)
        spin.join(timeout=5)


def test_the_thread_ends_when_the_context_shuts_down() -> None:
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = Node("owner2", context=ctx)
    service = ServiceThread(node, Trigger, "~/ping", lambda req, resp: resp)
    rclpy.shutdown(context=ctx)  # as a signal does
    assert wait_for(lambda: not service.alive, 5.0)
    assert service.destroy()  # what the node's close() then does: no error on a shut-down context
