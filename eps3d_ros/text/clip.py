"""CLIP text encoder for vocabulary prototypes and free-text queries.

EPS3D predicts per-Gaussian semantic features in the 512-d text space of CLIP ViT-B-32 (the space of
its LSeg teacher). Classes are decided by comparing those features with the text embeddings of the
class names (prototypes); queries are compared the same way. Only open_clip's text tower is kept.

Weights (``TextEncoderConfig.pretrained``):

* an open_clip tag for the architecture (``"openai"``, ``"laion2b_s34b_b79k"``, ...). The file is
  looked up in the local Hugging Face cache first; only when it is not there, ``allow_download`` is
  true and ``HF_HUB_OFFLINE`` is not set is the hub asked. When the file cannot be had,
  :class:`TextEncoderUnavailable` says which file to fetch on a connected machine and how to pass it;
* a local checkpoint: a plain state dict (``.pt``/``.pth``/``.bin`` through ``torch.load`` with
  ``weights_only=True``, or ``.safetensors``) of an open_clip model of that architecture, vision
  tower included (open_clip loads it strictly);
* ``""``: random weights, for tests only.

Tags trained with QuickGELU (all OpenAI CLIP weights, among them ``ViT-B-32``/``openai``) need the
QuickGELU activation, which open_clip 3.x no longer switches on by itself for the plain architecture
name (it only warns). ``quick_gelu="auto"`` follows the tag; give ``quick_gelu="true"`` (or the
``ViT-B-32-quickgelu`` architecture) with a local file of such weights.

Shapes: K texts or classes, D embedding width (512 for ViT-B-32).
"""

from __future__ import annotations

import difflib
import gc
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F

from .base import CachedTextEncoder
from .config import TextEncoderConfig

log = logging.getLogger(__name__)

__all__ = [
    "ClipTextEncoder",
    "TINY_TEST_MODEL",
    "create_random_text_encoder",
    "TextEncoderUnavailable",
    "import_open_clip",
    "register_tiny_test_model",
    "resolve_clip_weights",
]

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")
_HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"  # open_clip's default file in a hub repo
_HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"  # and its safetensors twin, tried first


class TextEncoderUnavailable(RuntimeError):
    """The weights of a pretrained tag cannot be found locally or downloaded; says how to provide them."""


def import_open_clip() -> ModuleType:
    """``import open_clip`` after making torchvision importable (see :mod:`eps3d_ros.torchvision_compat`)."""
    from ..torchvision_compat import import_torchvision

    import_torchvision()
    import open_clip

    return open_clip


class ClipTextEncoder(CachedTextEncoder):
    """CLIP's text tower through open_clip (the EPS3D reference's): texts into unit embeddings ``[K, D]``, with
    the cache and templates of :class:`~eps3d_ros.text.CachedTextEncoder`. The ``"open_clip"`` text encoder."""

    def __init__(self, config: TextEncoderConfig | None = None, **overrides) -> None:
        config = replace(config or TextEncoderConfig(), **overrides)
        _check_config(config)
        open_clip = import_open_clip()
        arch = config.model.replace("/", "-")  # open_clip accepts "ViT-B/32" for "ViT-B-32"
        if arch == TINY_TEST_MODEL:  # our own small architecture: registered on demand (tests, demo model)
            register_tiny_test_model(arch)
        if arch not in open_clip.list_models():
            raise ValueError(f"unknown open_clip architecture {config.model!r}; available include "
                             f"{_some(open_clip.list_models(), near=arch)} (open_clip.list_models())")
        super().__init__(config, int(open_clip.get_model_config(arch)["embed_dim"]))

        checkpoint, tag_cfg = resolve_clip_weights(open_clip, arch, config)
        if config.quick_gelu == "auto":
            quick_gelu = bool(tag_cfg.get("quick_gelu", False)) if tag_cfg else False
        else:
            quick_gelu = config.quick_gelu == "true"
        if not checkpoint:
            log.warning("text encoder %s has RANDOM weights (pretrained=''): for tests only", arch)
        try:
            model = open_clip.create_model(arch, pretrained=checkpoint or None, device="cpu",
                                           force_quick_gelu=quick_gelu)
        except Exception as e:  # noqa: BLE001 - open_clip raises bare RuntimeErrors from deep inside
            if not checkpoint:
                raise
            raise ValueError(f"cannot load {checkpoint!r} as an open_clip {arch} checkpoint (a plain state dict "
                             f"of that architecture, vision tower included, is expected): {_short(e)}") from e
        if getattr(model, "visual", None) is not None:
            model.visual = None  # encode_text never touches it: ~88M parameters less for ViT-B-32
            gc.collect()
        # eval, under inference_mode; requires_grad is left as built: on CPU, torch 2.13 takes a numerically
        # different attention kernel when the weights do not require grad (1e-7 differences)
        self.model = model.to(self.device).eval()
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.arch = arch
        self.quick_gelu = quick_gelu
        self.checkpoint = checkpoint  # local file the weights came from ("" for random)
        log.info("text encoder %s (%s, quick_gelu=%s) ready on %s, D=%d", arch,
                 config.pretrained or "random", quick_gelu, self.device, self.dim)

    def _embed(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)  # [k, context]
        emb = self.model.encode_text(tokens).float()  # [k, D]
        return F.normalize(emb, dim=-1)


# ---------------------------------------------------------------------- weights
def resolve_clip_weights(open_clip: ModuleType, arch: str, config: TextEncoderConfig) -> tuple[str, dict]:
    """Where the weights of ``config.pretrained`` (an open_clip tag, a checkpoint file or "" for random) for
    architecture ``arch`` are: ``(local checkpoint path or "" for random, the tag's pretrained cfg or {})``. Tags
    come from the Hugging Face cache (downloaded only with ``config.allow_download``). Shared by every user of
    open_clip weights (the text encoder, the dense CLIP teacher), so a file or tag means the same to each."""
    pretrained = config.pretrained.strip()
    if not pretrained:
        return "", {}
    tag_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if tag_cfg:
        return _tag_file(open_clip, arch, pretrained, tag_cfg, config), tag_cfg
    path = Path(pretrained).expanduser()
    if path.is_file():
        return str(path), {}
    if path.exists():
        raise ValueError(f"pretrained={pretrained!r} is not a file (a checkpoint file is expected)")
    if os.sep in pretrained or "/" in pretrained or pretrained.startswith(("~", ".")) \
            or pretrained.lower().endswith(_CHECKPOINT_SUFFIXES):
        raise FileNotFoundError(f"checkpoint file not found: {str(path)!r}")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    raise ValueError(f"unknown pretrained tag {pretrained!r} for {arch}; available: "
                     f"{tags or 'none (give a checkpoint path)'} (or a checkpoint file path, or '' for random)")


def _hub_candidates(hf_hub: str) -> tuple[str, list[str]]:
    """open_clip's ``org/repo/[file]`` entry -> repo id and file names, the safetensors twin first."""
    repo_id, filename = os.path.split(hf_hub)  # "org/repo/" -> ("org/repo", "")
    if not filename or filename == _HF_WEIGHTS_NAME:
        return repo_id, [_HF_SAFE_WEIGHTS_NAME, _HF_WEIGHTS_NAME]
    if filename.endswith((".bin", ".pth")):
        return repo_id, [filename[:-4] + ".safetensors", filename]
    return repo_id, [filename]


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _tag_file(open_clip: ModuleType, arch: str, tag: str, cfg: dict, config: TextEncoderConfig) -> str:
    """Local path of a tag's weights: the hub cache, else (when allowed) a download; never a retry hang."""
    if cfg.get("file"):
        return str(cfg["file"])
    try:
        import huggingface_hub
    except ImportError:
        huggingface_hub = None
    hf_hub = cfg.get("hf_hub", "")
    url = cfg.get("url", "")
    offline = _offline_env() or (huggingface_hub is not None and huggingface_hub.constants.HF_HUB_OFFLINE)
    may_download = config.allow_download and not offline

    if hf_hub and huggingface_hub is not None:
        repo_id, names = _hub_candidates(hf_hub)
        for name in names:
            hit = huggingface_hub.try_to_load_from_cache(repo_id, name, cache_dir=config.cache_dir or None)
            if isinstance(hit, str) and os.path.isfile(hit):
                log.info("CLIP weights %s/%s from the hub cache: %s", arch, tag, hit)
                return hit
        error = None
        unreachable = _hub_unreachable(huggingface_hub.constants.ENDPOINT) if may_download else ""
        if unreachable:  # an offline robot: say so now, not after a minute of retries
            raise TextEncoderUnavailable(_unavailable_message(arch, tag, cfg, config, offline, None, repo_id=repo_id,
                                                              names=names, unreachable=unreachable))
        if may_download:
            for name in names:
                try:
                    return huggingface_hub.hf_hub_download(repo_id, name, cache_dir=config.cache_dir or None)
                except huggingface_hub.errors.LocalEntryNotFoundError as e:  # no connection: don't retry the next
                    error = e
                    break
                except Exception as e:  # noqa: BLE001 - e.g. this file name is not in the repo: try the next
                    error = e
        raise TextEncoderUnavailable(_unavailable_message(arch, tag, cfg, config, offline, error,
                                                          repo_id=repo_id, names=names))
    if url:
        clip_cache = Path(config.cache_dir or "~/.cache/clip").expanduser()
        local = clip_cache / os.path.basename(url)
        if local.is_file():
            return str(local)
        error = None
        if may_download:
            try:
                return open_clip.download_pretrained_from_url(url, cache_dir=str(clip_cache))
            except Exception as e:  # noqa: BLE001
                error = e
        raise TextEncoderUnavailable(_unavailable_message(arch, tag, cfg, config, offline, error, url=url,
                                                          local=str(local)))
    raise TextEncoderUnavailable(_unavailable_message(arch, tag, cfg, config, offline, None))


def _hub_unreachable(endpoint: str, timeout: float = 3.0) -> str:
    """Why the hub at ``endpoint`` cannot be reached (no name resolution, no route: the hub client would retry for
    about a minute), or "" when it accepts a connection or a proxy is configured (then the client decides)."""
    import socket
    from urllib.parse import urlparse

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                                       "all_proxy")):
        return ""
    u = urlparse(endpoint)
    host, port = u.hostname or "", u.port or (443 if u.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return ""
    except OSError as e:
        return f"{host} cannot be reached from this machine ({e.strerror or e})"


def _unavailable_message(arch: str, tag: str, cfg: dict, config: TextEncoderConfig, offline: bool,
                         error: Exception | None, repo_id: str = "", names: Sequence[str] = (),
                         url: str = "", local: str = "", unreachable: str = "") -> str:
    if unreachable:
        why = f"the Hugging Face Hub is unreachable: {unreachable}"
    elif error is not None:
        why = f"downloading failed ({_short(error)})"
    elif not config.allow_download:
        why = "downloading is disabled (text.allow_download is false)"
    elif offline:
        why = "downloading is disabled (HF_HUB_OFFLINE is set)"
    else:
        why = "huggingface_hub is not installed" if cfg.get("hf_hub") else "no download source is known"
    qg = cfg.get("quick_gelu", False)
    lines = [f"CLIP weights for {arch} / pretrained={tag!r} are not available: not found locally and {why}."]
    if repo_id:
        try:
            from huggingface_hub.constants import HF_HUB_CACHE
        except ImportError:
            HF_HUB_CACHE = "~/.cache/huggingface/hub"
        lines += [
            f"They are the file {' or '.join(names)} of the Hugging Face repo {repo_id}. On a connected machine: "
            f"`hf download {repo_id} {names[0]}`, copy the file to this machine, then give it to the run:",
            *_how_to_pass(f"/path/to/{names[0]}", arch, qg),
            f"or copy that machine's hub cache folder models--{repo_id.replace('/', '--')} into this machine's "
            f"({config.cache_dir or HF_HUB_CACHE}; text.cache_dir, HF_HOME or HF_HUB_CACHE move it).",
        ]
    elif url:
        lines += [f"Download {url} on a connected machine (or place it at {local}), then give it to the run:",
                  *_how_to_pass(f"/path/to/{os.path.basename(url)}", arch, qg)]
    lines.append("Offline robots: also set text.allow_download false (node: -p text.allow_download:=false; eps3d: "
                 "--set text.allow_download=false) or HF_HUB_OFFLINE=1, so that a missing file fails at once without "
                 "trying the network.")
    return "\n".join(lines)


def _how_to_pass(path: str, arch: str, quick_gelu: bool) -> list[str]:
    """The settings that give a run a local weights file, in the user's terms: node parameters, CLI flags, Python."""
    qg_node, qg_cli, qg_py = ((" -p text.quick_gelu:=true", " --set text.quick_gelu=true", ", quick_gelu='true'")
                              if quick_gelu else ("", "", ""))
    return [f"  node:   eps3d_node --ros-args -p text.pretrained:={path}{qg_node}   (or text.pretrained in "
            "config/eps3d.yaml)",
            f"  eps3d:  --text-weights {path}{qg_cli}",
            f"  Python: create_text_encoder(model={arch!r}, pretrained={path!r}{qg_py})"]


# ---------------------------------------------------------------------- helpers
def _check_config(config: TextEncoderConfig) -> None:
    """What only open_clip reads (the rest: :meth:`TextEncoderConfig.validate`)."""
    if config.quick_gelu not in ("auto", "true", "false"):
        raise ValueError(f"text.quick_gelu must be 'auto', 'true' or 'false', got {config.quick_gelu!r}")


def _some(names: Sequence[str], near: str, n: int = 8) -> str:
    """A few names: the closest to the asked one, then common CLIP architectures."""
    close = difflib.get_close_matches(near, names, n=5, cutoff=0.5)
    common = [m for m in ("ViT-B-32", "ViT-B-16", "ViT-L-14", "RN50") if m in names]
    return ", ".join(list(dict.fromkeys(close + common))[:n]) + f", ... ({len(names)} in all)"


def _short(e: BaseException, n: int = 400) -> str:
    s = f"{type(e).__name__}: {e}".replace("\n", " ")
    return s if len(s) <= n else s[:n] + " ..."


TINY_TEST_MODEL = "eps3d-tiny-clip"


def register_tiny_test_model(name: str = TINY_TEST_MODEL, embed_dim: int = 512) -> str:
    """Register a tiny open_clip architecture (text width 64, 2 layers, 2 heads, context 77, the real BPE
    tokenizer; a 1-layer 32x32 vision tower since open_clip needs one) and return its name.

    ``ClipTextEncoder(model=name, pretrained="")`` then builds in milliseconds with random weights.
    """
    open_clip = import_open_clip()
    cfg = {
        "embed_dim": int(embed_dim),
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }
    if name in open_clip.list_models():
        if open_clip.get_model_config(name) == cfg:
            return name
        if open_clip.get_model_config(name).get("text_cfg", {}).get("width") != 64:
            raise ValueError(f"{name!r} is an existing open_clip architecture; choose another name")
    # open_clip's registry is filled from JSON files: write one, register it, and remove it again
    tmp = Path(tempfile.mkdtemp(prefix="eps3d_tiny_clip_"))
    try:
        (tmp / f"{name}.json").write_text(json.dumps(cfg))
        open_clip.add_model_config(tmp / f"{name}.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return name


def create_random_text_encoder(path: str | Path, model: str = "eps3d-tiny-clip", seed: int = 0) -> Path:
    """Build open_clip ``model`` with seeded random weights, round them to float16 and save them (safetensors).

    For the demo only: no pretrained CLIP is available offline. The saved file (vision tower
    included, as open_clip loads strictly) is what training and run time must both use: the float16
    rounding happens before anything is encoded, so embeddings are reproduced exactly from the file.
    ``"eps3d-tiny-clip"`` is registered first (:func:`register_tiny_test_model`).
    """
    from safetensors.torch import save_file

    if model == TINY_TEST_MODEL:
        register_tiny_test_model()
    open_clip = import_open_clip()
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        clip = open_clip.create_model(model, pretrained=None, device="cpu")
    finally:
        torch.random.set_rng_state(state)
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in clip.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path), metadata={"open_clip_model": model, "seed": str(seed), "weights": "random (demo)"})
    return path
