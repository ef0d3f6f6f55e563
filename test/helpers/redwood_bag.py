"""Build a rosbag2 (rosbags) from an RGB-D sequence and replay it with rclpy (test helper).

Topics: ``/camera/rgb/image`` (rgb8), ``/camera/depth/image`` (16UC1, mm), ``/camera/rgb/camera_info``
and ``/tf`` (map → camera_rgb_optical_frame from the camera-to-world poses).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, Writer
from rosbags.typesys import Stores, get_typestore

CAMERA_FRAME = "camera_rgb_optical_frame"
TOPICS = {"rgb": "/camera/rgb/image", "depth": "/camera/depth/image", "info": "/camera/rgb/camera_info", "tf": "/tf"}


def write_rgbd_bag(seq, path: Path, map_frame: str = "map", t0: float = 100.0) -> Path:
    from eps3d_ros.conventions import matrix_to_quat_xyzw

    import torch

    ts = get_typestore(Stores.ROS2_KILTED)
    T = ts.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
    with Writer(path, version=9) as w:
        conns = {k: w.add_connection(TOPICS[k], m, typestore=ts) for k, m in (
            ("rgb", "sensor_msgs/msg/Image"), ("depth", "sensor_msgs/msg/Image"),
            ("info", "sensor_msgs/msg/CameraInfo"), ("tf", "tf2_msgs/msg/TFMessage"))}
        H, W = seq.depth.shape[1:]
        for i, stamp in enumerate(seq.stamps + t0):
            sec = int(stamp)
            header = Header(stamp=Time(sec=sec, nanosec=int(round((stamp - sec) * 1e9))), frame_id=CAMERA_FRAME)
            ns = int(round(stamp * 1e9))
            rgb = T["sensor_msgs/msg/Image"](header=header, height=H, width=W, encoding="rgb8", is_bigendian=0,
                                             step=3 * W, data=np.ascontiguousarray(seq.rgb[i]).reshape(-1))
            mm = np.nan_to_num(seq.depth[i] * 1000.0, nan=0.0).round().astype("<u2")
            depth = T["sensor_msgs/msg/Image"](header=header, height=H, width=W, encoding="16UC1", is_bigendian=0,
                                               step=2 * W, data=mm.view(np.uint8).reshape(-1))
            info = T["sensor_msgs/msg/CameraInfo"](
                header=header, height=H, width=W, distortion_model="plumb_bob", d=np.zeros(5),
                k=seq.K.reshape(-1), r=np.eye(3).reshape(-1),
                p=np.concatenate([seq.K, np.zeros((3, 1))], 1).reshape(-1), binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            q = matrix_to_quat_xyzw(torch.from_numpy(seq.poses[i][:3, :3])).tolist()
            tr = seq.poses[i][:3, 3]
            tf = T["tf2_msgs/msg/TFMessage"](transforms=[T["geometry_msgs/msg/TransformStamped"](
                header=Header(stamp=header.stamp, frame_id=map_frame), child_frame_id=CAMERA_FRAME,
                transform=T["geometry_msgs/msg/Transform"](
                    translation=T["geometry_msgs/msg/Vector3"](x=tr[0], y=tr[1], z=tr[2]),
                    rotation=T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))])
            for key, msg in (("tf", tf), ("info", info), ("depth", depth), ("rgb", rgb)):
                w.write(conns[key], ns, ts.serialize_cdr(msg, conns[key].msgtype))
    return path


def read_bag(path: Path):
    """``(topic, stamp_ns, rclpy_message)`` in bag order; ``/tf`` becomes TransformStamped messages."""
    from geometry_msgs.msg import TransformStamped
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image

    ts = get_typestore(Stores.ROS2_KILTED)
    types = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CameraInfo": CameraInfo}
    with Reader(path) as r:
        for conn, t, raw in r.messages():
            if conn.msgtype in types:
                yield conn.topic, t, deserialize_message(raw, types[conn.msgtype])
            elif conn.msgtype == "tf2_msgs/msg/TFMessage":  # no tf2_msgs wheel: hand over as TransformStamped
                for tr in ts.deserialize_cdr(raw, conn.msgtype).transforms:
                    m = TransformStamped()
                    m.header.frame_id, m.child_frame_id = tr.header.frame_id, tr.child_frame_id
                    m.header.stamp.sec, m.header.stamp.nanosec = tr.header.stamp.sec, tr.header.stamp.nanosec
                    for a in ("x", "y", "z"):
                        setattr(m.transform.translation, a, getattr(tr.transform.translation, a))
                    for a in ("x", "y", "z", "w"):
                        setattr(m.transform.rotation, a, getattr(tr.transform.rotation, a))
                    yield "/tf", t, m
