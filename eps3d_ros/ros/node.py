"""``eps3d_node``: synchronized frames in → EPS3D on one inference thread → clouds, objects, queries out.

Lifecycle (``autostart`` true by default runs configure + activate at start):

* configure: read and validate the parameters, load the model and the text encoder from local
  paths, warm them up, create the publishers. Failure (bad parameter, missing weights) → unconfigured.
* activate: subscriptions, pose source, services, diagnostics timer.
* deactivate: those are released and the CUDA cache emptied; the model stays loaded.
* cleanup / shutdown: the worker stops and the model is freed.

Threads: subscription callbacks only convert and buffer; one worker thread runs the network;
``~/query_objects`` has its own callback group and answers from the latest immutable snapshot, so it
never waits for inference (MultiThreadedExecutor).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rcl_interfaces.msg import SetParametersResult
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from ..pipeline.frames import Frame
from ..pipeline.input_health import InputHealth
from ..pipeline.intake import prepare_frame
from ..pipeline.loading import gpu_memory, load_reconstructor, release_cuda_cache
from ..pipeline.frame_buffer import FrameBuffer
from .diagnostics import diagnostics_message
from .frame_input import FrameInput
from .log_forwarding import forward_core_logs, stop_forwarding
from .messages import camera_info_to_k, image_to_depth, image_to_rgb, seconds_to_stamp, stamp_to_seconds
from .params import RUNTIME_PARAMETERS, config_from_node, config_from_values, declare_parameters, leaves
from .poses import make_pose_source
from .query_service import answer
from .scene_publisher import ScenePublisher


class Eps3dNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("eps3d_node", **kwargs)
        declare_parameters(self)
        self.declare_parameter("autostart", True)
        self.declare_parameter("input_qos", "sensor_data")  # or "reliable"
        self.config = None
        self.pipeline = None  # the loaded model pieces (see _load_pipeline)
        self.buffer: FrameBuffer | None = None
        self.worker = None
        self.scenes: ScenePublisher | None = None
        self.snapshot = None  # latest SceneSnapshot; replaced atomically, never mutated
        self._entities: list = []
        self._input: FrameInput | None = None
        self._health: InputHealth | None = None
        self._warned: dict[str, float] = {}  # problem key -> monotonic time it was last logged
        self._poses = None
        self._stats = {"frames": 0, "bad_input": 0, "failures": 0, "last_error": "",
                       "convert_s": 0.0, "publish_s": 0.0}  # last frame's conversion, last scene's publishing
        self._query_group = MutuallyExclusiveCallbackGroup()
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._misc_group = ReentrantCallbackGroup()
        self.add_on_set_parameters_callback(self._validate_parameters)
        self._log_handler = forward_core_logs(self.get_logger())

    # ------------------------------------------------------------------------- lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.pipeline = load_reconstructor(config_from_node(self))
            self.config = self.pipeline.config  # resolved: what the model folder filled, what the user gave
        except Exception as e:  # noqa: BLE001 - every failure is reported and leaves the node unconfigured
            self.get_logger().error(f"configure failed: {e}")
            self.pipeline = self.config = None
            return TransitionCallbackReturn.FAILURE
        from ..pipeline.worker import InferenceWorker

        self.buffer = FrameBuffer(self.config.pipeline)
        self.worker = InferenceWorker(self.pipeline, self._on_result, self._on_error)
        self.scenes = ScenePublisher(self)
        self._diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.get_logger().info("configured")
        return super().on_configure(state)

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        p = self.config.pipeline
        qos = qos_profile_sensor_data if self.get_parameter("input_qos").value == "sensor_data" else 10
        self._poses = make_pose_source(self, self.config.output.map_frame, callback_group=self._input_group)
        self._health = InputHealth({}, p.use_depth, p.sync_slop)
        self._input = FrameInput(self, self._on_frames, p.use_depth, qos, p.sync_slop, p.sync_queue_size,
                                 callback_group=self._input_group, on_message=self._health.received,
                                 on_synchronised=self._health.synchronised)
        self._health.topics = dict(self._input.topics)
        from eps3d_ros.srv import QueryObjects

        self._entities = [
            self.create_service(QueryObjects, "~/query_objects", self._on_query, callback_group=self._query_group),
            self.create_service(Trigger, "~/reconstruct", self._on_reconstruct, callback_group=self._misc_group),
            self.create_service(Trigger, "~/reset", self._on_reset, callback_group=self._misc_group),
            self.create_timer(1.0, self._publish_diagnostics, callback_group=self._misc_group),
        ]
        topics = ", ".join(self._input.topics.values())
        self.get_logger().info(f"active: {topics} (depth: {p.use_depth}), sync by {self._input.backend}, poses from "
                               f"{self._poses.kind}, network input fitted into {p.image_height}x{p.image_width}")
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._release_inputs()
        release_cuda_cache()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        return super().on_cleanup(state)

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._release_inputs()
        self._teardown()
        return super().on_shutdown(state)

    def destroy_node(self) -> None:
        stop_forwarding(self._log_handler)
        super().destroy_node()

    def autostart(self) -> None:
        if self.get_parameter("autostart").value:
            self.trigger_configure()
            if self.config is not None:
                self.trigger_activate()

    def _release_inputs(self) -> None:
        for e in self._entities:
            (self.destroy_timer if hasattr(e, "timer_period_ns") else self.destroy_service)(e)
        self._entities = []
        if self._input is not None:
            self._input.destroy()
            self._input = None
        if self._poses is not None:
            self._poses.destroy()
            self._poses = None
        self._health = None

    def _teardown(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=30.0)
        self.worker = self.pipeline = self.snapshot = self.buffer = None
        release_cuda_cache()

    # ---------------------------------------------------------------------------- input
    def _on_frames(self, rgb_msg, info_msg, depth_msg=None) -> None:
        """Convert, attach the pose, buffer; submit a window when enough new frames arrived."""
        p = self.config.pipeline
        stamp = stamp_to_seconds(rgb_msg.header.stamp)
        health = self._health
        t0 = time.perf_counter()
        try:
            rgb = image_to_rgb(rgb_msg)
            depth = None
            if depth_msg is not None:
                depth = image_to_depth(depth_msg, p.depth_scale, p.depth_min, p.depth_max)
            K = camera_info_to_k(info_msg, rgb.shape[0], rgb.shape[1])
            frame_id = rgb_msg.header.frame_id.lstrip("/") or info_msg.header.frame_id.lstrip("/")
            pose = self._poses.lookup(frame_id, stamp) if self._poses is not None else None
            # kept at the network's size (aspect kept, intrinsics exact): the buffer never holds camera resolution
            frame = prepare_frame(Frame(stamp=stamp, rgb=rgb, K=K, frame_id=frame_id, depth=depth, pose=pose),
                                  self.pipeline.input_box)
        except ValueError as e:
            self._stats["bad_input"] += 1
            self._stats["last_error"] = str(e)
            if health is not None:
                health.refused("bad_input", str(e))
            self.get_logger().error(f"frame at {stamp:.3f} dropped: {e}", throttle_duration_sec=2.0)
            return
        self._stats["convert_s"] = time.perf_counter() - t0
        if health is not None:
            (health.without_pose if pose is None else health.with_pose)(frame_id)
        result = self.buffer.offer(frame)
        if result.message:  # a refusal, or what accepting it caused (size change, time jump)
            self.get_logger().warning(result.message, throttle_duration_sec=2.0)
        if not result.accepted:
            if health is not None:
                health.refused(result.reason, result.message)
            return
        if health is not None:
            health.used(stamp)
        self._stats["frames"] += 1
        if self.buffer.ready():
            self.worker.submit(self.buffer.select_window())

    # ---------------------------------------------------------------------------- results
    def _on_result(self, snapshot) -> None:
        self.snapshot = snapshot
        if self.scenes is not None:
            out = self.config.output
            t0 = time.perf_counter()
            self.scenes.publish(snapshot, out.max_cloud_points, out.min_opacity)
            self._stats["publish_s"] = time.perf_counter() - t0
        note = "" if snapshot.scale_known else " (scale unknown: camera optical frame)"
        self.get_logger().info(f"scene with {len(snapshot.scene.objects)} objects in '{snapshot.frame_id}' "
                               f"in {snapshot.timings.get('total', float('nan')):.2f} s{note}")
        if snapshot.alignment.warning:
            self.get_logger().warning(snapshot.alignment.warning, throttle_duration_sec=10.0)

    def _on_error(self, error: Exception, frames) -> None:
        self._stats["failures"] += 1
        self._stats["last_error"] = f"{type(error).__name__}: {error}"
        self.get_logger().error(f"reconstruction of {len(frames)} frames failed: {self._stats['last_error']}")

    # ---------------------------------------------------------------------------- services
    def _on_query(self, request, response):
        return answer(self.snapshot, request, response, _object_type(), self._frame_transform,
                      lambda frame, t: Header(frame_id=frame, stamp=seconds_to_stamp(t)))

    def _frame_transform(self, target: str, source: str, stamp: float):
        """Points in ``source`` → ``target`` through the map frame; None when a pose is unknown."""
        def to_map(frame: str):
            if frame == self.config.output.map_frame:
                return np.eye(4)
            return self._poses.lookup(frame, stamp) if self._poses is not None else None

        a, b = to_map(target), to_map(source)
        return None if a is None or b is None else np.linalg.inv(a) @ b

    def _on_reconstruct(self, request, response):
        frames = self.buffer.select_window() if self.buffer is not None and len(self.buffer) else []
        if not frames:
            response.success, response.message = False, "no frames buffered yet"
        else:
            self.worker.submit(frames)
            response.success, response.message = True, f"reconstruction of {len(frames)} keyframes queued"
        return response

    def _on_reset(self, request, response):
        self.buffer.reset()
        if self._poses is not None:
            self._poses.clear()
        frame = self.snapshot.frame_id if self.snapshot is not None else self.config.output.map_frame
        self.snapshot = None
        self.scenes.clear(frame)
        response.success, response.message = True, "frames and scene cleared"
        return response

    # ---------------------------------------------------------------------------- parameters
    def _validate_parameters(self, params: list[Parameter]) -> SetParametersResult:
        if self.config is None:
            return SetParametersResult(successful=True)  # checked on configure
        values = {k: v for k, v in leaves(self.config).items()}
        changed = {p.name: p.value for p in params if p.name in values}
        try:
            new = config_from_values({**values, **changed})
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        live = {k for k in changed if k in RUNTIME_PARAMETERS}
        if live:
            self.config.panoptic, self.config.output = new.panoptic, new.output
            self.config.pipeline.every_n_frames = new.pipeline.every_n_frames
            if live & {"panoptic.vocabulary", "panoptic.stuff"} and self.snapshot is not None:
                threading.Thread(target=self._relabel, daemon=True).start()
        if set(changed) - live:
            self.get_logger().info(f"{sorted(set(changed) - live)} apply on the next configure")
        return SetParametersResult(successful=True)

    def _relabel(self) -> None:
        """Apply a new vocabulary to the latest scene without running the network."""
        snap = self.snapshot
        if snap is None:
            return
        try:
            p = self.config.panoptic
            scene = snap.scene.with_vocabulary(p.vocabulary, stuff=p.stuff)
        except Exception as e:  # noqa: BLE001
            self.get_logger().error(f"relabelling failed: {e}")
            return
        import dataclasses

        self._on_result(dataclasses.replace(snap, scene=scene))

    # ---------------------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        problems = []
        if self._health is not None:
            p = self.config.pipeline
            problems = [m for _, m in self._input_problems()]
            self._log_problems()
        values = {**self._stats, **(self.buffer.stats() if self.buffer else {}),
                  **{f"worker_{k}": v for k, v in (self.worker.stats() if self.worker else {}).items()},
                  **(self._health.stats() if self._health else {}),
                  "sync_dropped": self._input.dropped if self._input else 0, **gpu_memory()}
        self._diag.publish(diagnostics_message(values, self.snapshot, self._stats["last_error"],
                                               bool(self._stats["failures"] or self._stats["bad_input"]),
                                               self.get_clock().now().to_msg(), problems))

    def _input_problems(self) -> list[tuple[str, str]]:
        seen = bool(self._poses is not None and self._poses.frames())
        return self._health.problems(self.config.output.map_frame, self.config.pipeline.every_n_frames, seen)

    def _log_problems(self, every_s: float = 30.0) -> None:
        """Each input problem once, then again every ``every_s`` seconds while it lasts."""
        now = time.monotonic()
        for key, message in self._input_problems():
            if now - self._warned.get(key, -float("inf")) >= every_s:
                self._warned[key] = now
                self.get_logger().warning(message)


def _object_type():
    from eps3d_ros.msg import Object3D

    return Object3D


def main(args=None) -> None:
    rclpy.init(args=args)
    node = Eps3dNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    node.autostart()
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._release_inputs()
        node._teardown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
