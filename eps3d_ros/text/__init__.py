"""Text encoders: texts and class names into the text space the model's semantic features live in."""

from .clip import TextEncoder, TextEncoderConfig, TextEncoderUnavailable

__all__ = ["TextEncoder", "TextEncoderConfig", "TextEncoderUnavailable"]
