"""A model folder and everything it carries: the network, its text encoder, its native input size and
the panoptic settings it was tuned with — so that ``model.weights: <folder>`` is all a user must give.

Layout of a folder (only the weights are required)::

    model.safetensors (+ config.json)   the network: ours, the EPS3D release, or VGGT (see checkpoint.py)
    text_encoder.json                   {"encoder": a registered text encoder (default "open_clip"), "model":
                                         its model (open_clip: the architecture), "pretrained": a file beside it
                                         or an open_clip tag, "templates": [...], "quick_gelu": "auto|true|false",
                                         "fingerprint": {"words": [...], "dims": d, "vectors": [[...]]}}
    text_encoder.safetensors            its weights, when they are a file
    bundle.json                         {"format": "eps3d_bundle", "version": 1, "input_size": [H, W],
                                         "settings": {"panoptic.clustering.hdbscan.min_cluster_size": 100}}

What a folder without these files means (:meth:`ModelBundle.load` says so in :attr:`ModelBundle.notes`):

* no ``text_encoder.json``: the EPS3D release's text space, CLIP ``ViT-B-32`` / ``openai`` (the space of
  its LSeg teacher); an older folder with only ``text_encoder.safetensors`` names its architecture in
  the file's metadata;
* no ``bundle.json``: the release's input size, 448 x 448 (what EPS3D / AnySplat run at), or 518 x 518
  for a VGGT checkpoint (VGGT's longer side); no recommended settings.

The **fingerprint** is the text encoder's embeddings of a fixed word list (their first ``dims``
coordinates), stored when the model is exported. At load time the encoder actually used must
reproduce it (cosine >= :data:`FINGERPRINT_MIN_COSINE` per word), or the semantic features would be
compared with prototypes of another text space — two 512-d CLIP towers are not interchangeable,
and nothing else would notice.

Only files are read here (no network is built); :meth:`ModelBundle.load_network` builds it and
:meth:`ModelBundle.load_text_encoder` the text encoder (through :func:`eps3d_ros.text.create_text_encoder`);
:func:`save_text_encoder_files` and :func:`write_bundle_files` write a folder.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..text import TextEncoder, TextEncoderConfig, create_text_encoder
from .checkpoint import METADATA_CONFIG_KEY, resolve_weights

log = logging.getLogger(__name__)

__all__ = ["BUNDLE_FILE", "TEXT_ENCODER_JSON", "TEXT_ENCODER_FILE", "FINGERPRINT_WORDS", "FINGERPRINT_MIN_COSINE",
           "RELEASE_TEXT_MODEL", "RELEASE_TEXT_PRETRAINED", "RELEASE_INPUT_SIZE", "BundleError", "TextEncoderSpec",
           "ModelBundle", "load_text_encoder", "save_text_encoder_files", "text_fingerprint", "write_bundle_files"]

BUNDLE_FILE = "bundle.json"
TEXT_ENCODER_JSON = "text_encoder.json"
TEXT_ENCODER_FILE = "text_encoder.safetensors"
BUNDLE_FORMAT, BUNDLE_VERSION = "eps3d_bundle", 1
FINGERPRINT_WORDS = ("floor", "chair", "red mug", "a photo of a dog", "window", "kitchen table")
FINGERPRINT_DIMS = 32
FINGERPRINT_MIN_COSINE = 0.999
RELEASE_TEXT_MODEL, RELEASE_TEXT_PRETRAINED = "ViT-B-32", "openai"
RELEASE_INPUT_SIZE = (448, 448)
VGGT_INPUT_SIZE = (518, 518)
PATCH = 14


class BundleError(ValueError):
    """A model folder whose files contradict each other or the run's settings; the message names them."""


@dataclass(frozen=True)
class TextEncoderSpec:
    """Which text encoder a model's semantic features live in."""

    model: str  # the encoder's model (open_clip: the architecture)
    pretrained: str  # a local file (absolute path) or an open_clip tag
    templates: tuple[str, ...] = ("{}",)
    quick_gelu: str = "auto"
    fingerprint: dict[str, Any] | None = None  # {"words", "dims", "vectors"} or None
    source: str = ""  # where this came from, for messages
    encoder: str = "open_clip"  # the registered text encoder (eps3d_ros.text.register_text_encoder)

    def describe(self) -> str:
        name = f"{self.model} / {Path(self.pretrained).name if '/' in self.pretrained else self.pretrained}"
        return name if self.encoder == "open_clip" else f"{self.encoder}: {name}"


@dataclass(frozen=True)
class ModelBundle:
    path: Path  # the folder (or the weights file's folder)
    weights: Path
    config_file: Path | None
    kind: str  # "eps3d_ros" (ours) | "release" (EPS3D/AnySplat config.json) | "vggt" | "unknown"
    text: TextEncoderSpec
    input_size: tuple[int, int]  # (height, width) the model was trained at, multiples of 14
    settings: dict[str, Any] = field(default_factory=dict)  # recommended {dotted.setting: value}
    notes: tuple[str, ...] = ()  # what was assumed because a file was absent

    # ------------------------------------------------------------------------------- reading
    @classmethod
    def load(cls, path: str | Path) -> "ModelBundle":
        """Read a model folder (or a weights file and what lies beside it); errors name the file."""
        p = Path(path).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"model not found: {p} (a folder with model.safetensors + config.json, "
                                    "or a weights file)")
        weights, config_file = resolve_weights(p)
        folder = p if p.is_dir() else p.parent
        kind = _kind(weights, config_file)
        notes: list[str] = []
        text = _read_text_spec(folder, kind, notes)
        input_size, settings = _read_bundle_file(folder, kind, notes)
        return cls(folder, weights, config_file, kind, text, input_size, settings, tuple(notes))

    # ------------------------------------------------------------------------------- building
    def load_network(self, device: str = "cpu", config: Any = None):
        """The :class:`~eps3d_ros.model.EPS3D` of this folder, in eval mode."""
        from .eps3d import EPS3D

        return EPS3D.from_pretrained(self.weights, device=device, config=config)

    def text_encoder_config(self, base: Any = None) -> TextEncoderConfig:
        """A :class:`~eps3d_ros.text.TextEncoderConfig` for this model's text encoder; runtime knobs
        (device, cache, download policy, logit scale) come from ``base``."""
        cfg = TextEncoderConfig() if base is None else TextEncoderConfig(**{
            k: getattr(base, k) for k in TextEncoderConfig.__dataclass_fields__})
        cfg.encoder, cfg.model, cfg.pretrained = self.text.encoder, self.text.model, self.text.pretrained
        cfg.templates, cfg.quick_gelu = list(self.text.templates), self.text.quick_gelu
        return cfg

    def load_text_encoder(self, **overrides: Any) -> TextEncoder:
        """This model's text encoder, built by :func:`~eps3d_ros.text.create_text_encoder` and checked against the
        folder's fingerprint; never downloads. ``overrides`` replace fields of its config (e.g. ``device``)."""
        cfg = self.text_encoder_config()
        cfg.allow_download = False
        encoder = create_text_encoder(cfg, **overrides)
        self.check_text_encoder(encoder)
        return encoder

    def check_text_encoder(self, encoder: Any, semantic_dim: int | None = None) -> None:
        """Raise :class:`BundleError` unless ``encoder`` lives in this model's text space (width, fingerprint)."""
        used = f"{getattr(encoder, 'arch', '?')} / {_short(getattr(getattr(encoder, 'config', None), 'pretrained', '?'))}"
        if semantic_dim is not None and int(encoder.dim) != int(semantic_dim):
            raise BundleError(f"text encoder {used} embeds into {encoder.dim} dimensions but the model {self.path} "
                              f"predicts {semantic_dim}-d semantic features (its text encoder: {self.text.describe()})")
        fp = self.text.fingerprint
        if not fp:
            return
        cos = fingerprint_cosines(fp, encoder)
        worst = int(np.argmin(cos))
        if cos[worst] < FINGERPRINT_MIN_COSINE:
            raise BundleError(
                f"text encoder {used} is not the one the model {self.path} was trained with "
                f"({self.text.describe()}, {self.text.source}): their embeddings of {fp['words'][worst]!r} differ "
                f"(cosine {cos[worst]:.3f} < {FINGERPRINT_MIN_COSINE}), so class names and queries would be compared "
                "in another text space. Leave text.model / text.pretrained empty to use the model's own encoder.")


def load_text_encoder(path: str | Path, **overrides: Any) -> TextEncoder:
    """The text encoder of the model folder ``path`` (or of its ``text_encoder.json``): see
    :meth:`ModelBundle.load_text_encoder`. A folder without ``text_encoder.json`` is an error (it would mean the
    release's CLIP, which is only loaded on purpose)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    if not (folder / TEXT_ENCODER_JSON).is_file():
        raise FileNotFoundError(f"{folder / TEXT_ENCODER_JSON} not found: a model folder with its own text encoder "
                                f"has {TEXT_ENCODER_JSON}")
    return ModelBundle.load(folder).load_text_encoder(**overrides)


# ------------------------------------------------------------------------------------ fingerprint
def text_fingerprint(encoder: Any, words: tuple[str, ...] = FINGERPRINT_WORDS, dims: int = FINGERPRINT_DIMS
                     ) -> dict[str, Any]:
    """``{"words", "dims", "vectors"}``: the first ``dims`` coordinates of each word's unit embedding."""
    emb = encoder.encode(list(words)).float().cpu().numpy()[:, :dims]
    return {"words": list(words), "dims": int(dims), "vectors": [[round(float(v), 6) for v in row] for row in emb]}


def fingerprint_cosines(fingerprint: dict[str, Any], encoder: Any) -> np.ndarray:
    """Per word, the cosine between the stored and the recomputed fingerprint vectors."""
    words, dims = list(fingerprint["words"]), int(fingerprint["dims"])
    stored = np.asarray(fingerprint["vectors"], dtype=np.float64)
    if stored.shape != (len(words), dims):
        raise BundleError(f"malformed text fingerprint: {stored.shape} vectors for {len(words)} words of {dims} dims")
    now = encoder.encode(words).float().cpu().numpy()[:, :dims].astype(np.float64)
    num = (stored * now).sum(1)
    den = np.linalg.norm(stored, axis=1) * np.linalg.norm(now, axis=1)
    return num / np.maximum(den, 1e-12)


# ------------------------------------------------------------------------------------ writing
def save_text_encoder_files(directory: str | Path, weights: str | Path, model: str, templates: list[str],
                            note: str = "", encoder: str = "open_clip") -> Path:
    """Copy the text encoder's weights into ``directory`` as ``text_encoder.safetensors`` and describe them in
    ``text_encoder.json`` (:func:`write_bundle_files` adds the fingerprint)."""
    import shutil

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    src = Path(weights)
    dst = d / TEXT_ENCODER_FILE
    if src.resolve() != dst.resolve():
        shutil.copyfile(src, dst)
    desc = {"encoder": encoder, "model": model, "pretrained": TEXT_ENCODER_FILE, "templates": list(templates),
            "note": note}
    (d / TEXT_ENCODER_JSON).write_text(json.dumps(desc, indent=2) + "\n")
    return dst


def write_bundle_files(directory: str | Path, input_size: tuple[int, int], settings: dict[str, Any] | None = None,
                       text_encoder: Any = None) -> Path:
    """Write ``bundle.json`` and, given the encoder, add its fingerprint to ``text_encoder.json``."""
    d = Path(directory)
    h, w = (int(v) for v in input_size)
    _check_size((h, w), d / BUNDLE_FILE)
    body = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "input_size": [h, w], "settings": dict(settings or {})}
    (d / BUNDLE_FILE).write_text(_json_text(body))
    if text_encoder is not None:
        j = d / TEXT_ENCODER_JSON
        if not j.is_file():
            raise FileNotFoundError(f"{j} not found: write the text encoder files first")
        desc = json.loads(j.read_text())
        desc["fingerprint"] = text_fingerprint(text_encoder)
        j.write_text(_json_text(desc))
    return d / BUNDLE_FILE


# ------------------------------------------------------------------------------------ internals
def _kind(weights: Path, config_file: Path | None) -> str:
    keys: list[str] = []
    if weights.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(weights), framework="np") as f:
                if METADATA_CONFIG_KEY in (f.metadata() or {}):
                    return "eps3d_ros"
                keys = list(f.keys())
        except Exception:  # noqa: BLE001 - the loader reports an unreadable file with its own message
            return "unknown"
    if config_file is not None:
        try:
            cfg = json.loads(config_file.read_text())
        except (OSError, json.JSONDecodeError):
            cfg = {}
        if cfg.get("format") == "eps3d_ros":
            return "eps3d_ros"
        if "encoder_cfg" in cfg:
            return "release"
    if keys and any(k.startswith(("aggregator.", "camera_head.")) for k in keys):
        return "vggt"
    return "release" if any(k.startswith("encoder.") for k in keys) else "unknown"


def _read_text_spec(folder: Path, kind: str, notes: list[str]) -> TextEncoderSpec:
    j = folder / TEXT_ENCODER_JSON
    if j.is_file():
        try:
            d = json.loads(j.read_text())
            encoder = str(d.get("encoder", "open_clip"))
            model = str(d["model"])
            pre = str(d["pretrained"])
            templates = tuple(d.get("templates") or ("{}",))
            quick_gelu = str(d.get("quick_gelu", "auto")).lower()
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise BundleError(f"{j} is not a valid text encoder description ({type(e).__name__}: {e}); "
                              'expected {"model": ..., "pretrained": ..., "templates": [...]}') from None
        if pre and (folder / pre).is_file():
            pre = str((folder / pre).resolve())  # a file beside the JSON; else an open_clip tag or absolute path
        fp = d.get("fingerprint")
        return TextEncoderSpec(model, pre, templates, quick_gelu, fp if isinstance(fp, dict) else None, str(j), encoder)
    f = folder / TEXT_ENCODER_FILE
    if f.is_file():
        model = _safetensors_metadata(f).get("open_clip_model", "eps3d-tiny-clip")
        notes.append(f"no {TEXT_ENCODER_JSON}: text encoder {model} from {f.name} (architecture from its metadata)")
        return TextEncoderSpec(model, str(f.resolve()), source=str(f))
    notes.append(f"no {TEXT_ENCODER_JSON}: the EPS3D release's text encoder {RELEASE_TEXT_MODEL} / "
                 f"{RELEASE_TEXT_PRETRAINED}")
    return TextEncoderSpec(RELEASE_TEXT_MODEL, RELEASE_TEXT_PRETRAINED, source="EPS3D release default")


def _read_bundle_file(folder: Path, kind: str, notes: list[str]) -> tuple[tuple[int, int], dict[str, Any]]:
    b = folder / BUNDLE_FILE
    if not b.is_file():
        size = VGGT_INPUT_SIZE if kind == "vggt" else RELEASE_INPUT_SIZE
        notes.append(f"no {BUNDLE_FILE}: input size {size[0]}x{size[1]} "
                     f"({'VGGT' if kind == 'vggt' else 'the EPS3D release'}'s), no recommended settings")
        return size, {}
    try:
        d = json.loads(b.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{b} is not valid JSON: {e}") from None
    if d.get("format") != BUNDLE_FORMAT or int(d.get("version", 0)) != BUNDLE_VERSION:
        raise BundleError(f"{b}: not an {BUNDLE_FORMAT} file of version {BUNDLE_VERSION} "
                          f"(format {d.get('format')!r}, version {d.get('version')!r})")
    try:
        size = tuple(int(v) for v in d["input_size"])
    except (KeyError, TypeError, ValueError):
        raise BundleError(f"{b}: input_size must be [height, width], got {d.get('input_size')!r}") from None
    _check_size(size, b)
    settings = d.get("settings") or {}
    if not isinstance(settings, dict) or not all(isinstance(k, str) for k in settings):
        raise BundleError(f"{b}: settings must map dotted names to values, got {settings!r}")
    return (size[0], size[1]), dict(settings)


def _check_size(size: tuple[int, ...], where: Path) -> None:
    if len(size) != 2 or min(size) < PATCH or any(v % PATCH for v in size):
        raise BundleError(f"{where}: input_size must be two positive multiples of {PATCH}, got {list(size)}")


def _json_text(d: dict[str, Any]) -> str:
    """Indented JSON with lists of numbers on one line (fingerprint rows, sizes)."""
    text = json.dumps(d, indent=2)
    return re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


def _safetensors_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - the text encoder reports an unreadable file itself
        return {}


def _short(s: Any) -> str:
    s = str(s)
    return Path(s).name if "/" in s else s
