"""What a run has cost so far: CPU-hours (every rank's process CPU time, summed) and wall-hours.

A learning curve is read against what it cost, and wall time alone misleads on a shared machine (a
run that waits for the cores accrues wall time, not CPU time) and across rank counts (2 ranks spend
two CPU-seconds per wall-second). :class:`RunUsage` keeps both totals across resumes: they go into
every checkpoint (``usage``) and into each row of ``eval_log.csv`` (``cpu_hours``, ``wall_hours``).
A checkpoint written before usage was recorded resumes with the totals it carries (none: zero), and
the log says so.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

log = logging.getLogger(__name__)

__all__ = ["RunUsage"]


class RunUsage:
    """Running totals of CPU seconds (all ranks) and wall seconds (rank 0) of a training run."""

    def __init__(self) -> None:
        self.cpu_s = 0.0  # totals up to the last sync, the same on every rank
        self.wall_s = 0.0
        self._cpu0: float | None = None  # this process's clocks at the last sync
        self._wall0 = 0.0

    def start(self) -> None:
        """Start counting this process's time (``fit`` calls it)."""
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()

    def sync(self, ranks: Any) -> None:
        """Add every rank's time since the last sync. A collective: all ranks call it at the same step."""
        if self._cpu0 is None:
            self.start()
            return
        cpu, wall = time.process_time(), time.perf_counter()
        spent = torch.tensor([cpu - self._cpu0, wall - self._wall0], dtype=torch.float64)
        spent = ranks.all_reduce_sum(spent)
        self.cpu_s += float(spent[0])
        self.wall_s += float(spent[1]) / max(1, int(getattr(ranks, "world_size", 1)))  # the ranks run side by side
        self._cpu0, self._wall0 = cpu, wall

    def hours(self) -> dict[str, float]:
        """``{"cpu_hours", "wall_hours"}`` up to the last sync."""
        return {"cpu_hours": self.cpu_s / 3600.0, "wall_hours": self.wall_s / 3600.0}

    def state(self) -> dict[str, float]:
        return {"cpu_s": self.cpu_s, "wall_s": self.wall_s}

    def load(self, state: dict[str, Any] | None) -> None:
        """Continue from a checkpoint's totals (``None``: a checkpoint from before usage was recorded)."""
        if state is None:
            log.info("the checkpoint records no CPU/wall time: this run's cpu_hours and wall_hours count from here")
            self.cpu_s = self.wall_s = 0.0
            return
        self.cpu_s, self.wall_s = float(state["cpu_s"]), float(state["wall_s"])
