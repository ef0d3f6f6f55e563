"""CPU threads of the perception process (``model.threads``), set once at start.

Why it matters: torch's CPU kernels run on an OpenMP pool with one thread per core, whose threads
spin-wait for each other at every parallel region. When another process keeps one of the cores busy
(drivers, planners, a second node), every region waits for a thread that is not running: on 2 cores the
tiny network's forward went from 0.6 s to 6-7 s (10x). One thread per core *left free* avoids that.

``model.threads``:

* ``> 0`` — exactly that many threads;
* ``0`` — leave torch's default (one per core) untouched;
* ``-1`` — all cores but one (at least one thread): the default, chosen by measurement
  (``bench/bench_window.py``).

:func:`set_threads` sets torch's intra-op threads, its inter-op threads (only possible before any
inter-op work started; skipped otherwise), and the native pools torch, numpy and scipy loaded (OpenMP,
MKL, OpenBLAS) through ``threadpoolctl`` when it is installed. No numba is used. :func:`prepare_process`
is what the node and the CLI call once: threads, then the panoptic stage's one-off costs (imports,
first kernel calls) so that the first window runs as fast as the tenth, then ``gc.freeze()`` of what is
loaded by then, so that the garbage collector's full collections (which hold the GIL) stay short.

``model.switch_interval_ms`` (default 0.5; 0 leaves Python's 5 ms): how long a thread waiting for the GIL
waits before it asks the holder to hand it over. In the node under the soak benchmark, rclpy's executor loop
sometimes woke ~1000 times a second with nothing to do, taking and releasing the GIL each time; a 10 ms
ticker thread was then up to 0.8 s late and queries took up to 2.7 s (likely: each release and re-take
restarts a waiter's 5 ms wait). With 0.5 ms none of that was seen (bench/soak_node.py, README). Python
threads then switch more often; windows in the soak took 1.01 s (median) against 0.97 s before, +4 %, within
the run-to-run spread (inference runs in torch, without the GIL).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from typing import Any

import torch

__all__ = ["resolve_threads", "set_threads", "set_switch_interval", "prepare_process"]

log = logging.getLogger(__name__)


def resolve_threads(threads: int, cores: int | None = None) -> int:
    """The thread count ``threads`` stands for (0 = torch's current setting)."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < -1:
        raise ValueError(f"model.threads must be an int >= -1 (-1: all cores but one, 0: torch's default), got {threads!r}")
    if threads == 0:
        return torch.get_num_threads()
    if threads == -1:
        cores = cores if cores is not None else _usable_cores()
        return max(1, cores - 1)
    return threads


def set_threads(threads: int) -> dict[str, Any]:
    """Apply ``model.threads`` (see the module docstring); returns what was set, for the log."""
    n = resolve_threads(threads)
    out: dict[str, Any] = {"model.threads": threads, "cores": _usable_cores()}
    if threads == 0:
        out["torch_threads"] = torch.get_num_threads()
        return out
    torch.set_num_threads(n)
    out["torch_threads"] = torch.get_num_threads()
    try:
        if torch.get_num_interop_threads() != n:
            torch.set_num_interop_threads(n)
        out["interop_threads"] = n
    except RuntimeError as e:  # inter-op work already ran (torch allows setting it only before)
        out["interop_threads"] = f"unchanged ({torch.get_num_interop_threads()}): {e}"
    try:
        import numpy  # noqa: F401  (load its BLAS so that the limit below reaches it)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)  # every OpenMP/BLAS pool loaded so far, for the rest of the process
        out["native_pools"] = n
    except ImportError:
        out["native_pools"] = "threadpoolctl not installed: OpenMP/BLAS pools unchanged"
    return out


def set_switch_interval(milliseconds: float) -> float:
    """Python's thread switch interval in ms (``model.switch_interval_ms``; 0 leaves it); returns the one in force."""
    if not 0.0 <= float(milliseconds) <= 100.0:
        raise ValueError(f"model.switch_interval_ms must be in [0, 100] (0: Python's default), got {milliseconds!r}")
    if milliseconds > 0:
        sys.setswitchinterval(float(milliseconds) / 1000.0)
    return round(sys.getswitchinterval() * 1000.0, 3)


def prepare_process(config: Any) -> dict[str, Any]:
    """Once at start: :func:`set_threads` with ``config.model.threads``, :func:`set_switch_interval` with
    ``config.model.switch_interval_ms``, then the panoptic stage's warm-up
    on the model's device (:func:`eps3d_ros.panoptic.build.warm_up`: imports hdbscan, 1-2 s, and runs the
    first kernels of the clustering, outlier removal and pooling)."""
    from ..panoptic.build import warm_up

    info = set_threads(config.model.threads)
    info["switch_interval_ms"] = set_switch_interval(config.model.switch_interval_ms)
    t0 = time.perf_counter()
    device = config.model.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    warm_up(config.panoptic, device)
    info["panoptic_warm_up_s"] = round(time.perf_counter() - t0, 3)
    # Everything loaded so far (torch, models, hdbscan: ~0.5M objects) lives as long as the process: out of
    # the collector's sight, a full collection no longer scans it — such a scan held the GIL ~0.3 s.
    gc.collect()
    gc.freeze()
    info["gc_frozen_objects"] = gc.get_freeze_count()
    log.info("process: %s", info)
    return info


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
