"""``eps3d_node``: ROS wiring around a :class:`~eps3d_ros.pipeline.session.Session` (which owns the state: frames,
map, input health, counters).

Lifecycle (``autostart``, default true, runs configure + activate): configure loads the model folder and the
session and creates the publishers (a failure leaves it unconfigured, saying what to pass); activate creates
the subscriptions of every camera of ``input.cameras``, the pose source and the timers (diagnostics; the
cameras' queues) and binds the services (created on the first activate; a failure returns FAILURE with the
reason logged and leaves it inactive); deactivate destroys the subscriptions, pose source and timers and
unbinds the services, which then answer "not active" (the map stays); cleanup destroys services and publishers
and frees the session; shutdown (transition, SIGINT, SIGTERM) also makes ``main`` return, without publishing a
window still running. Threads: subscriptions hand frames to the session (the core decides what becomes of
them), its worker reconstructs, fuses and calls back to publish; ``~/query_objects`` is answered from a thread
of its own and reads the map's published state, so it waits neither for inference nor for this node's
executor. Timers run on the steady clock, so with ``use_sim_time`` they go on while a bag is paused. Parameters
the node does not declare are named at start-up with the nearest declared one.
"""

from __future__ import annotations

import signal
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from rclpy.task import Future
from rcl_interfaces.msg import SetParametersResult

from ..pipeline.loading import load_reconstructor, release_cuda_cache
from ..pipeline.session import Session
from ..process.heap import trim_heap
from .context_shutdown import close_in_order, run_while_live, spin_until_finished
from .diagnostics import session_diagnostics
from .frame_input import FrameInputs
from .log_forwarding import forward_core_logs, stop_forwarding
from .map_services import MapServices
from .params import (config_from_node, config_from_values, declare_camera_parameters, declare_parameters, leaves,
                     unknown_parameters)
from .poses import make_pose_source
from .scene_publisher import ScenePublisher


class Eps3dNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("eps3d_node", **kwargs)
        unlisted = declare_parameters(self)
        self.declare_parameter("autostart", True)
        self.declare_parameter("input_qos", "sensor_data")  # or "reliable"
        self.session: Session | None = None
        self.finished = Future()  # done after the shutdown transition: main() returns
        self._outputs = self._diag = self._input = self._poses = self._map_services = self._timer = None
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._misc_group = ReentrantCallbackGroup()
        self.add_on_set_parameters_callback(self._on_parameters)
        self._log_handler = forward_core_logs(self.get_logger(), is_live=self.context.ok)
        self.unknown_parameters = unknown_parameters(self)  # {name: nearest declared name or None}
        for name, near in self.unknown_parameters.items():
            hint = f": did you mean '{near}'?" if near else " (ros2 param list shows the declared ones)"
            self.get_logger().error(f"unknown parameter '{name}' ignored{hint}")
        for camera in unlisted:
            self.get_logger().info(f"input.{camera}.* given but input.cameras does not list '{camera}': not used")

    @property
    def pose_source(self):
        """Where camera poses come from while active (``kind`` "tf2" or "topic"), else None."""
        return self._poses

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            declare_camera_parameters(self)  # input.cameras may have changed since start
            rec = load_reconstructor(config_from_node(self))
        except Exception as e:  # noqa: BLE001 - every failure is reported and leaves the node unconfigured
            self.get_logger().error(f"configure failed: {e}")
            return TransitionCallbackReturn.FAILURE
        self.session = Session(rec.config, rec, on_update=self._on_update)
        self._outputs = ScenePublisher(self)
        self._diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.get_logger().info("configured")
        return super().on_configure(state)

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        session = self.session
        p = session.config.pipeline
        try:
            qos = qos_profile_sensor_data if self.get_parameter("input_qos").value == "sensor_data" else 10
            self._poses = poses = make_pose_source(self, session.config.output.map_frame, self._input_group)
            self._input = FrameInputs(self, session, poses, qos, self._input_group)  # every camera, one group
            if self._map_services is None:  # created on the first activate, bound while active
                self._map_services = MapServices(self, self._misc_group)
            self._map_services.bind(session, self._poses)
            self._timer = self.create_timer(1.0, self._publish_diagnostics, self._misc_group,
                                            clock=Clock(clock_type=ClockType.STEADY_TIME))  # also while sim time stops
        except Exception as e:  # noqa: BLE001 - every failure is reported and leaves the node inactive
            self.get_logger().error(f"activate failed: {type(e).__name__}: {e}")
            self._release_inputs()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"active: {self._input.describe()}; sync by {self._input.backend}, poses from "
                               f"{poses.kind}, network input fitted into {p.image_height}x{p.image_width}")
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._release_inputs()
        release_cuda_cache()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.close()
        return super().on_cleanup(state)

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.close()
        if not self.finished.done():
            self.finished.set_result(True)
        return super().on_shutdown(state)

    def autostart(self) -> None:
        if self.get_parameter("autostart").value:
            self.trigger_configure()
            if self.session is not None:
                self.trigger_activate()

    def close(self, timeout: float = 10.0) -> None:
        """Everything created in configure / activate destroyed; a window still running is not published."""
        self._release_inputs()
        if self._map_services is not None:
            self._map_services.destroy()
            self._map_services = None
        if self.session is not None:
            self.session.close(timeout)
            self.session = None
        if self._outputs is not None:
            self._outputs.destroy()
            self.destroy_publisher(self._diag)
            self._outputs = self._diag = None
        release_cuda_cache()
        trim_heap()  # the model and the map are gone: give their pages back (nothing is served now)

    def destroy_node(self) -> None:
        if self._map_services is not None:
            self._map_services.destroy()
        stop_forwarding(self._log_handler)
        super().destroy_node()

    def _release_inputs(self) -> None:
        if self._map_services is not None:
            self._map_services.unbind()  # answers "not active" from now on; destroyed on cleanup (see close)
        for thing in (self._input, self._poses):
            if thing is not None:
                thing.destroy()
        if self._timer is not None:
            self.destroy_timer(self._timer)
        self._input = self._poses = self._timer = None

    def _on_update(self, update) -> None:
        outputs, session = self._outputs, self.session
        if outputs is None or session is None:
            return  # closed
        c = session.config.output
        t0 = time.perf_counter()
        if run_while_live(self.context, lambda: outputs.publish(session, c.max_cloud_points, c.min_opacity)):
            session.record_publish(time.perf_counter() - t0)

    def _on_parameters(self, params) -> SetParametersResult:
        session = self.session
        if session is None:
            return SetParametersResult(successful=True)  # checked on configure
        values = leaves(session.config)
        changed = {p.name: p.value for p in params if p.name in values}
        try:
            new = config_from_values({**values, **changed})
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        change = session.update(new)
        if change.pending:
            self.get_logger().info(f"{list(change.pending)} apply on the next configure")
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self) -> None:
        if self.session is not None and self._input is not None and self._diag is not None:
            msg = session_diagnostics(self.session, self._input, self._poses, self.get_clock().now().to_msg(),
                                      self.get_logger().warning)
            run_while_live(self.context, lambda: self._diag.publish(msg))


def main(args=None) -> None:
    rclpy.init(args=args)
    node = Eps3dNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    node.autostart()
    try:
        spin_until_finished(executor, node)  # the shutdown transition, or a signal
    except KeyboardInterrupt:
        pass  # a signal's KeyboardInterrupt met just outside the executor
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # closing is bounded; half-destroyed DDS entities are not
            signal.signal(sig, signal.SIG_IGN)
        close_in_order(node.context, node.get_logger().name, [
            ("the node", node.close),
            ("the executor", lambda: executor.shutdown(timeout_sec=5.0)),  # before the node it serves goes
            ("destroying the node", node.destroy_node),
            ("the context", rclpy.try_shutdown)])


if __name__ == "__main__":
    main()
