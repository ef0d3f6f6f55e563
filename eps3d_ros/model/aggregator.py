"""Alternating-attention aggregator (VGGT): frame blocks attend within a frame, global blocks across all.

Token layout per frame: ``[camera, 4 registers, P patches]`` (``patch_start_idx = 5``). Frame 0 uses
slot 0 of the camera/register tokens, every other frame slot 1, so results depend on which view
comes first.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import AggregatorConfig
from .patch_embed import ConvPatchEmbed, DinoV2PatchEmbed
from .rope import RotaryPositionEmbedding2D, patch_positions
from .transformer import Block, run_block

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Aggregator(nn.Module):
    def __init__(self, cfg: AggregatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        C = cfg.embed_dim
        if cfg.patch_embed == "conv":
            self.patch_embed: nn.Module = ConvPatchEmbed(cfg.patch_size, C)
        else:
            self.patch_embed = DinoV2PatchEmbed(cfg.dinov2, cfg.patch_size)
        self.rope = RotaryPositionEmbedding2D(cfg.rope_freq)

        def blocks() -> nn.ModuleList:
            return nn.ModuleList(
                Block(C, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, cfg.proj_bias, cfg.ffn_bias,
                      init_values=cfg.init_values, qk_norm=cfg.qk_norm, rope=self.rope)
                for _ in range(cfg.depth)
            )

        self.frame_blocks = blocks()
        self.global_blocks = blocks()
        self.camera_token = nn.Parameter(torch.randn(1, 2, 1, C) * 1e-6)
        self.register_token = nn.Parameter(torch.randn(1, 2, cfg.num_register_tokens, C) * 1e-6)
        self.patch_start_idx = 1 + cfg.num_register_tokens
        self.register_buffer("_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _slot_tokens(token: Tensor, B: int, S: int) -> Tensor:
        """``[1, 2, n, C]`` → ``[B*S, n, C]``: slot 0 for frame 0, slot 1 for the others."""
        first = token[:, :1].expand(B, 1, -1, -1)
        rest = token[:, 1:].expand(B, S - 1, -1, -1)
        return torch.cat([first, rest], dim=1).reshape(B * S, *token.shape[2:])

    def forward(self, images: Tensor, layer_ids: list[int] | None = None) -> tuple[dict[int, Tensor], Tensor]:
        """images ``[B, S, 3, H, W]`` in [0, 1].

        Returns ``({layer: [B, S, Ntok, 2C]}, patch_tokens [B*S, P, C])`` for the requested layers plus the
        last one (all layers when ``layer_ids`` is None). Each layer output is
        ``concat(frame-block output, global-block output)`` along channels.
        """
        B, S, _, H, W = images.shape
        p = self.cfg.patch_size
        ph, pw = H // p, W // p
        x = (images.reshape(B * S, 3, H, W) - self._mean) / self._std
        patches = self.patch_embed(x)  # [B*S, P, C]
        C = patches.shape[-1]
        tokens = torch.cat(
            [self._slot_tokens(self.camera_token, B, S).to(patches.dtype),
             self._slot_tokens(self.register_token, B, S).to(patches.dtype), patches],
            dim=1,
        )  # [B*S, Ntok, C]
        N = tokens.shape[1]
        pos = patch_positions(B * S, ph, pw, self.patch_start_idx, images.device)  # [B*S, Ntok, 2]

        last = self.cfg.depth - 1
        wanted = set(range(self.cfg.depth)) if layer_ids is None else set(layer_ids) | {last}
        outputs: dict[int, Tensor] = {}
        k = self.cfg.aa_block_size
        for start in range(0, self.cfg.depth, k):
            frame_out: list[Tensor] = []
            global_out: list[Tensor] = []
            for kind in self.cfg.aa_order:
                for i in range(start, start + k):
                    if kind == "frame":
                        tokens = tokens.reshape(B * S, N, C)
                        tokens = run_block(self.frame_blocks[i], tokens, pos)
                        frame_out.append(tokens.reshape(B, S, N, C))
                    else:
                        tokens = tokens.reshape(B, S * N, C)
                        tokens = run_block(self.global_blocks[i], tokens, pos.reshape(B, S * N, 2))
                        global_out.append(tokens.reshape(B, S, N, C))
            for j in range(k):
                if start + j in wanted:
                    outputs[start + j] = torch.cat([frame_out[j], global_out[j]], dim=-1)
        return outputs, patches
