"""Living with a context that a signal shuts down under the node's feet.

On SIGINT / SIGTERM rclpy's own signal thread shuts the rcl context down at once, without the GIL and without
waiting for anyone; the main thread learns of it later (a KeyboardInterrupt, or ``ExternalShutdownException``).
Meanwhile every rcl call on that context fails with ``RCLError`` ("context is invalid": building the executor's
wait set, ``count_publishers``, ``publish``) and the ROS logger prints "Failed to publish log message to rosout".
A failure of that kind after the context went down is the end of the node's life, not a fault: the helpers here
end quietly on it (one plain line on stderr, where a shut-down ROS logger cannot write) and re-raise anything
that fails while the context is still alive.
"""

from __future__ import annotations

from typing import Callable, Iterable

from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException

from .log_forwarding import write_like_ros_logger


def run_while_live(context, action: Callable[[], object]) -> bool:
    """``action()`` (a publish, a graph query) unless ``context`` is shut down; an error it raises because the
    context went down meanwhile is swallowed. True when it ran to its end."""
    if not context.ok():
        return False
    try:
        action()
    except Exception:  # noqa: BLE001 - re-raised below unless the shutdown explains it
        if context.ok():
            raise
        return False
    return True


def spin_until_finished(executor, node) -> None:
    """Spin ``executor`` until ``node.finished`` is done (the shutdown transition) or a signal shut the context
    down. An entity destroyed by a transition in another thread ends one spin (logged) and spinning goes on."""
    context = node.context
    while not node.finished.done() and context.ok():
        try:
            executor.spin_until_future_complete(node.finished)
        except (KeyboardInterrupt, ExternalShutdownException):
            return  # SIGINT / SIGTERM: rclpy shut the context down
        except Exception as e:  # noqa: BLE001 - re-raised below unless the shutdown explains it
            if not context.ok():
                write_like_ros_logger("INFO", node.get_logger().name,
                                      f"spinning ended by the shutdown ({type(e).__name__}: {e})")
                return
            if not isinstance(e, InvalidHandle):
                raise
            # rclpy met an entity that a transition in another executor thread destroyed meanwhile (a service
            # whose last response was still being sent, an event handler while the wait set was built): that
            # one spin ends (one client may get no answer); the node goes on.
            node.get_logger().warning(f"an entity was destroyed while in use ({e}); spinning on")


def close_in_order(context, node_name: str, steps: Iterable[tuple[str, Callable[[], object]]]) -> None:
    """Run every closing step even when one fails, so that nothing is left half-destroyed: a failure once
    ``context`` is down (a signal) is noted in one line; the first failure while it is alive is raised after
    all steps ran."""
    first: Exception | None = None
    for name, step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - noted or re-raised below, after the other steps
            write_like_ros_logger("INFO", node_name, f"closing: {name} failed ({type(e).__name__}: {e})")
            if context.ok() and first is None:
                first = e
    if first is not None:
        raise first
