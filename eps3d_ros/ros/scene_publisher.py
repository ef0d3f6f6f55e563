"""Publishes a scene snapshot: semantic and instance clouds, objects, markers (and vision_msgs when present).

All outputs are reliable + transient_local (depth 1), so rviz gets the last scene whatever QoS it
subscribes with, and a late subscriber still receives it.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ..pipeline.clouds import cloud_points
from .messages import markers, object_message, point_cloud, seconds_to_stamp

LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


class ScenePublisher:
    def __init__(self, node) -> None:
        from eps3d_ros.msg import Object3D, ObjectArray

        self._Object3D, self._ObjectArray = Object3D, ObjectArray
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
        self._node = node

    def header(self, snapshot) -> Header:
        return Header(frame_id=snapshot.frame_id, stamp=seconds_to_stamp(snapshot.stamp))

    def publish(self, snapshot, max_points: int, min_opacity: float) -> None:
        header = self.header(snapshot)
        scene = snapshot.scene
        self.semantic.publish(point_cloud(cloud_points(scene, "semantic", max_points, min_opacity), header))
        self.instance.publish(point_cloud(cloud_points(scene, "instance", max_points, min_opacity), header))
        self.objects.publish(self.object_array(snapshot))
        self.markers.publish(markers(scene.objects, header))
        if self.detections is not None:
            self.detections.publish(self._detections(snapshot, header))

    def object_array(self, snapshot):
        msg = self._ObjectArray(header=self.header(snapshot), scale_known=bool(snapshot.scale_known))
        msg.objects = [object_message(o, self._Object3D) for o in snapshot.scene.objects]
        return msg

    def clear(self, frame_id: str) -> None:
        """Remove the scene from rviz (after ~/reset)."""
        self.markers.publish(markers([], Header(frame_id=frame_id)))

    def _detections(self, snapshot, header: Header):
        from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

        from .messages import pose_from_box

        out = Detection3DArray(header=header)
        for o in snapshot.scene.objects:
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
