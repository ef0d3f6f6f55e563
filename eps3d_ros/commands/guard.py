"""How a command ends: exit codes, and user errors as one line on stderr instead of a traceback.

* 0 — done;
* 1 — it ran but found nothing (``query``: no object matched; ``inspect-checkpoint``: a strict load would fail);
* 2 — a user error: bad arguments, missing or unreadable files, a corrupt scene file or one of
  another format version, a bag or folder without usable images, an unsupported image type. The
  message goes to stderr and starts with ``eps3d: error:``;
* 130 — interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["EXIT_OK", "EXIT_NOTHING", "EXIT_USAGE", "EXIT_INTERRUPTED", "UserError", "guarded"]

EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UserError(Exception):
    """A problem the user can fix (bad argument, missing file); printed without a traceback, exit code 2."""


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
    # Pillow's decompression-bomb guard (an image too large to decode) is the input's fault, not a bug
    return bool(names & {"CheckpointError", "TextEncoderUnavailable", "ReaderError", "SafetensorError",
                         "DecompressionBombError"})


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.strerror}: {e.filename}"
    text = str(e) or type(e).__name__
    return text if isinstance(e, (UserError, ValueError, OSError)) else f"{type(e).__name__}: {text}"


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
