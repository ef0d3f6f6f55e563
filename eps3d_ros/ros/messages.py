"""Conversions between ROS messages and the core's numpy/dataclass values (no node state here).

In: a synchronised ``Image`` + ``CameraInfo`` (+ depth ``Image``) → :class:`~eps3d_ros.frames.Frame`
(:func:`frame_from_messages`). Out: a frame → the messages a camera driver and TF publish
(:func:`frame_messages`: the demo, the tests and the benchmarks feed the node with it), clouds, objects, markers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped, Vector3
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ..conventions import matrix_to_quat_xyzw
from ..frames.frame import Frame, check_intrinsics
from ..frames.images import decode_color, decode_depth
from ..panoptic.clouds import label_color

_FIELD_TYPES = {np.dtype("float32"): PointField.FLOAT32, np.dtype("uint32"): PointField.UINT32,
                np.dtype("float64"): PointField.FLOAT64, np.dtype("int32"): PointField.INT32,
                np.dtype("uint8"): PointField.UINT8, np.dtype("uint16"): PointField.UINT16}


# ------------------------------------------------------------------------------------- time
def stamp_to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(t: float) -> Time:
    sec = int(np.floor(t))
    return Time(sec=sec, nanosec=min(int(round((t - sec) * 1e9)), 999_999_999))


# ----------------------------------------------------------------------------------- inputs
def image_to_rgb(msg: Image) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB; unsupported encodings and truncated data raise ``ValueError``."""
    return decode_color(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))


def image_to_depth(msg: Image, depth_scale: float, depth_min: float, depth_max: float) -> np.ndarray:
    """``[H, W]`` float32 metres, NaN where invalid (0, NaN, out of range)."""
    return decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian),
                        depth_scale=depth_scale, depth_min=depth_min, depth_max=depth_max)


def camera_info_to_k(msg: CameraInfo, image_height: int, image_width: int) -> np.ndarray:
    """Pixel intrinsics ``[3, 3]`` of the image the info belongs to, checked against the image size and by the
    core's :func:`~eps3d_ros.frames.frame.check_intrinsics`."""
    if msg.width and msg.height and (msg.width, msg.height) != (image_width, image_height):
        raise ValueError(f"camera_info is for {msg.width}x{msg.height} but the image is {image_width}x{image_height}")
    return check_intrinsics(msg.k, image_height, image_width, "camera_info")


def frame_from_messages(rgb: Image, info: CameraInfo, depth: Image | None, pipeline: Any, poses: Any = None,
                        camera: str = "") -> Frame:
    """One synchronised set of camera ``camera`` → a :class:`~eps3d_ros.frames.frame.Frame` (pose looked up at the
    image stamp when ``poses`` is given); anything unusable raises ``ValueError`` naming the problem."""
    stamp = stamp_to_seconds(rgb.header.stamp)
    image = image_to_rgb(rgb)
    d = None if depth is None else image_to_depth(depth, pipeline.depth_scale, pipeline.depth_min, pipeline.depth_max)
    K = camera_info_to_k(info, image.shape[0], image.shape[1])
    frame_id = rgb.header.frame_id.lstrip("/") or info.header.frame_id.lstrip("/")
    if not frame_id:
        raise ValueError("the image and its camera_info have no header.frame_id: the camera frame is unknown")
    pose = poses.lookup(frame_id, stamp) if poses is not None else None
    return Frame(stamp=stamp, rgb=image, K=K, frame_id=frame_id, depth=d, pose=pose, camera=camera)


@dataclass
class FrameMessages:
    """One frame as a camera driver and TF publish it (one header for all)."""

    image: Image
    info: CameraInfo
    depth: Image | None  # 32FC1 metres, 0 where invalid
    pose: TransformStamped | None  # map_frame → the camera frame (TF's meaning)


def image_message(rgb: np.ndarray, header: Header, encoding: str = "rgb8") -> Image:
    """``[H, W, 3]`` uint8 as an ``Image`` of ``encoding`` (3 bytes per pixel, rows unpadded)."""
    H, W = rgb.shape[:2]
    return Image(header=header, height=H, width=W, encoding=encoding, step=3 * W,
                 data=np.ascontiguousarray(rgb).tobytes())


def depth_message(depth: np.ndarray, header: Header) -> Image:
    """``[H, W]`` metres as a 32FC1 ``Image``; NaN (invalid) becomes 0, as depth drivers send it."""
    d = np.ascontiguousarray(np.nan_to_num(np.asarray(depth, np.float32), nan=0.0))
    return Image(header=header, height=d.shape[0], width=d.shape[1], encoding="32FC1", step=4 * d.shape[1],
                 data=d.tobytes())


def camera_info_message(K: np.ndarray, height: int, width: int, header: Header) -> CameraInfo:
    info = CameraInfo(header=header, height=int(height), width=int(width))
    info.k = np.asarray(K, np.float64).reshape(-1).tolist()
    return info


def transform_message(matrix: np.ndarray, parent: str, child: str, stamp: Time) -> TransformStamped:
    """A rigid ``[4, 4]`` (child → parent, TF's meaning) as a ``TransformStamped``."""
    t = TransformStamped()
    t.header.stamp, t.header.frame_id, t.child_frame_id = stamp, parent, child
    tr, r = t.transform.translation, t.transform.rotation
    tr.x, tr.y, tr.z = (float(v) for v in matrix[:3, 3])
    r.x, r.y, r.z, r.w = matrix_to_quat_xyzw(_torch(np.asarray(matrix)[:3, :3])).tolist()
    return t


def frame_messages(frame: Frame, stamp: float | None = None, map_frame: str = "map") -> FrameMessages:
    """``frame`` (its ``K`` is CameraInfo's convention) as rgb8 image, camera_info, depth and pose messages, stamped
    ``stamp`` (default the frame's)."""
    header = Header(stamp=seconds_to_stamp(frame.stamp if stamp is None else stamp), frame_id=frame.frame_id)
    pose = None if frame.pose is None else transform_message(frame.pose, map_frame, frame.frame_id, header.stamp)
    return FrameMessages(image_message(frame.rgb, header), camera_info_message(frame.K, *frame.size, header),
                         None if frame.depth is None else depth_message(frame.depth, header), pose)


# ---------------------------------------------------------------------------------- outputs
def point_cloud(points: np.ndarray, header: Header) -> PointCloud2:
    """A ``PointCloud2`` from a structured array (one field per dtype field, packed, little-endian)."""
    fields = []
    for name in points.dtype.names:
        dt, offset = points.dtype.fields[name][:2]
        fields.append(PointField(name=name, offset=offset, datatype=_FIELD_TYPES[dt.newbyteorder("=")], count=1))
    msg = PointCloud2(header=header, height=1, width=int(points.shape[0]), fields=fields, is_bigendian=False,
                      point_step=points.dtype.itemsize, row_step=points.dtype.itemsize * int(points.shape[0]),
                      is_dense=True)
    msg.data = np.ascontiguousarray(points).tobytes()
    return msg


def cloud_to_array(msg: PointCloud2) -> np.ndarray:
    """Structured array of a ``PointCloud2`` built by :func:`point_cloud` (and any packed cloud)."""
    inverse = {v: k for k, v in _FIELD_TYPES.items()}
    dtype = np.dtype({"names": [f.name for f in msg.fields], "formats": [inverse[f.datatype] for f in msg.fields],
                      "offsets": [f.offset for f in msg.fields], "itemsize": msg.point_step})
    return np.frombuffer(bytes(msg.data), dtype=dtype, count=msg.width * msg.height)


def pose_from_box(center: np.ndarray, rotation: np.ndarray) -> Pose:
    q = matrix_to_quat_xyzw(_torch(rotation)).tolist()
    return Pose(position=Point(x=float(center[0]), y=float(center[1]), z=float(center[2])),
                orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))


def object_message(obj, msg_type):
    """An ``eps3d_ros/Object3D`` from a :class:`~eps3d_ros.mapping.MapObject` (or a window's
    :class:`~eps3d_ros.panoptic.SceneObject`: seen once, no stamp of its own)."""
    m = msg_type()
    m.id = int(obj.id)
    m.label = obj.label
    m.score = float(obj.score)
    m.is_thing = bool(obj.is_thing)
    m.centroid = _point(obj.centroid)
    m.box_pose = pose_from_box(obj.obb.center, obj.obb.rotation)
    m.box_size = Vector3(x=float(obj.obb.extent[0]), y=float(obj.obb.extent[1]), z=float(obj.obb.extent[2]))
    m.aabb_min = _point(obj.aabb_min)
    m.aabb_max = _point(obj.aabb_max)
    m.point_count = int(getattr(obj, "point_count", getattr(obj, "num_points", 0)))
    m.observations = int(getattr(obj, "observations", 1))
    last_seen = getattr(obj, "last_seen", None)
    if last_seen is not None and np.isfinite(last_seen):
        m.last_seen = seconds_to_stamp(float(last_seen))
    return m


def markers(objects, header: Header, vocabulary=(), namespace: str = "eps3d") -> MarkerArray:
    """DELETEALL, then per object a box (id 2k) and a text label (id 2k+1) for object id k: stable marker ids
    for stable object ids, so rviz updates an object in place and forgets the ones that left."""
    vocab = list(vocabulary)
    out = [Marker(header=header, ns=namespace, action=Marker.DELETEALL)]
    for o in objects:
        label_id = vocab.index(o.label) if o.label in vocab else int(getattr(o, "label_id", -1))
        r, g, b = (c / 255.0 for c in (label_color(label_id)))
        box = Marker(header=header, ns=namespace, id=2 * int(o.id), type=Marker.CUBE, action=Marker.ADD,
                     pose=pose_from_box(o.obb.center, o.obb.rotation),
                     scale=Vector3(x=_size(o.obb.extent[0]), y=_size(o.obb.extent[1]), z=_size(o.obb.extent[2])),
                     color=ColorRGBA(r=r, g=g, b=b, a=0.35))
        text = Marker(header=header, ns=namespace, id=2 * int(o.id) + 1, type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, text=f"{o.label} #{o.id} {o.score:.2f}",
                      scale=Vector3(x=0.0, y=0.0, z=0.05), color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0))
        text.pose.position = _point(o.centroid)
        text.pose.orientation.w = 1.0
        out.append(box)
        out.append(text)
    return MarkerArray(markers=out)


def _point(p) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def _size(v: float) -> float:
    return max(float(v), 1e-3)  # rviz refuses zero-size boxes (flat stuff regions)


def _torch(a: np.ndarray):
    import torch

    return torch.from_numpy(np.array(a, dtype=np.float64))  # a copy: map objects hold read-only arrays
