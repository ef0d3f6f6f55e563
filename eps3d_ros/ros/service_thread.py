"""A service served from a thread of its own: ``~/query_objects`` never waits for the node's executor.

The node's executor runs frames, poses, lifecycle transitions, timers and the other services. Its wait loop is
Python: every wake-up rebuilds the wait set under the GIL, and a request then goes from the main thread to a
pool thread before it is taken, answered and sent. Under the soak benchmark that loop sometimes woke ~1000
times a second with nothing ready, and queries waited behind it. Here the service lives on a small node of its
own (``<node>_<service>``, e.g. ``eps3d_node_query_objects``: no parameter or type description services, no
rosout) spun by a ``SingleThreadedExecutor`` in one daemon thread, so a request wakes that thread alone, which
answers it at once.

The service keeps the name it has on the main node: ``~/query_objects`` is resolved by the main node (its
namespace, name and remapping rules), then created under that absolute name.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import rclpy
from rclpy.executors import ExternalShutdownException, ShutdownException, SingleThreadedExecutor
from rclpy.parameter import Parameter

__all__ = ["ServiceThread"]


class ServiceThread:
    """``service`` (``srv_type``, answered by ``callback(request, response)``) named as ``node`` would name
    ``name``, on a helper node of its own spun in thread ``thread_name``. :meth:`destroy` stops and removes it."""

    def __init__(self, node: Any, srv_type: Any, name: str, callback: Callable[[Any, Any], Any],
                 thread_name: str = "eps3d-service") -> None:
        self.name = node.resolve_service_name(name)
        bare = [Parameter("start_type_description_service", value=False)]
        self._helper = rclpy.create_node(f"{node.get_name()}_{self.name.rsplit('/', 1)[-1]}",
                                         namespace=node.get_namespace(), context=node.context,
                                         use_global_arguments=False, start_parameter_services=False,
                                         enable_rosout=False, parameter_overrides=bare)
        self.service = self._helper.create_service(srv_type, self.name, callback)
        self._executor = SingleThreadedExecutor(context=node.context)
        self._executor.add_node(self._helper)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name=thread_name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _spin(self) -> None:
        while not self._stop.is_set() and self._helper.context.ok():
            try:
                self._executor.spin_once(timeout_sec=1.0)  # woken at once by destroy() / shutdown
            except (ExternalShutdownException, ShutdownException):
                return  # the context is shut down (a signal): nothing to serve any more
            except Exception as e:  # noqa: BLE001 - logged; the thread must not die of one bad round
                if self._stop.is_set() or not self._helper.context.ok():
                    return
                self._helper.get_logger().error(f"{self.name}: {type(e).__name__}: {e}")

    def destroy(self, timeout: float = 5.0) -> bool:
        """Stop the thread (a callback running finishes first), then remove the service and the helper node;
        False if the thread did not stop within ``timeout`` (the service is then left to the process's end)."""
        self._stop.set()
        self._executor.wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self._executor.shutdown(timeout_sec=timeout)
        self._helper.destroy_service(self.service)
        self._helper.destroy_node()
        return True
