"""Camera head: iterative refinement of a 9-d pose encoding from the camera tokens.

Each iteration embeds the current (pre-activation) encoding, modulates the normalised camera token
with it (adaLN: shift, scale, gate), runs a trunk of blocks that attend **across the S frames**, and
adds a predicted delta. Only the field of view gets an activation (ReLU by default).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import CameraHeadConfig
from .transformer import Block, Mlp, run_block


def _activate(x: Tensor, kind: str) -> Tensor:
    if kind == "linear":
        return x
    if kind == "relu":
        return torch.relu(x)
    if kind == "exp":
        return torch.exp(x)
    if kind == "inv_log":
        return torch.sign(x) * torch.expm1(torch.abs(x))
    raise ValueError(f"unknown camera-head activation {kind!r}: use linear, relu, exp or inv_log")


class CameraHead(nn.Module):
    def __init__(self, dim_in: int, cfg: CameraHeadConfig) -> None:
        super().__init__()
        for kind in (cfg.trans_act, cfg.quat_act, cfg.fl_act):
            _activate(torch.zeros(1), kind)  # fail at construction on an unknown name
        self.cfg = cfg
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk = nn.Sequential(
            *[Block(dim_in, cfg.num_heads, cfg.mlp_ratio, init_values=cfg.init_values) for _ in range(cfg.trunk_depth)]
        )
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, 9))
        self.embed_pose = nn.Linear(9, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, 9)

    def _activate_pose(self, enc: Tensor) -> Tensor:
        return torch.cat(
            [_activate(enc[..., :3], self.cfg.trans_act), _activate(enc[..., 3:7], self.cfg.quat_act),
             _activate(enc[..., 7:], self.cfg.fl_act)],
            dim=-1,
        )

    def forward(self, camera_tokens: Tensor, num_iterations: int | None = None) -> list[Tensor]:
        """camera_tokens ``[B, S, 2C]`` (token 0 of the last aggregator layer) → encodings ``[B, S, 9]`` per iteration."""
        B, S, _ = camera_tokens.shape
        tok = self.token_norm(camera_tokens)
        enc: Tensor | None = None
        outputs = []
        for _ in range(num_iterations or self.cfg.num_iterations):
            if enc is None:
                e = self.embed_pose(self.empty_pose_tokens.expand(B, S, -1))
            else:
                enc = enc.detach()  # each refinement step learns on its own, as in the reference
                e = self.embed_pose(enc)
            shift, scale, gate = self.poseLN_modulation(e).chunk(3, dim=-1)
            h = gate * (self.adaln_norm(tok) * (1 + scale) + shift) + tok
            for blk in self.trunk:
                h = run_block(blk, h)
            delta = self.pose_branch(self.trunk_norm(h))
            enc = delta if enc is None else enc + delta
            outputs.append(self._activate_pose(enc))
        return outputs
