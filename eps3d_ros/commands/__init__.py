"""The ``eps3d`` subcommands that work with scenes: demo, run, query, export, render, bench.

Each module has ``add_parser(subparsers)`` and ``run(args) -> int``; they parse and validate, then call
library functions (``eps3d_ros.io``, ``eps3d_ros.pipeline``). Heavy imports (torch, rclpy) happen
inside ``run`` so that ``eps3d --help`` stays fast.

Exit codes (all commands):

* 0 — done;
* 1 — it ran but found nothing (``query``: no object matched);
* 2 — a user error: bad arguments, missing or unreadable files, a corrupt scene file or one of
  another format version, a bag or folder without usable images, an unsupported image type. The
  message goes to stderr and starts with ``eps3d: error:``;
* 130 — interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "add_parsers", "UserError", "guarded", "EXIT_OK", "EXIT_NOTHING", "EXIT_USAGE"]

COMMANDS = ("demo", "run", "query", "export", "render", "bench", "data", "teachers")
EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEMO_MODEL_ENV = "EPS3D_DEMO_MODEL"
log = logging.getLogger(__name__)


class UserError(Exception):
    """A problem the user can fix (bad argument, missing file); printed without a traceback, exit code 2."""


def add_parsers(subparsers: Any) -> None:
    """Register every command of :data:`COMMANDS` on an ``argparse`` subparsers object."""
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)


def guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command, turning user-caused errors into ``eps3d: error: ...`` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            with _quiet(getattr(args, "verbose", False)):
                return fn(args)
        except KeyboardInterrupt:
            print("eps3d: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as e:  # noqa: BLE001 - sorted below: user errors get a message, bugs a traceback
            if not _is_user_error(e):
                raise
            if getattr(args, "verbose", False):
                traceback.print_exc()
            print(f"eps3d: error: {_message(e)}", file=sys.stderr)
            return EXIT_USAGE

    return wrapper


def _is_user_error(e: BaseException) -> bool:
    if isinstance(e, (UserError, OSError, ValueError)):  # OSError: missing files, permissions, full disks
        return True
    names = {c.__name__ for c in type(e).__mro__}
    # checkpoint / text-weights problems, bag reader errors
    return bool(names & {"CheckpointError", "TextEncoderUnavailable", "ReaderError", "SafetensorError"})


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.strerror}: {e.filename}"
    text = str(e) or type(e).__name__
    return text if isinstance(e, (UserError, ValueError, OSError)) else f"{type(e).__name__}: {text}"


# ------------------------------------------------------------------------------------- arguments
def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"168x224"`` → ``(168, 224)`` (height x width); both multiples of 14."""
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise UserError(f"--size must look like HEIGHTxWIDTH, e.g. 168x224, got {text!r}") from None
    if h < 14 or w < 14 or h % 14 or w % 14:
        raise UserError(f"--size {h}x{w}: height and width must be positive multiples of 14 (the ViT patch), "
                        f"e.g. {max(14, h // 14 * 14)}x{max(14, w // 14 * 14)}")
    return h, w


def parse_names(text: str | None) -> list[str] | None:
    """``"floor, table,mug"`` → ``["floor", "table", "mug"]``."""
    if text is None:
        return None
    names = [t.strip() for t in text.split(",")]
    if not any(names):
        return []
    if not all(names):
        raise UserError(f"empty class name in {text!r} (comma-separated names such as 'floor,table,mug')")
    return names


def add_model_arguments(p: argparse.ArgumentParser, demo: bool = False) -> None:
    where = (f"default: ${DEMO_MODEL_ENV}, else the repository's models/demo_tiny" if demo else "required")
    p.add_argument("--model", required=not demo, metavar="DIR",
                   help=f"model folder (model.safetensors + config.json, with its text encoder and bundle.json when "
                        f"it has them) or weights file; {where}")
    p.add_argument("--text-model", metavar="ARCH",
                   help="open_clip architecture of the text encoder (default: the model folder's own encoder, else "
                        "ViT-B-32)")
    p.add_argument("--text-weights", metavar="FILE|TAG",
                   help="text encoder weights: a local checkpoint, an open_clip tag, or 'random' (tests); default: "
                        "the model folder's")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N (default auto)")


def add_panoptic_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vocabulary", metavar="A,B,C", help="comma-separated class names")
    p.add_argument("--stuff", metavar="A,B", help="comma-separated stuff classes (regions, not instances)")
    p.add_argument("--min-cluster-size", type=int, metavar="N",
                   help="HDBSCAN min_cluster_size in Gaussians (default: the model's recommendation, else 400)")
    p.add_argument("--max-samples", type=int, metavar="N", help="HDBSCAN sample size (default 10000)")
    p.add_argument("--min-object-points", type=int, metavar="N", help="smaller objects are dropped (default 30)")


def add_frame_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("frames (selection and size)")
    g.add_argument("--every", type=int, default=1, metavar="K", help="take every K-th frame (default 1)")
    g.add_argument("--max-views", type=int, metavar="N",
                   help="at most N frames, spread evenly over the selection (default: all; 8 without poses)")
    g.add_argument("--size", metavar="HxW", help="the box frames are fitted into, aspect kept, multiples of 14 "
                                                  "(default: the model's native size, from its bundle.json)")
    g.add_argument("--hfov", type=float, default=60.0, metavar="DEG",
                   help="horizontal field of view assumed without intrinsics (default 60)")


# ----------------------------------------------------------------------------------------- models
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def demo_model_dir(given: str | None) -> Path:
    """The model folder: ``--model`` as given, else ``$EPS3D_DEMO_MODEL``, else ``<repo>/models/demo_tiny``,
    else ``./models/demo_tiny``; a clear error when no demo model is found."""
    if given:
        return Path(given).expanduser()  # the user's folder: load_bundle names what is wrong with it
    if os.environ.get(DEMO_MODEL_ENV):
        candidates = [Path(os.environ[DEMO_MODEL_ENV]).expanduser()]
    else:
        candidates = [repo_root() / "models" / "demo_tiny", Path.cwd() / "models" / "demo_tiny"]
    for c in candidates:
        if (c / "model.safetensors").is_file() or (c.is_file() and c.suffix in (".safetensors", ".pt", ".pth")):
            return c
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise UserError(f"demo model not found (looked for model.safetensors in {looked}). Train it with "
                    "`eps3d train --config config/train_demo.yaml` and copy runs/demo_tiny/model/* to models/demo_tiny/, "
                    f"set ${DEMO_MODEL_ENV}, or pass --model DIR (a folder with model.safetensors + config.json)")


def load_bundle(model: Path) -> Any:
    """The model folder's :class:`~eps3d_ros.model.bundle.ModelBundle` (files only: cheap, before any frame is read)."""
    from ..model.bundle import BundleError, ModelBundle

    try:
        return ModelBundle.load(model)
    except BundleError as e:
        raise UserError(str(e)) from None


def check_device(name: str) -> str:
    """``--device`` checked before anything heavy runs."""
    from ..pipeline.loading import resolve_device

    if name != "auto" and not (name == "cpu" or name.startswith("cuda")):
        raise UserError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    try:
        return resolve_device(name)
    except ValueError as e:
        raise UserError(f"--device {name}: {e}") from None


def input_box(args: argparse.Namespace, bundle: Any) -> tuple[int, int]:
    """The box frames are fitted into: ``--size``, else the model's native size."""
    return parse_size(args.size) if getattr(args, "size", None) else tuple(bundle.input_size)


def pipeline_config(args: argparse.Namespace, model: Path, views: int, vocabulary: Sequence[str] | None = None,
                    stuff: Sequence[str] | None = None, use_depth: bool = True, measured_depth: bool = False) -> Any:
    """An :class:`~eps3d_ros.pipeline.Eps3dConfig` for windows of ``views`` frames: what the arguments give;
    the rest is left to the model folder (see :func:`eps3d_ros.pipeline.loading.resolve_config`)."""
    from ..pipeline.config import Eps3dConfig

    cfg = Eps3dConfig()
    cfg.model.weights = str(model)
    cfg.model.device = args.device
    if args.text_model:
        cfg.text.model = args.text_model
    if args.text_weights is not None:
        cfg.text.pretrained = args.text_weights or "random"
    cfg.text.device = "cpu" if args.device == "auto" else args.device
    if getattr(args, "size", None):
        cfg.pipeline.image_height, cfg.pipeline.image_width = parse_size(args.size)
    p = cfg.panoptic
    vocab = parse_names(args.vocabulary) if args.vocabulary is not None else vocabulary
    if vocab is not None:
        p.vocabulary = list(vocab)
    st = parse_names(args.stuff) if args.stuff is not None else stuff
    if st is not None:
        p.stuff = list(st)
    if args.min_cluster_size is not None:
        p.clustering.min_cluster_size = args.min_cluster_size
    if args.max_samples is not None:
        p.clustering.max_samples = args.max_samples
    if args.min_object_points is not None:
        p.min_object_points = args.min_object_points
    pc = cfg.pipeline
    pc.window_size = views
    pc.buffer_size = max(pc.buffer_size, views)
    pc.every_n_frames = views
    pc.use_depth = "auto" if use_depth else "false"
    pc.use_measured_depth = measured_depth
    try:
        return cfg.validate()
    except ValueError as e:
        raise UserError(str(e).replace("panoptic.", "--").replace("clustering.", "")) from None


# ------------------------------------------------------------------------------------------ output
class Timer:
    """Stage timings in seconds, in the order measured."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._t0 = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t0

    def add(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + float(seconds)

    def total(self) -> float:
        return time.perf_counter() - self._t0

    def report(self) -> str:
        rows = [f"  {k:<18} {v:8.2f} s" for k, v in self.stages.items()]
        rows.append(f"  {'total (wall)':<18} {self.total():8.2f} s")
        return "\n".join(rows)


def print_notes(snapshot: Any) -> None:
    """A reconstruction's notes; an alignment that fell back (TF or depth disagreeing with the images) first, as
    a warning."""
    warning = snapshot.alignment.warning
    if warning:
        print(f"  WARNING: {warning}")
    for note in snapshot.notes:
        if note != warning:
            print(f"  note: {note}")


def units(scale_known: bool) -> str:
    return "m" if scale_known else "scene units, scale unknown"


def objects_table(scene: Any, scale_known: bool, limit: int | None = None) -> str:
    objs = list(scene.objects)[:limit] if limit else list(scene.objects)
    if not objs:
        return "  (no objects)"
    lines = [f"  {'id':>3}  {'label':<14} {'kind':<5} {'score':>5} {'points':>7}  {'centroid (x, y, z)':<26} "
             f"size [{units(scale_known).split(',')[0]}]"]
    for o in objs:
        c = ", ".join(f"{v:+.2f}" for v in o.centroid)
        e = " x ".join(f"{v:.2f}" for v in sorted(o.obb.extent, reverse=True))
        lines.append(f"  {o.id:>3}  {o.label[:14]:<14} {'thing' if o.is_thing else 'stuff':<5} {o.score:>5.2f} "
                     f"{o.num_points:>7}  ({c}){'':<{max(0, 24 - len(c))}} {e}")
    if limit and len(scene.objects) > limit:
        lines.append(f"  ... {len(scene.objects) - limit} more")
    return "\n".join(lines)


def map_table(objects: Sequence[Any], scale_known: bool, limit: int | None = None) -> str:
    """The objects of a map: id, label, kind, score, windows seen, points, centroid, box size."""
    objs = list(objects)[:limit] if limit else list(objects)
    if not objs:
        return "  (no objects)"
    lines = [f"  {'id':>3}  {'label':<14} {'kind':<5} {'score':>5} {'seen':>4} {'points':>7}  "
             f"{'centroid (x, y, z)':<26} size [{units(scale_known).split(',')[0]}]"]
    for o in objs:
        c = ", ".join(f"{v:+.2f}" for v in o.centroid)
        e = " x ".join(f"{v:.2f}" for v in sorted(o.obb.extent, reverse=True))
        lines.append(f"  {o.id:>3}  {o.label[:14]:<14} {'thing' if o.is_thing else 'stuff':<5} {o.score:>5.2f} "
                     f"{o.observations:>4} {o.point_count:>7}  ({c}){'':<{max(0, 24 - len(c))}} {e}")
    if limit and len(objects) > limit:
        lines.append(f"  ... {len(objects) - limit} more")
    return "\n".join(lines)


def matches_table(matches: Sequence[Any]) -> str:
    if not matches:
        return "  (no match)"
    lines = [f"  {'rank':>4} {'score':>6} {'cosine':>7}  {'id':>3}  {'label':<14} centroid (x, y, z)"]
    for i, m in enumerate(matches, 1):
        c = ", ".join(f"{v:+.3f}" for v in m.object.centroid)
        lines.append(f"  {i:>4} {m.score:>6.3f} {m.similarity:>7.3f}  {m.object.id:>3}  {m.object.label[:14]:<14} ({c})")
    return "\n".join(lines)


def match_dict(m: Any) -> dict[str, Any]:
    o = m.object
    return {"id": int(o.id), "label": o.label, "is_thing": bool(o.is_thing), "score": round(float(m.score), 6),
            "cosine": round(float(m.similarity), 6), "class_score": round(float(o.score), 6),
            "centroid": [round(float(v), 6) for v in o.centroid],
            "obb_center": [round(float(v), 6) for v in o.obb.center],
            "obb_extent": [round(float(v), 6) for v in o.obb.extent],
            "aabb_min": [round(float(v), 6) for v in o.aabb_min], "aabb_max": [round(float(v), 6) for v in o.aabb_max],
            "num_points": int(o.num_points)}


@contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """Without --verbose: no Python warnings and only errors from the loggers (open_clip's 'no pretrained
    weights', torchvision's compatibility notes), restored afterwards (commands also run in-process)."""
    if verbose:
        yield
        return
    import warnings

    loggers = [logging.getLogger(name) for name in ("", "eps3d_ros", "open_clip")]
    levels = [lg.level for lg in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def file_size(path: str | Path) -> str:
    n = Path(path).stat().st_size
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
