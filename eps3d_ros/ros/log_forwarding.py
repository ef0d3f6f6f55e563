"""Forward the core's ``logging`` records (``eps3d_ros.*``) to the node's ROS logger.

While forwarding, the records do not also propagate to Python's root logger: a line would otherwise be
printed twice (once by the ROS logger, once by a root handler such as ``logging.basicConfig``'s). Once the
ROS context is shut down (a signal; the worker may still log while the node closes) the ROS logger would
fail to publish to /rosout: records are then written to stderr directly, in the same form.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable


def write_like_ros_logger(level: str, logger_name: str, message: str) -> None:
    """One line on stderr in the ROS logger's console form, for when its /rosout publisher is gone with the
    context (``level``: Python's level name)."""
    sys.stderr.write(f"[{level.replace('WARNING', 'WARN')}] [{time.time():.9f}] [{logger_name}]: {message}\n")


class RosLogHandler(logging.Handler):
    def __init__(self, ros_logger, is_live: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self._ros = ros_logger
        self._is_live = is_live or (lambda: True)
        self.previous = (logging.NOTSET, True)  # the core logger's level and propagation before forwarding

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = f"[{record.name}] {self.format(record)}"
            if not self._is_live():
                write_like_ros_logger(record.levelname, self._ros.name, msg)
                return
            if record.levelno >= logging.ERROR:
                self._ros.error(msg)
            elif record.levelno >= logging.WARNING:
                self._ros.warning(msg)
            elif record.levelno >= logging.INFO:
                self._ros.info(msg)
            else:
                self._ros.debug(msg)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def forward_core_logs(ros_logger, level: int = logging.INFO,
                      is_live: Callable[[], bool] | None = None) -> RosLogHandler:
    """``is_live``: whether the ROS context still runs (default: always)."""
    handler = RosLogHandler(ros_logger, is_live)
    core = logging.getLogger("eps3d_ros")
    handler.previous = (core.level, core.propagate)
    core.addHandler(handler)
    core.setLevel(level)
    core.propagate = False
    return handler


def stop_forwarding(handler: RosLogHandler) -> None:
    """Remove ``handler`` and restore the core logger's level and propagation."""
    core = logging.getLogger("eps3d_ros")
    core.removeHandler(handler)
    if not any(isinstance(h, RosLogHandler) for h in core.handlers):
        core.setLevel(handler.previous[0])
        core.propagate = handler.previous[1]
