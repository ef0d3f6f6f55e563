"""One way to build a text encoder: :func:`create_text_encoder` from a :class:`TextEncoderConfig`, whose
``encoder`` names an entry of this registry. Every caller goes through it (the node and the CLI through the
model folder, training, evaluation, scene files), so an encoder registered here is usable everywhere::

    from eps3d_ros.text import register_text_encoder
    register_text_encoder("my_encoder", MyEncoder)      # MyEncoder(config) -> a TextEncoder
    # then text.encoder: my_encoder (a ROS parameter, a setting, or "encoder" in a model's text_encoder.json)
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from dataclasses import replace

from .config import TextEncoderConfig
from .protocol import TextEncoder

__all__ = ["TextEncoderFactory", "create_text_encoder", "register_text_encoder", "text_encoder_names"]

TextEncoderFactory = Callable[[TextEncoderConfig], TextEncoder]


def _open_clip(config: TextEncoderConfig) -> TextEncoder:
    from .clip import ClipTextEncoder  # open_clip is imported when one is built, not when the registry is read

    return ClipTextEncoder(config)


_FACTORIES: dict[str, TextEncoderFactory] = {"open_clip": _open_clip}
_LOCK = threading.Lock()


def register_text_encoder(name: str, factory: TextEncoderFactory, replace_existing: bool = False) -> None:
    """Make ``factory(config) -> TextEncoder`` available as ``text.encoder: name``."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"a text encoder name must be a non-empty string without surrounding spaces, got {name!r}")
    if not callable(factory):
        raise TypeError(f"the factory of text encoder {name!r} must be callable, got {type(factory).__name__}")
    with _LOCK:
        if name in _FACTORIES and not replace_existing and _FACTORIES[name] is not factory:
            raise ValueError(f"text encoder {name!r} is already registered (replace_existing=True replaces it)")
        _FACTORIES[name] = factory


def text_encoder_names() -> tuple[str, ...]:
    with _LOCK:
        return tuple(sorted(_FACTORIES))


def create_text_encoder(config: TextEncoderConfig | None = None, **overrides) -> TextEncoder:
    """The text encoder ``config`` describes (``overrides``: fields replaced first, e.g. ``device="cuda"``)."""
    cfg = replace(config or TextEncoderConfig(), **overrides)
    with _LOCK:
        factory = _FACTORIES.get(cfg.encoder)
        known = sorted(_FACTORIES)
    if factory is None:
        near = difflib.get_close_matches(cfg.encoder, known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"unknown text encoder {cfg.encoder!r}{hint}: registered are {', '.join(known)} "
                         "(eps3d_ros.text.register_text_encoder adds one)")
    encoder = factory(cfg)
    missing = [m for m in ("encode", "prototypes", "dim", "config") if not hasattr(encoder, m)]
    if missing:
        raise TypeError(f"text encoder {cfg.encoder!r} built a {type(encoder).__name__} without {missing} "
                        "(see eps3d_ros.text.TextEncoder)")
    return encoder
