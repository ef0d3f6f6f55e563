"""Core log records go to the ROS logger once, and to stderr once the ROS context is shut down."""

from __future__ import annotations

import logging

from eps3d_ros.ros.log_forwarding import forward_core_logs, stop_forwarding


class RecordingLogger:
    name = "eps3d_node"

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def error(self, m):
        self.lines.append(("error", m))

    def warning(self, m):
        self.lines.append(("warning", m))

    def info(self, m):
        self.lines.append(("info", m))

    def debug(self, m):
        self.lines.append(("debug", m))


def test_records_reach_the_ros_logger_then_stderr_after_shutdown(capsys) -> None:
    ros = RecordingLogger()
    live = [True]
    handler = forward_core_logs(ros, is_live=lambda: live[0])
    core = logging.getLogger("eps3d_ros.pipeline.session")
    try:
        core.warning("depth not used")
        assert ros.lines == [("warning", "[eps3d_ros.pipeline.session] depth not used")]
        assert not logging.getLogger("eps3d_ros").propagate  # not printed a second time by the root logger
        live[0] = False  # the context was shut down (a signal): no publishing to /rosout any more
        core.info("window of 4 views")
        assert len(ros.lines) == 1
        err = capsys.readouterr().err
        assert "[INFO]" in err and "[eps3d_node]: [eps3d_ros.pipeline.session] window of 4 views" in err
    finally:
        stop_forwarding(handler)
    assert logging.getLogger("eps3d_ros").propagate
