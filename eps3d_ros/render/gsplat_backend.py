"""gsplat (CUDA) backend: a thin wrapper around ``gsplat.rasterization`` (gsplat 1.5.x API).

gsplat is optional (``pip install .[gpu]``) and only usable with CUDA; it is imported lazily.
Differences to our API that this module bridges:

* quaternions are **wxyz** in gsplat (we take xyzw); world covariances go in via ``covars=``
  (gsplat then ignores quats/scales), as the EPS3D reference does;
* N-D features go in as ``colors`` with ``sh_degree=None``;
* depth: ``render_mode="RGB+D"`` appends the accumulated depth ``Σ w_i z_i`` as a last channel,
  which is exactly our un-normalised depth. ("RGB+ED" would give ``Σ w_i z_i / α``, i.e. the
  same times 1/alpha; we avoid it so nothing is divided by a near-zero alpha.)
* gsplat's kernels are float32: inputs are cast to float32 and outputs back to the input dtype.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from eps3d_ros.conventions import xyzw_to_wxyz

__all__ = ["gsplat_unavailable_reason", "rasterize_gsplat"]


@functools.lru_cache(maxsize=1)
def gsplat_unavailable_reason() -> str | None:
    """``None`` when gsplat imports and CUDA is available, else a sentence saying why not.

    Cached: a failed gsplat import can be slow (it may try to build its extension).
    """
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False"
    try:
        import gsplat  # noqa: F401  (raises assorted errors when CUDA/the extension is missing)

        if not hasattr(gsplat, "rasterization"):
            return "the installed gsplat has no gsplat.rasterization"
    except Exception as e:  # noqa: BLE001 - any import failure means "not usable"
        return f"gsplat could not be imported ({type(e).__name__}: {e})"
    return None


def rasterize_gsplat(
    means: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    features: Tensor,  # [N, D]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    covariances: Tensor | None = None,  # [N, 3, 3]
    scales: Tensor | None = None,  # [N, 3]
    rotations: Tensor | None = None,  # [N, 4] xyzw
    backgrounds: Tensor | None = None,  # [C, D]
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
) -> tuple[Tensor, Tensor, Tensor]:
    """Render with gsplat; returns features ``[C, H, W, D]``, alphas and depths ``[C, H, W, 1]``."""
    from gsplat import rasterization

    dt, f32 = means.dtype, torch.float32
    D = features.shape[1]
    if covariances is not None:
        quats, scl, covars = None, None, covariances.to(f32)
    else:
        quats, scl, covars = xyzw_to_wxyz(rotations).to(f32), scales.to(f32), None
    colors, alphas, _meta = rasterization(
        means.to(f32), quats, scl, opacities.to(f32), features.to(f32),
        viewmats.to(f32), Ks.to(f32), width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
        sh_degree=None,  # colors are post-activation N-D features, not SH
        backgrounds=backgrounds.to(f32) if backgrounds is not None else None,
        render_mode="RGB+D",  # last channel: Σ w_i z_i (gsplat pads the background with 0 there)
        rasterize_mode="classic",
        covars=covars,
    )  # colors [C, H, W, D+1], alphas [C, H, W, 1]
    return colors[..., :D].to(dt), alphas.to(dt), colors[..., D:].to(dt)
