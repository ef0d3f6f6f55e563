"""Give freed heap memory back to the operating system after each window.

A window allocates hundreds of megabytes of short-lived buffers (network activations, clustering, clouds).
glibc keeps freed blocks in its arenas (one per thread that allocated), so a long-running node's RSS creeps
up although nothing leaks. ``malloc_trim(0)`` returns the free pages; elsewhere (not glibc) this does nothing.
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
    """Return free heap pages to the OS; True when anything was released (False also where unsupported)."""
    fn = _malloc_trim()
    return bool(fn and fn(0))
