"""The node's services over its session: ``~/query_objects``, ``~/reconstruct``, ``~/reset``, ``~/save_map``,
``~/load_map``. Created on activate, destroyed on deactivate (:meth:`MapServices.destroy`).

Every answer is ``success`` + a message that says what happened or what was wrong (a missing folder, a file
that is not a map, a map of another frame ...); nothing a client sends stops the node.
"""

from __future__ import annotations

from pathlib import Path

from std_msgs.msg import Header
from std_srvs.srv import Trigger

from .messages import printable, seconds_to_stamp
from .poses import frame_transform
from .query_service import answer


class MapServices:
    def __init__(self, node, session, poses, query_group, misc_group) -> None:
        from eps3d_ros.msg import Object3D
        from eps3d_ros.srv import LoadMap, QueryObjects, SaveMap

        self._node = node
        self._session = session
        self._poses = poses
        self._Object3D = Object3D
        self._services = [
            node.create_service(QueryObjects, "~/query_objects", self._query, callback_group=query_group),
            node.create_service(Trigger, "~/reconstruct", self._reconstruct, callback_group=misc_group),
            node.create_service(Trigger, "~/reset", self._reset, callback_group=misc_group),
            node.create_service(SaveMap, "~/save_map", self._save, callback_group=misc_group),
            node.create_service(LoadMap, "~/load_map", self._load, callback_group=misc_group),
        ]

    def destroy(self) -> None:
        for s in self._services:
            self._node.destroy_service(s)
        self._services = []

    def _query(self, request, response):
        s = self._session
        return answer(s, request, response, self._Object3D,
                      lambda target, source, stamp: frame_transform(self._poses, s.config.output.map_frame, target,
                                                                    source, stamp),
                      lambda frame, t: Header(frame_id=frame, stamp=seconds_to_stamp(t)))

    def _reconstruct(self, request, response):
        response.success, response.message = self._session.reconstruct_now()
        return response

    def _reset(self, request, response):
        self._session.reset()
        response.success, response.message = True, "frames, map and scene cleared"
        return response

    def _save(self, request, response):
        path = Path(request.path.strip()).expanduser()
        if not request.path.strip():
            response.success, response.message = False, "empty path: give the map file to write, e.g. /tmp/room.eps3d"
            return response
        try:
            written = self._session.save_map(path)
        except (OSError, ValueError) as e:
            response.success, response.message = False, f"cannot save the map to {printable(str(path))}: {e}"
            return response
        n = len(self._session.map.objects)
        response.success, response.message = True, f"map with {n} objects written to {written}"
        return response

    def _load(self, request, response):
        path = Path(request.path.strip()).expanduser()
        if not request.path.strip():
            response.success, response.message = False, "empty path: give a map file written by ~/save_map"
            return response
        try:
            loaded = self._session.load_map(path)
        except (OSError, ValueError) as e:
            response.success, response.message = False, f"cannot load {printable(str(path))}: {e}"
            return response
        response.success = True
        response.message = f"map with {len(loaded.objects)} objects loaded from {path} (frame '{loaded.frame_id}')"
        return response
