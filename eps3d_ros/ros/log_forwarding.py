"""Forward the core's ``logging`` records (``eps3d_ros.*``) to the node's ROS logger."""

from __future__ import annotations

import logging


class RosLogHandler(logging.Handler):
    def __init__(self, ros_logger) -> None:
        super().__init__()
        self._ros = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = f"[{record.name}] {self.format(record)}"
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


def forward_core_logs(ros_logger, level: int = logging.INFO) -> RosLogHandler:
    handler = RosLogHandler(ros_logger)
    core = logging.getLogger("eps3d_ros")
    core.addHandler(handler)
    core.setLevel(level)
    return handler
