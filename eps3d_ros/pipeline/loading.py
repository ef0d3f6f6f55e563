"""Build a ready Reconstructor from the config: the model folder (its bundle) fills what the user left to it.

:func:`resolve_config` is the one place where a model folder's own settings (its text encoder, its native
input size, its recommended panoptic settings; see :mod:`eps3d_ros.model.bundle`) meet the user's: a
setting left at its "auto" value (:data:`~eps3d_ros.settings.tree.AUTO`) takes the bundle's, any other
value is the user's and wins, and one log line says what came from where.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import torch

from ..devices import resolve_device
from ..model import EPS3D, EPS3DConfig
from ..model.bundle import ModelBundle
from ..text import TextEncoderConfig, create_text_encoder
from ..text.clip import TINY_TEST_MODEL
from ..settings.dotted import get_dotted, set_dotted
from ..settings.tree import AUTO, RENAMED, Eps3dConfig
from .memory import check_window_memory
from .reconstruct import Reconstructor
from ..process.threads import prepare_process

log = logging.getLogger(__name__)

RANDOM_WEIGHTS = "random"  # text.pretrained value for random text weights (tests)
DEFAULT_TEXT_ENCODER = "open_clip"  # without a model folder to name one
DEFAULT_SIZE_WITHOUT_MODEL = (224, 224)  # random preset weights: no bundle to say better


def resolve_config(config: Eps3dConfig, bundle: ModelBundle | None) -> tuple[Eps3dConfig, TextEncoderConfig, str]:
    """``(config with every auto setting filled, the text encoder's config, one log line)``; ``config`` is not
    changed. ``bundle`` None: random preset weights (tests), which have no folder to take settings from."""
    cfg = copy.deepcopy(config)
    filled: list[str] = []
    kept: list[str] = []
    text = cfg.text
    if bundle is None:
        encoder = text.encoder or DEFAULT_TEXT_ENCODER
        model = text.model or (TINY_TEST_MODEL if encoder == DEFAULT_TEXT_ENCODER else "")
        pretrained = "" if text.pretrained in ("", RANDOM_WEIGHTS) else text.pretrained
        size = DEFAULT_SIZE_WITHOUT_MODEL
        settings: dict[str, Any] = {}
    else:
        spec = bundle.text
        if not text.encoder and not text.model and not text.pretrained:
            encoder, model, pretrained = spec.encoder, spec.model, spec.pretrained
            text.templates, text.quick_gelu = list(spec.templates), spec.quick_gelu
            filled.append(f"text encoder {spec.describe()}")
        else:
            encoder = text.encoder or spec.encoder
            model = text.model or (spec.model if encoder == spec.encoder else "")
            if text.pretrained:
                pretrained = "" if text.pretrained == RANDOM_WEIGHTS else text.pretrained
            elif encoder != spec.encoder:
                pretrained = ""  # another kind of encoder: its own meaning of no weights file
            elif model == spec.model:
                pretrained = spec.pretrained
            else:
                raise ValueError(f"text.model is {text.model!r} but text.pretrained is empty: name its weights (an "
                                 "open_clip tag or a local file), or leave both empty for the model's own encoder "
                                 f"({spec.describe()})")
            mine = model if encoder == DEFAULT_TEXT_ENCODER else f"{encoder}: {model}"
            kept.append(f"text encoder {mine} / {pretrained or 'random'} (the model's: {spec.describe()})")
        size = bundle.input_size
        settings = bundle.settings
    text.encoder, text.model, text.pretrained = encoder, model, pretrained

    p = cfg.pipeline
    if p.image_height == AUTO["pipeline.image_height"]:
        p.image_height, p.image_width = size
        filled.append(f"input {size[0]}x{size[1]}")
    elif bundle is not None:
        kept.append(f"input {p.image_height}x{p.image_width} (the model's: {size[0]}x{size[1]})")
    for name, value in settings.items():
        name = RENAMED.get(name, name)  # a model folder written before the setting was renamed
        if name not in AUTO or name.startswith(("text.", "pipeline.image_")):
            log.warning("model bundle %s: setting %s is not one a bundle may fill; ignored", bundle.path, name)
            continue
        current = get_dotted(cfg, name)
        if current == AUTO[name]:
            set_dotted(cfg, {name: value}, what=f"setting of model bundle {bundle.path}:")
            filled.append(f"{name}={value}")
        else:
            kept.append(f"{name}={current} (the model's: {value})")
    cfg.validate()
    text_config = TextEncoderConfig(**{k: getattr(text, k) for k in TextEncoderConfig.__dataclass_fields__})
    where = "random preset weights" if bundle is None else f"model {bundle.path}"
    line = f"{where}: {', '.join(filled) or 'nothing filled'}"
    if kept:
        line += f"; overridden by the settings given: {'; '.join(kept)}"
    if bundle is not None and bundle.notes:
        line += f" ({'; '.join(bundle.notes)})"
    return cfg, text_config, line


def load_reconstructor(config: Eps3dConfig, frame_size: tuple[int, int] | None = None) -> Reconstructor:
    """Load the model folder, resolve the settings, build and check the text encoder, warm up, wrap.

    Errors name the missing or mismatched piece (weights file, text encoder, text space). A window that would not
    fit in memory (:mod:`.memory`; ``frame_size``: the frames' network size when known, else the box) is refused
    before anything loads."""
    config.validate()
    m = config.model
    device = resolve_device(m.device, "model.device")
    bundle = ModelBundle.load(m.weights) if m.weights else None
    cfg, text_config, line = resolve_config(config, bundle)
    log.info("%s", line)
    p = cfg.pipeline
    h, w = frame_size or (p.image_height, p.image_width)
    weights = bundle.weights.stat().st_size if bundle is not None and bundle.weights.is_file() else 0
    est = check_window_memory(p.window_size, h, w, weights, p.max_memory_mb, str(device),
                              tuple(bundle.input_size) if bundle is not None else None)
    log.info("a window of %d x %dx%d needs about %.1f GiB (estimate)", p.window_size, h, w, est.total_bytes / 2**30)
    # the text encoder first: on an offline robot its missing weights are the likely failure, and the network
    # (gigabytes for the release) need not load to find out
    text = create_text_encoder(text_config)
    prepare_process(cfg)  # threads (model.threads) and the panoptic stage's one-off costs, once
    if bundle is not None:
        model = bundle.load_network(device=device, config=m.config or None)
    else:
        log.warning("model.weights is empty: RANDOM weights of preset %r (tests only)", m.preset)
        model = EPS3D(EPS3DConfig.from_preset(m.preset)).to(device).eval()
    if bundle is not None:
        bundle.check_text_encoder(text, model.config.gaussians.semantic_expanded_dim)
    elif text.dim != model.config.gaussians.semantic_expanded_dim:
        raise ValueError(f"text encoder {text.arch} embeds into {text.dim} dimensions but the model predicts "
                         f"{model.config.gaussians.semantic_expanded_dim}")
    t0 = time.perf_counter()
    with torch.inference_mode():
        model(torch.zeros(1, p.window_size, 3, h, w, device=device))  # the window's shape
    text.prototypes(cfg.panoptic.vocabulary)
    log.info("model on %s, warm-up %.2f s", device, time.perf_counter() - t0)
    return Reconstructor(model, text, cfg, bundle)


def check_text_weights(config: Eps3dConfig) -> None:
    """Fail now, before frames are read or the network loads, when the run's CLIP text weights cannot be had (an
    offline robot without the file): :class:`~eps3d_ros.text.clip.TextEncoderUnavailable` names the file and the
    settings that pass it. Cheap: only the weights file is looked up (the hub cache, a local path)."""
    bundle = ModelBundle.load(config.model.weights) if config.model.weights else None
    _, text_config, _ = resolve_config(config, bundle)
    if text_config.encoder != DEFAULT_TEXT_ENCODER or not text_config.pretrained:
        return
    from ..text.clip import import_open_clip, register_tiny_test_model, resolve_clip_weights

    arch = text_config.model.replace("/", "-")
    if arch == TINY_TEST_MODEL:
        register_tiny_test_model(arch)
    resolve_clip_weights(import_open_clip(), arch, text_config)


def release_cuda_cache() -> None:
    """Give cached CUDA memory back (deactivate / cleanup); nothing without CUDA."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def gpu_memory() -> dict:
    """Allocated / reserved CUDA memory in MiB, for diagnostics."""
    if not torch.cuda.is_available():
        return {"gpu_memory": "no CUDA"}
    return {"gpu_memory_allocated_mb": round(torch.cuda.memory_allocated() / 2**20, 1),
            "gpu_memory_reserved_mb": round(torch.cuda.memory_reserved() / 2**20, 1)}
