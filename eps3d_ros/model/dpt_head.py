"""DPT heads: the depth head and the Gaussian-parameter heads (appearance, semantic, instance).

Per frame: the patch tokens of four aggregator layers are normalised, projected, given a
sinusoidal position map, resized to 4 scales, fused coarse-to-fine with RefineNet blocks, and
decoded at full resolution. Gaussian heads add an image branch (7x7 conv on the raw [0, 1] image)
before the last block and apply no activation. Every bilinear resize uses ``align_corners=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import DPTConfig


def position_map(channels: int, h: int, w: int, image_hw: tuple[int, int], device: torch.device) -> Tensor:
    """Sinusoidal map ``[channels, h, w]`` of normalised (u, v) coordinates, scaled by 0.1.

    u spans ``±(a/dg)(w-1)/w`` and v ``±(1/dg)(h-1)/h`` with ``a = W/H``, ``dg = sqrt(a^2+1)``; each
    coordinate gets ``channels/2`` channels ``[sin(p*om_j), cos(p*om_j)]`` with ``om_j = 100^(-j/(n/2))``.
    """
    H, W = image_hw
    a = W / H
    dg = (a * a + 1) ** 0.5
    sx, sy = a / dg, 1 / dg
    u = torch.linspace(-sx * (w - 1) / w, sx * (w - 1) / w, steps=w, dtype=torch.float32, device=device)
    v = torch.linspace(-sy * (h - 1) / h, sy * (h - 1) / h, steps=h, dtype=torch.float32, device=device)
    vv, uu = torch.meshgrid(v, u, indexing="ij")  # [h, w]
    n = channels // 2
    omega = torch.arange(n // 2, dtype=torch.float64, device=device) / (n / 2.0)
    omega = 1.0 / 100.0 ** omega

    def emb(p: Tensor) -> Tensor:  # float64 then float32, as the reference
        ang = p.reshape(-1).double()[:, None] * omega[None]
        return torch.cat([ang.sin(), ang.cos()], dim=1).float()  # [h*w, n]

    out = torch.cat([emb(uu), emb(vv)], dim=1).reshape(h, w, channels)
    return 0.1 * out.permute(2, 0, 1)


def _add_position(x: Tensor, image_hw: tuple[int, int]) -> Tensor:
    return x + position_map(x.shape[1], x.shape[2], x.shape[3], image_hw, x.device).to(x.dtype)[None]


def _resize(x: Tensor, size: tuple[int, int] | None = None, scale: float | None = None) -> Tensor:
    return F.interpolate(x, size=size, scale_factor=scale, mode="bilinear", align_corners=True)


class ResidualConvUnit(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv2 = nn.Conv2d(features, features, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        # The reference's in-place ReLU also rewrites the residual input: relu(x) + conv(...).
        x = torch.relu(x)
        return x + self.conv2(torch.relu(self.conv1(x)))


class FeatureFusionBlock(nn.Module):
    def __init__(self, features: int, has_skip: bool = True) -> None:
        super().__init__()
        if has_skip:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)
        self.has_skip = has_skip

    def forward(self, x: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        if self.has_skip:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = _resize(x, size=size) if size is not None else _resize(x, scale=2.0)
        return self.out_conv(x)


class _Scratch(nn.Module):
    def __init__(self, cfg: DPTConfig, out_dim: int, hidden: int) -> None:
        super().__init__()
        f = cfg.features
        for i, c in enumerate(cfg.out_channels, start=1):
            setattr(self, f"layer{i}_rn", nn.Conv2d(c, f, 3, 1, 1, bias=False))
        self.refinenet1 = FeatureFusionBlock(f)
        self.refinenet2 = FeatureFusionBlock(f)
        self.refinenet3 = FeatureFusionBlock(f)
        self.refinenet4 = FeatureFusionBlock(f, has_skip=False)
        self.output_conv1 = nn.Conv2d(f, f // 2, 3, 1, 1)
        self.output_conv2 = nn.Sequential(
            nn.Conv2d(f // 2, hidden, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, out_dim, 1)
        )


class DPTHead(nn.Module):
    """DPT decoder. ``image_merger=True`` makes it a Gaussian head (image branch, raw output)."""

    def __init__(
        self, dim_in: int, cfg: DPTConfig, out_dim: int, patch_size: int = 14, image_merger: bool = False
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_size = patch_size
        self.out_dim = out_dim
        oc = cfg.out_channels
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(oc[0], oc[0], 4, stride=4),
                nn.ConvTranspose2d(oc[1], oc[1], 2, stride=2),
                nn.Identity(),
                nn.Conv2d(oc[3], oc[3], 3, stride=2, padding=1),
            ]
        )
        hidden = cfg.gs_hidden if image_merger else cfg.depth_hidden
        self.scratch = _Scratch(cfg, out_dim, hidden)
        if image_merger:
            if cfg.gs_merger_channels != cfg.features // 2:
                raise ValueError("the image merger width must equal features / 2 (it is added to the fused map)")
            self.input_merger = nn.Sequential(nn.Conv2d(3, cfg.gs_merger_channels, 7, 1, 3), nn.ReLU())
        self.image_merger = image_merger

    def forward(self, layers: list[Tensor], images: Tensor, patch_start_idx: int) -> Tensor:
        """layers: 4 tensors ``[B, S, Ntok, dim_in]``; images ``[B, S, 3, H, W]`` in [0, 1].

        Returns ``[B, S, out_dim, H, W]`` raw (before any activation).
        """
        B, S, _, H, W = images.shape
        chunk = max(1, self.cfg.frames_chunk_size)
        flat_layers = [t.reshape(B * S, *t.shape[2:]) for t in layers]
        flat_images = images.reshape(B * S, 3, H, W)
        outs = [
            self._decode([t[i:i + chunk] for t in flat_layers], flat_images[i:i + chunk], patch_start_idx)
            for i in range(0, B * S, chunk)
        ]
        out = torch.cat(outs, dim=0)
        return out.reshape(B, S, *out.shape[1:])

    def _decode(self, layers: list[Tensor], images: Tensor, patch_start_idx: int) -> Tensor:
        Fr, _, H, W = images.shape
        ph, pw = H // self.patch_size, W // self.patch_size
        feats = []
        for k, t in enumerate(layers):
            x = self.norm(t[:, patch_start_idx:])  # [F, P, dim_in]
            x = x.permute(0, 2, 1).reshape(Fr, -1, ph, pw)
            x = _add_position(self.projects[k](x), (H, W))
            feats.append(self.resize_layers[k](x))
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i}_rn")(x) for i, x in enumerate(feats, start=1))
        out = s.refinenet4(l4, size=l3.shape[2:])
        out = s.refinenet3(out, l3, size=l2.shape[2:])
        out = s.refinenet2(out, l2, size=l1.shape[2:])
        out = s.refinenet1(out, l1)
        out = s.output_conv1(out)  # [F, features/2, 8ph, 8pw]
        out = _resize(out, size=(H, W))
        if self.image_merger:
            out = out + self.input_merger(images)
        out = _add_position(out, (H, W))
        return s.output_conv2(out)


def activate_depth(raw: Tensor) -> tuple[Tensor, Tensor]:
    """Depth head ``[B, S, 2, H, W]`` → depth ``[B, S, H, W, 1]`` = exp, confidence ``[B, S, H, W]`` = 1 + exp."""
    raw = raw.permute(0, 1, 3, 4, 2)
    return torch.exp(raw[..., :1]), 1 + torch.exp(raw[..., 1])
