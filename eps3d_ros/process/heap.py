"""Give freed heap memory back to the operating system when nothing is being served.

A window allocates hundreds of megabytes of short-lived buffers (network activations, clustering, clouds);
glibc keeps freed blocks in its arenas (one per thread that allocated), and unloading a model frees
hundreds more. ``malloc_trim(0)`` returns the free pages; elsewhere than glibc it does nothing.

It is *not* called after every window: it locks each arena while it walks it, and every thread that
allocates meanwhile waits. Measured with the soak benchmark (150 s, load ~1): query round trips up to
3.1 s with a trim after each window, 0.34 s without. Fixing glibc's mmap threshold at 4 MB instead (big
buffers straight back to the OS) made every window ~30 % slower (page faults) and did not remove the
stalls either. So the node trims after a lifecycle cleanup, when no query is served.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["trim_heap"]


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def trim_heap() -> bool:
    """Return free heap pages to the OS; True when anything was released (False also where unsupported).
    Stalls every allocating thread while it runs: only when nothing time-critical runs."""
    fn = _malloc_trim()
    return bool(fn and fn(0))
