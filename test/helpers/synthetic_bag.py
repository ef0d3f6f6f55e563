"""A rosbag2 of a synthetic scene (colour, depth, camera_info, TF) written with rosbags, for the bag reader and
``eps3d run --bag``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from eps3d_ros.conventions import matrix_to_quat_xyzw


def write_synthetic_bag(path: Path, scene, *, mcap: bool, colour_topics=("/cam/color/image/compressed",),
                         with_depth=True, with_tf=True):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    T = ts.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
    odom = np.eye(4)
    odom[:3, 3] = [0.5, -0.2, 0.1]
    plugin = StoragePlugin.MCAP if mcap else StoragePlugin.SQLITE3

    def tfm(parent, child, stamp, m):
        q = matrix_to_quat_xyzw(torch.from_numpy(m[:3, :3].copy())).tolist()
        return T["geometry_msgs/msg/TransformStamped"](
            header=Header(stamp=stamp, frame_id=parent), child_frame_id=child,
            transform=T["geometry_msgs/msg/Transform"](
                translation=T["geometry_msgs/msg/Vector3"](x=m[0, 3], y=m[1, 3], z=m[2, 3]),
                rotation=T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))

    with Writer(path, version=9, storage_plugin=plugin) as w:
        conns = {}
        for topic in colour_topics:
            kind = "sensor_msgs/msg/CompressedImage" if topic.endswith("compressed") else "sensor_msgs/msg/Image"
            conns[topic] = w.add_connection(topic, kind, typestore=ts)
        if with_depth:
            conns["depth"] = w.add_connection("/cam/depth/image", "sensor_msgs/msg/Image", typestore=ts)
        conns["info"] = w.add_connection("/cam/color/camera_info", "sensor_msgs/msg/CameraInfo", typestore=ts)
        if with_tf:
            conns["tf"] = w.add_connection("/tf", "tf2_msgs/msg/TFMessage", typestore=ts)
            conns["tf_static"] = w.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=ts)
        H, W = scene.rgb.shape[1:3]
        for i in range(scene.num_views):
            t = 50.0 + 0.5 * i
            stamp = Time(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
            ns = int(t * 1e9)
            header = Header(stamp=stamp, frame_id="cam_optical")
            if with_tf:
                if i == 0:
                    w.write(conns["tf_static"], ns, ts.serialize_cdr(T["tf2_msgs/msg/TFMessage"](
                        transforms=[tfm("map", "odom", stamp, odom)]), "tf2_msgs/msg/TFMessage"))
                local = np.linalg.inv(odom) @ scene.poses[i].astype(np.float64)
                w.write(conns["tf"], ns, ts.serialize_cdr(T["tf2_msgs/msg/TFMessage"](
                    transforms=[tfm("odom", "cam_optical", stamp, local)]), "tf2_msgs/msg/TFMessage"))
            K = scene.intrinsics[i].astype(np.float64).copy()
            K[:2, 2] -= 0.5
            info = T["sensor_msgs/msg/CameraInfo"](
                header=header, height=H, width=W, distortion_model="plumb_bob", d=np.zeros(5), k=K.reshape(-1),
                r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            w.write(conns["info"], ns, ts.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            if with_depth:
                d = scene.depth[i].astype("<f4")
                w.write(conns["depth"], ns, ts.serialize_cdr(T["sensor_msgs/msg/Image"](
                    header=header, height=H, width=W, encoding="32FC1", is_bigendian=0, step=4 * W,
                    data=d.view(np.uint8).reshape(-1)), "sensor_msgs/msg/Image"))
            for topic in colour_topics:
                if topic.endswith("compressed"):
                    buf = io.BytesIO()
                    Image.fromarray(scene.rgb[i]).save(buf, format="PNG")
                    msg = T["sensor_msgs/msg/CompressedImage"](header=header, format="rgb8; png compressed bgr8",
                                                               data=np.frombuffer(buf.getvalue(), np.uint8))
                    w.write(conns[topic], ns, ts.serialize_cdr(msg, "sensor_msgs/msg/CompressedImage"))
                else:
                    bgr = np.ascontiguousarray(scene.rgb[i][..., ::-1])
                    msg = T["sensor_msgs/msg/Image"](header=header, height=H, width=W, encoding="bgr8",
                                                     is_bigendian=0, step=3 * W, data=bgr.reshape(-1))
                    w.write(conns[topic], ns, ts.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    return path


def write_frames_bag(path: Path, frames, *, map_frame: str = "map") -> Path:
    """A rosbag2 (sqlite3) of :class:`~eps3d_ros.frames.frame.Frame` objects of several cameras, as their drivers
    record them: per camera ``/<camera>/image`` (rgb8), ``/<camera>/depth`` (32FC1, 0 where invalid) and
    ``/<camera>/camera_info`` (the frame's K), and ``/tf`` from ``map_frame`` to each frame's ``frame_id``."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    T = ts.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
    with Writer(path, version=9) as w:
        conns = {}

        def conn(topic: str, kind: str):
            if topic not in conns:
                conns[topic] = w.add_connection(topic, kind, typestore=ts)
            return conns[topic]

        for f in frames:
            sec = int(np.floor(f.stamp))
            stamp = Time(sec=sec, nanosec=int(round((f.stamp - sec) * 1e9)))
            ns, header, (H, W) = int(round(f.stamp * 1e9)), Header(stamp=stamp, frame_id=f.frame_id), f.rgb.shape[:2]
            q = matrix_to_quat_xyzw(torch.from_numpy(f.pose[:3, :3].astype(np.float64))).tolist()
            tf = T["geometry_msgs/msg/TransformStamped"](
                header=Header(stamp=stamp, frame_id=map_frame), child_frame_id=f.frame_id,
                transform=T["geometry_msgs/msg/Transform"](
                    translation=T["geometry_msgs/msg/Vector3"](x=f.pose[0, 3], y=f.pose[1, 3], z=f.pose[2, 3]),
                    rotation=T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))
            w.write(conn("/tf", "tf2_msgs/msg/TFMessage"), ns,
                    ts.serialize_cdr(T["tf2_msgs/msg/TFMessage"](transforms=[tf]), "tf2_msgs/msg/TFMessage"))
            info = T["sensor_msgs/msg/CameraInfo"](
                header=header, height=H, width=W, distortion_model="plumb_bob", d=np.zeros(5),
                k=np.asarray(f.K, np.float64).reshape(-1), r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0,
                binning_y=0, roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                                      do_rectify=False))
            w.write(conn(f"/{f.camera}/camera_info", "sensor_msgs/msg/CameraInfo"), ns,
                    ts.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            d = np.nan_to_num(f.depth, nan=0.0).astype("<f4")
            w.write(conn(f"/{f.camera}/depth", "sensor_msgs/msg/Image"), ns, ts.serialize_cdr(T["sensor_msgs/msg/Image"](
                header=header, height=H, width=W, encoding="32FC1", is_bigendian=0, step=4 * W,
                data=d.view(np.uint8).reshape(-1)), "sensor_msgs/msg/Image"))
            w.write(conn(f"/{f.camera}/image", "sensor_msgs/msg/Image"), ns, ts.serialize_cdr(T["sensor_msgs/msg/Image"](
                header=header, height=H, width=W, encoding="rgb8", is_bigendian=0, step=3 * W,
                data=np.ascontiguousarray(f.rgb).reshape(-1)), "sensor_msgs/msg/Image"))
    return path
