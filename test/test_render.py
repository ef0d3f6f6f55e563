"""Tests for eps3d_ros.render: analytic footprints, compositing order, N-D features, gradients,
input validation, and (on CUDA machines with gsplat) torch-vs-gsplat agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from eps3d_ros.conventions import covariance_from_scale_rotation
from eps3d_ros.render import RenderOutput, has_gsplat, render_gaussians

W, H = 40, 32
K_NP = np.array([[50.0, 0.0, 20.0], [0.0, 55.0, 16.0], [0.0, 0.0, 1.0]])


def _K(dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(K_NP, dtype=dtype)[None]  # [1, 3, 3]


def _eye(dtype=torch.float64) -> torch.Tensor:
    return torch.eye(4, dtype=dtype)[None]  # [1, 4, 4]


def _viewmat_np() -> np.ndarray:
    """A non-trivial camera-from-world transform [4, 4]."""
    E = np.eye(4)
    E[:3, :3] = Rotation.from_euler("xyz", [0.2, -0.3, 0.1]).as_matrix()
    E[:3, 3] = [0.1, -0.2, 0.5]
    return E


def _analytic_alpha(mean_w, cov_w, opacity, E=np.eye(4), K=K_NP, eps2d=0.3, w=W, h=H):
    """Closed-form single-Gaussian alpha image [h, w] (numpy, float64) and camera z."""
    R, t = E[:3, :3], E[:3, 3]
    x, y, z = R @ mean_w + t
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    J = np.array([[fx / z, 0, -fx * x / z**2], [0, fy / z, -fy * y / z**2]])  # centre in FoV: no clamp
    S2 = J @ R @ cov_w @ R.T @ J.T + eps2d * np.eye(2)
    m2 = np.array([fx * x / z + cx, fy * y / z + cy])
    v, u = np.mgrid[0:h, 0:w]
    d = np.stack([u + 0.5 - m2[0], v + 0.5 - m2[1]], -1)  # pixel centres
    maha = np.einsum("hwi,ij,hwj->hw", d, np.linalg.inv(S2), d)
    a = np.minimum(0.999, opacity * np.exp(-0.5 * maha))
    return np.where(a < 1 / 255, 0.0, a), z


def _render(means, opac, feats, cov=None, E=None, **kw) -> RenderOutput:
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    vm = _eye() if E is None else t(E)[None]
    return render_gaussians(t(means), t(opac), t(feats), vm, _K(), W, H,
                            covariances=None if cov is None else t(cov), backend="torch", **kw)


def _random_scene(n=60, d=3, seed=0, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    means = torch.cat([(torch.rand(n, 2, generator=g) - 0.5) * 2.0, 2.0 + 3.0 * torch.rand(n, 1, generator=g)], 1)
    scales = 0.03 * torch.exp(0.6 * torch.randn(n, 3, generator=g))
    rots = torch.randn(n, 4, generator=g)
    opac = 0.05 + 0.9 * torch.rand(n, generator=g)
    feats = torch.rand(n, d, generator=g)
    return [x.to(dtype=dtype, device=device) for x in (means, opac, feats, scales, rots)]


# 1. single Gaussian vs the analytic 2D Gaussian --------------------------------------------------


@pytest.mark.parametrize("aniso", [False, True])
def test_single_gaussian_matches_analytic(aniso):
    E = _viewmat_np()
    mean_c = np.array([0.15, -0.1, 3.0])  # where we want it in the camera
    mean_w = E[:3, :3].T @ (mean_c - E[:3, 3])
    if aniso:
        Rg = Rotation.from_quat([0.3, -0.2, 0.5, 0.8]).as_matrix()  # scipy: xyzw
        cov = Rg @ np.diag([0.12, 0.04, 0.02]) ** 2 @ Rg.T
    else:
        cov = np.eye(3) * 0.06**2
    opacity, color = 0.8, np.array([0.2, 0.5, 0.9])
    out = _render(mean_w[None], [opacity], color[None], cov[None], E=E)
    alpha, z = _analytic_alpha(mean_w, cov, opacity, E=E)
    assert alpha.max() > 0.5 and (alpha == 0).any()  # visible, and clipped somewhere
    np.testing.assert_allclose(out.alphas[0, ..., 0].numpy(), alpha, atol=1e-9)
    np.testing.assert_allclose(out.features[0].numpy(), alpha[..., None] * color, atol=1e-9)
    np.testing.assert_allclose(out.depths[0, ..., 0].numpy(), alpha * z, atol=1e-8)
    assert out.backend == "torch" and out.features.shape == (1, H, W, 3)


def test_alpha_clipped_at_0999():
    cov = np.eye(3)[None] * 0.2**2
    z = 2.0  # mean exactly on pixel (W/2, H/2)'s centre: o * exp(0) = 1 is clipped to 0.999
    out = _render([[0.5 * z / K_NP[0, 0], 0.5 * z / K_NP[1, 1], z]], [1.0], [[1.0]], cov)
    assert out.alphas.max().item() == pytest.approx(0.999, abs=1e-12)


# 2. depth-ordered compositing ---------------------------------------------------------------


def test_two_gaussians_composite_in_depth_order():
    red, blue = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    m_red, m_blue = np.array([0.0, 0.0, 2.0]), np.array([0.0, 0.0, 4.0])
    cov_red, cov_blue = np.eye(3) * 0.05**2, np.eye(3) * 0.1**2  # same projected size
    o_red, o_blue = 0.7, 0.9
    out = _render([m_red, m_blue], [o_red, o_blue], [red, blue], [cov_red, cov_blue])
    a1, _ = _analytic_alpha(m_red, cov_red, o_red)
    a2, _ = _analytic_alpha(m_blue, cov_blue, o_blue)
    v, u = H // 2, W // 2
    expected = a1[v, u] * red + (1 - a1[v, u]) * a2[v, u] * blue
    got = out.features[0, v, u].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert got[0] > got[2]  # mostly red
    np.testing.assert_allclose(out.alphas[0, ..., 0].numpy(), 1 - (1 - a1) * (1 - a2), atol=1e-9)
    # Input order does not matter.
    swapped = _render([m_blue, m_red], [o_blue, o_red], [blue, red], [cov_blue, cov_red])
    torch.testing.assert_close(swapped.features, out.features)
    torch.testing.assert_close(swapped.depths, out.depths)
    # Blue moved in front (and red behind): blue dominates.
    flipped = _render([m_red * 2, m_blue / 2], [o_red, o_blue], [red, blue], [cov_red * 4, cov_blue / 4])
    assert flipped.features[0, v, u, 2] > flipped.features[0, v, u, 0]


@pytest.mark.parametrize("o2, second_counts", [(0.999, False), (0.97, True)])
def test_transmittance_stop_is_exclusive(o2, second_counts):
    # Big, nearly opaque Gaussians stacked in depth: compositing stops (exclusively) at the first
    # Gaussian after which the transmittance would be <= 1e-4, as gsplat does.
    means = [np.array([0.0, 0.0, 2.0 + i]) for i in range(3)]
    covs = [np.eye(3) * (0.3 * (1 + i)) ** 2 for i in range(3)]
    opac = [0.995, o2, 0.9]
    out = _render(means, opac, np.eye(3), covs)
    v, u = H // 2, W // 2
    a = [_analytic_alpha(m, c, o)[0][v, u] for m, c, o in zip(means, covs, opac)]
    T1, T2 = 1 - a[0], (1 - a[0]) * (1 - a[1])
    assert T1 > 1e-4 and (T2 > 2e-4 if second_counts else T2 < 0.7e-4)  # the scenario is as meant
    T3 = T2 * (1 - a[2])
    assert T3 < 0.5e-4
    expected = [a[0], T1 * a[1] if second_counts else 0.0, 0.0]
    np.testing.assert_allclose(out.features[0, v, u].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(out.alphas[0, v, u, 0].item(), 1 - (T2 if second_counts else T1), atol=1e-12)


# 3. N-D features ----------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 3, 32, 84])
def test_feature_channels_are_linear(d):
    means, opac, _, scales, rots = _random_scene(d=d)
    g = torch.Generator().manual_seed(d)
    F = torch.rand(len(means), d, generator=g, dtype=torch.float64)
    G = torch.randn(len(means), d, generator=g, dtype=torch.float64)
    M = torch.randn(d, 5, generator=g, dtype=torch.float64)
    r = lambda f: render_gaussians(means, opac, f, _eye(), _K(), W, H, scales=scales, rotations=rots)  # noqa: E731
    rF, rG, rFG, rFM = r(F), r(G), r(F + G), r(F @ M)
    assert rF.features.shape == (1, H, W, d) and rF.backend == "torch"
    torch.testing.assert_close(rF.features + rG.features, rFG.features)
    torch.testing.assert_close(rF.features @ M, rFM.features)
    torch.testing.assert_close(rF.alphas, rFM.alphas)
    assert rF.alphas.max() > 0.5


def test_no_grad_path_matches_autograd_path():
    # Without gradients the tile maths runs in place; it must give the same images.
    means, opac, feats, scales, rots = _random_scene(n=300)
    means.requires_grad_(True)
    a = render_gaussians(means, opac, feats, _eye(), _K(), W, H, scales=scales, rotations=rots)
    with torch.no_grad():
        b = render_gaussians(means, opac, feats, _eye(), _K(), W, H, scales=scales, rotations=rots)
    for x, y in [(a.features, b.features), (a.alphas, b.alphas), (a.depths, b.depths)]:
        torch.testing.assert_close(x.detach(), y, rtol=1e-12, atol=1e-12)
    assert a.features.requires_grad and not b.features.requires_grad


@pytest.mark.parametrize("wall", [False, True])
def test_small_batches_and_k_chunks_give_the_same_image(monkeypatch, wall):
    # Deep tiles are split along K (transmittance carried over, early exit once saturated).
    from eps3d_ros.render import torch_backend

    means, opac, feats, scales, rots = _random_scene(n=400, seed=5)
    opac = opac.clamp(min=0.6)
    if wall:  # a few big opaque Gaussians in front saturate every pixel: later chunks are skipped
        n = 12
        front = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64) + 0.01 * torch.arange(n)[:, None]
        means = torch.cat([front, means])
        opac = torch.cat([torch.full((n,), 0.95, dtype=torch.float64), opac])
        feats = torch.cat([torch.rand(n, 3, dtype=torch.float64), feats])
        scales = torch.cat([torch.full((n, 3), 1.0, dtype=torch.float64), scales])
        rots = torch.cat([torch.randn(n, 4, dtype=torch.float64), rots])
    means.requires_grad_(True)

    def run():
        out = render_gaussians(means, opac, feats, _eye(), _K(), W, H, scales=scales, rotations=rots)
        (grad,) = torch.autograd.grad((out.features * torch.linspace(0, 1, 3)).sum() + out.depths.sum(), means)
        with torch.no_grad():
            ng = render_gaussians(means, opac, feats, _eye(), _K(), W, H, scales=scales, rotations=rots)
        return out.features.detach(), out.depths.detach(), grad, ng.features

    ref = run()
    monkeypatch.setattr(torch_backend, "BATCH_ELEMS", 256 * 7)  # 7 Gaussians per chunk
    for x, y in zip(run(), ref):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)


def test_multi_camera_equals_single_cameras():
    means, opac, feats, scales, rots = _random_scene()
    vms = torch.stack([_eye()[0], torch.as_tensor(_viewmat_np())])[:, :3, :]  # [2, 3, 4]
    Ks = torch.cat([_K(), _K() * torch.tensor([[1.2], [0.9], [1.0]], dtype=torch.float64)])
    both = render_gaussians(means, opac, feats, vms, Ks, W, H, scales=scales, rotations=rots)
    for c in range(2):
        one = render_gaussians(means, opac, feats, vms[c : c + 1], Ks[c : c + 1], W, H, scales=scales, rotations=rots)
        torch.testing.assert_close(both.features[c : c + 1], one.features)
        torch.testing.assert_close(both.depths[c : c + 1], one.depths)


# 4. gradients -------------------------------------------------------------------------------


def test_gradients_finite_and_nonzero():
    params = _random_scene(n=40, dtype=torch.float32)
    for p in params:
        p.requires_grad_(True)
    means, opac, feats, scales, rots = params
    out = render_gaussians(means, opac, feats, _eye(torch.float32), _K(torch.float32), W, H,
                           scales=scales, rotations=rots, backgrounds=torch.tensor([0.1, 0.2, 0.3]))
    w = torch.rand_like(out.features)
    (out.features * w).sum().add(out.depths.mean() + out.alphas.mean()).backward()
    for name, p in zip(["means", "opacities", "features", "scales", "rotations"], params):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    means = torch.tensor([[0.02, -0.01, 1.0], [-0.03, 0.02, 1.3]], dtype=torch.float64)
    opac = torch.tensor([0.6, 0.8], dtype=torch.float64)
    feats = torch.rand(2, 2, generator=g, dtype=torch.float64)
    scales = torch.tensor([[0.02, 0.01, 0.015], [0.015, 0.02, 0.01]], dtype=torch.float64)
    rots = torch.randn(2, 4, generator=g, dtype=torch.float64)
    K = torch.tensor([[[30.0, 0, 6], [0, 30.0, 5], [0, 0, 1]]], dtype=torch.float64)

    def f(m, o, c, s, q):
        out = render_gaussians(m, o, c, _eye(), K, 12, 10, scales=s, rotations=q)
        return out.features, out.depths, out.alphas

    inputs = tuple(x.requires_grad_(True) for x in (means, opac, feats, scales, rots))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, fast_mode=True)


def test_empty_view_still_backpropagates():
    means = torch.tensor([[0.0, 0.0, -2.0]], requires_grad=True)  # behind the camera
    out = render_gaussians(means, torch.tensor([0.5]), torch.ones(1, 3), torch.eye(4)[None], _K(torch.float32),
                           W, H, covariances=torch.eye(3)[None] * 0.01, backgrounds=torch.tensor([1.0, 0.0, 0.5]))
    assert (out.alphas == 0).all() and (out.depths == 0).all()
    torch.testing.assert_close(out.features, torch.tensor([1.0, 0.0, 0.5]).expand(1, H, W, 3))
    out.features.sum().backward()
    assert means.grad is not None and (means.grad == 0).all()


# 5. covariance vs scale/rotation, xyzw, background, validation ------------------------------


def test_covariances_equal_scales_rotations():
    means, opac, feats, scales, rots = _random_scene()
    q = rots.numpy()
    Rm = Rotation.from_quat(q / np.linalg.norm(q, axis=1, keepdims=True)).as_matrix()  # scipy is xyzw
    cov = torch.as_tensor(Rm @ (np.eye(3) * (scales.numpy()[:, None, :] ** 2)) @ Rm.transpose(0, 2, 1))
    torch.testing.assert_close(covariance_from_scale_rotation(scales, rots), cov)
    a = render_gaussians(means, opac, feats, _eye(), _K(), W, H, covariances=cov)
    b = render_gaussians(means, opac, feats, _eye(), _K(), W, H, scales=scales, rotations=rots)
    for x, y in [(a.features, b.features), (a.alphas, b.alphas), (a.depths, b.depths)]:
        torch.testing.assert_close(x, y)


def _second_moments(alpha: torch.Tensor):
    v, u = torch.meshgrid(torch.arange(H, dtype=alpha.dtype), torch.arange(W, dtype=alpha.dtype), indexing="ij")
    w = alpha / alpha.sum()
    mu, mv = (w * u).sum(), (w * v).sum()
    return (w * (u - mu) ** 2).sum(), (w * (v - mv) ** 2).sum(), (w * (u - mu) * (v - mv)).sum()


def test_xyzw_rotation_turns_footprint_the_right_way():
    mean = torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64)
    scales = torch.tensor([[0.15, 0.03, 0.03]], dtype=torch.float64)  # long along the Gaussian's x
    kw = dict(scales=scales)
    args = (mean, torch.tensor([0.9], dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64), _eye(), _K(), W, H)
    s = math.sqrt(0.5)
    ident = render_gaussians(*args, rotations=torch.tensor([[0.0, 0, 0, 1]], dtype=torch.float64), **kw)
    z90 = render_gaussians(*args, rotations=torch.tensor([[0.0, 0, s, s]], dtype=torch.float64), **kw)
    q45 = torch.tensor([[0.0, 0, math.sin(math.pi / 8), math.cos(math.pi / 8)]], dtype=torch.float64)
    z45 = render_gaussians(*args, rotations=q45, **kw)
    uu, vv, _ = _second_moments(ident.alphas[0, ..., 0])
    assert uu > 3 * vv  # horizontal streak
    uu, vv, _ = _second_moments(z90.alphas[0, ..., 0])
    assert vv > 3 * uu  # +90° about the optical axis: vertical streak
    # +45° about z maps x to (x + y)/√2: in OpenCV (y down) the streak runs down-right, +uv covariance.
    _, _, uv = _second_moments(z45.alphas[0, ..., 0])
    assert uv > 0
    # A wxyz quaternion read as xyzw would be a different rotation: (s, 0, 0, s) is 90° about x.
    wrong = render_gaussians(*args, rotations=torch.tensor([[s, 0, 0, s]], dtype=torch.float64), **kw)
    assert not torch.allclose(wrong.alphas, z90.alphas)


def test_background():
    means, opac, feats, scales, rots = _random_scene()
    bg = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)
    def r(b):
        return render_gaussians(means, opac, feats, _eye(), _K(), W, H, scales=scales, rotations=rots, backgrounds=b)

    plain, with_bg, with_cbg = r(None), r(bg), r(bg[None])
    torch.testing.assert_close(with_bg.features, plain.features + (1 - plain.alphas) * bg)
    torch.testing.assert_close(with_cbg.features, with_bg.features)
    torch.testing.assert_close(with_bg.alphas, plain.alphas)


def test_near_far_culling():
    cov = np.eye(3)[None] * 0.05**2
    near = _render([[0.0, 0.0, 0.5]], [0.9], [[1.0]], cov, near_plane=1.0)
    far = _render([[0.0, 0.0, 5.0]], [0.9], [[1.0]], cov, far_plane=4.0)
    inside = _render([[0.0, 0.0, 2.0]], [0.9], [[1.0]], cov, near_plane=1.0, far_plane=4.0)
    assert near.alphas.max() == 0 and far.alphas.max() == 0 and inside.alphas.max() > 0.5


def _valid_kwargs(**over):
    means, opac, feats, scales, rots = _random_scene(n=5, dtype=torch.float32)
    kw = dict(means=means, opacities=opac, features=feats, viewmats=torch.eye(4)[None], Ks=_K(torch.float32),
              width=W, height=H, scales=scales, rotations=rots)
    kw.update(over)
    return kw


@pytest.mark.parametrize(
    "over, match",
    [
        (dict(means=torch.zeros(5, 2)), r"means must have shape \[N, 3\], got shape \(5, 2\)"),
        (dict(opacities=torch.full((4,), 0.5)), r"opacities .*got shape \(4,\)"),
        (dict(features=torch.zeros(5, 0)), r"features .*D >= 1.*\(5, 0\)"),
        (dict(features=torch.zeros(5, 3, dtype=torch.int64)), r"features must be a floating-point"),
        (dict(viewmats=torch.eye(3)[None]), r"viewmats must be \[C, 4, 4\] or \[C, 3, 4\].*got shape \(1, 3, 3\)"),
        (dict(viewmats=torch.eye(4)[None, :2]), r"viewmats .*got shape \(1, 2, 4\)"),
        (dict(viewmats=torch.eye(4)), r"viewmats .*got shape \(4, 4\)"),
        (dict(viewmats=torch.eye(4, dtype=torch.int32)[None]), r"viewmats must be a floating-point"),
        (dict(Ks=-_K(torch.float32)), r"positive focal lengths"),
        (dict(Ks=torch.eye(3)[None].repeat(2, 1, 1)), r"Ks must have shape \[1, 3, 3\], got shape \(2, 3, 3\)"),
        (dict(width=0), r"width must be a positive int"),
        (dict(height=12.5), r"height must be a positive int"),
        (dict(covariances=torch.eye(3)[None].repeat(5, 1, 1)), r"not both"),
        (dict(scales=None), r"either covariances or both scales and rotations"),
        (dict(scales=None, rotations=None), r"either covariances or both scales and rotations"),
        (dict(rotations=torch.zeros(5, 3)), r"rotations .*got shape \(5, 3\)"),
        (dict(rotations=torch.zeros(5, 4)), r"zero-length"),
        (dict(means=torch.full((5, 3), float("nan"))), r"means contains NaN"),
        (dict(scales=torch.full((5, 3), float("inf"))), r"scales contains NaN or infinite"),
        (dict(opacities=torch.full((5,), 1.5)), r"opacities must lie in \[0, 1\]"),
        (dict(backgrounds=torch.zeros(2)), r"backgrounds must have shape \[3\], got shape \(2,\)"),
        (dict(backgrounds=torch.zeros(2, 3)), r"backgrounds must be \[C, D\] = \[1, 3\] or \[D\], got shape \(2, 3\)"),
        (dict(backgrounds=torch.zeros(1, 1, 3)), r"backgrounds must be \[C, D\] or \[D\], got shape \(1, 1, 3\)"),
        (dict(Ks=torch.zeros(1, 3, 3, device="meta")), r"Ks is on meta but means is on cpu"),
        (dict(backgrounds=[0.0, 0.0, 0.0]), r"backgrounds must be a torch.Tensor"),
        (dict(means=torch.zeros(5, 3).numpy()), r"means must be a torch.Tensor, got ndarray"),
        (dict(near_plane=-1.0), r"near_plane"),
        (dict(backend="cuda"), r"backend must be one of"),
    ],
)
def test_input_validation(over, match):
    with pytest.raises(ValueError, match=match):
        render_gaussians(**_valid_kwargs(**over))


def test_covariance_shape_validation():
    kw = _valid_kwargs(scales=None, rotations=None, covariances=torch.eye(3)[None].repeat(4, 1, 1))
    with pytest.raises(ValueError, match=r"covariances must have shape \[5, 3, 3\], got shape \(4, 3, 3\)"):
        render_gaussians(**kw)


def test_gsplat_backend_refused_without_cuda_inputs():
    # CPU inputs can never run on gsplat; the error says why.
    with pytest.raises(RuntimeError, match=r"backend='gsplat' cannot run: "):
        render_gaussians(**_valid_kwargs(backend="gsplat"))
    assert render_gaussians(**_valid_kwargs(backend="auto")).backend == "torch"


# 6. gsplat agreement (CUDA machines only) ---------------------------------------------------


@pytest.mark.skipif(not has_gsplat(), reason="needs CUDA and gsplat")
@pytest.mark.parametrize("d, use_cov", [(3, True), (3, False), (40, True)])
def test_gsplat_matches_torch(d, use_cov):
    means, opac, feats, scales, rots = _random_scene(n=3000, d=d, seed=7, dtype=torch.float32)
    vms = torch.stack([torch.eye(4), torch.as_tensor(_viewmat_np(), dtype=torch.float32)])[:, :3]  # [2, 3, 4]
    Ks = torch.tensor(K_NP, dtype=torch.float32)[None].repeat(2, 1, 1) * 2.0
    Ks[:, 2, 2] = 1.0
    bg = torch.rand(2, d)
    kw = dict(scales=scales, rotations=rots)
    if use_cov:
        kw = dict(covariances=covariance_from_scale_rotation(scales, rots))
    args = [means, opac, feats, vms, Ks]
    size = (2 * W + 3, 2 * H + 5)  # odd size: partial tiles
    f64 = lambda x: x.double()  # noqa: E731  (float64 reference; gsplat computes in float32)
    ref = render_gaussians(*map(f64, args), *size, backgrounds=bg.double(), backend="torch",
                           **{k: f64(v) for k, v in kw.items()})
    cu = lambda x: x.cuda().requires_grad_(x is means)  # noqa: E731
    gs = render_gaussians(*map(cu, args), *size, backgrounds=bg.cuda(), backend="gsplat",
                          **{k: cu(v) for k, v in kw.items()})
    assert gs.backend == "gsplat" and gs.features.shape == ref.features.shape and gs.features.is_cuda
    assert ref.alphas.mean() > 0.3
    # Rare pixels near the 1/255 or 1e-4 cut-offs may differ a little; the bulk must agree closely.
    for name, a, b, tol in [("features", gs.features, ref.features, 1e-2), ("alphas", gs.alphas, ref.alphas, 1e-2),
                            ("depths", gs.depths, ref.depths, 5e-2)]:
        diff = (a.detach().double().cpu() - b).abs()
        assert diff.max() < tol, (name, diff.max().item())
        assert diff.mean() < 1e-4 * (1 + b.abs().mean()), (name, diff.mean().item())
    (gs.features.sum() + gs.depths.sum()).backward()  # gsplat path is differentiable too
    # "auto" picks gsplat for CUDA inputs.
    assert render_gaussians(*map(lambda x: x.detach().cuda(), args), *size, backend="auto",
                            **{k: v.cuda() for k, v in kw.items()}).backend == "gsplat"


def test_cameras_rendered_in_batches_under_a_memory_budget_give_the_same_images():
    from eps3d_ros.render.rasterize import camera_batch_size

    g = torch.Generator().manual_seed(7)
    n, c = 400, 5
    means = torch.cat([torch.rand(n, 2, generator=g) - 0.5, 2 + torch.rand(n, 1, generator=g)], 1)
    args = dict(means=means, opacities=torch.rand(n, generator=g), features=torch.rand(n, 4, generator=g),
                viewmats=torch.eye(4).repeat(c, 1, 1), Ks=torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]).repeat(c, 1, 1),
                width=32, height=32, scales=0.02 + 0.02 * torch.rand(n, 3, generator=g),
                rotations=torch.randn(n, 4, generator=g), backend="torch")
    args["viewmats"][:, 0, 3] = torch.linspace(-0.2, 0.2, c)
    whole = render_gaussians(**args)
    small = camera_batch_size(n, 4, c, 1)  # a budget too small for even one camera: one at a time
    assert small == 1 and camera_batch_size(n, 4, c) == c
    batched = render_gaussians(**args, max_bytes=1, progress=True)
    # the same maths; only the padding of tile batches (summation lengths) differs
    for a, b in ((whole.features, batched.features), (whole.alphas, batched.alphas), (whole.depths, batched.depths)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="max_bytes"):
        render_gaussians(**args, max_bytes=0)
