"""eps3d_node in its own process under signals and the shutdown transition: it ends cleanly — exit code 0, no
traceback, nothing published into a dead context — also while a window is being reconstructed."""

from __future__ import annotations

import signal

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState

from helpers import REPO
from eps3d_ros.data.synthetic import generate_sequence
from helpers.node_client import NodeClient, start_node, stop_node
from helpers.node_harness import wait_for

DEMO = REPO / "models" / "demo_tiny"
PARAMS = {"model.weights": str(DEMO), "pipeline.window_size": 4, "pipeline.every_n_frames": 4,
          "pipeline.keyframe_min_interval": 0.0, "pipeline.keyframe_min_translation": 0.0,
          "pipeline.keyframe_min_rotation": 0.0}


def _clean(log: str) -> None:
    assert "Traceback" not in log and "Failed to publish" not in log and "KeyboardInterrupt" not in log, log[-3000:]


def _busy_node(tmp_path, name: str):
    """A node whose window is being reconstructed right now: its diagnostics (1 Hz) just said so. A window takes
    about a second here, so the status seen is milliseconds old; when a window ended unseen, another is sent.
    On any failure the node is stopped (no process outlives its test)."""
    log = tmp_path / f"{name}.log"
    node = start_node(log, PARAMS, f"/{name}")
    client = NodeClient(f"/{name}")
    try:
        assert client.query.wait_for_service(timeout_sec=120), log.read_text()[-3000:]
        assert client.wait_until_heard(), "the node never subscribed to the client's topics"
        frames = list(generate_sequence(4, num_frames=4, height=112, width=112).frames("camera_optical"))
        for attempt in range(10):
            seen = len(client.diagnostics)
            for k, f in enumerate(frames):  # the 4th frame queues a window
                client.send(f, stamp=50.0 + 2.0 * attempt + 0.5 * k)
            if client.wait_for(lambda: len(client.diagnostics) > seen and
                               client.diagnostics[-1].get("worker_busy") == "True", 30):
                return node, client
        raise AssertionError("no window was ever seen running: " + log.read_text()[-3000:])
    except BaseException:
        client.close()
        stop_node(node)
        raise


@pytest.mark.timeout(600)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_inference_ends_the_node_cleanly(tmp_path, sig) -> None:
    node, client = _busy_node(tmp_path, f"sig{int(sig)}")
    try:
        code = stop_node(node, sig)
    finally:
        client.close()
    log = (tmp_path / f"sig{int(sig)}.log").read_text()
    assert code == 0, log[-3000:]  # the log says why, should it ever fail
    _clean(log)


@pytest.mark.timeout(600)
def test_a_second_ctrl_c_while_closing_is_no_traceback(tmp_path) -> None:
    node, client = _busy_node(tmp_path, "twice")
    try:
        node.send_signal(signal.SIGINT)
        # the session says it closes once the node has stopped listening to signals and begun closing
        log = tmp_path / "twice.log"
        assert wait_for(lambda: "session closing" in log.read_text(), 60), log.read_text()[-3000:]
        assert node.poll() is None, "the node ended before the second Ctrl-C: the closing path was not exercised"
        code = stop_node(node, signal.SIGINT)
    finally:
        client.close()
    # once in 5 full-suite runs under load it was 1: a signal shut the context down while the executor built its
    # wait set (RCLError), see test_context_shutdown.py; the log says why should it ever fail again
    assert code == 0, log.read_text()[-3000:]
    _clean(log.read_text())


@pytest.mark.timeout(600)
def test_the_shutdown_transition_ends_the_process(tmp_path) -> None:
    node = start_node(tmp_path / "shutdown.log", PARAMS, "/down")
    client = NodeClient("/down")
    try:
        change = client.node.create_client(ChangeState, "/down/eps3d_node/change_state")
        assert client.query.wait_for_service(timeout_sec=120)
        r = client.call(change, ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVE_SHUTDOWN)))
        assert r.success
        code = node.wait(timeout=60)  # no signal needed: main returns
        node.log_file.close()
    finally:
        client.close()
        if node.poll() is None:
            stop_node(node)
    assert code == 0
    _clean((tmp_path / "shutdown.log").read_text())
