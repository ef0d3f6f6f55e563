"""Pure-PyTorch EWA splatting rasteriser: runs on any device, differentiable through autograd.

Same maths as gsplat 1.5 ("classic" mode, pinhole), written from the 3DGS / EWA equations:

* project: ``x_c = R x + t``; keep ``near <= z <= far``; ``Σ2D = J R Σ R^T J^T + eps2d I`` with the
  perspective Jacobian ``J`` (x/z, y/z clamped to 1.3x the half field of view, as gsplat does);
* footprint: per axis ``r = ceil(e * sqrt(Σ2D_ii))`` with the opacity-aware extent
  ``e = min(3.33, sqrt(2 ln(255 o)))`` — beyond it ``o exp(-d²/2) < 1/255`` anyway, so the image
  does not depend on the tiling (gsplat 1.5 uses the same bound);
* composite front to back, pixel centres ``(u + 0.5, v + 0.5)``:
  ``α = min(0.999, o exp(-½ dᵀ Σ2D⁻¹ d))``, ``α < 1/255`` skipped, stop (exclusive) once the
  transmittance would drop to ``<= 1e-4``.

Vectorisation: (camera, Gaussian) pairs are binned to 16x16 tiles; tiles with similar counts are
padded to ``[tiles, 256, K]`` and processed in bounded-size batches (very deep tiles in chunks of K
with the transmittance carried over). The log-alpha is a quadratic in tile-local pixel
coordinates, so it is one matmul ``[256, 6] @ [.., 6, K]``; the transmittance is a cumprod along
K; features, depth and alpha come out of one bmm. With autograd each batch is checkpointed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = ["rasterize_torch"]

TILE = 16
ALPHA_MIN = 1.0 / 255.0  # gsplat's ALPHA_THRESHOLD
ALPHA_MAX = 0.999
T_MIN = 1e-4  # stop once the transmittance would drop to this
MAX_EXTENT = 3.33
# Elements of one [tiles, 256, K] batch: bounds the memory of each batch's intermediates (~16 MB
# per float32 tensor) while keeping the per-batch Python overhead small.
BATCH_ELEMS = 1 << 22
PAD_RATIO = 0.7  # a batch takes tiles with >= 70% of its largest count: bounds padding waste


def rasterize_torch(
    means: Tensor,  # [N, 3]
    covariances: Tensor,  # [N, 3, 3]
    opacities: Tensor,  # [N]
    features: Tensor,  # [N, D]
    viewmats: Tensor,  # [C, 4, 4]
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    backgrounds: Tensor | None = None,  # [C, D]
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
) -> tuple[Tensor, Tensor, Tensor]:
    """Render; returns features ``[C, H, W, D]``, alphas ``[C, H, W, 1]``, depths ``[C, H, W, 1]``.

    Inputs are assumed validated (see ``rasterize.render_gaussians``). Depth is ``Σ w_i z_i``.
    """
    C, D = viewmats.shape[0], features.shape[1]
    proj = _project(means, covariances, opacities, viewmats, Ks, width, height, near_plane, far_plane, eps2d)
    tx, ty = math.ceil(width / TILE), math.ceil(height / TILE)
    if proj is None:
        tiles = _empty(C * tx * ty, D, means, features, opacities, covariances)
    else:
        cam, gid, mean2d, conic, z, radii = proj
        # Values composited per pair: [features, depth, 1] -> features, depth and alpha in one bmm.
        vals = torch.cat([features[gid], z[:, None], torch.ones_like(z)[:, None]], dim=1)  # [P, D+2]
        tiles = _composite(cam, mean2d, conic, opacities[gid], vals, radii, C, tx, ty)
    img = tiles.reshape(C, ty, tx, TILE, TILE, D + 2).permute(0, 1, 3, 2, 4, 5)
    img = img.reshape(C, ty * TILE, tx * TILE, D + 2)[:, :height, :width]  # [C, H, W, D+2]
    feat, depth, alpha = img[..., :D], img[..., D : D + 1], img[..., D + 1 :]
    if backgrounds is not None:
        feat = feat + (1.0 - alpha) * backgrounds[:, None, None, :]
    return feat, alpha, depth


def _project(means, covs, opacities, viewmats, Ks, width, height, near, far, eps2d):
    """Project visible (camera, Gaussian) pairs, sorted by depth; ``None`` if nothing is visible.

    Returns cam [P], gid [P], mean2d [P, 2], conic [P, 3] (a, b, c of the inverse 2D covariance),
    z [P], radii [P, 2] (float, no grad).
    """
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]  # [C, 3, 3], [C, 3]
    with torch.no_grad():  # cheap depth culling first: later maths only runs on the survivors
        z_all = torch.einsum("cj,nj->cn", R[:, 2], means) + t[:, 2:3]  # [C, N]
        keep = (z_all >= near) & (z_all <= far) & (opacities >= ALPHA_MIN)[None]
        cam, gid = keep.nonzero(as_tuple=True)
    if cam.numel() == 0:
        return None
    Rp = R[cam]  # [P, 3, 3]
    xc = (Rp @ means[gid][:, :, None])[..., 0] + t[cam]  # [P, 3]
    x, y, z = xc.unbind(-1)
    K = Ks[cam]
    fx, fy, cx, cy = K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]
    # Clamp the direction used in J to 1.3x the half FoV (gsplat): stops border blow-ups.
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    ux = torch.minimum(torch.maximum(x / z, -(cx / fx + 0.3 * tan_x)), (width - cx) / fx + 0.3 * tan_x)
    uy = torch.minimum(torch.maximum(y / z, -(cy / fy + 0.3 * tan_y)), (height - cy) / fy + 0.3 * tan_y)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * ux / z, zero, fy / z, -fy * uy / z], -1).reshape(-1, 2, 3)
    M = J @ Rp  # [P, 2, 3]
    cov2d = M @ covs[gid] @ M.transpose(1, 2)  # [P, 2, 2]
    a = cov2d[:, 0, 0] + eps2d
    b = 0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0])
    c = cov2d[:, 1, 1] + eps2d
    det = a * c - b * b
    mean2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)  # [P, 2]
    with torch.no_grad():
        ext = torch.sqrt(2.0 * torch.log(opacities[gid] / ALPHA_MIN)).clamp(max=MAX_EXTENT)
        radii = torch.ceil(ext[:, None] * torch.stack([a, c], -1).clamp(min=0).sqrt())  # [P, 2]
        lo, hi = mean2d - radii, mean2d + radii
        ok = (det > 0) & (a > 0) & (radii > 0).any(-1)
        ok &= (hi[:, 0] > 0) & (lo[:, 0] < width) & (hi[:, 1] > 0) & (lo[:, 1] < height)
        sel = ok.nonzero().squeeze(1)
        sel = sel[torch.argsort(z[sel])]  # front to back
    if sel.numel() == 0:
        return None
    a, b, c, det = a[sel], b[sel], c[sel], det[sel]
    conic = torch.stack([c / det, -b / det, a / det], -1)  # [P, 3]
    return cam[sel], gid[sel], mean2d[sel], conic, z[sel], radii[sel]


def _composite(cam, mean2d, conic, opac, vals, radii, C, tx, ty):
    """Alpha-composite depth-sorted pairs into tiles ``[C*ty*tx, 256, V]`` (V = vals' width)."""
    dev, dt = mean2d.device, mean2d.dtype
    P, V, T = vals.shape[0], vals.shape[1], tx * ty
    with torch.no_grad():
        # Tiles touched by each pair's bbox, in pixel-centre terms (pixel u has centre u + 0.5).
        m = mean2d.detach()
        t0 = torch.floor((m - radii - 0.5) / TILE).long()
        t1 = torch.floor((m + radii - 0.5) / TILE).long()
        lim = torch.tensor([tx - 1, ty - 1], device=dev)
        t0 = torch.minimum(t0.clamp(min=0), lim)
        t1 = torch.minimum(t1.clamp(min=0), lim)
        n = (t1 - t0 + 1).clamp(min=0)  # [P, 2]
        cnt = n[:, 0] * n[:, 1]
        pid = torch.repeat_interleave(torch.arange(P, device=dev), cnt)  # [I] pair of each isect
        k = torch.arange(pid.numel(), device=dev) - (torch.cumsum(cnt, 0) - cnt)[pid]
        nx = n[pid, 0]
        tile = cam[pid] * T + (t0[pid, 1] + k // nx) * tx + t0[pid, 0] + k % nx  # [I]
        # Stable sort keeps the depth order of pairs within each tile.
        tile, order = torch.sort(tile, stable=True)
        pid = pid[order]
        counts = torch.bincount(tile, minlength=C * T)
        starts = torch.cumsum(counts, 0) - counts
        busy = counts.nonzero().squeeze(1)
        busy = busy[torch.argsort(counts[busy], descending=True)]
        busy_counts = counts[busy].tolist()
        # Tile-local pixel-centre basis for the quadratic log-alpha: [px², px py, py², px, py, 1].
        ly, lx = torch.meshgrid(torch.arange(TILE, device=dev), torch.arange(TILE, device=dev), indexing="ij")
        px, py = lx.reshape(-1).to(dt) + 0.5, ly.reshape(-1).to(dt) + 0.5
        basis = torch.stack([px * px, px * py, py * py, px, py, torch.ones_like(px)], 1)  # [256, 6]
    log_o = torch.log(opac)
    kstep = max(1, BATCH_ELEMS // (TILE * TILE))  # deeper tiles are split along K
    outs, done = [], []
    i = 0
    while i < len(busy_counts):
        kmax = busy_counts[i]
        j = i + 1
        while (j < len(busy_counts) and (j - i + 1) * min(kmax, kstep) * TILE * TILE <= BATCH_ELEMS
               and busy_counts[j] >= PAD_RATIO * kmax):
            j += 1
        tiles = busy[i:j]
        with torch.no_grad():
            local = tiles % T
            origin = torch.stack([(local % tx) * TILE, (local // tx) * TILE], -1).to(dt)  # [Tb, 2]
        acc, trans = None, torch.ones(len(tiles), TILE * TILE, device=dev, dtype=dt)  # [Tb, 256]
        for k0 in range(0, kmax, kstep):
            with torch.no_grad():
                ar = torch.arange(k0, min(kmax, k0 + kstep), device=dev)
                valid = ar[None] < counts[tiles][:, None]  # [Tb, K]
                idx = pid[(starts[tiles][:, None] + ar[None]).clamp(max=pid.numel() - 1)]  # [Tb, K]
            args = (mean2d[idx] - origin[:, None, :], conic[idx], log_o[idx], vals[idx], valid, basis, trans)
            if torch.is_grad_enabled() and any(x.requires_grad for x in args):
                # Recompute the [Tb, 256, K] intermediates in backward instead of keeping them all:
                # bounds the memory of a differentiable render by one batch (~+50% time).
                res, trans = checkpoint(_tile_batch, *args, use_reentrant=False)
            else:
                res, trans = _tile_batch(*args)
            acc = res if acc is None else acc + res
            if k0 + kstep < kmax and not bool((trans > T_MIN).any()):
                break  # every pixel of these tiles is saturated: the rest cannot contribute
        outs.append(acc)
        done.append(tiles)
        i = j
    out = torch.zeros(C * T, TILE * TILE, V, device=dev, dtype=dt)
    if outs:
        out = out.index_copy(0, torch.cat(done), torch.cat(outs))
    return out


def _tile_batch(d, conic, log_o, vals, valid, basis, trans):
    """Composite one batch of tiles behind transmittance ``trans`` [Tb, 256].

    d [Tb, K, 2] tile-local means, conic [Tb, K, 3], log_o [Tb, K], vals [Tb, K, V],
    valid [Tb, K] (False = padding), basis [256, 6]. Returns ([Tb, 256, V], transmittance after).
    Pixel-major layout [Tb, 256, K]: the scan (cumprod) runs along the contiguous last dim.
    """
    dx, dy = d[..., 0], d[..., 1]
    a, b, c = conic.unbind(-1)
    # log α = log o - ½ (p-m)ᵀ Q (p-m), expanded in p so the per-pixel part is a matmul.
    const = log_o - (0.5 * a * dx * dx + b * dx * dy + 0.5 * c * dy * dy)
    const = torch.where(valid, const, torch.full_like(const, -1e30))  # padding -> α = 0
    coef = torch.stack([-0.5 * a, -b, -0.5 * c, a * dx + b * dy, b * dx + c * dy, const], 1)  # [Tb, 6, K]
    if coef.requires_grad or trans.requires_grad:
        alpha = torch.exp(basis @ coef).clamp(max=ALPHA_MAX)  # [Tb, 256, K]
        alpha = F.threshold(alpha, ALPHA_MIN, 0.0)  # α < 1/255 skipped
        om = 1.0 - alpha
        t_incl = torch.cumprod(om, dim=-1) * trans[..., None]  # transmittance after each Gaussian
        trans = t_incl[..., -1]
        # α T_excl, and zero once T would drop to <= 1e-4 (that Gaussian and all behind it).
        w = (alpha / om) * F.threshold(t_incl, T_MIN, 0.0)
    else:  # same maths in place (no graph to keep): ~1.5x faster
        w = F.threshold_((basis @ coef).exp_().clamp_(max=ALPHA_MAX), ALPHA_MIN, 0.0)
        om = 1.0 - w
        t_incl = torch.cumprod(om, dim=-1).mul_(trans[..., None])
        trans = t_incl[..., -1].clone()
        w.div_(om).mul_(F.threshold_(t_incl, T_MIN, 0.0))
    return torch.bmm(vals.transpose(1, 2), w.transpose(1, 2)).transpose(1, 2), trans  # [Tb, 256, V]


def _empty(n_tiles: int, D: int, *refs: Tensor) -> Tensor:
    """All-transparent tiles ``[n_tiles, 256, D+2]``, still attached to the inputs' graph."""
    ref = refs[0]
    out = torch.zeros(n_tiles, TILE * TILE, D + 2, device=ref.device, dtype=ref.dtype)
    if torch.is_grad_enabled() and any(r.requires_grad for r in refs):
        out = out + 0.0 * sum(r.sum() for r in refs)  # so .backward() works (zero grads)
    return out
