"""Approximate time synchronisation with message_filters' semantics."""

from __future__ import annotations

import threading

import pytest

from eps3d_ros.frames.time_sync import ApproximateTimeSynchronizer


def _sync(num_inputs: int = 2, queue_size: int = 10, slop: float = 0.05):
    out: list[tuple] = []
    return ApproximateTimeSynchronizer(num_inputs, queue_size, slop, lambda *m: out.append(m)), out


def test_pairs_within_slop_are_emitted_once() -> None:
    sync, out = _sync()
    for k in range(5):
        t = float(k)
        assert not sync.add(0, t, f"img{k}")
        assert sync.add(1, t + 0.02, f"dep{k}")  # 20 ms apart < 50 ms slop
    assert out == [(f"img{k}", f"dep{k}") for k in range(5)]
    assert sync.pending() == [0, 0]
    s = sync.stats()
    assert s["emitted_sets"] == 5 and s["received"] == 10 and s["pending"] == 0 and sync.dropped == 0


def test_outside_slop_is_not_emitted() -> None:
    sync, out = _sync(slop=0.05)
    sync.add(0, 1.0, "a")
    sync.add(1, 1.06, "b")  # 60 ms > slop
    assert out == [] and sync.pending() == [1, 1]
    sync, out = _sync(slop=0.05)
    sync.add(0, 1.0, "a")
    sync.add(1, 1.05, "b")  # spread == slop: the spread test is strict (message_filters: max - min < slop)
    assert out == []


def test_closest_candidate_wins_and_leftovers_stay() -> None:
    sync, out = _sync(slop=0.05)
    sync.add(1, 0.97, "d_early")
    sync.add(1, 1.01, "d_close")
    sync.add(0, 1.0, "img")
    assert out == [("img", "d_close")]
    assert sync.pending() == [0, 1]  # the other candidate waits for a later image (or overflow)
    sync.add(0, 0.98, "img_late")  # out of order: an older image arriving late still pairs
    assert out[-1] == ("img_late", "d_early")


def test_out_of_order_arrival() -> None:
    sync, out = _sync(slop=0.01)
    for t in (3.0, 1.0, 2.0):
        sync.add(1, t + 0.004, f"d{t:g}")
    for t in (2.0, 3.0, 1.0):
        sync.add(0, t, f"i{t:g}")
    assert out == [("i2", "d2"), ("i3", "d3"), ("i1", "d1")]


def test_queue_overflow_drops_oldest_stamp() -> None:
    sync, out = _sync(queue_size=3, slop=0.01)
    for t in (5.0, 1.0, 3.0, 2.0, 4.0):  # arrival order differs from stamp order
        sync.add(0, t, f"i{t:g}")
    assert sync.pending() == [3, 0]
    assert sync.stats()["dropped_overflow"] == 2
    for t in (1.0, 2.0, 3.0, 4.0, 5.0):
        sync.add(1, t, f"d{t:g}")
    # stamps 1 and 2 (the oldest) were dropped, whatever their arrival order
    assert out == [("i3", "d3"), ("i4", "d4"), ("i5", "d5")]
    assert sync.pending() == [0, 2] and sync.dropped == 2


def test_same_stamp_replaces_and_is_counted() -> None:
    sync, out = _sync()
    sync.add(0, 1.0, "first")
    sync.add(0, 1.0, "second")
    sync.add(1, 1.0, "d")
    assert out == [("second", "d")] and sync.stats()["dropped_duplicate"] == 1


def test_three_inputs() -> None:
    sync, out = _sync(num_inputs=3, slop=0.03)
    sync.add(0, 1.00, "rgb")
    sync.add(2, 1.02, "info")
    assert out == []
    sync.add(1, 1.04, "depth")  # 1.04 - 1.00 = 0.04 > slop: no set
    assert out == []
    sync.add(1, 1.01, "depth2")
    assert out == [("rgb", "depth2", "info")]
    assert sync.pending() == [0, 1, 0]
    # a combination where the new message is close to each, but the others are too far apart
    sync, out = _sync(num_inputs=3, slop=0.03)
    sync.add(0, 0.98, "a")
    sync.add(2, 1.02, "c")
    sync.add(1, 1.00, "b")  # |Δ| = 0.02 to both, but their spread is 0.04
    assert out == []


def test_headerless_and_arguments() -> None:
    clock = iter([10.0, 10.01])
    out = []
    sync = ApproximateTimeSynchronizer(2, 5, 0.05, allow_headerless=True, now=lambda: next(clock))
    sync.register_callback(lambda a, b, tag: out.append((a, b, tag)), "extra")
    sync.add(0, None, "a")
    sync.add(1, None, "b")
    assert out == [("a", "b", "extra")]
    strict, got = _sync()
    assert not strict.add(0, None, "x") and strict.stats()["dropped_headerless"] == 1
    with pytest.raises(IndexError, match="out of range for 2 inputs"):
        strict.add(2, 0.0, "x")
    with pytest.raises(ValueError, match="queue_size"):
        ApproximateTimeSynchronizer(2, 0, 0.1)


def test_thread_safety_emits_every_pair_once() -> None:
    sync, out = _sync(queue_size=1000, slop=0.001)
    n = 500

    def feed(i: int) -> None:
        for k in range(n):
            sync.add(i, k * 0.1 + 0.0003 * i, (i, k))

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(m[0][1] for m in out) == list(range(n))
    assert all(a[1] == b[1] for a, b in out)
