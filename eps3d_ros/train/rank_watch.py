"""Rank heartbeats: a rank that dies or raises ends every other rank of the job, with a message naming it.

A collective never notices a peer that is gone on another node (NCCL waits for its timeout, tens of
minutes), and torchrun's agent only watches the processes of its own node. So every rank runs a
daemon thread that, once a second, bumps its counter in the rendezvous store
(``MASTER_ADDR:MASTER_PORT``, a connection of its own) and reads the others':

* a rank whose counter has not moved for ``timeout_s`` is dead or frozen: this rank says so, naming
  it, and leaves (``os._exit``), so the whole job ends within ``timeout_s`` + a second or two;
* a rank that raises writes its cause under one key first (:meth:`RankWatch.report_failure`; the
  first cause wins), and every other rank leaves at its next beat with that message;
* the store itself gone (its host died) ends the rank too, after ``timeout_s``.

Rank 0 evaluating or exporting alone does not count as silence: the thread beats while the main
thread waits in a barrier. A clean finish marks the rank done, so late finishers are not alarmed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

log = logging.getLogger(__name__)

__all__ = ["RankWatch"]

_DONE = 1 << 40  # added to a finished rank's counter


def _leave(message: str) -> None:
    log.error(message)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(1)


class RankWatch:
    """Heartbeats of ``rank`` among ``world_size`` ranks through a c10d store (see the module docstring)."""

    def __init__(self, store, rank: int, world_size: int, timeout_s: float = 30.0, interval_s: float = 1.0,
                 prefix: str = "eps3d/watch", on_stop: Callable[[str], None] = _leave) -> None:
        self.store, self.rank, self.world_size = store, rank, world_size
        self.timeout_s, self.interval_s = float(timeout_s), float(interval_s)
        self.prefix, self.on_stop = prefix, on_stop
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one store call at a time (the thread and report_failure)
        self._thread: threading.Thread | None = None

    @classmethod
    def connect(cls, host: str, port: int, rank: int, world_size: int, **kwargs) -> "RankWatch":
        """A watch on its own client connection to the store at ``host:port``."""
        import torch.distributed as dist

        store = dist.TCPStore(host, port, is_master=False, timeout=timedelta(seconds=10))  # a dead host: fail soon
        run = os.environ.get("TORCHELASTIC_RUN_ID", "") + "/" + os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        return cls(store, rank, world_size, prefix=f"eps3d/watch/{run}", **kwargs)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def start(self) -> "RankWatch":
        self._beat()
        self._thread = threading.Thread(target=self._run, name=f"rank-watch-{self.rank}", daemon=True)
        self._thread.start()
        return self

    def _beat(self, amount: int = 1) -> None:
        with self._lock:
            self.store.add(self._key(f"beat/{self.rank}"), amount)

    def _read(self) -> tuple[str | None, dict[int, int]]:
        """``(failure message or None, {rank: counter})`` of the other ranks."""
        with self._lock:
            failed = self.store.get(self._key("failed")).decode() if self.store.check([self._key("failed")]) else None
            beats = {q: self.store.add(self._key(f"beat/{q}"), 0) for q in range(self.world_size) if q != self.rank}
        return failed, beats

    def _run(self) -> None:
        now = time.monotonic()
        seen: dict[int, tuple[int, float]] = {}
        store_ok = now
        while not self._stop.wait(self.interval_s):
            now = time.monotonic()
            try:
                self._beat()
                failed, beats = self._read()
                store_ok = now
            except Exception as e:  # noqa: BLE001 - the store's host may be gone
                if now - store_ok > self.timeout_s:
                    self.on_stop(f"rank {self.rank}: the rendezvous store has not answered for "
                                 f"{now - store_ok:.0f} s ({e}); its host (rank 0 or the launcher) is gone: stopping")
                    return
                continue
            if failed is not None:
                self.on_stop(f"rank {self.rank} stops: {failed}")
                return
            for q, value in beats.items():
                last = seen.get(q)
                if last is None or value != last[0]:
                    seen[q] = (value, now)
                elif value < _DONE and now - last[1] > self.timeout_s:
                    self.on_stop(f"rank {self.rank} stops: rank {q} has been silent for {now - last[1]:.0f} s "
                                 "(its process died, was killed, or hangs)")
                    return

    def report_failure(self, message: str) -> None:
        """Publish this rank's failure (the first one published wins) so that the others stop at once."""
        try:
            with self._lock:
                self.store.compare_set(self._key("failed"), "", message)
        except Exception as e:  # noqa: BLE001 - the others will still see the silence
            log.warning("rank %d could not publish its failure: %s", self.rank, e)

    def cause(self, wait_s: float) -> str | None:
        """Wait up to ``wait_s`` for a published failure or a silent rank; the message, or ``None``."""
        end = time.monotonic() + wait_s
        first: dict[int, tuple[int, float]] = {}
        while True:
            now = time.monotonic()
            try:
                failed, beats = self._read()
            except Exception as e:  # noqa: BLE001
                return f"the rendezvous store is gone ({e})"
            if failed is not None:
                return failed
            for q, value in beats.items():
                v0, t0 = first.setdefault(q, (value, now))
                if value == v0 and value < _DONE and now - t0 > min(3 * self.interval_s, self.timeout_s):
                    return f"rank {q} stopped answering (its process died or was killed)"
            if now > end:
                return None
            time.sleep(self.interval_s / 2)

    def close(self, done: bool = True) -> None:
        """Stop beating; ``done`` marks a clean finish (others never count this rank as silent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if done:
            try:
                self._beat(_DONE)
            except Exception:  # noqa: BLE001 - nobody left to tell
                pass
