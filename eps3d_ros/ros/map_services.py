"""The node's services over its session: ``~/query_objects`` (answered by :mod:`.query_service` in a thread of
its own, :mod:`.service_thread`, so that a query never waits for the node's executor), and ``~/reconstruct``,
``~/reset``, ``~/save_map``, ``~/load_map`` in the node's executor.

They live from activate to cleanup and are *bound* to the session on activate and unbound on deactivate;
unbound they answer ``success: false`` with the reason. (Destroying a service on deactivate races with a
callback of it that is still running in another executor thread: rclpy then sends the response through a
destroyed handle, and the exception ends the executor's spin — the node died in the soak test that way.)

Every answer is ``success`` + a message that says what happened or what was wrong (a missing folder, a file
that is not a map, a map of another frame ...); nothing a client sends stops the node.
"""

from __future__ import annotations

from pathlib import Path

from std_msgs.msg import Header
from std_srvs.srv import Trigger

from ..io.map_paths import map_directory, resolve_map_path
from ..pipeline.map_query import printable
from .messages import seconds_to_stamp
from .poses import frame_transform
from .query_service import answer
from .service_thread import ServiceThread


class MapServices:
    def __init__(self, node, misc_group) -> None:
        from eps3d_ros.msg import Object3D
        from eps3d_ros.srv import LoadMap, QueryObjects, SaveMap

        self._node = node
        self._bound: tuple | None = None  # (session, poses) while active
        self._Object3D = Object3D
        self._query = ServiceThread(node, QueryObjects, "~/query_objects", self._unless_inactive(self._answer),
                                    thread_name="eps3d-queries")
        self._services = [
            node.create_service(Trigger, "~/reconstruct", self._unless_inactive(self._reconstruct),
                                callback_group=misc_group),
            node.create_service(Trigger, "~/reset", self._unless_inactive(self._reset), callback_group=misc_group),
            node.create_service(SaveMap, "~/save_map", self._unless_inactive(self._save), callback_group=misc_group),
            node.create_service(LoadMap, "~/load_map", self._unless_inactive(self._load), callback_group=misc_group),
        ]

    def bind(self, session, poses) -> None:
        self._bound = (session, poses)

    def unbind(self) -> None:
        self._bound = None

    def destroy(self) -> None:
        """On cleanup and with the node."""
        self._bound = None
        if self._query is not None and not self._query.destroy():
            self._node.get_logger().warning("~/query_objects: its thread did not stop within 5 s")
        self._query = None
        for s in self._services:
            self._node.destroy_service(s)
        self._services = []

    def _unless_inactive(self, handler):
        def serve(request, response):
            bound = self._bound  # one read: deactivate may unbind meanwhile
            if bound is None:
                response.success = False
                response.message = ("eps3d_node is not active: configure and activate it (ros2 lifecycle set "
                                    f"{self._node.get_fully_qualified_name()} activate)")
                return response
            return handler(*bound, request, response)
        return serve

    def _answer(self, session, poses, request, response):
        map_frame = session.config.output.map_frame
        return answer(session, request, response, self._Object3D,
                      lambda target, source, stamp: frame_transform(poses, map_frame, target, source, stamp),
                      lambda frame, t: Header(frame_id=frame, stamp=seconds_to_stamp(t)))

    def _reconstruct(self, session, poses, request, response):
        response.success, response.message = session.reconstruct_now()
        return response

    def _reset(self, session, poses, request, response):
        session.reset()
        response.success, response.message = True, "frames, map and scene cleared"
        return response

    def _save(self, session, poses, request, response):
        try:
            path = self._map_path(session, request.path, writing=True)
            written = session.save_map(path)
        except (OSError, ValueError) as e:  # MapPathError and SceneFileError are ValueErrors
            response.success, response.message = False, f"cannot save the map to '{printable(request.path)}': {e}"
            return response
        n = len(session.map.objects)
        response.success, response.message = True, f"map with {n} objects written to {written}"
        return response

    def _load(self, session, poses, request, response):
        try:
            path = self._map_path(session, request.path, writing=False)
            loaded = session.load_map(path)
        except (OSError, ValueError) as e:
            response.success, response.message = False, f"cannot load '{printable(request.path)}': {e}"
            return response
        response.success = True
        response.message = f"map with {len(loaded.objects)} objects loaded from {path} (frame '{loaded.frame_id}')"
        return response

    @staticmethod
    def _map_path(session, requested: str, writing: bool) -> Path:
        """The request's path inside ``map.directory`` (io/map_paths.py); a refusal names the directory."""
        m = session.config.map
        return resolve_map_path(requested, map_directory(m.directory), m.allow_any_path, writing)
