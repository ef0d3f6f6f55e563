"""PNG figures of a scene: per view an RGB render, a semantic map and an instance map, plus a legend.

Renders go through :func:`eps3d_ros.render.render_gaussians` from the scene's cameras
(:class:`~eps3d_ros.io.scene_file.Cameras`):

* RGB: the Gaussians' colours (SH DC term), alpha-composited over ``background``;
* semantic: per pixel the class with the largest rendered weight (one channel per class, alpha
  blended, then argmax: crisp borders), coloured with :func:`~eps3d_ros.panoptic.clouds.label_color`
  (unknown grey). A thing's Gaussians carry their object's class (``Scene.panoptic_labels``);
* instance: the same with object ids, coloured with :func:`~eps3d_ros.panoptic.clouds.instance_color`
  (stuff / none grey);
* pixels whose rendered opacity is below ``min_alpha`` show ``background`` in the label maps.

Camera pixel convention: the stored intrinsics put pixel ``(u, v)``'s centre at ``(u, v)`` (OpenCV,
as ``Frame.K``); the renderer samples at ``u + 0.5``, so ``cx, cy`` are shifted by +0.5 for it.
``scale`` renders at ``scale`` x the camera image size (``fx' = fx s``, ``cx' = (cx + 0.5) s - 0.5``).

Files written by :func:`write_figures`: ``view_00_rgb.png``, ``view_00_semantic.png``,
``view_00_instance.png``, ... (the render size), ``legend.png`` and ``overview.png`` (all views,
enlarged, with the legend).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ViewImages", "render_views", "colorize_labels", "legend_image", "overview_image", "write_figures"]

BACKGROUND = (0, 0, 0)
_CHUNK = 64  # feature channels rendered at once


@dataclass(frozen=True, eq=False)
class ViewImages:
    rgb: np.ndarray  # [H, W, 3] uint8
    semantic: np.ndarray  # [H, W] int64 class index, -1 unknown, -2 background (nothing rendered)
    instance: np.ndarray  # [H, W] int64 object id, 0 stuff/none, -2 background
    alpha: np.ndarray  # [H, W] float32 rendered opacity


def _render_cameras(cameras: Any, views: list[int], scale: float) -> tuple[Any, Any, int, int]:
    import torch

    H, W = cameras.height, cameras.width
    h, w = max(1, int(round(H * scale))), max(1, int(round(W * scale)))
    # the network's own intrinsics where the scene came from a network: its Gaussians were placed with them
    K = (cameras.intrinsics if cameras.predicted_intrinsics is None else cameras.predicted_intrinsics)[views].copy()
    sx, sy = w / W, h / H
    K[:, 0, 0] *= sx
    K[:, 0, 1] *= sx
    K[:, 1, 1] *= sy
    K[:, 0, 2] = (K[:, 0, 2] + 0.5) * sx  # resized centre convention, then +0.5 for the renderer
    K[:, 1, 2] = (K[:, 1, 2] + 0.5) * sy
    return (torch.from_numpy(cameras.extrinsics[views].astype(np.float32)),
            torch.from_numpy(K.astype(np.float32)), h, w)


def render_views(scene: Any, cameras: Any, views: list[int] | None = None, scale: float = 1.0,
                 min_alpha: float = 0.5, background: tuple[int, int, int] = BACKGROUND,
                 backend: str = "auto", device: str = "cpu", progress: bool = False) -> list[ViewImages]:
    """Render the chosen views (default all) of ``scene`` from ``cameras`` (cameras in batches under the
    renderer's memory budget; ``progress``: a bar over the batches of long renders)."""
    import torch

    from ..render import render_gaussians

    if cameras is None or cameras.num_views == 0:
        raise ValueError("this scene has no cameras to render from")
    views = list(range(cameras.num_views)) if views is None else [int(v) for v in views]
    bad = [v for v in views if not 0 <= v < cameras.num_views]
    if bad:
        raise ValueError(f"views {bad} out of range: the scene has {cameras.num_views} cameras (0..{cameras.num_views - 1})")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    E, K, h, w = _render_cameras(cameras, views, scale)
    n = scene.num_gaussians
    if n == 0:
        empty = np.full((h, w), -2, np.int64)
        return [ViewImages(np.tile(np.array(background, np.uint8), (h, w, 1)), empty, empty.copy(),
                           np.zeros((h, w), np.float32)) for _ in views]
    sem, ins = scene.panoptic_labels()
    k = len(scene.vocabulary)
    sem_idx = np.where(sem < 0, k, sem)  # channel k = unknown
    ins_ids = np.unique(ins)  # ascending, 0 first when present
    ins_idx = np.searchsorted(ins_ids, ins)
    columns = [("rgb", np.asarray(scene.colors, np.float32))]
    columns.append(("sem", np.eye(k + 1, dtype=np.float32)[sem_idx]))
    columns.append(("ins", np.eye(len(ins_ids), dtype=np.float32)[ins_idx]))
    feats = np.concatenate([c for _, c in columns], axis=1)  # [N, 3 + K + 1 + I]

    dev = torch.device(device)
    means = torch.from_numpy(np.array(scene.means, np.float32)).to(dev)
    opac = torch.from_numpy(np.clip(np.array(scene.opacities, np.float32), 0.0, 1.0)).to(dev)
    if scene.splats is not None:
        geo = dict(scales=torch.from_numpy(np.array(scene.splats.scales, np.float32)).to(dev),
                   rotations=torch.from_numpy(np.array(scene.splats.rotations, np.float32)).to(dev))
    else:
        from .ply import _spacing

        s = torch.from_numpy(_spacing(np.asarray(scene.means, np.float64)).astype(np.float32))
        geo = dict(scales=s[:, None].repeat(1, 3).to(dev),
                   rotations=torch.tensor([0.0, 0.0, 0.0, 1.0]).repeat(n, 1).to(dev))
    out_feats, alpha = [], None
    with torch.no_grad():
        for i in range(0, feats.shape[1], _CHUNK):
            f = torch.from_numpy(np.ascontiguousarray(feats[:, i:i + _CHUNK])).to(dev)
            r = render_gaussians(means, opac, f, E.to(dev), K.to(dev), w, h, backend=backend, progress=progress, **geo)
            out_feats.append(r.features.float().cpu())
            alpha = r.alphas[..., 0].float().cpu() if alpha is None else alpha
    fmap = torch.cat(out_feats, dim=-1).numpy()  # [V, h, w, F]
    a = alpha.numpy()
    bg = np.array(background, np.float32) / 255.0
    rgb = np.clip(fmap[..., :3] + (1.0 - a[..., None]) * bg, 0.0, 1.0)
    covered = a >= min_alpha
    sem_map = np.argmax(fmap[..., 3:4 + k], axis=-1)
    sem_map = np.where(sem_map == k, -1, sem_map)
    ins_map = ins_ids[np.argmax(fmap[..., 4 + k:], axis=-1)]
    out = []
    for j in range(len(views)):
        out.append(ViewImages(
            rgb=np.round(rgb[j] * 255.0).astype(np.uint8),
            semantic=np.where(covered[j], sem_map[j], -2).astype(np.int64),
            instance=np.where(covered[j], ins_map[j], -2).astype(np.int64),
            alpha=a[j].astype(np.float32)))
    return out


def colorize_labels(labels: np.ndarray, kind: str, background: tuple[int, int, int] = BACKGROUND) -> np.ndarray:
    """``[H, W]`` class indices (``kind="semantic"``) or object ids (``"instance"``) → ``[H, W, 3]`` uint8;
    -2 (nothing rendered) → ``background``."""
    from ..panoptic.clouds import instance_color, label_color

    fn = {"semantic": label_color, "instance": instance_color}[kind]
    uniq, inv = np.unique(labels, return_inverse=True)
    table = np.array([background if u == -2 else fn(int(u)) for u in uniq], np.uint8).reshape(-1, 3)
    return table[inv.reshape(labels.shape)]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def legend_image(scene: Any, title: str = "", width: int = 420, max_objects: int = 40):
    """A Pillow image listing the classes present (label colours) and the objects (instance colours; the
    first ``max_objects``, then how many more)."""
    from PIL import Image, ImageDraw

    from ..panoptic.clouds import GREY, instance_color, label_color

    sem, ins = scene.panoptic_labels()
    counts = np.bincount(np.where(sem < 0, len(scene.vocabulary), sem), minlength=len(scene.vocabulary) + 1)
    rows: list[tuple[str, Any]] = []  # ("head", text) | ((r, g, b), text)
    if title:
        rows.append(("head", title))
    rows.append(("head", "Semantic classes (Gaussians)"))
    for i, name in enumerate(scene.vocabulary):
        if counts[i]:
            stuff = " (stuff)" if name in scene.stuff else ""
            rows.append((label_color(i), f"{name}{stuff}: {int(counts[i])}"))
    if counts[-1]:
        rows.append((GREY, f"unknown: {int(counts[-1])}"))
    rows.append(("head", f"Objects ({len(scene.objects)})"))
    for o in scene.objects[:max_objects]:
        color = instance_color(o.id) if o.is_thing else label_color(o.label_id)
        kind = "" if o.is_thing else " [stuff: grey in instance map]"
        rows.append((color, f"#{o.id} {o.label}  score {o.score:.2f}  {o.num_points} pts{kind}"))
    if not scene.objects:
        rows.append((GREY, "none found"))
    elif len(scene.objects) > max_objects:
        rows.append(("head", f"... and {len(scene.objects) - max_objects} more"))
    rows.append((GREY, "grey: unknown class / no instance"))
    line, pad, sw = 20, 10, 14
    img = Image.new("RGB", (width, pad * 2 + line * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font, bold = _font(13), _font(15)
    y = pad
    for color, text in rows:
        if color == "head":
            draw.text((pad, y + 1), text, fill=(0, 0, 0), font=bold)
        else:
            draw.rectangle([pad, y + 3, pad + sw, y + 3 + sw], fill=tuple(int(c) for c in color), outline=(0, 0, 0))
            draw.text((pad + sw + 8, y + 2), text, fill=(20, 20, 20), font=font)
        y += line
    return img


def overview_image(images: list[ViewImages], legend, views: list[int], tile: int = 224,
                   background: tuple[int, int, int] = BACKGROUND, inputs: list[np.ndarray] | None = None):
    """All views as rows of [input |] RGB | semantic | instance tiles (enlarged, nearest) with the legend at
    the right. ``inputs``: the input images of the views (any size; resized to the tiles)."""
    from PIL import Image, ImageDraw

    if not images:
        return legend
    h, w = images[0].rgb.shape[:2]
    f = max(1, int(np.ceil(tile / max(h, w))))
    th, tw, head, gap = h * f, w * f, 24, 4
    names = ("input", "RGB render", "semantic", "instance") if inputs is not None else ("RGB render", "semantic", "instance")
    grid_w = len(names) * tw + (len(names) + 1) * gap
    grid_h = head + len(images) * (th + gap) + gap
    out = Image.new("RGB", (grid_w + legend.width, max(grid_h, legend.height)), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    font = _font(14)
    for c, name in enumerate(names):
        draw.text((gap + c * (tw + gap), 4), name, fill=(0, 0, 0), font=font)
    for r, (v, im) in enumerate(zip(views, images)):
        tiles = (im.rgb, colorize_labels(im.semantic, "semantic", background),
                 colorize_labels(im.instance, "instance", background))
        if inputs is not None:
            tiles = (np.asarray(inputs[r], np.uint8), *tiles)
        y = head + r * (th + gap)
        for c, t in enumerate(tiles):
            out.paste(Image.fromarray(t).resize((tw, th), Image.NEAREST), (gap + c * (tw + gap), y))
        label = f"view {v}"
        box = draw.textbbox((gap + 3, y + 2), label, font=font)
        draw.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], fill=(0, 0, 0))
        draw.text((gap + 3, y + 2), label, fill=(255, 255, 255), font=font)
    out.paste(legend, (grid_w, 0))
    return out


def write_figures(scene: Any, cameras: Any, out_dir: str | Path, views: list[int] | None = None, scale: float = 1.0,
                  min_alpha: float = 0.5, title: str = "", background: tuple[int, int, int] = BACKGROUND,
                  backend: str = "auto", device: str = "cpu", inputs: list[np.ndarray] | None = None,
                  progress: bool = False) -> dict[str, Any]:
    """Render and write the PNGs (see the module docstring); returns ``{"files": [...], "size": (h, w), ...}``.
    ``inputs``: the input images of ``views`` (shown in the overview's first column)."""
    from PIL import Image

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a folder")
    views = list(range(cameras.num_views)) if (views is None and cameras is not None) else views
    # rendered before the folder is made: a failure (bad views, no cameras) leaves no empty folder behind
    images = render_views(scene, cameras, views, scale, min_alpha, background, backend, device, progress)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for v, im in zip(views, images):
        for kind, arr in (("rgb", im.rgb), ("semantic", colorize_labels(im.semantic, "semantic", background)),
                          ("instance", colorize_labels(im.instance, "instance", background))):
            p = out / f"view_{v:02d}_{kind}.png"
            Image.fromarray(arr).save(p)
            files.append(str(p))
    legend = legend_image(scene, title)
    legend.save(out / "legend.png")
    overview_image(images, legend, views, background=background, inputs=inputs).save(out / "overview.png")
    files += [str(out / "legend.png"), str(out / "overview.png")]
    h, w = images[0].rgb.shape[:2] if images else (0, 0)
    coverage = [float((im.alpha >= min_alpha).mean()) for im in images]
    return {"files": files, "size": (h, w), "views": views, "coverage": coverage}
