"""Settings of a text encoder (the ``text.*`` settings of a run, a model folder's ``text_encoder.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TextEncoderConfig"]


@dataclass
class TextEncoderConfig:
    # Which implementation builds it: a name registered with eps3d_ros.text.register_text_encoder; "open_clip" is
    # the CLIP text tower of the EPS3D reference
    encoder: str = "open_clip"
    model: str = "ViT-B-32"  # the encoder's model name (open_clip: the architecture, like the EPS3D reference)
    pretrained: str = "openai"  # its weights (open_clip: a tag, OR a local checkpoint path, OR "" for random; tests)
    # prompt templates with one "{}" for the class name; several are averaged (open_clip zero-shot style)
    templates: list[str] = field(default_factory=lambda: ["{}"])
    cache_size: int = 4096  # LRU entries, one per text; 0 disables the cache
    batch_size: int = 64  # texts per forward pass
    device: str = "cpu"  # where texts are encoded: auto, cpu, cuda, cuda:N (a few texts a second: the CPU suffices)
    allow_download: bool = True  # False: only a local file or the Hugging Face cache, never the network
    logit_scale: float = 1 / 0.07  # softmax(logit_scale * cos) turns cosines into class probabilities
    # open_clip: "auto" as the tag was trained (QuickGELU for OpenAI weights), else "true" / "false" (strings, so
    # that every field maps to a ROS parameter)
    quick_gelu: str = "auto"
    cache_dir: str = ""  # hub cache ("": HF_HUB_CACHE); for URL-only tags the file folder (~/.cache/clip)

    def validate(self) -> "TextEncoderConfig":
        """Check what every encoder reads; an implementation checks its own fields (e.g. ``quick_gelu``)."""
        if not self.templates:
            raise ValueError("text.templates must hold at least one prompt template such as '{}' or "
                             "'a photo of a {}.'")
        for i, t in enumerate(self.templates):
            if not isinstance(t, str) or "{}" not in t:
                raise ValueError(f"text template {i} ({t!r}) must be a string with one '{{}}' for the class name")
            try:
                t.format("x")
            except (IndexError, KeyError, ValueError) as e:
                raise ValueError(f"text template {i} ({t!r}) is not a valid format string (one '{{}}'; "
                                 f"literal braces as '{{{{' '}}}}'): {e}") from e
        if self.batch_size < 1:
            raise ValueError(f"text.batch_size must be >= 1, got {self.batch_size}")
        if self.cache_size < 0:
            raise ValueError(f"text.cache_size must be >= 0, got {self.cache_size}")
        if not self.logit_scale > 0:
            raise ValueError(f"text.logit_scale must be > 0, got {self.logit_scale}")
        if not isinstance(self.pretrained, str):
            raise TypeError(f"text.pretrained must be a string, got {type(self.pretrained).__name__}")
        return self
