"""Text encoders: texts and class names into the text space the model's semantic features live in.

    from eps3d_ros.text import TextEncoderConfig, create_text_encoder
    text = create_text_encoder(TextEncoderConfig(model="ViT-B-32", pretrained="openai"))
    text.prototypes(["floor", "mug"])      # [K, D] unit rows

:class:`TextEncoder` is the protocol every user of an encoder relies on; :func:`create_text_encoder` the one
way to build one; :func:`register_text_encoder` adds a kind; :class:`ClipTextEncoder` (``"open_clip"``) is
the EPS3D reference's CLIP text tower.
"""

from .base import CachedTextEncoder
from .clip import ClipTextEncoder, TextEncoderUnavailable
from .config import TextEncoderConfig
from .factory import TextEncoderFactory, create_text_encoder, register_text_encoder, text_encoder_names
from .protocol import TextEncoder

__all__ = [
    "CachedTextEncoder",
    "ClipTextEncoder",
    "TextEncoder",
    "TextEncoderConfig",
    "TextEncoderFactory",
    "TextEncoderUnavailable",
    "create_text_encoder",
    "register_text_encoder",
    "text_encoder_names",
]

