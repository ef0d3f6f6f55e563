"""What a training run is built from: the network (fresh or ``model.init_from``), frozen groups, the text
encoder, the dataset and its teacher. Every rank builds the same (seeded) objects."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from eps3d_ros.model import EPS3D, EPS3DConfig

from ..text import TextEncoderConfig, create_text_encoder
from ..text.clip import create_random_text_encoder
from .config import FREEZE_GROUPS, TrainConfig
from .dataset_from_config import build_dataset
from .teachers import FileTeacher, GroundTruthTeacher

log = logging.getLogger(__name__)

__all__ = ["build_model", "build_text_encoder", "build_data", "apply_freeze", "set_initial_opacity"]


def build_model(config: TrainConfig) -> EPS3D:
    """The network to train (on the CPU; seed the global RNG first for a reproducible fresh model)."""
    m = config.model
    if m.init_from:
        from ..model.bundle import ModelBundle

        if m.overrides:
            raise ValueError("model.overrides cannot change a model loaded with model.init_from")
        return ModelBundle.load(m.init_from).load_network()
    mcfg = EPS3DConfig.from_preset(m.preset)
    if m.overrides:
        mcfg = mcfg.replace(**m.overrides)
    model = EPS3D(mcfg)
    if m.init_opacity is not None:
        set_initial_opacity(model, m.init_opacity)
    return model


def build_text_encoder(text) -> tuple[Any, str]:
    """``(TextEncoder, local weights file or "")`` for a :class:`~.config.TextSection` (through the text
    encoder factory, :func:`eps3d_ros.text.create_text_encoder`)."""
    pretrained = text.pretrained
    if text.create_random_seed is not None and pretrained and not Path(pretrained).exists():
        log.warning("text encoder weights %s missing: creating seeded random weights (seed %d)", pretrained,
                    text.create_random_seed)
        create_random_text_encoder(pretrained, text.model, int(text.create_random_seed))
    config = TextEncoderConfig(model=text.model, pretrained=pretrained, templates=list(text.templates))
    enc = create_text_encoder(config)
    return enc, enc.checkpoint


def apply_freeze(model: torch.nn.Module, freeze: list[str]) -> list[str]:
    """Set ``requires_grad=False`` on parameters matching the groups / prefixes; returns their names."""
    prefixes: list[str] = []
    for name in freeze:
        prefixes += list(FREEZE_GROUPS.get(name, (name,)))
    frozen = []
    for pname, p in model.named_parameters():
        if any(pname.startswith(pre) for pre in prefixes):
            p.requires_grad_(False)
            frozen.append(pname)
    if freeze and not frozen:
        raise ValueError(f"model.freeze {freeze} matches no parameter")
    return frozen


def set_initial_opacity(model: EPS3D, opacity: float) -> None:
    """Start every Gaussian at ``opacity``: the appearance head's opacity-logit bias becomes the logit
    that the adapter maps to it (raw channel 0; the rest of the head is untouched)."""
    last = model.encoder.gaussian_param_head.scratch.output_conv2[-1]
    e = model.encoder.gaussian_adapter.opacity_exponent(0)
    if e != 1.0:
        raise ValueError("model.init_opacity assumes the identity opacity mapping (opacity_mapping initial = final = 0)")
    with torch.no_grad():
        last.bias[0] = math.log(opacity / (1.0 - opacity))


def build_data(config: TrainConfig, text_encoder) -> tuple[Any, Any]:
    """``(dataset, teacher)`` of ``data`` / ``teacher``: synthetic scenes, recorded folders or a real dataset
    (:func:`~.dataset_from_config.build_dataset`); ground truth needs labelled data (a class list)."""
    ground_truth = config.teacher_kind == "ground_truth"
    dataset = build_dataset(config.data, labels=ground_truth)
    if ground_truth:
        if getattr(dataset, "class_names", None) is None:
            raise ValueError("teacher.kind 'ground_truth' needs labelled data (synthetic scenes or a dataset with "
                             "label images)")
        teacher: Any = GroundTruthTeacher.from_text_encoder(text_encoder, dataset.class_names,
                                                            stuff_classes=dataset.stuff,
                                                            stuff_masks=config.teacher.stuff_masks)
    else:
        teacher = FileTeacher()
    return dataset, teacher
