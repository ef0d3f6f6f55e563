"""Publishes the object map: semantic and instance clouds, objects, markers (and vision_msgs when present).

All outputs are reliable + transient_local (depth 1), so rviz gets the current map whatever QoS it
subscribes with, and a late subscriber still receives it. Marker ids derive from the map's stable object
ids (box ``2 id``, label ``2 id + 1``), so rviz updates an object in place; a DELETEALL first removes
the objects that left the map. :meth:`ScenePublisher.destroy` removes every publisher it created.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ..panoptic.clouds import cloud_points
from .messages import markers, object_message, point_cloud, seconds_to_stamp

LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


class ScenePublisher:
    def __init__(self, node) -> None:
        from eps3d_ros.msg import Object3D, ObjectArray

        self._Object3D, self._ObjectArray = Object3D, ObjectArray
        self._node = node
        self.semantic = node.create_lifecycle_publisher(PointCloud2, "~/semantic_cloud", LATCHED)
        self.instance = node.create_lifecycle_publisher(PointCloud2, "~/instance_cloud", LATCHED)
        self.objects = node.create_lifecycle_publisher(ObjectArray, "~/objects", LATCHED)
        self.markers = node.create_lifecycle_publisher(MarkerArray, "~/markers", LATCHED)
        self.detections = None
        try:
            from vision_msgs.msg import Detection3DArray

            self.detections = node.create_lifecycle_publisher(Detection3DArray, "~/detections", LATCHED)
        except ImportError:
            pass

    def publishers(self) -> list:
        return [p for p in (self.semantic, self.instance, self.objects, self.markers, self.detections) if p]

    def destroy(self) -> None:
        for p in self.publishers():
            self._node.destroy_publisher(p)
        self.semantic = self.instance = self.objects = self.markers = self.detections = None

    def publish(self, session, max_points: int, min_opacity: float) -> None:
        """The session's map as it is now (called after each update)."""
        m = session.map
        header = Header(frame_id=m.frame_id, stamp=seconds_to_stamp(m.stamp if m.stamp == m.stamp else 0.0))
        objects = m.objects
        if m.prototypes is not None:
            scene = m.to_scene()
            self.semantic.publish(point_cloud(cloud_points(scene, "semantic", max_points, min_opacity), header))
            self.instance.publish(point_cloud(cloud_points(scene, "instance", max_points, min_opacity), header))
        msg = self._ObjectArray(header=header, scale_known=bool(session.scale_known))
        msg.objects = [object_message(o, self._Object3D) for o in objects]
        self.objects.publish(msg)
        self.markers.publish(markers(objects, header, m.vocabulary))
        if self.detections is not None:
            self.detections.publish(self._detections(objects, header))

    def _detections(self, objects, header: Header):
        from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

        from .messages import pose_from_box

        out = Detection3DArray(header=header)
        for o in objects:
            d = Detection3D(header=header, id=str(o.id))
            d.bbox.center = pose_from_box(o.obb.center, o.obb.rotation)
            d.bbox.size.x, d.bbox.size.y, d.bbox.size.z = (float(v) for v in o.obb.extent)
            h = ObjectHypothesisWithPose()
            h.hypothesis.class_id = o.label
            h.hypothesis.score = float(o.score)
            h.pose.pose = d.bbox.center
            d.results.append(h)
            out.detections.append(d)
        return out
