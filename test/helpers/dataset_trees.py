"""Tiny dataset trees in the real layouts (ScanNet export, ScanNet++ DSLR, Replica, transforms.json, TUM), for
the reader, check, training, evaluation and run tests.

``two_view_frames`` builds two cameras that see one world point at chosen integer pixels and whole-millimetre
depths, so a reader that gets intrinsics, pose direction, axes or depth units wrong cannot land both pixels
on the same point. ``synthetic_scannet`` writes synthetic scenes (truth known) as a ScanNet export tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from eps3d_ros.conventions import extrinsics_to_poses, intrinsics_for_pixel_centres, intrinsics_for_pixel_indices, \
    opengl_to_opencv_poses

H, W = 24, 32  # colour images of the tiny trees
K = np.array([[30.0, 0.0, 15.5], [0.0, 30.0, 11.5], [0.0, 0.0, 1.0]])  # OpenCV pixel centres
PIX_A, PIX_B = (7, 5), (21, 16)  # (u, v) of the shared point in frame 0 and frame 1
DEPTH_A_MM, DEPTH_B_MM, BACKGROUND_MM = 1537, 2104, 3000


def _rot(axis: np.ndarray, deg: float) -> np.ndarray:
    a = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    t = np.radians(deg)
    A = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * A + (1 - np.cos(t)) * A @ A


def two_view_frames(K: np.ndarray = K, size: tuple[int, int] = (H, W)) -> dict:
    """Two camera-to-world poses (OpenCV axes) and depth maps (uint16 mm) in which pixel ``PIX_A`` of frame 0
    and ``PIX_B`` of frame 1 see the same world point ``point``."""
    R0, C0 = _rot([0.2, 1.0, 0.1], 35.0), np.array([0.3, -0.2, 1.1])
    ray_a = np.linalg.inv(K) @ np.array([PIX_A[0], PIX_A[1], 1.0])
    X = R0 @ (ray_a * DEPTH_A_MM / 1000.0) + C0
    R1 = _rot([1.0, -0.3, 0.4], -25.0) @ R0
    ray_b = np.linalg.inv(K) @ np.array([PIX_B[0], PIX_B[1], 1.0])
    C1 = X - R1 @ (ray_b * DEPTH_B_MM / 1000.0)
    poses = np.stack([np.eye(4), np.eye(4)])
    poses[0, :3, :3], poses[0, :3, 3] = R0, C0
    poses[1, :3, :3], poses[1, :3, 3] = R1, C1
    depth = np.full((2, *size), BACKGROUND_MM, np.uint16)
    depth[0, PIX_A[1], PIX_A[0]] = DEPTH_A_MM
    depth[1, PIX_B[1], PIX_B[0]] = DEPTH_B_MM
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, *size, 3), dtype=np.uint8)
    return {"poses": poses, "depth_mm": depth, "rgb": rgb, "point": X}


def world_point(frame, pixel: tuple[int, int]) -> np.ndarray:
    """The world point of ``pixel`` (u, v) of a reader's :class:`FrameData` (its K, depth, pose)."""
    u, v = pixel
    d = float(frame.depth[v, u])
    cam = np.array([(u - frame.K[0, 2]) / frame.K[0, 0] * d, (v - frame.K[1, 2]) / frame.K[1, 1] * d, d])
    return frame.pose[:3, :3] @ cam + frame.pose[:3, 3]


def save_png(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.asarray(a)
    if a.ndim == 2 and a.dtype in (np.uint16, np.int32, np.int64) and a.dtype != np.uint8:
        Image.fromarray(a.astype(np.uint16)).save(path)
    else:
        Image.fromarray(a).save(path)


def save_jpg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95)


def write_tsv(root: Path, rows: list[tuple[int, str, int, str]]) -> Path:
    """``scannetv2-labels.combined.tsv`` with rows ``(id, category, nyu40id, nyu40class)``."""
    head = "id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\teigen13class\n"
    lines = [f"{i}\t{c}\t{c}\t1\t{n}\t0\t{c}\t{nc}\t{nc}\n" for i, c, n, nc in rows]
    p = root / "scannetv2-labels.combined.tsv"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(head + "".join(lines))
    return p


def _matrix_txt(path: Path, m: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(" ".join(f"{v:.10f}" for v in row) for row in m) + "\n")


def write_scannet_scene(root: Path, scene: str, rgb: np.ndarray, depth_mm: np.ndarray, poses: np.ndarray,
                        K_color: np.ndarray = K, K_depth: np.ndarray | None = None, labels: np.ndarray | None = None,
                        instances: np.ndarray | None = None) -> Path:
    """A ScanNet 2D export scene: color/<n>.jpg, depth/<n>.png (mm), pose/<n>.txt, intrinsic/, label-filt/,
    instance-filt/."""
    d = root / scene
    K4 = np.eye(4)
    K4[:3, :3] = K_color
    _matrix_txt(d / "intrinsic" / "intrinsic_color.txt", K4)
    K4 = np.eye(4)
    K4[:3, :3] = K_color if K_depth is None else K_depth
    _matrix_txt(d / "intrinsic" / "intrinsic_depth.txt", K4)
    for i in range(len(rgb)):
        save_jpg(d / "color" / f"{i}.jpg", rgb[i])
        save_png(d / "depth" / f"{i}.png", depth_mm[i].astype(np.uint16))
        _matrix_txt(d / "pose" / f"{i}.txt", poses[i])
        if labels is not None:
            save_png(d / "label-filt" / f"{i}.png", labels[i].astype(np.uint16))
        if instances is not None:
            save_png(d / "instance-filt" / f"{i}.png", instances[i].astype(np.uint8))
    return d


def synthetic_scannet(root: Path, scenes: list, names: list[str] | None = None) -> list[np.ndarray]:
    """Synthetic scenes as a ScanNet export tree (scene ids ``scene0000_00`` ...): raw label id = synthetic class
    id (the TSV names them by the synthetic class names under ``nyu40class``). Returns each scene's colour
    images as the JPEGs decode (what a reader sees)."""
    names = names or scenes[0].class_names
    write_tsv(root, [(k, names[k], k, names[k]) for k in range(1, len(names))])
    decoded = []
    for n, s in enumerate(scenes):
        poses = extrinsics_to_poses(torch.from_numpy(s.extrinsics).double()).numpy()
        K_cv = intrinsics_for_pixel_indices(torch.from_numpy(s.intrinsics[0]).double()).numpy()
        depth_mm = np.round(s.depth * 1000.0).astype(np.uint16)
        d = write_scannet_scene(root, f"scene{n:04d}_00", s.rgb, depth_mm, poses, K_cv, labels=s.semantic,
                                instances=s.instance)
        decoded.append(np.stack([np.asarray(Image.open(d / "color" / f"{i}.jpg").convert("RGB"))
                                 for i in range(len(s.rgb))]))
    return decoded


def nerf_intrinsics(K_cv: np.ndarray) -> np.ndarray:
    """OpenCV ``K`` → the +0.5 pixel-centre ``K`` that nerfstudio / instant-ngp files store."""
    return intrinsics_for_pixel_centres(torch.from_numpy(K_cv)).numpy()


def write_transforms(folder: Path, rgb: np.ndarray, poses: np.ndarray, K_cv: np.ndarray = K,
                     depth_mm: np.ndarray | None = None, flavour: str = "nerfstudio") -> Path:
    """A transforms.json capture: nerfstudio keys (fl_x..., depth_file_path) or instant-ngp ones
    (camera_angle_x, depth_path, integer_depth_scale); OpenGL camera-to-world matrices."""
    Kn = nerf_intrinsics(K_cv)
    gl = opengl_to_opencv_poses(torch.from_numpy(poses)).numpy()
    Hh, Ww = rgb.shape[1:3]
    frames = []
    for i in range(len(rgb)):
        save_png(folder / "images" / f"frame_{i:05d}.png", rgb[i])
        f = {"file_path": f"images/frame_{i:05d}.png", "transform_matrix": gl[i].tolist()}
        if depth_mm is not None:
            save_png(folder / "depth" / f"frame_{i:05d}.png", depth_mm[i].astype(np.uint16))
            f["depth_file_path" if flavour == "nerfstudio" else "depth_path"] = f"depth/frame_{i:05d}.png"
        frames.append(f)
    if flavour == "nerfstudio":
        t = {"camera_model": "OPENCV", "fl_x": Kn[0, 0], "fl_y": Kn[1, 1], "cx": Kn[0, 2], "cy": Kn[1, 2],
             "w": Ww, "h": Hh, "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "frames": frames}
    else:
        t = {"camera_angle_x": float(2 * np.arctan(0.5 * Ww / Kn[0, 0])),
             "camera_angle_y": float(2 * np.arctan(0.5 * Hh / Kn[1, 1])), "cx": Kn[0, 2], "cy": Kn[1, 2],
             "w": Ww, "h": Hh, "integer_depth_scale": 0.001, "aabb_scale": 4, "frames": frames}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "transforms.json").write_text(json.dumps(t, indent=1))
    return folder


def write_scannetpp_scene(root: Path, scene: str, rgb: np.ndarray, poses: np.ndarray, K_cv: np.ndarray = K,
                          depth_mm: np.ndarray | None = None, semantics: np.ndarray | None = None,
                          objects: np.ndarray | None = None, classes: list[str] | None = None) -> Path:
    """A ScanNet++ v2 DSLR scene: dslr/resized_undistorted_images/DSC<n>.JPG, nerfstudio/transforms_undistorted.json
    (pinhole; the toolkit's OpenCV K), render_depth/, and the toolkit's 2D semantics under semantics_2d/."""
    d = root / "data" / scene / "dslr"
    gl = opengl_to_opencv_poses(torch.from_numpy(poses)).numpy()
    frames = []
    for i in range(len(rgb)):
        name = f"DSC{i + 1:05d}.JPG"
        save_jpg(d / "resized_undistorted_images" / name, rgb[i])
        frames.append({"file_path": name, "transform_matrix": gl[i].tolist(), "is_bad": False})
        if depth_mm is not None:
            save_png(d / "render_depth" / f"DSC{i + 1:05d}.png", depth_mm[i].astype(np.uint16))
        if semantics is not None:
            save_png(root / "semantics_2d" / "semantics" / scene / f"{name}.png", semantics[i].astype(np.uint8))
        if objects is not None:
            p = root / "semantics_2d" / "obj_ids" / scene / f"{name}.pth"
            p.parent.mkdir(parents=True, exist_ok=True)
            torch.save(objects[i].astype(np.int64), p)
    Hh, Ww = rgb.shape[1:3]
    t = {"camera_model": "PINHOLE", "fl_x": K_cv[0, 0], "fl_y": K_cv[1, 1], "cx": K_cv[0, 2], "cy": K_cv[1, 2],
         "w": Ww, "h": Hh, "k1": 0.0, "k2": 0.0, "k3": 0.0, "k4": 0.0,
         "frames": frames[:-1], "test_frames": frames[-1:]}
    (d / "nerfstudio").mkdir(parents=True, exist_ok=True)
    (d / "nerfstudio" / "transforms_undistorted.json").write_text(json.dumps(t))
    if classes is not None:
        (root / "metadata" / "semantic_benchmark").mkdir(parents=True, exist_ok=True)
        (root / "metadata" / "semantic_benchmark" / "top100.txt").write_text("\n".join(classes) + "\n")
    return d


def write_replica_scene(root: Path, scene: str, rgb: np.ndarray, poses: np.ndarray, depth_mm: np.ndarray,
                        semantic: np.ndarray | None = None, instance: np.ndarray | None = None,
                        classes: dict[int, str] | None = None) -> Path:
    """A Semantic-NeRF Replica sequence: Sequence_1/{rgb,depth,semantic_class,semantic_instance}/ + traj_w_c.txt,
    and semantic_info/<scene>/info_semantic.json."""
    d = root / scene / "Sequence_1"
    for i in range(len(rgb)):
        save_png(d / "rgb" / f"rgb_{i}.png", rgb[i])
        save_png(d / "depth" / f"depth_{i}.png", depth_mm[i].astype(np.uint16))
        if semantic is not None:
            save_png(d / "semantic_class" / f"semantic_class_{i}.png", semantic[i].astype(np.uint8))
        if instance is not None:
            save_png(d / "semantic_instance" / f"semantic_instance_{i}.png", instance[i].astype(np.uint8))
    (d / "traj_w_c.txt").write_text("\n".join(" ".join(f"{v:.10f}" for v in p.reshape(-1)) for p in poses) + "\n")
    if classes is not None:
        info = root / "semantic_info" / scene / "info_semantic.json"
        info.parent.mkdir(parents=True, exist_ok=True)
        info.write_text(json.dumps({"classes": [{"id": i, "name": n} for i, n in classes.items()]}))
    return d


def write_tum(folder: Path, rgb: np.ndarray, poses: np.ndarray, depth_mm: np.ndarray, K_cv: np.ndarray = K) -> Path:
    """A TUM RGB-D folder: rgb.txt, depth.txt, groundtruth.txt (tx ty tz qx qy qz qw), depth in 1/5000 m,
    intrinsics.json; ground truth at 100 Hz around the 30 Hz images."""
    from eps3d_ros.conventions import matrix_to_quat_xyzw

    folder.mkdir(parents=True, exist_ok=True)
    rgb_lines, depth_lines, gt_lines = [], [], []
    for i in range(len(rgb)):
        t = 1305031102.0 + i / 30.0
        save_png(folder / "rgb" / f"{t:.6f}.png", rgb[i])
        save_png(folder / "depth" / f"{t + 0.004:.6f}.png", (depth_mm[i].astype(np.float64) * 5).astype(np.uint16))
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
        depth_lines.append(f"{t + 0.004:.6f} depth/{t + 0.004:.6f}.png")
        q = matrix_to_quat_xyzw(torch.from_numpy(poses[i][:3, :3])).numpy()
        x, y, z = poses[i][:3, 3]
        gt_lines.append(f"{t + 0.003:.4f} {x:.9f} {y:.9f} {z:.9f} {q[0]:.12f} {q[1]:.12f} {q[2]:.12f} {q[3]:.12f}")
    (folder / "rgb.txt").write_text("# color images\n# file\n# timestamp filename\n" + "\n".join(rgb_lines) + "\n")
    (folder / "depth.txt").write_text("# depth maps\n" + "\n".join(depth_lines) + "\n")
    (folder / "groundtruth.txt").write_text("# ground truth trajectory\n# timestamp tx ty tz qx qy qz qw\n"
                                            + "\n".join(gt_lines) + "\n")
    (folder / "intrinsics.json").write_text(json.dumps({"fx": K_cv[0, 0], "fy": K_cv[1, 1], "cx": K_cv[0, 2],
                                                        "cy": K_cv[1, 2]}))
    return folder
