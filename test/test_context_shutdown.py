"""The node's spin loop and callbacks when a signal shuts the context down under them (ros/context_shutdown.py).

rclpy's signal thread shuts the rcl context down at once, while the executor may be between its "context ok?"
check and building its wait set, or a callback may be querying the graph: those calls raise ``RCLError``. Once
in five full-suite runs under load this made the node exit with code 1 after a Ctrl-C. Here the context is shut
down at exactly those moments, the way the signal thread does it (the rcl context only; nodes stay), with real
executors and nodes.
"""

from __future__ import annotations

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future

from eps3d_ros.ros.context_shutdown import close_in_order, run_while_live, spin_until_finished


def shut_down_like_a_signal(context: Context) -> None:
    """What rclpy's signal thread does on SIGINT: the rcl context is shut down, the nodes are left alone (no
    public call does only this, hence the private handle)."""
    context._Context__context.shutdown()


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
    nodes = []
    yield ctx, nodes
    for n in nodes:
        n.destroy_node()
    ctx.try_shutdown()


def _node(context, nodes, name: str):
    node = rclpy.create_node(name, context=context, start_parameter_services=False)
    node.finished = Future()
    nodes.append(node)
    return node


class SignalWhileBuildingTheWaitSet(MultiThreadedExecutor):
    """A real executor whose context a signal shuts down after its "context ok?" check, while it gathers the
    entities for its wait set (it asks ``can_execute`` of each): the window the flaky exit code came from."""

    armed = False

    def can_execute(self, entity) -> bool:
        if self.armed:
            self.armed = False
            shut_down_like_a_signal(self._context)
        return super().can_execute(entity)


def _executor_with_timer(context, nodes, name: str) -> tuple[SignalWhileBuildingTheWaitSet, object]:
    node = _node(context, nodes, name)
    ex = SignalWhileBuildingTheWaitSet(num_threads=2, context=context)
    ex.add_node(node)

    def tick():  # after a first round, the signal lands in the next wait-set build
        ex.armed = True

    node.create_timer(0.01, tick)
    return ex, node


def test_the_race_is_real_a_plain_spin_raises_rclerror(context) -> None:
    ctx, nodes = context
    ex, node = _executor_with_timer(ctx, nodes, "plain")
    with pytest.raises(_rclpy.RCLError, match="context"):
        ex.spin_until_future_complete(node.finished, timeout_sec=10.0)
    ex.shutdown(timeout_sec=5.0)


def test_spin_until_finished_ends_quietly_on_it(context, capfd) -> None:
    ctx, nodes = context
    ex, node = _executor_with_timer(ctx, nodes, "quiet")
    spin_until_finished(ex, node)  # returns instead of raising
    assert not ctx.ok()
    err = capfd.readouterr().err
    assert "spinning ended by the shutdown (RCLError" in err and "Traceback" not in err
    assert "Failed to publish" not in err  # nothing went through the dead context's /rosout
    ex.shutdown(timeout_sec=5.0)


def test_spin_until_finished_returns_on_the_shutdown_transition(context) -> None:
    ctx, nodes = context
    node = _node(ctx, nodes, "transition")
    node.create_timer(0.05, lambda: node.finished.done() or node.finished.set_result(True))
    ex = MultiThreadedExecutor(num_threads=2, context=ctx)
    ex.add_node(node)
    spin_until_finished(ex, node)
    assert node.finished.done() and ctx.ok()
    ex.shutdown(timeout_sec=5.0)


def test_a_fault_while_the_context_lives_is_raised(context) -> None:
    ctx, nodes = context
    node = _node(ctx, nodes, "fault")

    def broken():
        raise ValueError("a callback's own bug")

    node.create_timer(0.01, broken)
    ex = MultiThreadedExecutor(num_threads=2, context=ctx)
    ex.add_node(node)
    with pytest.raises(ValueError, match="own bug"):
        spin_until_finished(ex, node)
    assert ctx.ok()
    ex.shutdown(timeout_sec=5.0)


def test_run_while_live(context) -> None:
    ctx, nodes = context
    node = _node(ctx, nodes, "graph")
    assert run_while_live(ctx, lambda: node.count_publishers("/x"))
    with pytest.raises(KeyError):  # alive: a real error is the caller's
        run_while_live(ctx, lambda: {}["missing"])
    shut_down_like_a_signal(ctx)
    with pytest.raises(_rclpy.RCLError, match="context is invalid"):  # what the 10 Hz depth check met
        node.count_publishers("/x")
    ran = []
    assert run_while_live(ctx, lambda: ran.append(1)) is False and ran == []  # down: not even tried


def test_run_while_live_swallows_what_the_shutdown_explains(context) -> None:
    ctx, nodes = context
    node = _node(ctx, nodes, "midway")

    def query_as_the_signal_lands():
        shut_down_like_a_signal(ctx)
        node.count_publishers("/x")

    assert run_while_live(ctx, query_as_the_signal_lands) is False


def test_close_in_order_runs_every_step(context, capfd) -> None:
    ctx, _ = context
    done = []

    def fails():
        raise RuntimeError("step two broke")

    with pytest.raises(RuntimeError, match="step two"):  # alive: the first failure is raised, after the rest ran
        close_in_order(ctx, "n", [("one", lambda: done.append(1)), ("two", fails), ("three", lambda: done.append(3))])
    assert done == [1, 3]
    assert "closing: two failed (RuntimeError: step two broke)" in capfd.readouterr().err
    shut_down_like_a_signal(ctx)
    done.clear()
    close_in_order(ctx, "n", [("one", lambda: done.append(1)), ("two", fails), ("three", lambda: done.append(3))])
    assert done == [1, 3]  # down (a signal): noted, not raised
    assert "closing: two failed" in capfd.readouterr().err
