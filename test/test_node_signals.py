"""eps3d_node in its own process under signals and the shutdown transition: it ends cleanly — exit code 0, no
traceback, nothing published into a dead context — also while a window is being reconstructed."""

from __future__ import annotations

import signal
import time

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState

from conftest import REPO
from eps3d_ros.data.synthetic import generate_sequence
from node_client import NodeClient, start_node, stop_node

DEMO = REPO / "models" / "demo_tiny"
PARAMS = {"model.weights": str(DEMO), "pipeline.window_size": 4, "pipeline.every_n_frames": 4,
          "pipeline.keyframe_min_interval": 0.0, "pipeline.keyframe_min_translation": 0.0,
          "pipeline.keyframe_min_rotation": 0.0}


def _clean(log: str) -> None:
    assert "Traceback" not in log and "Failed to publish" not in log and "KeyboardInterrupt" not in log, log[-3000:]


def _busy_node(tmp_path, name: str):
    """A node whose first window is being reconstructed right now."""
    node = start_node(tmp_path / f"{name}.log", PARAMS, f"/{name}")
    client = NodeClient(f"/{name}")
    assert client.query.wait_for_service(timeout_sec=120), (tmp_path / f"{name}.log").read_text()[-3000:]
    client.spin(1.0)
    for k, f in enumerate(generate_sequence(4, num_frames=4, height=112, width=112).frames("camera_optical")):
        client.send(f, stamp=50.0 + 0.5 * k)
        client.spin(0.1)
    client.spin(0.5)  # the window is queued with the 4th frame; a demo window takes seconds on this CPU
    return node, client


@pytest.mark.timeout(600)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_inference_ends_the_node_cleanly(tmp_path, sig) -> None:
    node, client = _busy_node(tmp_path, f"sig{int(sig)}")
    try:
        code = stop_node(node, sig)
    finally:
        client.close()
    assert code == 0
    _clean((tmp_path / f"sig{int(sig)}.log").read_text())


@pytest.mark.timeout(600)
def test_a_second_ctrl_c_while_closing_is_no_traceback(tmp_path) -> None:
    node, client = _busy_node(tmp_path, "twice")
    try:
        node.send_signal(signal.SIGINT)
        time.sleep(0.3)
        code = stop_node(node, signal.SIGINT)
    finally:
        client.close()
    assert code == 0
    _clean((tmp_path / "twice.log").read_text())


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
