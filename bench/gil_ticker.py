"""How long other Python threads wait while something runs: a 1 ms ticker thread.

The ticker sleeps 1 ms (releasing the GIL) and records how late it wakes up, i.e. how long it waited for
the GIL (plus the OS's scheduling delay on a loaded machine; :func:`baseline` measures that alone). The
longest wait while a piece of code runs bounds how long a query thread (the node's text queries) could be
held up by it.

    with GilTicker() as t:
        build_scene(...)
    t.stats()   # {"ticks": ..., "max_wait_ms": ..., "p99_wait_ms": ..., "p50_wait_ms": ...}
"""

from __future__ import annotations

import threading
import time

__all__ = ["GilTicker", "baseline"]


class GilTicker:
    def __init__(self, period_s: float = 0.001) -> None:
        self.period = period_s
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gil-ticker", daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(self.period)
            now = time.perf_counter()
            self.waits.append(max(0.0, now - last - self.period))
            last = now

    def __enter__(self) -> "GilTicker":
        self._thread.start()
        time.sleep(5 * self.period)  # running before the measured code starts
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def stats(self) -> dict[str, float]:
        w = sorted(self.waits)
        if not w:
            return {"ticks": 0, "max_wait_ms": float("nan"), "p99_wait_ms": float("nan"), "p50_wait_ms": float("nan")}
        pick = lambda q: 1000 * w[min(len(w) - 1, int(q * (len(w) - 1)))]  # noqa: E731
        return {"ticks": len(w), "max_wait_ms": round(1000 * w[-1], 2), "p99_wait_ms": round(pick(0.99), 2),
                "p50_wait_ms": round(pick(0.5), 2)}


def baseline(seconds: float = 1.0) -> dict[str, float]:
    """The ticker's waits with nothing else running in this process (the OS's share of the waits)."""
    with GilTicker() as t:
        time.sleep(seconds)
    return t.stats()
