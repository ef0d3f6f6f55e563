"""Public entry point: validate inputs, build covariances, dispatch to the torch or gsplat backend.

Conventions (see ``eps3d_ros.conventions``): viewmats are camera-from-world with OpenCV axes,
``Ks`` in pixels, rotations are xyzw quaternions, pixels are sampled at their centres.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

from eps3d_ros.conventions import covariance_from_scale_rotation, to_homogeneous
from eps3d_ros.render.gsplat_backend import gsplat_unavailable_reason, rasterize_gsplat
from eps3d_ros.render.torch_backend import rasterize_torch

__all__ = ["RenderOutput", "render_gaussians", "has_gsplat", "camera_batch_size", "DEFAULT_MAX_BYTES"]

BACKENDS = ("auto", "torch", "gsplat")


@dataclass
class RenderOutput:
    """Rendered images; ``depths`` is the alpha-weighted camera z ``Σ w_i z_i`` (not normalised:
    divide by ``alphas`` for the expected depth)."""

    features: Tensor  # [C, H, W, D]
    alphas: Tensor  # [C, H, W, 1]
    depths: Tensor  # [C, H, W, 1]
    backend: str


def has_gsplat() -> bool:
    """True when gsplat imports and CUDA is available (the gsplat backend can be tried)."""
    return gsplat_unavailable_reason() is None


def render_gaussians(
    means: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    features: Tensor,  # [N, D]
    viewmats: Tensor,  # [C, 4, 4] or [C, 3, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    covariances: Tensor | None = None,  # [N, 3, 3]
    scales: Tensor | None = None,  # [N, 3]
    rotations: Tensor | None = None,  # [N, 4] xyzw
    backgrounds: Tensor | None = None,  # [C, D] or [D]
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    backend: str = "auto",
    max_bytes: int | None = None,
    progress: bool = False,
) -> RenderOutput:
    """Render N 3D Gaussians into C images of ``height x width`` with any number D of channels.

    Give exactly one of ``covariances`` or (``scales`` and ``rotations``). Outputs have
    ``means.dtype``; other inputs are cast to it (the torch backend computes half precision in
    float32, gsplat always in float32). ``backend``: ``"torch"``
    (pure PyTorch, differentiable, any device), ``"gsplat"`` (CUDA) or ``"auto"`` (gsplat when the
    inputs are on CUDA and gsplat is usable, else torch). Raises ``ValueError`` on bad inputs and
    ``RuntimeError`` when ``backend="gsplat"`` cannot run.

    Memory: the cameras are rendered in batches whose working set (estimated from the number of
    (camera, Gaussian) pairs, see :func:`camera_batch_size`) stays within ``max_bytes`` (default
    :data:`DEFAULT_MAX_BYTES`); the outputs ``[C, H, W, D]`` come on top. ``progress``: a tqdm bar over the
    batches when there are several.
    """
    backgrounds = _checked_inputs(means, opacities, features, viewmats, Ks, width, height, covariances, scales,
                                  rotations, backgrounds, near_plane, far_plane, eps2d, backend)
    N, D, C, dev = means.shape[0], features.shape[1], viewmats.shape[0], means.device
    dt = means.dtype
    viewmats = to_homogeneous(viewmats.to(dt))  # [C, 4, 4]
    Ks = Ks.to(dt)
    backgrounds = backgrounds.to(dt) if backgrounds is not None else None
    opacities, features = opacities.to(dt), features.to(dt)
    if covariances is not None:
        covariances = 0.5 * (covariances + covariances.transpose(-1, -2)).to(dt)  # both backends agree
    else:
        scales, rotations = scales.to(dt), rotations.to(dt)

    use = _backend(backend, dev)
    if max_bytes is not None and max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if use == "torch" and covariances is None:  # once for all batches
        covariances = covariance_from_scale_rotation(scales, rotations)
        scales = rotations = None
    per = camera_batch_size(N, D, C, max_bytes, width, height)
    if per < C:
        batches = range(0, C, per)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"render {C} views", unit="batch", total=-(-C // per))
        parts = [_render(use, means, opacities, features, viewmats[i:i + per], Ks[i:i + per], width, height,
                         covariances, scales, rotations, None if backgrounds is None else backgrounds[i:i + per],
                         near_plane, far_plane, eps2d, dt) for i in batches]
        return RenderOutput(features=torch.cat([p[0] for p in parts]), alphas=torch.cat([p[1] for p in parts]),
                            depths=torch.cat([p[2] for p in parts]), backend=use)
    feats, alphas, depths = _render(use, means, opacities, features, viewmats, Ks, width, height, covariances, scales,
                                    rotations, backgrounds, near_plane, far_plane, eps2d, dt)
    return RenderOutput(features=feats, alphas=alphas, depths=depths, backend=use)


# Working-set budget of one batch of cameras (both backends), and the estimate it is checked against:
# per visible (camera, Gaussian) pair the projection keeps ~60 values, the compositing ~(D + 2) values per
# pair plus ~6 index values per (pair, tile) intersection; float32 values, int64 indices.
DEFAULT_MAX_BYTES = 1 << 30
_PAIR_BYTES = 4 * 60
_ISECT_BYTES = 8 * 6
_ISECTS_PER_PAIR = 4


def camera_batch_size(n: int, d: int, cameras: int, max_bytes: int | None = None, width: int = 0,
                      height: int = 0) -> int:
    """How many of ``cameras`` to render at once so that their (camera, Gaussian) pairs stay within
    ``max_bytes`` (assuming every Gaussian is visible in every camera: an upper bound)."""
    budget = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
    per_camera = max(1, n) * (_PAIR_BYTES + 4 * (d + 2) + _ISECT_BYTES * _ISECTS_PER_PAIR)
    per_camera += 4 * (d + 2) * width * height  # the camera's image
    return int(max(1, min(cameras, budget // per_camera)))


def _checked_inputs(means, opacities, features, viewmats, Ks, width, height, covariances, scales, rotations,
                    backgrounds, near_plane, far_plane, eps2d, backend) -> Tensor | None:
    """Every input of :func:`render_gaussians` checked (a ``ValueError`` names the bad one); the backgrounds as
    ``[C, D]`` (or None)."""
    _check_tensor("means", means, ("N", 3))
    N, dev = means.shape[0], means.device
    _check_tensor("opacities", opacities, (N,), dev)
    _check_tensor("features", features, (N, "D"), dev)
    if features.shape[1] < 1:
        raise ValueError(f"features must be [N, D] with D >= 1, got shape {tuple(features.shape)}")
    D = features.shape[1]
    if not isinstance(viewmats, Tensor) or viewmats.dim() != 3 or viewmats.shape[1:] not in ((3, 4), (4, 4)) \
            or viewmats.shape[0] < 1:
        got = f"shape {tuple(viewmats.shape)}" if isinstance(viewmats, Tensor) else type(viewmats).__name__
        raise ValueError(f"viewmats must be [C, 4, 4] or [C, 3, 4] with C >= 1, got {got}")
    _check_tensor("viewmats", viewmats, ("C", 4, 4) if viewmats.shape[1] == 4 else ("C", 3, 4), dev)
    C = viewmats.shape[0]
    _check_tensor("Ks", Ks, (C, 3, 3), dev)
    if not bool(((Ks[:, 0, 0] > 0) & (Ks[:, 1, 1] > 0)).all()):
        raise ValueError("Ks must have positive focal lengths fx = Ks[:, 0, 0] and fy = Ks[:, 1, 1]")
    if bool(((opacities < 0) | (opacities > 1)).any()):
        raise ValueError("opacities must lie in [0, 1]")
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not (0 < near_plane < far_plane):
        raise ValueError(f"need 0 < near_plane < far_plane, got near_plane={near_plane}, far_plane={far_plane}")
    if not eps2d >= 0:
        raise ValueError(f"eps2d must be >= 0, got {eps2d}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")

    if covariances is not None:
        if scales is not None or rotations is not None:
            raise ValueError("give either covariances or (scales and rotations), not both")
        _check_tensor("covariances", covariances, (N, 3, 3), dev)
    else:
        if scales is None or rotations is None:
            raise ValueError("give either covariances or both scales and rotations; got "
                             f"scales={'None' if scales is None else 'tensor'}, "
                             f"rotations={'None' if rotations is None else 'tensor'}")
        _check_tensor("scales", scales, (N, 3), dev)
        _check_tensor("rotations", rotations, (N, 4), dev)
        if bool(((rotations * rotations).sum(-1) < 1e-12).any()):
            raise ValueError("rotations contain zero-length quaternions")

    if backgrounds is not None:
        if isinstance(backgrounds, Tensor) and backgrounds.dim() not in (1, 2):
            raise ValueError(f"backgrounds must be [C, D] or [D], got shape {tuple(backgrounds.shape)}")
        _check_tensor("backgrounds", backgrounds, ("C", D) if getattr(backgrounds, "ndim", 1) == 2 else (D,), dev)
        if backgrounds.dim() == 1:
            backgrounds = backgrounds[None].expand(C, D)
        elif backgrounds.shape[0] != C:
            raise ValueError(f"backgrounds must be [C, D] = [{C}, {D}] or [D], got shape {tuple(backgrounds.shape)}")

    return backgrounds


def _backend(backend: str, dev: torch.device) -> str:
    """The backend that renders: ``auto`` is gsplat on CUDA when it is usable, else torch."""
    if backend == "auto":
        return "gsplat" if dev.type == "cuda" and has_gsplat() else "torch"
    if backend == "gsplat":
        why = gsplat_unavailable_reason()
        if why is None and dev.type != "cuda":
            why = f"the inputs are on {dev}, not on a CUDA device"
        if why is not None:
            raise RuntimeError(f"backend='gsplat' cannot run: {why}; use backend='torch' or 'auto'")
    return backend


def _render(use, means, opacities, features, viewmats, Ks, width, height, covariances, scales, rotations,
            backgrounds, near_plane, far_plane, eps2d, dt):
    """One batch of cameras through the chosen backend: ``(features, alphas, depths)``."""
    common = dict(backgrounds=backgrounds, near_plane=float(near_plane), far_plane=float(far_plane), eps2d=float(eps2d))
    if use == "gsplat":
        feats, alphas, depths = rasterize_gsplat(
            means, opacities, features, viewmats, Ks, int(width), int(height),
            covariances=covariances, scales=scales, rotations=rotations, **common,
        )
    else:
        if covariances is None:
            covariances = covariance_from_scale_rotation(scales, rotations)
        work = torch.promote_types(dt, torch.float32)  # half precision is too coarse for the scan
        up = lambda x: None if x is None else x.to(work)  # noqa: E731
        feats, alphas, depths = rasterize_torch(
            up(means), up(covariances), up(opacities), up(features), up(viewmats), up(Ks), int(width), int(height),
            **{**common, "backgrounds": up(backgrounds)},
        )
        feats, alphas, depths = feats.to(dt), alphas.to(dt), depths.to(dt)
    return feats, alphas, depths


def _check_tensor(name: str, x: object, shape: tuple, device: torch.device | None = None) -> None:
    """Tensor, floating, of ``shape`` (ints fixed, letters any size), on ``device``, all finite."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(shape) or any(isinstance(s, int) and s != xs for s, xs in zip(shape, x.shape)):
        want = "[" + ", ".join(str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {want}, got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype} (shape {tuple(x.shape)})")
    if device is not None and x.device != device:
        raise ValueError(f"{name} is on {x.device} but means is on {device} (shape {tuple(x.shape)})")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values (shape {tuple(x.shape)})")
